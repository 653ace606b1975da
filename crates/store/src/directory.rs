//! The directory: the institutions, merchants, terminals, staff, cardholders and cards the
//! platform knows, as plain records. Later crates (acquirer, issuer) give them behaviour; the
//! store only keeps them. Writing a [`Directory`] is idempotent: records that exist are kept.

use ledger::{AccountId, InstitutionId};
use money::Currency;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstitutionKind {
    Acquirer,
    DebitBank,
    CreditIssuer,
    Wallet,
}

impl InstitutionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InstitutionKind::Acquirer => "acquirer",
            InstitutionKind::DebitBank => "debit_bank",
            InstitutionKind::CreditIssuer => "credit_issuer",
            InstitutionKind::Wallet => "wallet",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            InstitutionKind::Acquirer,
            InstitutionKind::DebitBank,
            InstitutionKind::CreditIssuer,
            InstitutionKind::Wallet,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Institution {
    pub id: InstitutionId,
    pub kind: InstitutionKind,
    pub name: String,
    pub name_zh: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merchant {
    /// Merchant id (MID), 15 characters as carried in ISO 8583 field 42.
    pub id: String,
    pub acquirer: InstitutionId,
    pub name: String,
    pub name_zh: String,
    pub city: String,
    /// Merchant category code (ISO 18245), 4 digits.
    pub mcc: String,
    /// The acquirer's account that owes this merchant its takings.
    pub settlement_account: AccountId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminal {
    /// Terminal id (TID), 8 characters as carried in ISO 8583 field 41.
    pub id: String,
    pub merchant_id: String,
    pub status: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StaffRole {
    Cashier,
    Supervisor,
    Manager,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Cashier => "cashier",
            StaffRole::Supervisor => "supervisor",
            StaffRole::Manager => "manager",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            StaffRole::Cashier,
            StaffRole::Supervisor,
            StaffRole::Manager,
        ]
        .into_iter()
        .find(|role| role.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staff {
    pub merchant_id: String,
    /// Operator number keyed in at the terminal (two or three digits on China POS terminals).
    pub operator_no: String,
    pub name: String,
    pub role: StaffRole,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cardholder {
    pub id: String,
    pub name: String,
    pub name_zh: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardProduct {
    Debit,
    Credit,
}

impl CardProduct {
    pub fn as_str(self) -> &'static str {
        match self {
            CardProduct::Debit => "debit",
            CardProduct::Credit => "credit",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [CardProduct::Debit, CardProduct::Credit]
            .into_iter()
            .find(|product| product.as_str() == text)
    }
}

/// A card as the directory keeps it: never the full number, only what a receipt may show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// A token standing for the card in every other table.
    pub id: String,
    pub cardholder_id: String,
    pub issuer: InstitutionId,
    pub product: CardProduct,
    pub pan_first6: String,
    pub pan_last4: String,
    /// YYMM, as in ISO 8583 field 14.
    pub expiry: String,
    pub currency: Currency,
    /// The issuer's ledger account behind the card (deposit account or credit line).
    pub account: AccountId,
    /// Keyed fingerprint of the full number (see `hsm::Hsm::pan_fingerprint`), for lookup.
    pub pan_fingerprint: Option<[u8; 32]>,
}

impl Card {
    pub fn masked_pan(&self) -> String {
        format!("{}******{}", self.pan_first6, self.pan_last4)
    }
}

/// A key as the platform stores it: a TR-31 block under the HSM's local master key, never the
/// key itself, named by its role (for example `issuer/20/cvk`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub name: String,
    pub token: String,
    /// Hex check value, to tell keys apart in ceremonies and logs.
    pub check_value: String,
}

/// A terminal's keys and session in the master/session scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalSession {
    pub terminal_id: String,
    /// `master-session`, `dukpt-tdes` (ANSI X9.24-1) or `dukpt-aes` (X9.24-3).
    pub key_scheme: String,
    /// Name in `hsm_keys` of the terminal's root key: its master key (master/session) or the
    /// base derivation key its initial key was derived from (DUKPT).
    pub tmk_key: String,
    /// The working PIN key of the current sign-on, a TR-31 token under the HSM's master key.
    pub pin_key: Option<String>,
    /// The working MAC key of the current sign-on, likewise.
    pub mac_key: Option<String>,
    pub batch: i64,
    /// The operator signed on (two or three digits), if any.
    pub operator: Option<String>,
    /// Unix seconds of the last sign-on.
    pub signed_on_at: Option<i64>,
    /// A DUKPT terminal's KSN with a zero counter, in hex (20 digits for TDES, 24 for AES):
    /// which device it is. `None` for master/session terminals.
    pub initial_ksn: Option<String>,
    /// DUKPT: the highest KSN transaction counter accepted from the device (0 before any). A
    /// message whose counter is not above it is refused as a replay
    /// ([`crate::Store::accept_ksn_counter`]). 0 for master/session terminals.
    pub ksn_counter: i64,
}

/// A sign-on: the operator and, for master/session terminals, new working keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignOn {
    pub terminal_id: String,
    /// The new working keys (master/session); `None` for DUKPT terminals, whose keys come from
    /// each message's KSN.
    pub pin_key: Option<String>,
    pub mac_key: Option<String>,
    pub operator: String,
    pub at: i64,
}

/// A change to a terminal's session after sign-on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// The operator signed off: the working keys are forgotten, so nothing more is accepted
    /// from the terminal until it signs on again.
    SignOff,
    /// Batch `batch` was settled: the terminal goes on with the next batch number (after
    /// 999999 comes 1). A batch that is not the current one is left alone.
    CloseBatch { batch: i64 },
}

impl SessionChange {
    /// The statement, with `{p1}`/`{p2}` for the terminal id and the batch.
    pub(crate) fn sql(self, p1: &str, p2: &str) -> String {
        match self {
            SessionChange::SignOff => format!(
                "UPDATE terminal_sessions SET pin_key = NULL, mac_key = NULL, operator = NULL WHERE terminal_id = {p1}"
            ),
            SessionChange::CloseBatch { .. } => format!(
                "UPDATE terminal_sessions SET batch = CASE WHEN batch >= 999999 THEN 1 ELSE batch + 1 END WHERE terminal_id = {p1} AND batch = {p2}"
            ),
        }
    }
}

pub(crate) const TERMINAL_SESSION_COLUMNS: &str = "terminal_id, key_scheme, tmk_key, pin_key, mac_key, batch, operator, signed_on_at, initial_ksn, ksn_counter";

/// A set of directory records, written together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    pub institutions: Vec<Institution>,
    pub merchants: Vec<Merchant>,
    pub terminals: Vec<Terminal>,
    pub staff: Vec<Staff>,
    pub cardholders: Vec<Cardholder>,
    pub cards: Vec<Card>,
}

