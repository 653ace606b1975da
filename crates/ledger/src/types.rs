//! The ledger's data model: ids, accounts, transfer requests and recorded transfers, errors.

use money::{Amount, Currency};
use sha2::{Digest, Sha256};

/// Nanoseconds since the Unix epoch, assigned by the store when a batch executes. Injected,
/// never read from a clock here, so tests are deterministic.
pub type Timestamp = u64;

/// Nanoseconds per second, for hold timeouts given in seconds.
pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Most requests one batch may carry; bounds the memory and the time a commit holds the writer.
pub const MAX_BATCH_SIZE: usize = 8_192;

/// Derives a 128-bit id from a business key, so that the same business event (say, terminal +
/// STAN + transmission time) always maps to the same id and a duplicate is recognised.
fn id_from_key(namespace: &str, key: &[u8]) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update((namespace.len() as u64).to_be_bytes());
    hasher.update(namespace.as_bytes());
    hasher.update(key);
    let digest = hasher.finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // Zero is reserved as "no id"; a digest of zero is astronomically unlikely but cheap to rule out.
    u128::from_be_bytes(bytes).max(1)
}

/// Hasher for 128-bit ids. Ids are digests or time + digest, so their bits are already well
/// mixed; folding and one multiplication is enough, and far cheaper than SipHash on the hot
/// path (every request looks up two accounts and one transfer).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, value: u128) {
        let folded = (value as u64) ^ ((value >> 64) as u64).rotate_left(32);
        self.0 = (self.0 ^ folded).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// A hash map keyed by ledger ids.
pub type IdMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A hash set of ledger ids.
pub type IdSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<IdHasher>>;

/// One institution's books (the acquirer, a bank, the wallet). Transfers never cross books:
/// money between institutions moves through each side's settlement accounts.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct InstitutionId(pub u32);

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct AccountId(pub u128);

impl AccountId {
    pub fn from_key(namespace: &str, key: &[u8]) -> Self {
        AccountId(id_from_key(namespace, key))
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TransferId(pub u128);

impl TransferId {
    pub fn from_key(namespace: &str, key: &[u8]) -> Self {
        TransferId(id_from_key(namespace, key))
    }

    /// An id that keeps one source's events together and in order, still recomputable from
    /// the business key alone: the high 64 bits are a digest of the source (`cluster`, say a
    /// terminal and its batch), the next 24 bits its sequence number (the trace number), the
    /// low 40 bits a digest of the whole key with `member` (which of the event's transfers).
    ///
    /// A store's index then grows at one place per source instead of at a random page per
    /// transfer: the transfers of one message sit side by side, and a busy terminal's next
    /// message lands on the page its last one filled. Uniqueness rests on 104 digest bits plus
    /// the sequence, as much as a plain digest of the key gives in practice.
    pub fn clustered(namespace: &str, cluster: &[u8], sequence: u32, member: &str) -> Self {
        TransferCluster::new(namespace, cluster).id(sequence, member)
    }

    /// A time-ordered id, as TigerBeetle advises: the high 48 bits are the business event's
    /// time in Unix milliseconds, the low 80 bits a digest of its key. The same event (same
    /// time, same key) always gets the same id, so duplicates are recognised, and ids of
    /// successive events grow, so stores insert at the end of their indexes instead of at
    /// random pages.
    pub fn from_time_and_key(unix_millis: u64, namespace: &str, key: &[u8]) -> Self {
        let digest = id_from_key(namespace, key) & ((1_u128 << 80) - 1);
        TransferId((u128::from(unix_millis & ((1 << 48) - 1)) << 80) | digest.max(1))
    }
}

/// One source of clustered ids ([`TransferId::clustered`]) with its digest computed once, for
/// the several ids of one event (a sale's two transfers): each id then costs one digest, not
/// two.
#[derive(Clone, Copy, Debug)]
pub struct TransferCluster<'a> {
    namespace: &'a str,
    cluster: &'a [u8],
    /// The ids' high 64 bits: the digest of the source.
    source: u128,
}

impl<'a> TransferCluster<'a> {
    pub fn new(namespace: &'a str, cluster: &'a [u8]) -> Self {
        Self {
            namespace,
            cluster,
            source: id_from_key(namespace, cluster) >> 64,
        }
    }

