//! Accounts of the people who use the console and the REST API (issue 7): users with a role
//! and the tenant they act for, their API keys, idempotency records of API requests, which
//! merchants a channel partner referred, and the read of the message journal that lists
//! transactions for them.
//!
//! Passwords are kept only as argon2id hashes ([`hash_password`]); API keys only as SHA-256
//! digests of the key (a key is 256 random bits, so a slow hash adds nothing), shown in clear
//! once, when issued. Lockout is counted in the database, so it holds across hosts.
//!
//! ```no_run
//! # async fn demo(store: &store::Store) -> Result<(), store::StoreError> {
//! use store::accounts::{LoginOutcome, hash_password};
//! match store.authenticate("shanghai.admin", "a long passphrase", 1_764_000_000).await? {
//!     LoginOutcome::Accepted(user) => println!("welcome, {}", user.display_name),
//!     LoginOutcome::Refused => println!("wrong user name or password"),
//!     LoginOutcome::Locked { until } => println!("locked until {until}"),
//! }
//! # Ok(()) }
//! ```

use crate::{Store, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

/// Shortest password accepted (issue 7; NIST SP 800-63B asks for at least 8, we ask more).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted: hashing cost grows with length, so an attacker must not choose it.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Failed logins in a row that lock an account.
pub const MAX_LOGIN_FAILURES: i64 = 10;
/// How long a locked account stays locked, in seconds.
pub const LOCKOUT_SECONDS: i64 = 30 * 60;
/// How long an idempotency record answers retries, in seconds (Stripe keeps them 24 hours).
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;
/// Expired idempotency records each new claim deletes: more than one, so that the table
/// shrinks after a busy day, and few, so that a claim stays a point write.
pub const IDEMPOTENCY_SWEEP_ROWS: i64 = 16;
/// Longest `Idempotency-Key` accepted, in bytes (a UUID is 36).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;
/// Most transactions one read returns (a page of the API or the console).
pub const MAX_TRANSACTIONS_PER_READ: i64 = 500;

/// What a user may do: one of the roles of issue 7. Each role acts for one kind of tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Acquirer operations: sees every merchant, terminal and transaction of its acquirer.
    PlatformOperator,
    /// A card issuer's (bank's) operations: its own cards and their transactions.
    IssuerOperator,
    /// The mobile wallet's operations.
    WalletOperator,
    MerchantAdmin,
    MerchantManager,
    Cashier,
    Cardholder,
    /// Sells terminals and applies for merchants; sees the merchants it referred.
    ChannelPartner,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::PlatformOperator,
        Role::IssuerOperator,
        Role::WalletOperator,
        Role::MerchantAdmin,
        Role::MerchantManager,
        Role::Cashier,
        Role::Cardholder,
        Role::ChannelPartner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformOperator => "platform_operator",
            Role::IssuerOperator => "issuer_operator",
            Role::WalletOperator => "wallet_operator",
            Role::MerchantAdmin => "merchant_admin",
            Role::MerchantManager => "merchant_manager",
            Role::Cashier => "cashier",
            Role::Cardholder => "cardholder",
            Role::ChannelPartner => "channel_partner",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// The kind of tenant a user of this role acts for.
    /// Whether users of this role must sign in with a second factor (TOTP): operators, who
    /// see every merchant or card of an institution, and merchant administrators, who manage
    /// staff and keys (issue 7).
    pub fn requires_mfa(self) -> bool {
        matches!(
            self,
            Role::PlatformOperator
                | Role::IssuerOperator
                | Role::WalletOperator
                | Role::MerchantAdmin
        )
    }

    pub fn tenant_kind(self) -> TenantKind {
        match self {
            Role::PlatformOperator | Role::IssuerOperator | Role::WalletOperator => {
                TenantKind::Institution
            }
            Role::MerchantAdmin | Role::MerchantManager | Role::Cashier => TenantKind::Merchant,
            Role::Cardholder => TenantKind::Cardholder,
            Role::ChannelPartner => TenantKind::Partner,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TenantKind {
    Institution,
    Merchant,
    Cardholder,
    Partner,
}

impl TenantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantKind::Institution => "institution",
            TenantKind::Merchant => "merchant",
            TenantKind::Cardholder => "cardholder",
            TenantKind::Partner => "partner",
        }
    }
}

