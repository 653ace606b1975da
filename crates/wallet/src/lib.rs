//! The mobile wallet institution (issue 8): wallets whose balances are ledger accounts in the
//! wallet institution's books, top-ups from a linked debit card, a payment password with a try
//! limit, and orders of merchant-presented QR payments (created → paid → refunded, created →
//! closed, closed → reversed), all idempotent by their ids.
//!
//! A terminal asks for an order ([`Wallets::create_order`]) and shows its dynamic EMVCo QR; the
//! consumer's wallet pays the payload with the wallet password ([`Wallets::pay`]); the terminal
//! queries ([`Wallets::query`]) until the order is paid or closed. [`http::router`] serves the
//! same over JSON (docs/wallet.md).
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<store::Store>) -> Result<(), wallet::WalletError> {
//! use money::{Amount, Currency};
//! use wallet::{NewOrder, NewWallet, WalletConfig, Wallets};
//!
//! let wallets = Wallets::new(store, WalletConfig::demo());
//! wallets
//!     .open_wallet(NewWallet {
//!         id: "W-CH001".into(),
//!         cardholder_id: "CH001".into(),
//!         currency: Currency::CNY,
//!         linked_card_id: Some("card-CH001-D".into()),
//!         password: "135790".into(),
//!     })
//!     .await?;
//! wallets.top_up("W-CH001", "top-up-1", Amount::new(10_000, Currency::CNY)).await?;
//! let order = wallets
//!     .create_order(NewOrder {
//!         order_id: "10000001-1".into(),
//!         terminal_id: "10000001".into(),
//!         amount: Amount::new(1_234, Currency::CNY),
//!         timeout_seconds: None,
//!     })
//!     .await?;
//! let paid = wallets.pay(&order.payload, "W-CH001", "135790").await?;
//! assert_eq!(paid.status, store::wallets::OrderStatus::Paid);
//! # Ok(()) }
//! ```

pub mod chart;
pub mod http;
pub mod image;
mod password;
pub mod payment_code;
pub mod qr;
pub mod terminal_auth;

use ledger::{AccountSpec, BalanceConstraint, InstitutionId, TransferError, TransferRequest};
use money::{Amount, Currency};
use std::sync::Arc;
use store::wallets::{OrderRecord, OrderStatus, OrderTransition, WalletRecord};
use store::{Clock, Store, StoreError, SystemClock};

/// Wrong payment passwords in a row before the password locks: 5, as Chinese wallets do.
pub const MAX_PASSWORD_TRIES: u32 = 5;
/// How long a locked password stays locked: 15 minutes.
pub const LOCKOUT_SECONDS: i64 = 15 * 60;
/// How long an unpaid order stays payable when the terminal does not say: 2 minutes, long
/// enough for a consumer to open the wallet and confirm.
pub const DEFAULT_ORDER_TIMEOUT_SECONDS: i64 = 120;
/// Bounds of a terminal's order timeout: below 10 s nobody can pay; above 15 minutes the
/// terminal's customer has left.
pub const MIN_ORDER_TIMEOUT_SECONDS: i64 = 10;
pub const MAX_ORDER_TIMEOUT_SECONDS: i64 = 15 * 60;
/// An order id is the QR's reference label (ID 62 sub-ID 05), at most 25 characters.
pub const MAX_ORDER_ID_CHARS: usize = 25;
/// Orders closed per pass of [`Wallets::close_due`], so one pass stays short.
pub const CLOSE_BATCH: u32 = 500;

/// Who runs the wallet and how its codes look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletConfig {
    /// The wallet institution, in whose books wallets are kept.
    pub institution: InstitutionId,
    /// The acquirer that owes merchants their takings.
    pub acquirer: InstitutionId,
    /// The globally unique identifier of the wallet's merchant account template (ID 26,
    /// sub-ID 00) in its QR codes; a code with another one belongs to another institution.
    pub gui: String,
    /// ISO 3166 alpha-2 country of the merchants (QR ID 58).
    pub country: String,
}

impl WalletConfig {
    /// The demo world's wallet, Panda Pay (institution 40), and its acquirer (10).
    pub fn demo() -> Self {
        WalletConfig {
            institution: InstitutionId(40),
            acquirer: InstitutionId(10),
            gui: "cn.easypos.pandapay".to_owned(),
            country: "CN".to_owned(),
        }
    }
}