impl Directory {
    pub fn len(&self) -> usize {
        self.institutions.len()
            + self.merchants.len()
            + self.terminals.len()
            + self.staff.len()
            + self.cardholders.len()
            + self.cards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records in a stable order, so two stores' directories compare equal.
    pub fn sorted(mut self) -> Self {
        self.institutions.sort_by_key(|record| record.id);
        self.merchants.sort_by(|a, b| a.id.cmp(&b.id));
        self.terminals.sort_by(|a, b| a.id.cmp(&b.id));
        self.staff.sort_by(|a, b| {
            (&a.merchant_id, &a.operator_no).cmp(&(&b.merchant_id, &b.operator_no))
        });
        self.cardholders.sort_by(|a, b| a.id.cmp(&b.id));
        self.cards.sort_by(|a, b| a.id.cmp(&b.id));
        self
    }
}

/// A stored text that does not name a known variant.
pub(crate) fn unknown(what: &str, value: &str) -> crate::StoreError {
    crate::StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

/// Columns of a card row, in the order both backends read them.
pub(crate) const CARD_COLUMNS: &str = "id, cardholder_id, issuer, product, pan_first6, pan_last4, expiry, currency, account, pan_fingerprint";
/// Cards are written once; the only later change seeding may make is to add a missing
/// fingerprint (cards created before fingerprints existed).
pub(crate) const CARD_UPSERT: &str = "ON CONFLICT (id) DO UPDATE SET pan_fingerprint = excluded.pan_fingerprint WHERE cards.pan_fingerprint IS NULL";

/// A stored fingerprint back to its 32 bytes.
pub(crate) fn fingerprint(bytes: Option<Vec<u8>>) -> Result<Option<[u8; 32]>, crate::StoreError> {
    bytes
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                crate::StoreError::Corrupt(format!("card fingerprint of {} bytes", bytes.len()))
            })
        })
        .transpose()
}
