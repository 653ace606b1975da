//! The accounts a card sale moves money between, beyond the card's own account and the
//! merchant's payable account (both in the directory): the card issuer's settlement account
//! with acquirers, and the acquirer's account of what issuers owe it — one per institution and
//! currency. Ids come from fixed keys, so every process finds the same accounts.

use ledger::{AccountId, InstitutionId};
use money::Currency;

/// Chart-of-accounts code of an issuer's settlement account with acquirers.
pub const CODE_ISSUER_SETTLEMENT: u16 = 2900;
/// Chart-of-accounts code of the acquirer's account of what issuers owe it.
pub const CODE_DUE_FROM_ISSUERS: u16 = 1001;

/// The issuer's account for what it owes acquirers for card sales in `currency`.
pub fn issuer_settlement(issuer: InstitutionId, currency: Currency) -> AccountId {
    AccountId::from_key(
        "chart",
        format!("issuer/{}/settlement/{}", issuer.0, currency.alpha()).as_bytes(),
    )
}

/// The acquirer's account for what issuers owe it in `currency`.
pub fn acquirer_due_from_issuers(acquirer: InstitutionId, currency: Currency) -> AccountId {
    AccountId::from_key(
        "chart",
        format!(
            "acquirer/{}/due-from-issuers/{}",
            acquirer.0,
            currency.alpha()
        )
        .as_bytes(),
    )
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
