//! Keeping every host's memory of terminals current when several hosts share one database
//! (issue 15, docs/scaling.md).
//!
//! Each change onboarding makes to a terminal (activation, status, forced key change,
//! parameters) is applied to this process's host at once and recorded in the store
//! (`store::host_changes`) in the change's own transaction. Every host follows those records
//! ([`Onboarding::follow_changes`], every couple of seconds in `easypos up`) and reads each
//! terminal named afresh ([`Onboarding::refresh_terminal`]): its directory record, its
//! parameter set, and its master key, whose cached token is forgotten.

use crate::service::{Onboarding, OnboardingError};
use std::collections::BTreeMap;
use store::host_changes::OVERLAP_SECONDS;
use store::onboarding::{Cell, Kind};

/// How far a host has followed the changes: the highest id applied, and the ids applied in
/// the overlap window (a change may commit after one with a higher id; it is still applied
/// once).
#[derive(Debug, Default)]
pub struct ChangeCursor {
    /// Whether a first read was made: a host that starts has read every terminal afresh, so
    /// its first read applies only what is in the overlap window.
    primed: bool,
    last_id: i64,
    /// Ids applied, with when they were made (seconds), pruned past the overlap window.
    applied: BTreeMap<i64, i64>,
}

impl Onboarding {
    /// Applies the changes recorded since `cursor`; returns how many terminals were read again.
    pub async fn follow_changes(
        &self,
        cursor: &mut ChangeCursor,
    ) -> Result<usize, OnboardingError> {
        let since = self.now() - OVERLAP_SECONDS;
        let changes = self.store.host_changes(cursor.last_id, since).await?;
        let mut applied = 0;
        for change in changes {
            if cursor.applied.contains_key(&change.id) {
                continue;
            }
            if !cursor.primed && change.at < since {
                cursor.last_id = cursor.last_id.max(change.id);
                continue;
            }
            self.refresh_terminal(&change.terminal_id).await?;
            cursor.applied.insert(change.id, change.at);
            cursor.last_id = cursor.last_id.max(change.id);
            applied += 1;
        }
        cursor.applied.retain(|_, at| *at >= since);
        cursor.primed = true;
        Ok(applied)
    }

    /// Reads terminal `id` afresh into the host: its directory record (with its merchant), its
    /// parameter set when it has one, and its master key (the cached token is forgotten, so
    /// the next use reads the stored one).
    pub async fn refresh_terminal(&self, id: &str) -> Result<(), OnboardingError> {
        let merchant = self.tell_host(id).await?;
        self.host.key_changed(&demo::terminal_master_key_name(id));
        let provisioned = self
            .store
            .onboarding_query(
                "SELECT terminal_id FROM terminal_details WHERE terminal_id = $1",
                vec![Cell::text(id)],
                &[Kind::Text],
            )
            .await?;
        if let Some(merchant) = merchant
            && !provisioned.is_empty()
        {
            let parameters = self.current_parameters(id, &merchant).await?;
            self.host.parameters_changed(id, &parameters);
        }
        Ok(())
    }

    /// Tells the host the terminal's directory record as it now is; its merchant, or `None`
    /// when there is no such terminal.
    pub(crate) async fn tell_host(
        &self,
        id: &str,
    ) -> Result<Option<store::directory::Merchant>, OnboardingError> {
        let Some((terminal, merchant)) = self.store.terminal_with_merchant(id).await? else {
            return Ok(None);
        };
        self.host.terminal_changed(&terminal, &merchant);
        Ok(Some(merchant))
    }
}