/// Whom a user acts for: an institution (by its ledger id), a merchant (MID), a cardholder or a
/// channel partner (by their ids).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tenant {
    Institution(ledger::InstitutionId),
    Merchant(String),
    Cardholder(String),
    Partner(String),
}

impl Tenant {
    pub fn kind(&self) -> TenantKind {
        match self {
            Tenant::Institution(_) => TenantKind::Institution,
            Tenant::Merchant(_) => TenantKind::Merchant,
            Tenant::Cardholder(_) => TenantKind::Cardholder,
            Tenant::Partner(_) => TenantKind::Partner,
        }
    }

    pub fn id(&self) -> String {
        match self {
            Tenant::Institution(id) => id.0.to_string(),
            Tenant::Merchant(id) | Tenant::Cardholder(id) | Tenant::Partner(id) => id.clone(),
        }
    }

    pub(crate) fn from_columns(kind: &str, id: String) -> Result<Tenant, StoreError> {
        match kind {
            "institution" => id
                .parse::<u32>()
                .map(|id| Tenant::Institution(ledger::InstitutionId(id)))
                .map_err(|_| StoreError::Corrupt(format!("institution tenant {id:?}"))),
            "merchant" => Ok(Tenant::Merchant(id)),
            "cardholder" => Ok(Tenant::Cardholder(id)),
            "partner" => Ok(Tenant::Partner(id)),
            other => Err(crate::directory::unknown("tenant kind", other)),
        }
    }
}

/// A user as stored. The password hash is an argon2id PHC string; `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub tenant: Tenant,
    pub password_hash: String,
    pub failed_logins: i64,
    /// Unix seconds until which logins are refused.
    pub locked_until: Option<i64>,
    pub created_at: i64,
    /// The TOTP enrolment's id (not a secret: the secret is derived from it in the HSM).
    pub totp_nonce: Option<String>,
    /// Whether the enrolment was confirmed with a code.
    pub totp_enabled: bool,
    /// The last TOTP time step accepted (a code is good once).
    pub totp_last_step: Option<i64>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("tenant", &self.tenant)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .field("totp_enabled", &self.totp_enabled)
            .finish_non_exhaustive()
    }
}

pub(crate) const USER_COLUMNS: &str = "id, username, display_name, password_hash, role, tenant_kind, tenant_id, failed_logins, locked_until, created_at, totp_nonce, totp_enabled, totp_last_step";

/// The columns of a user row in [`USER_COLUMNS`] order, read by either backend.
pub(crate) struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub tenant_kind: String,
    pub tenant_id: String,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub totp_nonce: Option<String>,
    pub totp_enabled: i64,
    pub totp_last_step: Option<i64>,
}

impl UserRow {
    pub(crate) fn into_user(self) -> Result<User, StoreError> {
        let role =
            Role::parse(&self.role).ok_or_else(|| crate::directory::unknown("role", &self.role))?;
        let tenant = Tenant::from_columns(&self.tenant_kind, self.tenant_id)?;
        if tenant.kind() != role.tenant_kind() {
            return Err(StoreError::Corrupt(format!(
                "user {} is a {} acting for a {}",
                self.id,
                role.as_str(),
                tenant.kind().as_str()
            )));
        }
        Ok(User {
            id: self.id,
            username: self.username,
            display_name: self.display_name,
            role,
            tenant,
            password_hash: self.password_hash,
            failed_logins: self.failed_logins,
            locked_until: self.locked_until,
            created_at: self.created_at,
            totp_nonce: self.totp_nonce,
            totp_enabled: self.totp_enabled != 0,
            totp_last_step: self.totp_last_step,
        })
    }
}

/// Why a user cannot be created as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("the password must have at most {MAX_PASSWORD_CHARS} characters")]
    PasswordTooLong,
    #[error("a {role} acts for a {expected}, not a {found}", role = .role.as_str(), expected = .role.tenant_kind().as_str(), found = .found.as_str())]
    WrongTenant { role: Role, found: TenantKind },
    #[error("the user name must be 3 to 64 letters, digits, dots, dashes or underscores")]
    BadUsername,
    #[error("the password could not be hashed")]
    Hashing,
}

