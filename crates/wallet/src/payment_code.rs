//! Consumer-presented payments (the cashier scans the consumer's code), with the codes of
//! `emvqr::payment_code`: `88`, an 8-digit wallet field, the time step, a 6-digit token and a
//! Luhn digit, 21 digits in all.
//!
//! The wallet page asks for a code ([`Wallets::issue_code`]) and shows it for a minute. Panda
//! Pay fills the wallet field with its institution number (two digits, `40`) and six random
//! digits, and the token with six more: a code says which wallet institution it belongs to and
//! nothing about the wallet, which only the wallet finds, by the code's digest in the store. A
//! code is refused once it is older than two minutes (the codec's policy, and the stored expiry)
//! or once a charge used it.
//!
//! A terminal charges a code for an amount ([`Wallets::charge`]): the charge is an order with the
//! terminal's id, so a retried charge finds the first, and the money moves as for a scanned
//! merchant code. A terminal that hears nothing asks for the order, then cancels it
//! ([`Wallets::cancel`]): a cancel closes an order not yet paid (so the charge can no longer
//! succeed), reverses a paid one, and, when the charge never arrived, leaves a closed order in
//! its place so that a late charge is refused. No one-sided payment survives a cancel.

use crate::{Order, WalletError, Wallets, chart, first_refusal, merchant_in, qr};
use emvqr::{PaymentCode, Policy};
use money::Amount;
use sha2::Digest;
use store::wallets::{CodeUse, PaymentCodeRecord};
use store::wallets::{OrderRecord, OrderStatus, OrderTransition};

/// How long a charge stays open for its terminal's cancel: a charge is decided at once, so an
/// order still `created` after a minute belongs to a charge that died on the way.
pub const CHARGE_TIMEOUT_SECONDS: i64 = 60;
/// Expired codes are kept a day (to answer "already used" rather than "unknown" for a while),
/// then forgotten.
pub const CODE_RETENTION_SECONDS: i64 = 24 * 60 * 60;

/// A code to show on the phone.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// 21 digits.
    pub code: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The code is a bearer credential while it lives.
        formatter
            .debug_struct("IssuedCode")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A terminal's charge of a scanned code.
#[derive(Clone, PartialEq, Eq)]
pub struct NewCharge {
    /// Chosen by the terminal (an order id), so that a retry is the same charge.
    pub charge_id: String,
    pub terminal_id: String,
    pub amount: Amount,
    /// The digits the cashier scanned or typed.
    pub code: String,
}

impl std::fmt::Debug for NewCharge {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NewCharge")
            .field("charge_id", &self.charge_id)
            .field("terminal_id", &self.terminal_id)
            .field("amount", &self.amount)
            .finish_non_exhaustive()
    }
}