/// Why the wallet refused or failed. Each refusal has a stable [`WalletError::code`]; none
/// carries a password, hash or card number.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("the QR payload is not a valid EMVCo code: {0}")]
    BadPayload(#[from] emvqr::QrError),
    #[error("the code belongs to another wallet institution")]
    ForeignInstitution,
    #[error("the code does not match its order (amount, currency or merchant differ)")]
    PayloadMismatch,
    #[error("no such order")]
    UnknownOrder,
    #[error("no such wallet")]
    UnknownWallet,
    #[error("no such terminal, or it is not active")]
    UnknownTerminal,
    #[error("no such merchant")]
    UnknownMerchant,
    #[error(
        "the linked card is unknown, not a debit card of this cardholder, or in another currency"
    )]
    BadLinkedCard,
    #[error("the wallet has no linked card to top up from")]
    NoLinkedCard,
    #[error("an order id is 1 to 25 letters, digits or '-'")]
    BadOrderId,
    #[error("the amount must be positive, in the wallet's currency")]
    BadAmount,
    #[error("the timeout must be between 10 and 900 seconds")]
    BadTimeout,
    #[error("the order id is already used by another order")]
    OrderConflict,
    #[error("the wallet id is already used by another cardholder")]
    WalletConflict,
    #[error("the order is closed: it was not paid in time")]
    OrderClosed,
    #[error("the order was already paid")]
    OrderAlreadyPaid,
    #[error("only a paid order can be refunded")]
    NotRefundable,
    #[error("a wallet payment password is 6 digits")]
    BadPasswordFormat,
    #[error("wrong payment password; {tries_left} tries left")]
    WrongPassword { tries_left: u32 },
    #[error("the payment password is locked after too many wrong tries; try again later")]
    PasswordLocked { until: i64 },
    #[error("insufficient wallet balance")]
    InsufficientBalance,
    #[error("the linked card was declined: insufficient funds")]
    CardDeclined,
    #[error("the image is not a PNG or JPEG picture this wallet can read: {0}")]
    BadImage(&'static str),
    #[error(
        "no QR code was found in the image; take the picture closer and straight on, or paste the code"
    )]
    NoCodeInImage,
    #[error("this is not a payment code: {0}")]
    BadCode(emvqr::CodeError),
    #[error("the payment code has expired; ask for the code on the phone's screen now")]
    CodeExpired,
    #[error("the payment code was already used; ask for the code on the phone's screen now")]
    CodeUsed,
    #[error("no such payment code")]
    UnknownCode,
    #[error("the ledger refused the movement: {0}")]
    Ledger(TransferError),
    #[error("the wallet's books are not set up: {0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WalletError {
    /// The stable code of the refusal, for the JSON API and the terminal.
    pub fn code(&self) -> &'static str {
        match self {
            WalletError::BadPayload(emvqr::QrError::BadCrc { .. }) => "bad_crc",
            WalletError::BadPayload(_) => "bad_payload",
            WalletError::ForeignInstitution => "foreign_institution",
            WalletError::PayloadMismatch => "payload_mismatch",
            WalletError::UnknownOrder => "unknown_order",
            WalletError::UnknownWallet => "unknown_wallet",
            WalletError::UnknownTerminal => "unknown_terminal",
            WalletError::UnknownMerchant => "unknown_merchant",
            WalletError::BadLinkedCard => "bad_linked_card",
            WalletError::NoLinkedCard => "no_linked_card",
            WalletError::BadOrderId => "bad_order_id",
            WalletError::BadAmount => "bad_amount",
            WalletError::BadTimeout => "bad_timeout",
            WalletError::OrderConflict => "order_conflict",
            WalletError::WalletConflict => "wallet_conflict",
            WalletError::OrderClosed => "order_closed",
            WalletError::OrderAlreadyPaid => "order_already_paid",
            WalletError::NotRefundable => "not_refundable",
            WalletError::BadPasswordFormat => "bad_password_format",
            WalletError::WrongPassword { .. } => "wrong_password",
            WalletError::PasswordLocked { .. } => "password_locked",
            WalletError::InsufficientBalance => "insufficient_balance",
            WalletError::CardDeclined => "card_declined",
            WalletError::BadImage(_) => "bad_image",
            WalletError::BadCode(_) => "bad_code",
            WalletError::CodeExpired => "code_expired",
            WalletError::CodeUsed => "code_used",
            WalletError::UnknownCode => "unknown_code",
            WalletError::NoCodeInImage => "no_code_in_image",
            WalletError::Ledger(_) | WalletError::Setup(_) | WalletError::Store(_) => "internal",
        }
    }
}

