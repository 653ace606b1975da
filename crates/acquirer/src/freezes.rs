//! Emergency freezes in a host's memory kept equal to the store's (docs/scaling.md).
//!
//! The host checks `risk::Freezes` on every authorization without a database read. The API of
//! the same process changes memory and the store together; what the API of another process
//! sharing the database froze or lifted reaches this host when it next calls [`sync_freezes`]
//! (every `FREEZE_SYNC_INTERVAL` in `easypos up`).

use store::{Store, StoreError};

/// Makes `freezes` exactly the store's: `Some(changed)` entries, or `None` when this process
/// changed a freeze while the store was read (its own change is kept; the next call settles).
pub async fn sync_freezes(
    store: &Store,
    freezes: &risk::Freezes,
) -> Result<Option<usize>, StoreError> {
    // The generation is read before the store, so a freeze set meanwhile is never undone.
    let seen = freezes.generation();
    let stored = store.freezes().await?;
    let all = stored.iter().filter_map(|freeze| {
        risk::FreezeScope::parse(&freeze.scope).map(|scope| (scope, freeze.target.as_str()))
    });
    Ok(freezes.replace_all(seen, all))
}