/// The digest under which a code is kept.
fn digest(code: &str) -> String {
    sha2::Sha256::digest(code.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The code's policy: 30-second steps, two minutes of life, one step of phone clock skew.
fn policy() -> Policy {
    Policy::default()
}

fn code_lifetime_seconds() -> i64 {
    let policy = policy();
    i64::try_from(policy.step_seconds * policy.max_age_steps).unwrap_or(120)
}

impl Wallets {
    /// The wallet-field prefix of this institution's codes: its number, two digits.
    fn code_prefix(&self) -> Result<u64, WalletError> {
        let institution = u64::from(self.config.institution.0);
        if institution >= 100 {
            return Err(WalletError::Setup(
                "payment codes carry a two-digit institution number".into(),
            ));
        }
        Ok(institution)
    }

    /// A new one-time payment code for `wallet_id` (whose owner the caller checked).
    pub async fn issue_code(&self, wallet_id: &str) -> Result<IssuedCode, WalletError> {
        let wallet = self.wallet(wallet_id).await?;
        let now = self.now();
        let serial: u64 = rand::random_range(0..1_000_000);
        let token: u64 = rand::random_range(0..1_000_000);
        let field = self.code_prefix()? * 1_000_000 + serial;
        let code = PaymentCode::generate(field, token, u64::try_from(now).unwrap_or(0), policy())
            .map_err(|error| WalletError::Setup(error.to_string()))?;
        let expires_at = now.saturating_add(code_lifetime_seconds());
        self.store
            .put_payment_code(PaymentCodeRecord {
                code_digest: digest(&code),
                wallet_id: wallet.id.clone(),
                issued_at: now,
                expires_at,
            })
            .await?;
        Ok(IssuedCode {
            code,
            issued_at: now,
            expires_at,
        })
    }

    /// Charges a scanned payment code for a terminal. In order: the charge (id, amount,
    /// terminal), the code (format and check digit, age, our institution), the order (a retry
    /// finds it; a cancelled one refuses), the code's single use, the wallet's balance. Every
    /// refusal charges nothing; a refusal after the order was made closes it.
    pub async fn charge(&self, new: NewCharge) -> Result<Order, WalletError> {
        if !qr::valid_order_id(&new.charge_id) {
            return Err(WalletError::BadOrderId);
        }
        if new.amount.minor() <= 0 {
            return Err(WalletError::BadAmount);
        }
        let directory = self.store.load_directory().await?;
        let merchant = merchant_in(&directory, &new.terminal_id)?;
        let now = self.now();
        let code = new.code.trim();
        let parsed = match PaymentCode::parse(code, u64::try_from(now).unwrap_or(0), policy()) {
            Ok(parsed) => parsed,
            Err(emvqr::CodeError::Expired { .. }) => return Err(WalletError::CodeExpired),
            Err(error) => return Err(WalletError::BadCode(error)),
        };
        if parsed.wallet_id / 1_000_000 != self.code_prefix()? {
            return Err(WalletError::ForeignInstitution);
        }
        self.open_chart(new.amount.currency(), &[]).await?;
        let record = self
            .store
            .create_order(OrderRecord {
                id: new.charge_id.clone(),
                merchant_id: merchant.id.clone(),
                terminal_id: new.terminal_id.clone(),
                amount: new.amount,
                status: OrderStatus::Created,
                wallet_id: None,
                created_at: now,
                expires_at: now.saturating_add(CHARGE_TIMEOUT_SECONDS),
                updated_at: now,
            })
            .await?;
        if record.terminal_id != new.terminal_id || record.amount != new.amount {
            return Err(WalletError::OrderConflict);
        }
        match record.status {
            OrderStatus::Created => {}
            // A retry of a charge that went through: its answer.
            OrderStatus::Paid | OrderStatus::Refunded => {
                return self.order_with_payload(record, &merchant);
            }
            OrderStatus::Closed | OrderStatus::Reversed => return Err(WalletError::OrderClosed),
        }
        let wallet_id = match self
            .store
            .use_payment_code(&digest(code), &record.id, now)
            .await?
        {
            CodeUse::Charges { wallet_id } => wallet_id,
            refused => {
                self.close(record).await?;
                return Err(match refused {
                    CodeUse::AlreadyUsed => WalletError::CodeUsed,
                    CodeUse::Expired => WalletError::CodeExpired,
                    _ => WalletError::UnknownCode,
                });
            }
        };
        let wallet = self.wallet(&wallet_id).await?;
        match self.move_payment(record.clone(), &wallet, &merchant).await {
            Ok(order) => {
                tracing::info!(order = %order.id, "payment code charged");
                Ok(order)
            }
            Err(error @ (WalletError::InsufficientBalance | WalletError::BadAmount)) => {
                // Refused: the order closes, so a retry or a cancel finds it settled as unpaid.
                self.close(record).await?;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Cancels a terminal's order whose outcome the terminal does not know (its charge or
    /// query got no answer), idempotent: a created order closes (any money that moved goes
    /// back), a paid one is reversed, a closed or reversed one stays so; an order that never
    /// arrived is recorded closed so that it can no longer be charged. Only the terminal that
    /// made the order can cancel it.
    pub async fn cancel(
        &self,
        order_id: &str,
        terminal_id: &str,
        amount: Amount,
    ) -> Result<Order, WalletError> {
        if !qr::valid_order_id(order_id) {
            return Err(WalletError::BadOrderId);
        }
        let directory = self.store.load_directory().await?;
        let merchant = merchant_in(&directory, terminal_id)?;
        let now = self.now();
        // The cancel may overtake its charge: a closed order in its place refuses the charge.
        let record = self
            .store
            .create_order(OrderRecord {
                id: order_id.to_owned(),
                merchant_id: merchant.id.clone(),
                terminal_id: terminal_id.to_owned(),
                amount,
                status: OrderStatus::Closed,
                wallet_id: None,
                created_at: now,
                expires_at: now,
                updated_at: now,
            })
            .await?;
        if record.terminal_id != terminal_id || record.amount != amount {
            return Err(WalletError::OrderConflict);
        }
        let record = match record.status {
            OrderStatus::Created => self.close(record).await?,
            OrderStatus::Paid => self.reverse_paid(record, &merchant).await?,
            OrderStatus::Closed => {
                // A charge whose money moved but whose order never said paid: given back.
                match self
                    .store
                    .transfer(chart::transfer_id("pay/wallet", &record.id))
                    .await?
                {
                    Some(payment) => self.reverse_closed(&record, payment.debit).await?,
                    None => record,
                }
            }
            OrderStatus::Refunded | OrderStatus::Reversed => record,
        };
        tracing::info!(order = %record.id, status = record.status.as_str(), "order cancelled by its terminal");
        self.order_with_payload(record, &merchant)
    }

    /// Reverses a paid order: the status first (so nothing else can refund it), then the two
    /// transfers that give the money back, with ids from the order id (a repeated cancel moves
    /// nothing more).
    async fn reverse_paid(
        &self,
        record: OrderRecord,
        merchant: &crate::Merchant,
    ) -> Result<OrderRecord, WalletError> {
        let won = self
            .store
            .transition_order(OrderTransition {
                order_id: record.id.clone(),
                from: OrderStatus::Paid,
                to: OrderStatus::Reversed,
                wallet_id: None,
                at: self.now(),
            })
            .await?;
        let now = self
            .store
            .order(&record.id)
            .await?
            .ok_or(WalletError::UnknownOrder)?;
        if !won && now.status != OrderStatus::Reversed {
            // Refunded meanwhile: the money is back already.
            return Ok(now);
        }
        let wallet_id = now
            .wallet_id
            .clone()
            .ok_or_else(|| WalletError::Setup("a paid order without its wallet".into()))?;
        let requests = self.undo_transfers(
            "reversal",
            &now,
            chart::wallet_account(&wallet_id),
            merchant,
        );
        if let Some(error) = first_refusal(self.store.submit(requests).await?) {
            return Err(WalletError::Ledger(error));
        }
        tracing::warn!(order = %now.id, "a paid order was reversed by its terminal's cancel");
        Ok(now)
    }

    /// Forgets codes that expired more than a day ago (the order closer calls it).
    pub async fn forget_old_codes(&self) -> Result<u64, WalletError> {
        let before = self.now().saturating_sub(CODE_RETENTION_SECONDS);
        Ok(self.store.delete_payment_codes_before(before).await?)
    }
}