/// A wallet to open.
#[derive(Clone, PartialEq, Eq)]
pub struct NewWallet {
    pub id: String,
    pub cardholder_id: String,
    pub currency: Currency,
    pub linked_card_id: Option<String>,
    /// Six digits; only its argon2id hash is kept.
    pub password: String,
}

impl std::fmt::Debug for NewWallet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NewWallet")
            .field("id", &self.id)
            .field("cardholder_id", &self.cardholder_id)
            .field("currency", &self.currency)
            .field("linked_card_id", &self.linked_card_id)
            .finish_non_exhaustive()
    }
}

/// An order a terminal asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Chosen by the terminal, so that a retried request finds the same order.
    pub order_id: String,
    pub terminal_id: String,
    pub amount: Amount,
    pub timeout_seconds: Option<i64>,
}

/// An order with its QR payload and what a payer sees of the merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub record: OrderRecord,
    pub merchant_name: String,
    pub merchant_city: String,
    /// The dynamic EMVCo payload; the same for every query of the order.
    pub payload: String,
}

impl std::ops::Deref for Order {
    type Target = OrderRecord;
    fn deref(&self) -> &OrderRecord {
        &self.record
    }
}

/// The wallet institution's service over the store.
#[derive(Clone, Debug)]
pub struct Wallets {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    config: WalletConfig,
}

/// What a payment's transfers need to know about the order's merchant.
struct Merchant {
    name: String,
    city: String,
    mcc: String,
    id: String,
    payable: ledger::AccountId,
}

impl Wallets {
    pub fn new(store: Arc<Store>, config: WalletConfig) -> Self {
        Wallets {
            store,
            clock: Arc::new(SystemClock),
            config,
        }
    }

