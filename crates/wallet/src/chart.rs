//! The wallet's ledger accounts and transfer ids. Ids come from fixed keys, so every process
//! finds the same accounts and a repeated request the same transfers.

use ledger::{AccountId, InstitutionId, TransferId};
use money::Currency;

/// Chart-of-accounts code of a wallet balance (the demo world's table, `demo` crate).
pub const CODE_WALLET: u16 = 2200;
/// Code of the wallet institution's account of what banks owe it for top-ups.
pub const CODE_DUE_FROM_BANKS: u16 = 1002;
/// Code of a bank's account of what it owes wallet institutions for top-ups.
pub const CODE_OWED_TO_WALLETS: u16 = 2910;

/// The ledger account holding a wallet's balance, in the wallet institution's books.
pub fn wallet_account(wallet_id: &str) -> AccountId {
    AccountId::from_key("wallet", format!("wallet/{wallet_id}").as_bytes())
}

/// The wallet institution's account of what it owes acquirers for payments: the same
/// account a card issuer has (`acquirer::chart::issuer_settlement`), so the wallet settles
/// with acquirers as an issuer does.
pub fn wallet_settlement(wallet: InstitutionId, currency: Currency) -> AccountId {
    acquirer::chart::issuer_settlement(wallet, currency)
}

/// The wallet institution's account of what banks owe it for top-ups.
pub fn due_from_banks(wallet: InstitutionId, currency: Currency) -> AccountId {
    AccountId::from_key(
        "chart",
        format!("wallet/{}/due-from-banks/{}", wallet.0, currency.alpha()).as_bytes(),
    )
}

/// A bank's account of what it owes wallet institutions for top-ups from its cards.
pub fn bank_owes_wallets(bank: InstitutionId, currency: Currency) -> AccountId {
    AccountId::from_key(
        "chart",
        format!("bank/{}/owed-to-wallets/{}", bank.0, currency.alpha()).as_bytes(),
    )
}

/// The id of one of a wallet movement's transfers: `purpose` tells them apart, `key` is the
/// business key (the order id, or wallet and top-up id).
pub fn transfer_id(purpose: &str, key: &str) -> TransferId {
    TransferId::from_key("wallet", format!("{purpose}|{key}").as_bytes())
}
