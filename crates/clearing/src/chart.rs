//! The acquirer's accounts that end of day books into, beyond the ones the host posts to
//! (`acquirer::chart`: what issuers owe, pooled per currency; each merchant's payable). Ids
//! come from fixed keys, so every run and every process finds the same accounts; the run opens
//! them itself (opening an account twice changes nothing).

use ledger::{AccountId, AccountSpec, InstitutionId};
use money::Currency;

/// What one issuer owes the acquirer after clearing (its net position), per currency.
pub const CODE_DUE_FROM_COUNTERPARTY: u16 = 1002;
/// What a merchant owes the acquirer: its negative nets, carried to later cycles (one account
/// per merchant and currency).
pub const CODE_DUE_FROM_MERCHANT: u16 = 1003;
/// Operators' adjustments of breaks whose money sits on no merchant's account (a suspense
/// account per currency, `crate::adjust`).
pub const CODE_SETTLEMENT_ADJUSTMENTS: u16 = 1009;
/// Money sent to merchants' settlement bank accounts, until the bank confirms it.
pub const CODE_MERCHANT_PAYOUTS: u16 = 2002;
/// The merchant discount (MDR) the acquirer earns.
pub const CODE_MDR_INCOME: u16 = 4001;
/// The interchange the acquirer pays issuers.
pub const CODE_INTERCHANGE_EXPENSE: u16 = 5001;

fn account(acquirer: InstitutionId, what: &str, currency: Currency) -> AccountId {
    AccountId::from_key(
        "chart",
        format!("acquirer/{}/{what}/{}", acquirer.0, currency.alpha()).as_bytes(),
    )
}

/// The acquirer's account of what `issuer` owes it in `currency` once the day is cleared.
pub fn due_from_counterparty(
    acquirer: InstitutionId,
    issuer: InstitutionId,
    currency: Currency,
) -> AccountId {
    account(acquirer, &format!("clearing/{}", issuer.0), currency)
}

/// What `merchant` owes the acquirer in `currency` from cycles whose net was negative.
pub fn due_from_merchant(acquirer: InstitutionId, merchant: &str, currency: Currency) -> AccountId {
    account(acquirer, &format!("carried/{merchant}"), currency)
}

/// The acquirer's suspense account of break adjustments in `currency`.
pub fn settlement_adjustments(acquirer: InstitutionId, currency: Currency) -> AccountId {
    account(acquirer, "settlement-adjustments", currency)
}

pub fn merchant_payouts(acquirer: InstitutionId, currency: Currency) -> AccountId {
    account(acquirer, "merchant-payouts", currency)
}

pub fn mdr_income(acquirer: InstitutionId, currency: Currency) -> AccountId {
    account(acquirer, "mdr-income", currency)
}

pub fn interchange_expense(acquirer: InstitutionId, currency: Currency) -> AccountId {
    account(acquirer, "interchange-expense", currency)
}

/// The accounts a cycle in `currency` with these counterparties and merchants books into.
pub fn cycle_accounts<'a>(
    acquirer: InstitutionId,
    currency: Currency,
    issuers: impl IntoIterator<Item = InstitutionId>,
    merchants: impl IntoIterator<Item = &'a str>,
) -> Vec<AccountSpec> {
    let mut specs = vec![
        AccountSpec::new(
            merchant_payouts(acquirer, currency),
            acquirer,
            currency,
            CODE_MERCHANT_PAYOUTS,
        ),
        AccountSpec::new(
            mdr_income(acquirer, currency),
            acquirer,
            currency,
            CODE_MDR_INCOME,
        ),
        AccountSpec::new(
            interchange_expense(acquirer, currency),
            acquirer,
            currency,
            CODE_INTERCHANGE_EXPENSE,
        ),
    ];
    specs.extend(issuers.into_iter().map(|issuer| {
        AccountSpec::new(
            due_from_counterparty(acquirer, issuer, currency),
            acquirer,
            currency,
            CODE_DUE_FROM_COUNTERPARTY,
        )
    }));
    specs.extend(merchants.into_iter().map(|merchant| {
        AccountSpec::new(
            due_from_merchant(acquirer, merchant, currency),
            acquirer,
            currency,
            CODE_DUE_FROM_MERCHANT,
        )
    }));
    specs
}