    /// The same, on an injected clock (tests make orders time out without waiting).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &WalletConfig {
        &self.config
    }

    pub(crate) fn now(&self) -> i64 {
        i64::try_from(self.clock.now() / 1_000_000_000).unwrap_or(i64::MAX)
    }

    /// Opens the accounts every wallet movement in `currency` needs (idempotent by id).
    async fn open_chart(
        &self,
        currency: Currency,
        banks: &[InstitutionId],
    ) -> Result<(), WalletError> {
        let mut specs = vec![
            AccountSpec::new(
                chart::wallet_settlement(self.config.institution, currency),
                self.config.institution,
                currency,
                acquirer::chart::CODE_ISSUER_SETTLEMENT,
            ),
            AccountSpec::new(
                chart::due_from_banks(self.config.institution, currency),
                self.config.institution,
                currency,
                chart::CODE_DUE_FROM_BANKS,
            ),
        ];
        for &bank in banks {
            specs.push(AccountSpec::new(
                chart::bank_owes_wallets(bank, currency),
                bank,
                currency,
                chart::CODE_OWED_TO_WALLETS,
            ));
        }
        for result in self.store.create_accounts(specs).await? {
            result.map_err(|error| WalletError::Setup(error.to_string()))?;
        }
        Ok(())
    }

    /// Opens a wallet and its balance account. Opening the same wallet again for the same
    /// cardholder returns it unchanged (the password is not replaced).
    pub async fn open_wallet(&self, new: NewWallet) -> Result<WalletRecord, WalletError> {
        if let Some(existing) = self.store.wallet(&new.id).await? {
            // Opened before (a restart seeding again): no second hash, nothing changed.
            return if existing.cardholder_id == new.cardholder_id {
                Ok(existing)
            } else {
                Err(WalletError::WalletConflict)
            };
        }
        if let Some(card_id) = &new.linked_card_id {
            let card = self.debit_card(card_id).await?;
            if card.cardholder_id != new.cardholder_id || card.currency != new.currency {
                return Err(WalletError::BadLinkedCard);
            }
            self.open_chart(new.currency, &[card.issuer]).await?;
        } else {
            self.open_chart(new.currency, &[]).await?;
        }
        let spec = AccountSpec::new(
            chart::wallet_account(&new.id),
            self.config.institution,
            new.currency,
            chart::CODE_WALLET,
        )
        .constraint(BalanceConstraint::DebitsMustNotExceedCredits);
        for result in self.store.create_accounts(vec![spec]).await? {
            result.map_err(|error| WalletError::Setup(error.to_string()))?;
        }
        let password_hash = password::hash(&new.password).await?;
        let record = WalletRecord {
            id: new.id.clone(),
            cardholder_id: new.cardholder_id.clone(),
            currency: new.currency,
            linked_card_id: new.linked_card_id.clone(),
            password_hash,
            password_failures: 0,
            locked_until: None,
            created_at: self.now(),
        };
        self.store.put_wallet(record).await?;
        let stored = self
            .store
            .wallet(&new.id)
            .await?
            .ok_or(WalletError::UnknownWallet)?;
        if stored.cardholder_id != new.cardholder_id {
            return Err(WalletError::WalletConflict);
        }
        Ok(stored)
    }

    pub async fn wallet(&self, id: &str) -> Result<WalletRecord, WalletError> {
        self.store
            .wallet(id)
            .await?
            .ok_or(WalletError::UnknownWallet)
    }

    /// The wallet's available balance.
    pub async fn balance(&self, wallet_id: &str) -> Result<Amount, WalletError> {
        let wallet = self.wallet(wallet_id).await?;
        let account = self
            .store
            .account(chart::wallet_account(&wallet.id))
            .await?
            .ok_or_else(|| WalletError::Setup("the wallet has no ledger account".into()))?;
        Ok(Amount::new(account.available(), wallet.currency))
    }

    async fn debit_card(&self, card_id: &str) -> Result<store::directory::Card, WalletError> {
        let directory = self.store.load_directory().await?;
        directory
            .cards
            .into_iter()
            .find(|card| card.id == card_id && card.product == store::directory::CardProduct::Debit)
            .ok_or(WalletError::BadLinkedCard)
    }

    /// Moves `amount` from the wallet's linked debit card into the wallet, idempotent by
    /// `top_up_id`: in the bank's books the card's deposit pays what the bank owes wallet
    /// institutions; in the wallet's books what banks owe the wallet pays the wallet's balance.
    /// The two transfers are linked: both or neither.
    pub async fn top_up(
        &self,
        wallet_id: &str,
        top_up_id: &str,
        amount: Amount,
    ) -> Result<Amount, WalletError> {
        let wallet = self.wallet(wallet_id).await?;
        if amount.minor() <= 0 || amount.currency() != wallet.currency {
            return Err(WalletError::BadAmount);
        }
        let card_id = wallet
            .linked_card_id
            .as_deref()
            .ok_or(WalletError::NoLinkedCard)?;
        let card = self.debit_card(card_id).await?;
        let key = format!("{}|{top_up_id}", wallet.id);
        let requests = vec![
            TransferRequest::posted(
                chart::transfer_id("top-up/bank", &key),
                card.account,
                chart::bank_owes_wallets(card.issuer, wallet.currency),
                amount,
            )
            .linked(),
            TransferRequest::posted(
                chart::transfer_id("top-up/wallet", &key),
                chart::due_from_banks(self.config.institution, wallet.currency),
                chart::wallet_account(&wallet.id),
                amount,
            ),
        ];
        match first_refusal(self.store.submit(requests).await?) {
            None => {}
            Some(TransferError::ExceedsCredits) => return Err(WalletError::CardDeclined),
            Some(error) => return Err(WalletError::Ledger(error)),
        }
        tracing::info!(wallet = %wallet.id, amount_minor = amount.minor(), "wallet topped up");
        self.balance(&wallet.id).await
    }

    /// A top-up the consumer confirms with the wallet password (the wallet page's and the
    /// API's way): the password is checked against the try limit, then [`Wallets::top_up`].
    pub async fn top_up_with_password(
        &self,
        wallet_id: &str,
        top_up_id: &str,
        amount: Amount,
        password: &str,
    ) -> Result<Amount, WalletError> {
        if !qr::valid_order_id(top_up_id) {
            return Err(WalletError::BadOrderId);
        }
        let wallet = self.wallet(wallet_id).await?;
        self.check_password(&wallet, password).await?;
        self.top_up(wallet_id, top_up_id, amount).await
    }

    async fn merchant_of_terminal(&self, terminal_id: &str) -> Result<Merchant, WalletError> {
        let directory = self.store.load_directory().await?;
        merchant_in(&directory, terminal_id)
    }

    fn order_with_payload(
        &self,
        record: OrderRecord,
        merchant: &Merchant,
    ) -> Result<Order, WalletError> {
        let payload = qr::order_payload(&self.config, &record, merchant_fields(merchant))?;
        Ok(Order {
            record,
            merchant_name: merchant.name.clone(),
            merchant_city: merchant.city.clone(),
            payload,
        })
    }

    /// Creates an order for a terminal, idempotent by order id: the same request again returns
    /// the same order and payload; the id with other content is refused.
    pub async fn create_order(&self, new: NewOrder) -> Result<Order, WalletError> {
        if !qr::valid_order_id(&new.order_id) {
            return Err(WalletError::BadOrderId);
        }
        if new.amount.minor() <= 0 {
            return Err(WalletError::BadAmount);
        }
        let timeout = new.timeout_seconds.unwrap_or(DEFAULT_ORDER_TIMEOUT_SECONDS);
        if !(MIN_ORDER_TIMEOUT_SECONDS..=MAX_ORDER_TIMEOUT_SECONDS).contains(&timeout) {
            return Err(WalletError::BadTimeout);
        }
        let merchant = self.merchant_of_terminal(&new.terminal_id).await?;
        self.open_chart(new.amount.currency(), &[]).await?;
        let now = self.now();
        let record = OrderRecord {
            id: new.order_id.clone(),
            merchant_id: merchant.id.clone(),
            terminal_id: new.terminal_id.clone(),
            amount: new.amount,
            status: OrderStatus::Created,
            wallet_id: None,
            created_at: now,
            expires_at: now.saturating_add(timeout),
            updated_at: now,
        };
        let stored = self.store.create_order(record).await?;
        if stored.terminal_id != new.terminal_id || stored.amount != new.amount {
            return Err(WalletError::OrderConflict);
        }
        self.order_with_payload(stored, &merchant)
    }

    /// Refuses `order_id` to any terminal but the one that made it, as if it did not exist
    /// (`unknown_order`), so a terminal cannot look at or cancel another's orders; an order
    /// that does not exist yet passes (a cancel may come before its charge).
    pub async fn check_order_terminal(
        &self,
        order_id: &str,
        terminal_id: &str,
    ) -> Result<(), WalletError> {
        match self.store.order(order_id).await? {
            Some(record) if record.terminal_id != terminal_id => Err(WalletError::UnknownOrder),
            _ => Ok(()),
        }
    }

    /// The order as it is now; an unpaid order whose time ran out is closed first, so a query
    /// after the timeout answers `closed` and a late payment is refused, not lost.
    pub async fn query(&self, order_id: &str) -> Result<Order, WalletError> {
        let mut record = self
            .store
            .order(order_id)
            .await?
            .ok_or(WalletError::UnknownOrder)?;
        if record.status == OrderStatus::Created && record.expires_at <= self.now() {
            record = self.close(record).await?;
        }
        let merchant = self.merchant_of_terminal(&record.terminal_id).await?;
        self.order_with_payload(record, &merchant)
    }

    /// Closes every unpaid order whose time ran out (at most [`CLOSE_BATCH`] per call).
    pub async fn close_due(&self) -> Result<usize, WalletError> {
        let due = self
            .store
            .orders_due_to_close(self.now(), CLOSE_BATCH)
            .await?;
        let count = due.len();
        for order in due {
            self.close(order).await?;
        }
        Ok(count)
    }

    /// Closes an unpaid order. A payment whose transfers committed but whose order never
    /// became paid (a crash in between, or a race with this close) is given back to the wallet
    /// and the order ends `reversed`: no one-sided payment survives a close.
    async fn close(&self, order: OrderRecord) -> Result<OrderRecord, WalletError> {
        let now = self.now();
        self.store
            .transition_order(OrderTransition {
                order_id: order.id.clone(),
                from: OrderStatus::Created,
                to: OrderStatus::Closed,
                wallet_id: None,
                at: now,
            })
            .await?;
        let closed = self
            .store
            .order(&order.id)
            .await?
            .ok_or(WalletError::UnknownOrder)?;
        if closed.status == OrderStatus::Closed {
            if let Some(payment) = self
                .store
                .transfer(chart::transfer_id("pay/wallet", &order.id))
                .await?
            {
                return self.reverse_closed(&closed, payment.debit).await;
            }
            tracing::info!(order = %closed.id, "order closed unpaid");
        }
        Ok(closed)
    }

    /// Gives a closed order's payment back and marks the order reversed.
    async fn reverse_closed(
        &self,
        order: &OrderRecord,
        wallet_account: ledger::AccountId,
    ) -> Result<OrderRecord, WalletError> {
        let merchant = self.merchant_of_terminal(&order.terminal_id).await?;
        let requests = self.undo_transfers("reversal", order, wallet_account, &merchant);
        if let Some(error) = first_refusal(self.store.submit(requests).await?) {
            return Err(WalletError::Ledger(error));
        }
        self.store
            .transition_order(OrderTransition {
                order_id: order.id.clone(),
                from: OrderStatus::Closed,
                to: OrderStatus::Reversed,
                wallet_id: None,
                at: self.now(),
            })
            .await?;
        tracing::warn!(order = %order.id, "a payment of a closed order was reversed");
        self.store
            .order(&order.id)
            .await?
            .ok_or(WalletError::UnknownOrder)
    }

    /// The two linked transfers that give a payment back: in the acquirer's books the merchant
    /// returns what it was credited; in the wallet's books the wallet gets its money back.
    fn undo_transfers(
        &self,
        purpose: &str,
        order: &OrderRecord,
        wallet_account: ledger::AccountId,
        merchant: &Merchant,
    ) -> Vec<TransferRequest> {
        let currency = order.amount.currency();
        vec![
            TransferRequest::posted(
                chart::transfer_id(&format!("{purpose}/acquirer"), &order.id),
                merchant.payable,
                acquirer::chart::acquirer_due_from_issuers(self.config.acquirer, currency),
                order.amount,
            )
            .linked(),
            TransferRequest::posted(
                chart::transfer_id(&format!("{purpose}/wallet"), &order.id),
                chart::wallet_settlement(self.config.institution, currency),
                wallet_account,
                order.amount,
            ),
        ]
    }

    /// The order a scanned payload names, checked as a payment checks it but without paying:
    /// the CRC, our institution, the order, that the payload is exactly the order's, and that
    /// it is still payable. The wallet page shows the merchant and amount from it before the
    /// consumer confirms with the password.
    pub async fn scan(&self, payload: &str) -> Result<Order, WalletError> {
        let (record, _, order) = self.scanned_order(payload).await?;
        match record.status {
            OrderStatus::Created if record.expires_at <= self.now() => {
                self.close(record).await?;
                Err(WalletError::OrderClosed)
            }
            OrderStatus::Created => Ok(order),
            OrderStatus::Paid | OrderStatus::Refunded => Err(WalletError::OrderAlreadyPaid),
            OrderStatus::Closed | OrderStatus::Reversed => Err(WalletError::OrderClosed),
        }
    }

    /// The stored order a payload names, its merchant, and the order with its payload, once
    /// the payload is found to be exactly that order's.
    async fn scanned_order(
        &self,
        payload: &str,
    ) -> Result<(OrderRecord, Merchant, Order), WalletError> {
        let scanned = qr::read_payload(&self.config, payload)?;
        let record = self
            .store
            .order(&scanned.order_id)
            .await?
            .ok_or(WalletError::UnknownOrder)?;
        let merchant = self.merchant_of_terminal(&record.terminal_id).await?;
        let expected = self.order_with_payload(record.clone(), &merchant)?;
        if scanned.payload_without_crc() != qr::without_crc(&expected.payload) {
            return Err(WalletError::PayloadMismatch);
        }
        Ok((record, merchant, expected))
    }

    /// The wallets of a cardholder (the wallet page's owner), oldest first.
    pub async fn wallets_of(&self, cardholder_id: &str) -> Result<Vec<WalletRecord>, WalletError> {
        Ok(self.store.wallets_of(cardholder_id).await?)
    }

    /// The orders a wallet paid, newest change first, at most `limit` (the page's history).
    pub async fn history(&self, wallet_id: &str, limit: u32) -> Result<Vec<Order>, WalletError> {
        let records = self.store.orders_of_wallet(wallet_id, limit).await?;
        let directory = self.store.load_directory().await?;
        let mut orders = Vec::with_capacity(records.len());
        for record in records {
            let merchant = merchant_in(&directory, &record.terminal_id)?;
            orders.push(self.order_with_payload(record, &merchant)?);
        }
        Ok(orders)
    }

    /// A merchant's QR orders (both ways), newest first, at most `limit`: the merchant's record
    /// of its QR payments.
    pub async fn merchant_orders(
        &self,
        merchant_id: &str,
        limit: u32,
    ) -> Result<Vec<Order>, WalletError> {
        let records = self.store.orders_of_merchant(merchant_id, limit).await?;
        let directory = self.store.load_directory().await?;
        let mut orders = Vec::with_capacity(records.len());
        for record in records {
            let merchant = merchant_in(&directory, &record.terminal_id)?;
            orders.push(self.order_with_payload(record, &merchant)?);
        }
        Ok(orders)
    }

    /// Pays the order a scanned payload names, from `wallet_id`, confirmed by its payment
    /// password. In order: the payload (CRC, our institution, the order it names and that the
    /// amount is the order's), the order (payable), the password (try limit), then the money:
    /// the wallet pays the wallet institution's settlement account and the acquirer owes the
    /// merchant, linked, with ids from the order id, so a repeated payment finds the first.
    pub async fn pay(
        &self,
        payload: &str,
        wallet_id: &str,
        password: &str,
    ) -> Result<Order, WalletError> {
        let (record, merchant, expected) = self.scanned_order(payload).await?;
        let record = match record.status {
            OrderStatus::Created if record.expires_at <= self.now() => {
                self.close(record).await?;
                return Err(WalletError::OrderClosed);
            }
            OrderStatus::Created => record,
            // Only the paying wallet asking again gets the original answer; a refunded order
            // stays refunded.
            OrderStatus::Paid if record.wallet_id.as_deref() == Some(wallet_id) => record,
            OrderStatus::Paid | OrderStatus::Refunded => {
                return Err(WalletError::OrderAlreadyPaid);
            }
            OrderStatus::Closed | OrderStatus::Reversed => return Err(WalletError::OrderClosed),
        };
        let wallet = self.wallet(wallet_id).await?;
        self.check_password(&wallet, password).await?;
        if record.status != OrderStatus::Created {
            // The same wallet paying again: the original answer.
            return Ok(expected);
        }
        self.move_payment(record, &wallet, &merchant).await
    }

    /// Moves a created order's money from `wallet` (the wallet pays the wallet institution's
    /// settlement account, the acquirer owes the merchant, linked, with ids from the order id)
    /// and marks the order paid. A close or cancel that wins the race gets the money back.
    async fn move_payment(
        &self,
        record: OrderRecord,
        wallet: &WalletRecord,
        merchant: &Merchant,
    ) -> Result<Order, WalletError> {
        if wallet.currency != record.amount.currency() {
            return Err(WalletError::BadAmount);
        }
        let currency = record.amount.currency();
        let wallet_account = chart::wallet_account(&wallet.id);
        let requests = vec![
            TransferRequest::posted(
                chart::transfer_id("pay/wallet", &record.id),
                wallet_account,
                chart::wallet_settlement(self.config.institution, currency),
                record.amount,
            )
            .linked(),
            TransferRequest::posted(
                chart::transfer_id("pay/acquirer", &record.id),
                acquirer::chart::acquirer_due_from_issuers(self.config.acquirer, currency),
                merchant.payable,
                record.amount,
            ),
        ];
        match first_refusal(self.store.submit(requests).await?) {
            None => {}
            Some(TransferError::ExceedsCredits) => return Err(WalletError::InsufficientBalance),
            // Another wallet's payment of this order won the ids first.
            Some(TransferError::ExistsWithDifferentContent) => {
                return Err(WalletError::OrderAlreadyPaid);
            }
            Some(error) => return Err(WalletError::Ledger(error)),
        }
        let won = self
            .store
            .transition_order(OrderTransition {
                order_id: record.id.clone(),
                from: OrderStatus::Created,
                to: OrderStatus::Paid,
                wallet_id: Some(wallet.id.clone()),
                at: self.now(),
            })
            .await?;
        let now = self
            .store
            .order(&record.id)
            .await?
            .ok_or(WalletError::UnknownOrder)?;
        if !won {
            match now.status {
                OrderStatus::Paid if now.wallet_id.as_deref() == Some(wallet.id.as_str()) => {}
                OrderStatus::Closed => {
                    // The close won the race: the money goes back.
                    self.reverse_closed(&now, wallet_account).await?;
                    return Err(WalletError::OrderClosed);
                }
                OrderStatus::Reversed => return Err(WalletError::OrderClosed),
                _ => return Err(WalletError::OrderAlreadyPaid),
            }
        }
        tracing::info!(order = %now.id, wallet = %wallet.id, amount_minor = now.amount.minor(), "order paid");
        self.order_with_payload(now, merchant)
    }

    /// Refunds a paid order in full back to the wallet that paid it, idempotent by order id.
    /// The status changes first (paid → refunded), so a refund and a terminal's cancel can
    /// never both give the money back; then the transfers, whose ids come from the order id, so
    /// asking again after a crash in between moves the money once.
    pub async fn refund(&self, order_id: &str) -> Result<Order, WalletError> {
        let record = self
            .store
            .order(order_id)
            .await?
            .ok_or(WalletError::UnknownOrder)?;
        let merchant = self.merchant_of_terminal(&record.terminal_id).await?;
        match record.status {
            OrderStatus::Paid => {
                self.store
                    .transition_order(OrderTransition {
                        order_id: record.id.clone(),
                        from: OrderStatus::Paid,
                        to: OrderStatus::Refunded,
                        wallet_id: None,
                        at: self.now(),
                    })
                    .await?;
            }
            OrderStatus::Refunded => {}
            _ => return Err(WalletError::NotRefundable),
        }
        let now = self
            .store
            .order(order_id)
            .await?
            .ok_or(WalletError::UnknownOrder)?;
        if now.status != OrderStatus::Refunded {
            // A cancel reversed it first: the money is back already.
            return Err(WalletError::NotRefundable);
        }
        let wallet_id = now
            .wallet_id
            .clone()
            .ok_or_else(|| WalletError::Setup("a paid order without its wallet".into()))?;
        let requests =
            self.undo_transfers("refund", &now, chart::wallet_account(&wallet_id), &merchant);
        if let Some(error) = first_refusal(self.store.submit(requests).await?) {
            return Err(WalletError::Ledger(error));
        }
        tracing::info!(order = %now.id, "order refunded");
        self.order_with_payload(now, &merchant)
    }

    /// Checks the payment password against the try limit: a locked password is not even
    /// checked; a wrong one is counted in the database; a right one clears the count.
    async fn check_password(
        &self,
        wallet: &WalletRecord,
        password: &str,
    ) -> Result<(), WalletError> {
        let now = self.now();
        if let Some(until) = wallet.locked_until.filter(|&until| until > now) {
            return Err(WalletError::PasswordLocked { until });
        }
        if password::verify(&wallet.password_hash, password).await {
            if wallet.password_failures != 0 || wallet.locked_until.is_some() {
                self.store.wallet_password_passed(&wallet.id).await?;
            }
            return Ok(());
        }
        let failure = self
            .store
            .wallet_password_failed(
                &wallet.id,
                MAX_PASSWORD_TRIES,
                now.saturating_add(LOCKOUT_SECONDS),
            )
            .await?
            .ok_or(WalletError::UnknownWallet)?;
        tracing::info!(wallet = %wallet.id, failures = failure.failures, "wrong wallet password");
        match failure.locked_until {
            Some(until) => Err(WalletError::PasswordLocked { until }),
            None => Err(WalletError::WrongPassword {
                tries_left: MAX_PASSWORD_TRIES.saturating_sub(failure.failures),
            }),
        }
    }
}