/// A user to create; [`NewUser::new`] hashes the password and checks role against tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub tenant: Tenant,
    pub password_hash: String,
    pub created_at: i64,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl NewUser {
    pub fn new(
        id: &str,
        username: &str,
        display_name: &str,
        role: Role,
        tenant: Tenant,
        password: &str,
        created_at: i64,
    ) -> Result<NewUser, AccountError> {
        let username_ok = (3..=64).contains(&username.len())
            && username
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte));
        if !username_ok {
            return Err(AccountError::BadUsername);
        }
        if tenant.kind() != role.tenant_kind() {
            return Err(AccountError::WrongTenant {
                role,
                found: tenant.kind(),
            });
        }
        Ok(NewUser {
            id: id.to_owned(),
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            role,
            tenant,
            password_hash: hash_password(password)?,
            created_at,
        })
    }
}

fn argon2() -> argon2::Argon2<'static> {
    // argon2id with the RFC 9106 / OWASP second recommendation (19 MiB, 2 passes, 1 lane),
    // which is the crate's default.
    argon2::Argon2::default()
}

/// An argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooLong);
    }
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| AccountError::Hashing)?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| AccountError::Hashing)
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash too).
pub fn verify_password(hash: &str, password: &str) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a password nobody has, verified when the user name is unknown, so that a
/// login answers in the same time whether or not the user exists.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that no one has").unwrap_or_default())
}

/// The answer to a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Accepted(User),
    /// Unknown user or wrong password (the caller must not say which).
    Refused,
    /// Too many failures: no login before `until` (unix seconds), right password or not.
    Locked {
        until: i64,
    },
}

/// An API key as listed: never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// The public part of the key, e.g. `ek_1a2b3c4d5e6f`.
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub(crate) const API_KEY_COLUMNS: &str = "id, user_id, name, created_at, revoked_at";

/// A key just issued: `secret` is the whole key, to be shown once and never again.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

impl std::fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Prefix of every API key, so that leaked keys are easy to find by secret scanners.
pub const API_KEY_PREFIX: &str = "ek_";

/// A fresh key for `user_id`: `ek_<12 hex id>_<64 hex secret>`, and the digest to store.
pub fn new_api_key(user_id: &str, name: &str, created_at: i64) -> (IssuedApiKey, [u8; 32]) {
    let id_bytes: [u8; 6] = rand::random();
    let secret_bytes: [u8; 32] = rand::random();
    let id = format!("{API_KEY_PREFIX}{}", hex(&id_bytes));
    let secret = format!("{id}_{}", hex(&secret_bytes));
    let digest = api_key_digest(&secret);
    (
        IssuedApiKey {
            key: ApiKey {
                id,
                user_id: user_id.to_owned(),
                name: name.to_owned(),
                created_at,
                revoked_at: None,
            },
            secret,
        },
        digest,
    )
}

/// The key id part of a presented key, if it has the shape of one.
pub fn api_key_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && secret.len() == 64).then(|| &presented[..API_KEY_PREFIX.len() + 12])
}

pub fn api_key_digest(presented: &str) -> [u8; 32] {
    Sha256::digest(presented.as_bytes()).into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Where an idempotent request stands when it arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyState {
    /// First time: the caller runs the request, then [`Store::finish_idempotent`].
    New,
    /// Answered before with the same body: give this answer again.
    Replay { status: u16, body: Vec<u8> },
    /// The key was used with another body.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// The second parameter of a TOTP update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TotpValue {
    Int(i64),
    Text(String),
}

/// A channel partner's referral of a merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referral {
    pub partner_id: String,
    pub merchant_id: String,
}

/// A transaction as the console and the API list it: a financial message from the journal
/// and its answer, with the card number masked (first six and last four digits at most).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionRecord {
    /// The journal row's id: stable, increasing, the cursor of pagination.
    pub id: i64,
    /// Microseconds since the epoch.
    pub received_at: i64,
    pub terminal_id: String,
    pub merchant_id: String,
    pub mti: String,
    pub kind: String,
    pub batch: Option<i64>,
    pub stan: Option<i64>,
    pub amount_minor: Option<i64>,
    /// ISO 4217 numeric.
    pub currency: Option<i64>,
    pub card: Option<String>,
    pub original_batch: Option<i64>,
    pub original_stan: Option<i64>,
    pub response: Option<String>,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    pub duration_us: i64,
    /// The risk rules that fired, and why, or the freeze that stopped it (docs/risk.md).
    pub risk: Option<String>,
    /// Field 22, the POS entry mode (`051`, `071` …), for messages journaled since
    /// migration 33.
    pub entry_mode: Option<String>,
}

