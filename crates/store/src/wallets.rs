//! Wallets and QR orders (issue 8): what the wallet institution keeps beside the ledger. A
//! wallet's balance is a ledger account (the `wallet` crate derives its id from the wallet id);
//! here are its owner, its linked debit card, its payment password (an argon2id hash) with the
//! failures counted in the database, and the orders of merchant-presented QR payments.
//!
//! Every change is one atomic statement: an order changes status only from the status its
//! caller read (`transition_order`), and a password failure is counted with `+ 1` in SQL, so
//! several hosts sharing PostgreSQL neither both win an order nor lose a failed try.

use crate::{Store, StoreError};
use money::{Amount, Currency};

/// A wallet as stored. `Debug` leaves the password hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct WalletRecord {
    pub id: String,
    pub cardholder_id: String,
    pub currency: Currency,
    /// The directory id of the debit card top-ups come from.
    pub linked_card_id: Option<String>,
    /// argon2id PHC string of the payment password.
    pub password_hash: String,
    /// Wrong passwords since the last right one.
    pub password_failures: u32,
    /// Unix seconds until which the password is not even checked.
    pub locked_until: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for WalletRecord {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WalletRecord")
            .field("id", &self.id)
            .field("cardholder_id", &self.cardholder_id)
            .field("currency", &self.currency)
            .field("linked_card_id", &self.linked_card_id)
            .field("password_failures", &self.password_failures)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

pub(crate) const WALLET_COLUMNS: &str = "id, cardholder_id, currency, linked_card_id, password_hash, password_failures, locked_until, created_at";

/// Where an order is in its life: created → paid → refunded, or created → closed (timed out
/// unpaid), or closed → reversed (a payment that lost the race with the close was given back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Created,
    Paid,
    Refunded,
    Closed,
    Reversed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Paid => "paid",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Closed => "closed",
            OrderStatus::Reversed => "reversed",
        }
    }

    pub fn parse(text: &str) -> Result<OrderStatus, StoreError> {
        [
            OrderStatus::Created,
            OrderStatus::Paid,
            OrderStatus::Refunded,
            OrderStatus::Closed,
            OrderStatus::Reversed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| crate::directory::unknown("order status", text))
    }
}

/// An order of a merchant-presented QR payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order reference (QR ID 62, sub-ID 05) and the business key of its transfers.
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub amount: Amount,
    pub status: OrderStatus,
    /// The wallet that paid it, once paid.
    pub wallet_id: Option<String>,
    pub created_at: i64,
    /// Unix seconds after which an unpaid order closes.
    pub expires_at: i64,
    pub updated_at: i64,
}

pub(crate) const ORDER_COLUMNS: &str = "id, merchant_id, terminal_id, amount_minor, currency, status, wallet_id, created_at, expires_at, updated_at";

/// The columns of an order row, as both backends read them, before parsing.
pub(crate) struct OrderRow {
    pub id: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    pub wallet_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub updated_at: i64,
}

impl OrderRow {
    pub(crate) fn parse(self) -> Result<OrderRecord, StoreError> {
        let currency = Currency::from_alpha(&self.currency)
            .map_err(|_| crate::directory::unknown("currency", &self.currency))?;
        Ok(OrderRecord {
            id: self.id,
            merchant_id: self.merchant_id,
            terminal_id: self.terminal_id,
            amount: Amount::new(self.amount_minor, currency),
            status: OrderStatus::parse(&self.status)?,
            wallet_id: self.wallet_id,
            created_at: self.created_at,
            expires_at: self.expires_at,
            updated_at: self.updated_at,
        })
    }
}

/// The columns of a wallet row, as both backends read them, before parsing.
pub(crate) struct WalletRow {
    pub id: String,
    pub cardholder_id: String,
    pub currency: String,
    pub linked_card_id: Option<String>,
    pub password_hash: String,
    pub password_failures: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
}

impl WalletRow {
    pub(crate) fn parse(self) -> Result<WalletRecord, StoreError> {
        let currency = Currency::from_alpha(&self.currency)
            .map_err(|_| crate::directory::unknown("currency", &self.currency))?;
        Ok(WalletRecord {
            id: self.id,
            cardholder_id: self.cardholder_id,
            currency,
            linked_card_id: self.linked_card_id,
            password_hash: self.password_hash,
            password_failures: u32::try_from(self.password_failures).unwrap_or(u32::MAX),
            locked_until: self.locked_until,
            created_at: self.created_at,
        })
    }
}

/// A wrong password counted: the failures since the last right one, and the lockout if this
/// failure reached the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordFailure {
    pub failures: u32,
    pub locked_until: Option<i64>,
}

/// A consumer-presented payment code as the wallet keeps it: by the digest of its digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentCodeRecord {
    /// SHA-256 of the code's digits, in hex.
    pub code_digest: String,
    pub wallet_id: String,
    pub issued_at: i64,
    /// Unix seconds from which the code is refused.
    pub expires_at: i64,
}

/// What using a payment code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeUse {
    /// The code is now used by this charge (or was already, by the same charge: a retry); it
    /// charges this wallet.
    Charges {
        wallet_id: String,
    },
    /// Another charge used it first.
    AlreadyUsed,
    Expired,
    Unknown,
}

/// What a code that could not be used now was: (wallet, used by, expiry) as stored, if found.
pub(crate) fn code_use(
    found: Option<(String, Option<String>, i64)>,
    charge_id: &str,
    now: i64,
) -> CodeUse {
    match found {
        None => CodeUse::Unknown,
        // The same charge asking again (a retry after a lost answer) is the same use.
        Some((wallet_id, Some(used_by), _)) if used_by == charge_id => {
            CodeUse::Charges { wallet_id }
        }
        Some((_, Some(_), _)) => CodeUse::AlreadyUsed,
        Some((_, None, expires_at)) if expires_at <= now => CodeUse::Expired,
        // Unused and unexpired, yet the update did not take it: only a race can do that, and
        // the other charge won.
        Some(_) => CodeUse::AlreadyUsed,
    }
}