/// The active terminal's merchant, as a payment's transfers and codes need it.
fn merchant_in(
    directory: &store::directory::Directory,
    terminal_id: &str,
) -> Result<Merchant, WalletError> {
    let terminal = directory
        .terminals
        .iter()
        .find(|terminal| terminal.id == terminal_id && terminal.status == "active")
        .ok_or(WalletError::UnknownTerminal)?;
    let merchant = directory
        .merchants
        .iter()
        .find(|merchant| merchant.id == terminal.merchant_id)
        .ok_or(WalletError::UnknownTerminal)?;
    Ok(Merchant {
        name: merchant.name.clone(),
        city: merchant.city.clone(),
        mcc: merchant.mcc.clone(),
        id: merchant.id.clone(),
        payable: merchant.settlement_account,
    })
}

fn merchant_fields(merchant: &Merchant) -> qr::MerchantFields<'_> {
    qr::MerchantFields {
        id: &merchant.id,
        name: &merchant.name,
        city: &merchant.city,
        mcc: &merchant.mcc,
    }
}

/// The first refusal of a batch, if any (a linked chain reports its cause first).
fn first_refusal(results: store::TransferResults) -> Option<TransferError> {
    let mut refusals = results.into_iter().filter_map(Result::err);
    let first = refusals.next()?;
    if first == TransferError::LinkedEventFailed {
        return refusals
            .find(|error| *error != TransferError::LinkedEventFailed)
            .or(Some(first));
    }
    Some(first)
}