    /// The id of `member` of the source's event `sequence`, as [`TransferId::clustered`].
    pub fn id(&self, sequence: u32, member: &str) -> TransferId {
        let mut key = Vec::with_capacity(self.cluster.len() + member.len() + 5);
        key.extend_from_slice(self.cluster);
        key.extend_from_slice(&sequence.to_be_bytes());
        key.push(b'|');
        key.extend_from_slice(member.as_bytes());
        let digest = id_from_key(self.namespace, &key) & ((1_u128 << 40) - 1);
        let sequence = u128::from(sequence & 0x00ff_ffff);
        TransferId((self.source << 64) | (sequence << 40) | digest.max(1))
    }
}

/// Which side of an account may not outgrow the other, counting pending amounts against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BalanceConstraint {
    None,
    /// An asset held for someone (a debit card's deposit account): it cannot go below zero.
    DebitsMustNotExceedCredits,
    /// A limit (a credit line funded by the issuer): it cannot be drawn beyond its funding.
    CreditsMustNotExceedDebits,
}

impl BalanceConstraint {
    pub fn code(self) -> i64 {
        match self {
            BalanceConstraint::None => 0,
            BalanceConstraint::DebitsMustNotExceedCredits => 1,
            BalanceConstraint::CreditsMustNotExceedDebits => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(BalanceConstraint::None),
            1 => Some(BalanceConstraint::DebitsMustNotExceedCredits),
            2 => Some(BalanceConstraint::CreditsMustNotExceedDebits),
            _ => None,
        }
    }
}

/// What a caller asks for when opening an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountSpec {
    pub id: AccountId,
    pub institution: InstitutionId,
    pub currency: Currency,
    /// Chart-of-accounts code of the owning institution (what kind of account this is).
    pub code: u16,
    pub constraint: BalanceConstraint,
}

impl AccountSpec {
    pub fn new(id: AccountId, institution: InstitutionId, currency: Currency, code: u16) -> Self {
        AccountSpec {
            id,
            institution,
            currency,
            code,
            constraint: BalanceConstraint::None,
        }
    }

    pub fn constraint(mut self, constraint: BalanceConstraint) -> Self {
        self.constraint = constraint;
        self
    }
}

/// An account with its running totals, all in minor units of its currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub institution: InstitutionId,
    pub currency: Currency,
    pub code: u16,
    pub constraint: BalanceConstraint,
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
    pub created_at: Timestamp,
}

impl Account {
    pub fn open(spec: AccountSpec, created_at: Timestamp) -> Self {
        Account {
            id: spec.id,
            institution: spec.institution,
            currency: spec.currency,
            code: spec.code,
            constraint: spec.constraint,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            created_at,
        }
    }

    pub fn spec(&self) -> AccountSpec {
        AccountSpec {
            id: self.id,
            institution: self.institution,
            currency: self.currency,
            code: self.code,
            constraint: self.constraint,
        }
    }

    /// Posted balance from the point of view of the constraint: credits − debits for a
    /// deposit-like account, debits − credits otherwise.
    pub fn balance(&self) -> i64 {
        match self.constraint {
            BalanceConstraint::CreditsMustNotExceedDebits => {
                self.debits_posted.saturating_sub(self.credits_posted)
            }
            _ => self.credits_posted.saturating_sub(self.debits_posted),
        }
    }

    /// What may still be spent: posted balance less holds against it.
    pub fn available(&self) -> i64 {
        match self.constraint {
            BalanceConstraint::CreditsMustNotExceedDebits => {
                self.balance().saturating_sub(self.credits_pending)
            }
            _ => self.balance().saturating_sub(self.debits_pending),
        }
    }
}

/// What a transfer does. Holds carry their own accounts; posting and voiding refer to the hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferKind {
    /// Moves the amount at once.
    Posted {
        debit: AccountId,
        credit: AccountId,
        amount: Amount,
    },
    /// Reserves the amount (an authorization hold) until posted, voided or expired.
    /// `timeout_seconds == 0` means the hold never expires by itself.
    Pending {
        debit: AccountId,
        credit: AccountId,
        amount: Amount,
        timeout_seconds: u32,
    },
    /// Completes a hold for `amount` (at most the held amount; `None` = all of it). The rest
    /// of the hold is released.
    PostPending {
        pending_id: TransferId,
        amount: Option<Amount>,
    },
    /// Releases a hold entirely.
    VoidPending { pending_id: TransferId },
}