pub(crate) const TRANSACTION_COLUMNS: &str = "id, received_at, terminal_id, merchant_id, mti, kind, batch, stan, amount_minor, currency, card, original_batch, original_stan, response, rrn, auth_code, duration_us, risk, entry_mode";

/// The message kinds that are transactions (they name a card and an amount); sign-on, echo and
/// batch messages are in the journal but not here.
pub const TRANSACTION_KINDS: [&str; 9] = [
    "BalanceInquiry",
    "Sale",
    "SaleVoid",
    "Refund",
    "PreAuthorization",
    "PreAuthorizationVoid",
    "PreAuthorizationCompletion",
    "CompletionVoid",
    "Reversal",
];

/// Whether the answer approved the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Field 39 is 00.
    Approved,
    /// Any other field 39.
    Declined,
    /// No answer was given (the message could not be answered).
    Unanswered,
}

impl TransactionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionStatus::Approved => "approved",
            TransactionStatus::Declined => "declined",
            TransactionStatus::Unanswered => "unanswered",
        }
    }

    pub fn parse(text: &str) -> Option<TransactionStatus> {
        [
            TransactionStatus::Approved,
            TransactionStatus::Declined,
            TransactionStatus::Unanswered,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    pub fn of(response: Option<&str>) -> TransactionStatus {
        match response {
            Some("00") => TransactionStatus::Approved,
            Some(_) => TransactionStatus::Declined,
            None => TransactionStatus::Unanswered,
        }
    }
}

/// A card as a masked-number pattern: its first six and last four digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardPattern {
    pub first6: String,
    pub last4: String,
}

impl CardPattern {
    /// From a masked number such as `622202******1234` (or just its first six and last four
    /// digits); `None` unless it has six leading and four trailing digits.
    pub fn parse(masked: &str) -> Option<CardPattern> {
        let bytes = masked.as_bytes();
        if bytes.len() < 10 {
            return None;
        }
        let (first6, last4) = (&masked[..6], &masked[masked.len() - 4..]);
        let digits = |text: &str| text.bytes().all(|byte| byte.is_ascii_digit());
        let middle_ok = masked[6..masked.len() - 4].bytes().all(|byte| byte == b'*');
        (digits(first6) && digits(last4) && middle_ok).then(|| CardPattern {
            first6: first6.to_owned(),
            last4: last4.to_owned(),
        })
    }

    fn like(&self) -> String {
        format!("{}%{}", self.first6, self.last4)
    }
}

/// Which transactions to read. Every `Some` narrows; `merchants` and `cards` are the caller's
/// tenant scope (an empty list means nothing at all, never everything).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransactionFilter {
    pub merchants: Option<Vec<String>>,
    pub cards: Option<Vec<CardPattern>>,
    pub terminal_id: Option<String>,
    pub card: Option<CardPattern>,
    pub status: Option<TransactionStatus>,
    /// Microseconds since the epoch, inclusive.
    pub from: Option<i64>,
    /// Microseconds since the epoch, exclusive.
    pub to: Option<i64>,
    pub min_amount_minor: Option<i64>,
    pub max_amount_minor: Option<i64>,
    /// Only rows older than this id (the cursor).
    pub before_id: Option<i64>,
    /// Only rows newer than this id, oldest first (to follow the journal, as webhooks do).
    pub after_id: Option<i64>,
    /// Only this row.
    pub id: Option<i64>,
    pub limit: i64,
}

/// A statement parameter, for either backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

