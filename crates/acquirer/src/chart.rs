//! The accounts a card sale moves money between, beyond the card's own account and the
//! merchant's payable account (both in the directory): the card issuer's settlement account
//! with acquirers, and the acquirer's account of what issuers owe it — one per institution and
//! currency. Ids come from fixed keys, so every process finds the same accounts.

use ledger::{AccountId, InstitutionId};
use money::Currency;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Chart-of-accounts code of an issuer's settlement account with acquirers.
pub const CODE_ISSUER_SETTLEMENT: u16 = 2900;
/// Chart-of-accounts code of the acquirer's account of what issuers owe it.
pub const CODE_DUE_FROM_ISSUERS: u16 = 1001;

/// The issuer's account for what it owes acquirers for card sales in `currency`.
pub fn issuer_settlement(issuer: InstitutionId, currency: Currency) -> AccountId {
    remembered(Role::IssuerSettlement, issuer, currency, || {
        AccountId::from_key(
            "chart",
            format!("issuer/{}/settlement/{}", issuer.0, currency.alpha()).as_bytes(),
        )
    })
}

/// The acquirer's account for what issuers owe it in `currency`.
pub fn acquirer_due_from_issuers(acquirer: InstitutionId, currency: Currency) -> AccountId {
    remembered(Role::DueFromIssuers, acquirer, currency, || {
        AccountId::from_key(
            "chart",
            format!(
                "acquirer/{}/due-from-issuers/{}",
                acquirer.0,
                currency.alpha()
            )
            .as_bytes(),
        )
    })
}

/// Which chart account of an institution an id is remembered for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    IssuerSettlement,
    DueFromIssuers,
}

/// Most chart account ids remembered: institutions and currencies come from the directory, so
/// a few; past this, ids are computed every time.
const MAX_REMEMBERED: usize = 4_096;

/// The id of an institution's chart account, computed once (every card sale needs two, and an
/// id is a SHA-256 digest of its key).
fn remembered(
    role: Role,
    institution: InstitutionId,
    currency: Currency,
    compute: impl FnOnce() -> AccountId,
) -> AccountId {
    type Ids = HashMap<(Role, u32, Currency), AccountId>;
    static IDS: OnceLock<Mutex<Ids>> = OnceLock::new();
    let ids = IDS.get_or_init(Mutex::default);
    let key = (role, institution.0, currency);
    if let Some(id) = ids.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return *id;
    }
    let id = compute();
    let mut ids = ids.lock().unwrap_or_else(PoisonError::into_inner);
    if ids.len() < MAX_REMEMBERED {
        ids.insert(key, id);
    }
    id
}

/// Chart-of-accounts code of the two accounts that hold reversal marks (always balanced).
pub const CODE_REVERSAL_MARKS: u16 = 9001;

/// The pair of acquirer accounts between which a reversal that overtook its original leaves a
/// mark: a 1-unit hold, voided at once, whose id is the original's — so that the original,
/// arriving later, finds its id taken and cannot post. The accounts always end even.
pub fn reversal_marks(acquirer: InstitutionId, currency: Currency) -> (AccountId, AccountId) {
    let account = |side: &str| {
        AccountId::from_key(
            "chart",
            format!(
                "acquirer/{}/reversal-marks/{}/{side}",
                acquirer.0,
                currency.alpha()
            )
            .as_bytes(),
        )
    };
    (account("debit"), account("credit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_ids_are_the_ids_of_their_keys() {
        let (bank, other) = (InstitutionId(7), InstitutionId(8));
        for _ in 0..2 {
            assert_eq!(
                issuer_settlement(bank, Currency::CNY),
                AccountId::from_key("chart", b"issuer/7/settlement/CNY")
            );
            assert_eq!(
                acquirer_due_from_issuers(bank, Currency::CNY),
                AccountId::from_key("chart", b"acquirer/7/due-from-issuers/CNY")
            );
        }
        assert_ne!(
            issuer_settlement(bank, Currency::CNY),
            issuer_settlement(other, Currency::CNY)
        );
        assert_ne!(
            issuer_settlement(bank, Currency::CNY),
            issuer_settlement(bank, Currency::USD)
        );
    }
}