impl TransferKind {
    pub fn code(&self) -> i64 {
        match self {
            TransferKind::Posted { .. } => 0,
            TransferKind::Pending { .. } => 1,
            TransferKind::PostPending { .. } => 2,
            TransferKind::VoidPending { .. } => 3,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferRequest {
    pub id: TransferId,
    pub kind: TransferKind,
    /// When set, this request succeeds or fails together with the next one in the batch.
    pub linked: bool,
    /// Why the money moves (a code of the owning institution's chart: sale, fee, payout ...).
    pub code: u16,
    /// Opaque reference to the business record behind the transfer (journal entry, order).
    pub user_data: u128,
}

impl TransferRequest {
    pub fn new(id: TransferId, kind: TransferKind) -> Self {
        TransferRequest {
            id,
            kind,
            linked: false,
            code: 0,
            user_data: 0,
        }
    }

    pub fn posted(id: TransferId, debit: AccountId, credit: AccountId, amount: Amount) -> Self {
        Self::new(
            id,
            TransferKind::Posted {
                debit,
                credit,
                amount,
            },
        )
    }

    pub fn pending(
        id: TransferId,
        debit: AccountId,
        credit: AccountId,
        amount: Amount,
        timeout_seconds: u32,
    ) -> Self {
        Self::new(
            id,
            TransferKind::Pending {
                debit,
                credit,
                amount,
                timeout_seconds,
            },
        )
    }

    pub fn post(id: TransferId, pending_id: TransferId, amount: Option<Amount>) -> Self {
        Self::new(id, TransferKind::PostPending { pending_id, amount })
    }

    pub fn void(id: TransferId, pending_id: TransferId) -> Self {
        Self::new(id, TransferKind::VoidPending { pending_id })
    }

    pub fn linked(mut self) -> Self {
        self.linked = true;
        self
    }

    pub fn code(mut self, code: u16) -> Self {
        self.code = code;
        self
    }

    pub fn user_data(mut self, user_data: u128) -> Self {
        self.user_data = user_data;
        self
    }
}

/// Where a hold stands. Only pending transfers have one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PendingStatus {
    Pending,
    Posted,
    Voided,
    Expired,
}

impl PendingStatus {
    pub fn code(self) -> i64 {
        match self {
            PendingStatus::Pending => 1,
            PendingStatus::Posted => 2,
            PendingStatus::Voided => 3,
            PendingStatus::Expired => 4,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(PendingStatus::Pending),
            2 => Some(PendingStatus::Posted),
            3 => Some(PendingStatus::Voided),
            4 => Some(PendingStatus::Expired),
            _ => None,
        }
    }
}

/// A transfer as recorded: the request exactly as made, plus what the ledger resolved
/// (the accounts and amount a post or void inherited from its hold, the time, the books).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub request: TransferRequest,
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Amount,
    pub institution: InstitutionId,
    pub timestamp: Timestamp,
    /// For holds with a timeout: when the hold lapses.
    pub expires_at: Option<Timestamp>,
    /// For holds: where the hold stands now (the only mutable thing about a transfer).
    pub status: Option<PendingStatus>,
}

impl Transfer {
    pub fn id(&self) -> TransferId {
        self.request.id
    }

    pub fn is_hold(&self) -> bool {
        matches!(self.request.kind, TransferKind::Pending { .. })
    }
}

/// The outcome of one accepted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created(Transfer),
    /// The id was seen before with the same content: this is the original transfer.
    AlreadyExists(Transfer),
}

impl Outcome {
    pub fn transfer(&self) -> &Transfer {
        match self {
            Outcome::Created(transfer) | Outcome::AlreadyExists(transfer) => transfer,
        }
    }
}

/// Why a request was refused. Nothing is written for a refused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TransferError {
    #[error("id must not be zero")]
    IdMustNotBeZero,
    #[error("amount must be greater than zero")]
    AmountMustBePositive,
    #[error("debit and credit account must differ")]
    AccountsMustBeDifferent,
    #[error("debit account not found")]
    DebitAccountNotFound,
    #[error("credit account not found")]
    CreditAccountNotFound,
    #[error("debit and credit accounts belong to different books")]
    InstitutionMismatch,
    #[error("amount currency differs from the accounts' currency")]
    CurrencyMismatch,
    #[error("debit account's debits would exceed its credits")]
    ExceedsCredits,
    #[error("credit account's credits would exceed its debits")]
    ExceedsDebits,
    #[error("an account total would overflow")]
    Overflow,
    #[error("pending transfer not found")]
    PendingTransferNotFound,
    #[error("referenced transfer is not a pending transfer")]
    PendingTransferNotPending,
    #[error("pending transfer was already posted")]
    PendingTransferAlreadyPosted,
    #[error("pending transfer was already voided")]
    PendingTransferAlreadyVoided,
    #[error("pending transfer expired")]
    PendingTransferExpired,
    #[error("amount exceeds the pending amount")]
    ExceedsPendingAmount,
    #[error("id already used by a transfer with different content")]
    ExistsWithDifferentContent,
    #[error("a linked transfer in the same chain failed")]
    LinkedEventFailed,
    #[error("the last transfer of the batch is linked to nothing")]
    LinkedChainOpen,
    #[error("batch exceeds the maximum size")]
    BatchTooLarge,
}

/// Why an account could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AccountError {
    #[error("account id must not be zero")]
    IdMustNotBeZero,
    #[error("account id already used with different content")]
    ExistsWithDifferentContent,
}