/// The statement reading `filter`, newest first, with `placeholder(n)` for the n-th parameter
/// (`?n` on SQLite, `$n` on PostgreSQL).
pub(crate) fn transactions_sql(
    filter: &TransactionFilter,
    placeholder: fn(usize) -> String,
) -> (String, Vec<Param>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    let push = |param: Param, params: &mut Vec<Param>| {
        params.push(param);
        placeholder(params.len())
    };
    let kinds = TRANSACTION_KINDS
        .iter()
        .map(|kind| format!("'{kind}'"))
        .collect::<Vec<_>>()
        .join(", ");
    clauses.push(format!("kind IN ({kinds})"));
    if let Some(merchants) = &filter.merchants {
        let list = merchants
            .iter()
            .map(|merchant| push(Param::Text(merchant.clone()), &mut params))
            .collect::<Vec<_>>();
        clauses.push(if list.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!("merchant_id IN ({})", list.join(", "))
        });
    }
    if let Some(cards) = &filter.cards {
        let list = cards
            .iter()
            .map(|card| format!("card LIKE {}", push(Param::Text(card.like()), &mut params)))
            .collect::<Vec<_>>();
        clauses.push(if list.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!("({})", list.join(" OR "))
        });
    }
    if let Some(card) = &filter.card {
        clauses.push(format!(
            "card LIKE {}",
            push(Param::Text(card.like()), &mut params)
        ));
    }
    if let Some(terminal) = &filter.terminal_id {
        clauses.push(format!(
            "terminal_id = {}",
            push(Param::Text(terminal.clone()), &mut params)
        ));
    }
    match filter.status {
        Some(TransactionStatus::Approved) => clauses.push("response = '00'".to_owned()),
        Some(TransactionStatus::Declined) => clauses.push("response <> '00'".to_owned()),
        Some(TransactionStatus::Unanswered) => clauses.push("response IS NULL".to_owned()),
        None => {}
    }
    let mut compare = |column: &str, operator: &str, value: Option<i64>| {
        if let Some(value) = value {
            clauses.push(format!(
                "{column} {operator} {}",
                push(Param::Int(value), &mut params)
            ));
        }
    };
    compare("received_at", ">=", filter.from);
    compare("received_at", "<", filter.to);
    compare("amount_minor", ">=", filter.min_amount_minor);
    compare("amount_minor", "<=", filter.max_amount_minor);
    compare("id", "<", filter.before_id);
    compare("id", ">", filter.after_id);
    compare("id", "=", filter.id);
    let limit = filter.limit.clamp(1, MAX_TRANSACTIONS_PER_READ);
    let limit = push(Param::Int(limit), &mut params);
    (
        format!(
            "SELECT {TRANSACTION_COLUMNS} FROM journal WHERE {} ORDER BY id {} LIMIT {limit}",
            clauses.join(" AND "),
            if filter.after_id.is_some() {
                "ASC"
            } else {
                "DESC"
            }
        ),
        params,
    )
}

/// Digest of an API request's method, path and body, to tell a retry from a reuse of its key.
pub fn request_digest(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().into()
}

/// What a found idempotency record means for a request with `digest`.
pub(crate) fn idempotency_state(
    digest: &[u8; 32],
    stored: &[u8],
    status: Option<i64>,
    body: Option<Vec<u8>>,
) -> IdempotencyState {
    if stored != digest.as_slice() {
        return IdempotencyState::Mismatch;
    }
    match (status.and_then(|status| u16::try_from(status).ok()), body) {
        (Some(status), body) => IdempotencyState::Replay {
            status,
            body: body.unwrap_or_default(),
        },
        (None, _) => IdempotencyState::InProgress,
    }
}

impl Store {
    /// Creates users; a user whose id or user name exists already is left as it is. Returns
    /// how many were created.
    pub async fn put_users(&self, users: Vec<NewUser>) -> Result<usize, StoreError> {
        match self {
            Store::Sqlite(store) => store.put_users(users).await,
            Store::Postgres(store) => store.put_users(users).await,
        }
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.user_where("id", id).await
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.user_where("username", username).await
    }

    async fn user_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<User>, StoreError> {
        match self {
            Store::Sqlite(store) => store.user_where(column, value.to_owned()).await,
            Store::Postgres(store) => store.user_where(column, value).await,
        }
    }

    /// Users acting for `tenant`, by user name.
    pub async fn users_of(&self, tenant: &Tenant) -> Result<Vec<User>, StoreError> {
        match self {
            Store::Sqlite(store) => store.users_of(tenant.clone()).await,
            Store::Postgres(store) => store.users_of(tenant).await,
        }
    }