/// A status change of an order, applied only if the order still has status `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderTransition {
    pub order_id: String,
    pub from: OrderStatus,
    pub to: OrderStatus,
    /// Set on the order when given (the payer, on created → paid).
    pub wallet_id: Option<String>,
    pub at: i64,
}

impl Store {
    /// Opens a wallet; false (and nothing written) when the id exists already.
    pub async fn put_wallet(&self, wallet: WalletRecord) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => store.put_wallet(wallet).await,
            Store::Postgres(store) => store.put_wallet(wallet).await,
        }
    }

    pub async fn wallet(&self, id: &str) -> Result<Option<WalletRecord>, StoreError> {
        match self {
            Store::Sqlite(store) => store.wallet(id.to_owned()).await,
            Store::Postgres(store) => store.wallet(id).await,
        }
    }

    /// The wallets of a cardholder, oldest first.
    pub async fn wallets_of(&self, cardholder_id: &str) -> Result<Vec<WalletRecord>, StoreError> {
        match self {
            Store::Sqlite(store) => store.wallets_of(cardholder_id.to_owned()).await,
            Store::Postgres(store) => store.wallets_of(cardholder_id).await,
        }
    }

    /// Counts a wrong password; the failure that reaches `limit` locks the password until
    /// `lock_until`. `None` when the wallet does not exist.
    pub async fn wallet_password_failed(
        &self,
        id: &str,
        limit: u32,
        lock_until: i64,
    ) -> Result<Option<PasswordFailure>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .wallet_password_failed(id.to_owned(), limit, lock_until)
                    .await
            }
            Store::Postgres(store) => store.wallet_password_failed(id, limit, lock_until).await,
        }
    }

    /// A right password: the failures start again from zero.
    pub async fn wallet_password_passed(&self, id: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.wallet_password_passed(id.to_owned()).await,
            Store::Postgres(store) => store.wallet_password_passed(id).await,
        }
    }

    /// Creates an order, idempotent by id: returns the stored order, which is `order` when it
    /// is new and the original when the id was taken (the caller compares).
    pub async fn create_order(&self, order: OrderRecord) -> Result<OrderRecord, StoreError> {
        match self {
            Store::Sqlite(store) => store.create_order(order).await,
            Store::Postgres(store) => store.create_order(order).await,
        }
    }

    pub async fn order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        match self {
            Store::Sqlite(store) => store.order(id.to_owned()).await,
            Store::Postgres(store) => store.order(id).await,
        }
    }

    /// Applies a status change if the order still has status `from`; false when it had not
    /// (another writer changed it first, or the order does not exist).
    pub async fn transition_order(&self, transition: OrderTransition) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => store.transition_order(transition).await,
            Store::Postgres(store) => store.transition_order(transition).await,
        }
    }

    /// The orders a wallet paid (paid, refunded or reversed), newest change first, at most
    /// `limit`: the wallet page's history.
    pub async fn orders_of_wallet(
        &self,
        wallet_id: &str,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        match self {
            Store::Sqlite(store) => store.orders_of_wallet(wallet_id.to_owned(), limit).await,
            Store::Postgres(store) => store.orders_of_wallet(wallet_id, limit).await,
        }
    }

    /// Orders created or changed between `from` and `to` (Unix seconds, inclusive), oldest
    /// first, at most `limit`: end of day finds the day's QR payments, refunds and reversals
    /// among them.
    pub async fn orders_between(
        &self,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        match self {
            Store::Sqlite(store) => store.orders_between(from, to, limit).await,
            Store::Postgres(store) => store.orders_between(from, to, limit).await,
        }
    }

    /// A merchant's orders, newest first, at most `limit` (the merchant's QR payments).
    pub async fn orders_of_merchant(
        &self,
        merchant_id: &str,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .orders_of_merchant(merchant_id.to_owned(), limit)
                    .await
            }
            Store::Postgres(store) => store.orders_of_merchant(merchant_id, limit).await,
        }
    }

    /// Keeps a newly issued payment code.
    pub async fn put_payment_code(&self, code: PaymentCodeRecord) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.put_payment_code(code).await,
            Store::Postgres(store) => store.put_payment_code(code).await,
        }
    }

    /// Uses the payment code `code_digest` for `charge_id` at `now`, in one atomic step: only
    /// an unexpired code nobody used gets used, so two charges never both win one code.
    pub async fn use_payment_code(
        &self,
        code_digest: &str,
        charge_id: &str,
        now: i64,
    ) -> Result<CodeUse, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .use_payment_code(code_digest.to_owned(), charge_id.to_owned(), now)
                    .await
            }
            Store::Postgres(store) => store.use_payment_code(code_digest, charge_id, now).await,
        }
    }

    /// Forgets payment codes that expired before `before`; returns how many.
    pub async fn delete_payment_codes_before(&self, before: i64) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(store) => store.delete_payment_codes_before(before).await,
            Store::Postgres(store) => store.delete_payment_codes_before(before).await,
        }
    }

    /// Orders still `created` whose time ran out at `now`, at most `limit`, oldest first.
    pub async fn orders_due_to_close(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        match self {
            Store::Sqlite(store) => store.orders_due_to_close(now, limit).await,
            Store::Postgres(store) => store.orders_due_to_close(now, limit).await,
        }
    }
}