    /// Checks a password at `now` (unix seconds): a locked account is refused whatever the
    /// password, [`MAX_LOGIN_FAILURES`] failures in a row lock it for [`LOCKOUT_SECONDS`], a
    /// success clears the count. The hash is checked off the async threads.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        now: i64,
    ) -> Result<LoginOutcome, StoreError> {
        let user = self.user_by_username(username).await?;
        if let Some(until) = user
            .as_ref()
            .and_then(|user| user.locked_until)
            .filter(|until| *until > now)
        {
            return Ok(LoginOutcome::Locked { until });
        }
        let hash = user.as_ref().map_or_else(
            || decoy_hash().to_owned(),
            |user| user.password_hash.clone(),
        );
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .map_err(|error| StoreError::Write(error.to_string()))?;
        let Some(user) = user else {
            return Ok(LoginOutcome::Refused);
        };
        let updated = match self {
            Store::Sqlite(store) => store.record_login(user.id.clone(), matches, now).await?,
            Store::Postgres(store) => store.record_login(&user.id, matches, now).await?,
        };
        Ok(match (matches, updated) {
            (true, Some(user)) => LoginOutcome::Accepted(user),
            (
                _,
                Some(User {
                    locked_until: Some(until),
                    ..
                }),
            ) if until > now => LoginOutcome::Locked { until },
            _ => LoginOutcome::Refused,
        })
    }

    /// Counts a failed sign-in step that is not the password (a wrong TOTP code) towards the
    /// lockout; the user after.
    pub async fn count_login_failure(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        match self {
            Store::Sqlite(store) => store.record_login(user_id.to_owned(), false, now).await,
            Store::Postgres(store) => store.record_login(user_id, false, now).await,
        }
    }

    /// Starts a TOTP enrolment of a user who has none confirmed: records `nonce`, the new
    /// enrolment's id. `false` when the user has a confirmed one (it is kept).
    pub async fn start_totp(&self, user_id: &str, nonce: &str) -> Result<bool, StoreError> {
        self.totp_update(
            "UPDATE users SET totp_nonce = {2}, totp_last_step = NULL WHERE id = {1} AND totp_enabled = 0",
            user_id,
            TotpValue::Text(nonce.to_owned()),
        )
        .await
    }

    /// Accepts the code of time step `step` for this user: `false` when a code of this step or
    /// a later one was accepted before (a replay). Confirms a pending enrolment.
    pub async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        self.totp_update(
            "UPDATE users SET totp_last_step = {2}, totp_enabled = 1 WHERE id = {1} AND totp_nonce IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < {2})",
            user_id,
            TotpValue::Int(step),
        )
        .await
    }

    async fn totp_update(
        &self,
        template: &str,
        user_id: &str,
        value: TotpValue,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                let sql = template.replace("{1}", "?1").replace("{2}", "?2");
                store.totp_update(sql, user_id.to_owned(), value).await
            }
            Store::Postgres(store) => {
                let sql = template.replace("{1}", "$1").replace("{2}", "$2");
                store.totp_update(&sql, user_id, value).await
            }
        }
    }

    /// Stores a key issued with [`new_api_key`].
    pub async fn put_api_key(&self, key: ApiKey, digest: [u8; 32]) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.put_api_key(key, digest).await,
            Store::Postgres(store) => store.put_api_key(key, digest).await,
        }
    }

    /// The user a presented key belongs to, unless the key is unknown, wrong or revoked.
    pub async fn api_key_user(&self, presented: &str) -> Result<Option<User>, StoreError> {
        let Some(id) = api_key_id(presented) else {
            return Ok(None);
        };
        let found = match self {
            Store::Sqlite(store) => store.api_key(id.to_owned()).await?,
            Store::Postgres(store) => store.api_key(id).await?,
        };
        let Some((key, digest)) = found else {
            return Ok(None);
        };
        use subtle::ConstantTimeEq;
        let matches: bool = api_key_digest(presented).ct_eq(&digest).into();
        if !matches || key.revoked_at.is_some() {
            return Ok(None);
        }
        self.user(&key.user_id).await
    }

    /// A user's keys, newest first.
    pub async fn api_keys_of(&self, user_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        match self {
            Store::Sqlite(store) => store.api_keys_of(user_id.to_owned()).await,
            Store::Postgres(store) => store.api_keys_of(user_id).await,
        }
    }

    /// Revokes a user's key; `false` when the user has no such key.
    pub async fn revoke_api_key(
        &self,
        user_id: &str,
        key_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .revoke_api_key(user_id.to_owned(), key_id.to_owned(), now)
                    .await
            }
            Store::Postgres(store) => store.revoke_api_key(user_id, key_id, now).await,
        }
    }

    /// Claims `(scope, key)` for a request with `digest` at `now` (unix seconds). A record
    /// older than [`IDEMPOTENCY_TTL_SECONDS`] is forgotten first.
    pub async fn begin_idempotent(
        &self,
        scope: &str,
        key: &str,
        digest: [u8; 32],
        now: i64,
    ) -> Result<IdempotencyState, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .begin_idempotent(scope.to_owned(), key.to_owned(), digest, now)
                    .await
            }
            Store::Postgres(store) => store.begin_idempotent(scope, key, digest, now).await,
        }
    }

    /// Records the answer of a claimed request, for its retries.
    pub async fn finish_idempotent(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .finish_idempotent(scope.to_owned(), key.to_owned(), status, body)
                    .await
            }
            Store::Postgres(store) => store.finish_idempotent(scope, key, status, body).await,
        }
    }

    /// Releases a claimed request that failed without an answer worth repeating (a 5xx), so
    /// that a retry runs it again.
    pub async fn abandon_idempotent(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .abandon_idempotent(scope.to_owned(), key.to_owned())
                    .await
            }
            Store::Postgres(store) => store.abandon_idempotent(scope, key).await,
        }
    }

    /// Records referrals (idempotent).
    pub async fn put_referrals(&self, referrals: Vec<Referral>) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.put_referrals(referrals).await,
            Store::Postgres(store) => store.put_referrals(referrals).await,
        }
    }

    /// The merchants a partner referred, by id.
    pub async fn referred_merchants(&self, partner_id: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Sqlite(store) => store.referred_merchants(partner_id.to_owned()).await,
            Store::Postgres(store) => store.referred_merchants(partner_id).await,
        }
    }

    /// Transactions matching `filter`, newest first, at most `filter.limit`
    /// (and [`MAX_TRANSACTIONS_PER_READ`]).
    pub async fn transactions(
        &self,
        filter: &TransactionFilter,
    ) -> Result<Vec<TransactionRecord>, StoreError> {
        match self {
            Store::Sqlite(store) => store.transactions(filter).await,
            Store::Postgres(store) => store.transactions(filter).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery!"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert_eq!(
            hash_password("eleven char"),
            Err(AccountError::PasswordTooShort)
        );
        assert!(hash_password("twelve chars").is_ok());
    }

    #[test]
    fn roles_and_tenants_must_agree() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        let wrong = NewUser::new(
            "u1",
            "someone",
            "Someone",
            Role::Cashier,
            Tenant::Cardholder("CH001".into()),
            "a long enough password",
            0,
        );
        assert_eq!(
            wrong,
            Err(AccountError::WrongTenant {
                role: Role::Cashier,
                found: TenantKind::Cardholder
            })
        );
        let bad_name = NewUser::new(
            "u1",
            "a b",
            "Someone",
            Role::Cashier,
            Tenant::Merchant("m".into()),
            "a long enough password",
            0,
        );
        assert_eq!(bad_name, Err(AccountError::BadUsername));
    }

    #[test]
    fn api_keys_have_an_id_part_and_a_digest() {
        let (issued, digest) = new_api_key("u1", "till", 7);
        assert_eq!(api_key_id(&issued.secret), Some(issued.key.id.as_str()));
        assert_eq!(api_key_digest(&issued.secret), digest);
        assert!(!format!("{issued:?}").contains(&issued.secret));
        assert_eq!(api_key_id("ek_short_secret"), None);
    }

    #[test]
    fn card_patterns_parse_masked_numbers() {
        let pattern = CardPattern::parse("622202******1234").unwrap();
        assert_eq!(pattern.like(), "622202%1234");
        assert_eq!(
            CardPattern::parse("6222021234").unwrap().like(),
            "622202%1234"
        );
        assert_eq!(CardPattern::parse("6222021234567890"), None);
        assert_eq!(CardPattern::parse("62220x******1234"), None);
    }

    #[test]
    fn an_empty_scope_reads_nothing() {
        let filter = TransactionFilter {
            merchants: Some(Vec::new()),
            limit: 10,
            ..TransactionFilter::default()
        };
        let (sql, params) = transactions_sql(&filter, |n| format!("?{n}"));
        assert!(sql.contains("1 = 0"), "{sql}");
        assert_eq!(params, vec![Param::Int(10)]);
    }
}
