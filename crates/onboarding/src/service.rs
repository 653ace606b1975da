//! The journey of an application: drafts, submission with its checks, the operators' review
//! with maker–checker, provisioning on approval, terminal statuses and activation codes.
//!
//! Every change of an application is one conditional update of the version its writer read,
//! so two operators (or an operator and the applicant) never both win. Approval first records
//! the merchant and terminal ids it allocated (status `approving`), then creates the ledger
//! account, directory records, keys, terminal details, the merchant administrator and the
//! invitation — each idempotent by its id — and only then says `approved`; an approval
//! interrupted half-way is finished by the next one, with the same ids.

use crate::application::{self, Application, Checked, Form, Status};
use crate::checks::{self, Assessment};
use crate::validate::FieldError;
use api::access::Principal;
use hsm::{Hsm, KeySpec};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use store::accounts::{NewUser, Referral, Role, Tenant};
use store::directory::{Merchant, StoredKey, Terminal};
use store::onboarding::{Cell, Kind, Step};
use store::{Clock, Store, StoreError};

/// How long an activation code may be used, by default (a day: the terminal is set up the
/// day it arrives).
pub const ACTIVATION_CODE_SECONDS: i64 = 24 * 60 * 60;
/// How long a new merchant administrator's invitation is good for.
pub const INVITATION_SECONDS: i64 = 7 * 24 * 60 * 60;
/// The directory user that stands for automatic decisions.
pub const SYSTEM: &str = "system";

/// Why a step of the journey was refused.
#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error("some fields are not valid")]
    Invalid(Vec<FieldError>),
    #[error("no such application, or the resume token does not match it")]
    UnknownApplication,
    #[error("the application is {status} and cannot be changed by the applicant now", status = .0.as_str())]
    NotEditable(Status),
    #[error("the application is {status}, so this decision does not apply to it", status = .0.as_str())]
    WrongStatus(Status),
    #[error("the application changed while you were looking at it; read it again and retry")]
    Conflict,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(
        "the same person cannot both review and approve an application (maker–checker): another operator must approve it"
    )]
    SamePerson,
    #[error("a reason is required")]
    ReasonRequired,
    #[error("no such terminal")]
    UnknownTerminal,
    #[error("the terminal is {0} and cannot do this")]
    TerminalStatus(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the activation code is not known; check it for typing mistakes")]
    UnknownCode,
    #[error("the activation code was used already; ask the operator for a new one")]
    CodeUsed,
    #[error("the activation code expired; ask the operator for a new one")]
    CodeExpired,
    #[error("the invitation is unknown, used or expired")]
    BadInvitation,
    #[error("{reason}; try again in {minutes} minutes", minutes = (.retry_after_seconds + 59) / 60)]
    TooMany {
        reason: &'static str,
        retry_after_seconds: i64,
    },
    #[error("the HSM refused: {0}")]
    Hsm(#[from] hsm::HsmError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Told when a terminal starts or stops being allowed to transact, so the host acts on its
/// next message (a lost terminal is declined at once).
pub trait HostDirectory: Send + Sync {
    fn terminal_changed(&self, terminal: &Terminal, merchant: &Merchant);

    /// A stored key was replaced (a forced key change): forget any cached copy.
    fn key_changed(&self, _name: &str) {}

    /// A terminal's parameter set changed (or is told at start): the host asks the terminal to
    /// download it at its next sign-on when the terminal holds another version.
    fn parameters_changed(
        &self,
        _terminal_id: &str,
        _parameters: &acquirer::parameters::TerminalParameters,
    ) {
    }
}

/// A host directory that nobody listens to (tests of the API alone).
#[derive(Debug, Default)]
pub struct NoHost;

impl HostDirectory for NoHost {
    fn terminal_changed(&self, _terminal: &Terminal, _merchant: &Merchant) {}
}

/// The platform's settings for onboarding.
#[derive(Clone, Debug)]
pub struct Settings {
    pub acquirer: ledger::InstitutionId,
    /// The ISO 8583 address terminals are told to use.
    pub host_address: String,
    /// Where uploaded documents are kept (under the data directory, never the web root).
    pub documents_dir: std::path::PathBuf,
    pub activation_code_seconds: i64,
    /// Contactless payments up to this amount need no cardholder verification.
    pub cvm_limit: String,
}

/// The onboarding service.
#[derive(Clone)]
pub struct Onboarding {
    pub store: Arc<Store>,
    pub hsm: Arc<dyn Hsm>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub host: Arc<dyn HostDirectory>,
    /// Limits on public applications, per client address and per mobile number.
    pub limits: Arc<crate::limits::ApplicationLimits>,
}

impl std::fmt::Debug for Onboarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onboarding")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A draft or application as its applicant gets it back: the tracking number and, on first
/// save, the resume token (shown once).
#[derive(Clone, Debug)]
pub struct Saved {
    pub application: Application,
    pub resume_token: Option<String>,
}

/// An operator's decision on a submitted application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The maker's step: recommend approval.
    Recommend,
    /// The checker's step: approve (a different person than the maker).
    Approve,
    Reject {
        reason: String,
    },
    MoreInfo {
        note: String,
    },
}

/// What an approval created, for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioned {
    pub merchant_id: String,
    pub terminal_ids: Vec<String>,
    pub admin_username: String,
    /// The invitation token for the merchant administrator (shown to the operator once, to
    /// pass on; only its digest is stored). `None` when the approval had been finished before.
    pub invitation: Option<String>,
}

/// SHA-256 of a secret, in hex: how tokens and codes are stored.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A random token of `chars` characters from an alphabet without look-alikes (no 0/O, 1/I/L).
pub fn random_token(chars: usize) -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..chars)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

impl Onboarding {
    pub fn now(&self) -> i64 {
        i64::try_from(self.clock.now() / 1_000_000_000).unwrap_or(i64::MAX)
    }

    /// The application `id` if `token` is its resume token.
    pub async fn for_applicant(
        &self,
        id: &str,
        token: &str,
    ) -> Result<Application, OnboardingError> {
        let application = application::load(&self.store, id)
            .await?
            .ok_or(OnboardingError::UnknownApplication)?;
        let presented = digest(token.trim());
        if !bool::from(subtle_eq(
            presented.as_bytes(),
            application.resume_digest.as_bytes(),
        )) {
            return Err(OnboardingError::UnknownApplication);
        }
        Ok(application)
    }

    /// The application `id` as a partner or operator may see it.
    pub async fn for_principal(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Application, OnboardingError> {
        let application = application::load(&self.store, id)
            .await?
            .ok_or(OnboardingError::UnknownApplication)?;
        match (&principal.user.tenant, principal.user.role) {
            (Tenant::Institution(_), Role::PlatformOperator) => Ok(application),
            (Tenant::Partner(partner), _) if application.partner_id.as_ref() == Some(partner) => {
                Ok(application)
            }
            _ => Err(OnboardingError::UnknownApplication),
        }
    }

    /// Counts a new public application from client `address` (unknown: not limited, as
    /// in-process callers are); refused when the address sent too many this hour.
    pub fn admit_new_application(
        &self,
        address: Option<std::net::IpAddr>,
    ) -> Result<(), OnboardingError> {
        let Some(address) = address else {
            return Ok(());
        };
        self.limits
            .new_application(address, self.now())
            .map_err(|refused| OnboardingError::TooMany {
                reason: "too many applications were started from this network address",
                retry_after_seconds: refused.retry_after_seconds,
            })
    }

    /// Saves a new draft (by the applicant, or by `partner` on a merchant's behalf).
    pub async fn new_draft(
        &self,
        form: &Form,
        partner: Option<&str>,
    ) -> Result<Saved, OnboardingError> {
        let now = self.now();
        let token = random_token(24);
        let mut application = Application {
            id: String::new(),
            resume_digest: digest(&token),
            status: Status::Draft,
            partner_id: partner.map(str::to_owned),
            form: form.for_storage(),
            card_fingerprint: None,
            id_fingerprint: None,
            risk: None,
            reviewed_by: None,
            approved_by: None,
            note: None,
            merchant_id: None,
            terminal_ids: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        application.card_fingerprint = self.fingerprint_of(&form.settlement_card).await?;
        application.id_fingerprint = self.id_fingerprint_of(&form.id_number).await?;
        // A tracking number is 10 characters after "AP": 50 bits; a collision is retried.
        for _ in 0..4 {
            application.id = format!("AP{}", random_token(10));
            if self
                .store
                .onboarding_execute(vec![application.insert()?])
                .await?
            {
                return Ok(Saved {
                    application,
                    resume_token: Some(token),
                });
            }
        }
        Err(OnboardingError::Conflict)
    }

    /// The keyed fingerprint of a newly typed valid resident ID number (`None` for anything
    /// else): HMAC-SHA-256 in the HSM under the platform's fingerprint key, over `0` and the
    /// 17 digits before the check character (which they determine). No card number starts
    /// with 0, so an ID's fingerprint is never a card's. Only the fingerprint and the masked
    /// number are stored: the duplicate check needs no more.
    pub(crate) async fn id_fingerprint_of(
        &self,
        typed: &str,
    ) -> Result<Option<String>, OnboardingError> {
        let Ok(id) = crate::validate::resident_id(typed) else {
            return Ok(None);
        };
        let body = zeroize::Zeroizing::new(format!("0{}", &id[..17]));
        let digits = paycrypto::Pan::new(&body)
            .map_err(|_| OnboardingError::BadRequest("the ID number is not valid".into()))?;
        let fingerprint = self
            .hsm
            .pan_fingerprint(&self.fingerprint_key().await?, &digits)?;
        Ok(Some(hex::encode(fingerprint)))
    }

    /// Replaces the resident ID numbers stored in clear before migration 26 (the
    /// `id_fingerprint` column then held the number itself, and the form its full copy) by
    /// their keyed fingerprint and masked form. `easypos up` runs it at every start; a row
    /// already protected is left alone. The number of rows protected.
    pub async fn protect_id_numbers(&self) -> Result<usize, OnboardingError> {
        let rows = self
            .store
            .onboarding_query(
                "SELECT id, id_fingerprint, form, version FROM applications WHERE id_fingerprint IS NULL OR length(id_fingerprint) <> 64",
                Vec::new(),
                &[Kind::Text, Kind::Text, Kind::Text, Kind::Int],
            )
            .await?;
        let mut protected = 0;
        for row in &rows {
            let (Some(id), Some(form), Some(version)) =
                (row[0].as_text(), row[2].as_text(), row[3].as_int())
            else {
                continue;
            };
            let Ok(form) = serde_json::from_str::<Form>(form) else {
                continue;
            };
            let clear = row[1].as_text();
            if clear.is_none() && application::is_masked_id(&form.id_number) {
                continue;
            }
            let fingerprint = self
                .id_fingerprint_of(clear.unwrap_or(&form.id_number))
                .await?;
            let stored = serde_json::to_string(&form.for_storage())
                .map_err(|error| StoreError::Write(format!("application form: {error}")))?;
            self.store
                .onboarding_execute(vec![Step::new(
                    "UPDATE applications SET id_fingerprint = $2, form = $3 WHERE id = $1 AND version = $4",
                    vec![Cell::text(id), Cell::Text(fingerprint), Cell::text(stored), Cell::int(version)],
                )])
                .await?;
            protected += 1;
        }
        if protected > 0 {
            tracing::info!(
                protected,
                "resident ID numbers stored in clear replaced by fingerprints"
            );
        }
        Ok(protected)
    }

    async fn fingerprint_key(&self) -> Result<hsm::KeyToken, OnboardingError> {
        self.store
            .keys()
            .await?
            .into_iter()
            .find(|key| key.name == demo::PAN_FINGERPRINT_KEY)
            .map(|key| hsm::KeyToken::new(key.token))
            .ok_or_else(|| {
                OnboardingError::BadRequest(
                    "the fingerprint key is missing; start the platform once to create it".into(),
                )
            })
    }

    /// The fingerprint of a newly typed valid card number (`None` for anything else).
    async fn fingerprint_of(&self, typed: &str) -> Result<Option<String>, OnboardingError> {
        let Ok(digits) = crate::validate::settlement_card(typed) else {
            return Ok(None);
        };
        let Some(key) = self
            .store
            .keys()
            .await?
            .into_iter()
            .find(|key| key.name == demo::PAN_FINGERPRINT_KEY)
        else {
            return Err(OnboardingError::BadRequest(
                "the card fingerprint key is missing; start the platform once to create it".into(),
            ));
        };
        let pan = paycrypto::Pan::new(&digits)
            .map_err(|_| OnboardingError::BadRequest("the card number is not valid".into()))?;
        let fingerprint = self
            .hsm
            .pan_fingerprint(&hsm::KeyToken::new(key.token), &pan)?;
        Ok(Some(hex::encode(fingerprint)))
    }

    /// Changes the form of an application still editable by its applicant.
    pub async fn save(
        &self,
        mut application: Application,
        form: &Form,
    ) -> Result<Saved, OnboardingError> {
        if !application.status.editable() {
            return Err(OnboardingError::NotEditable(application.status));
        }
        if form.settlement_card != application.form.settlement_card {
            application.card_fingerprint = self.fingerprint_of(&form.settlement_card).await?;
        }
        if form.id_number != application.form.id_number {
            application.id_fingerprint = self.id_fingerprint_of(&form.id_number).await?;
        }
        application.form = form.for_storage();
        self.write(&mut application).await?;
        Ok(Saved {
            application,
            resume_token: None,
        })
    }

    async fn write(&self, application: &mut Application) -> Result<(), OnboardingError> {
        application.version += 1;
        application.updated_at = self.now();
        if self
            .store
            .onboarding_execute(vec![application.update()?])
            .await?
        {
            Ok(())
        } else {
            Err(OnboardingError::Conflict)
        }
    }

    /// Submits (or resubmits after a request for more information): every field is checked,
    /// then the automatic checks score it; a low score is approved at once.
    pub async fn submit(
        &self,
        mut application: Application,
        form: &Form,
    ) -> Result<(Application, Option<Provisioned>), OnboardingError> {
        if !application.status.editable() {
            return Err(OnboardingError::NotEditable(application.status));
        }
        let kept = application
            .card_fingerprint
            .is_some()
            .then_some(application.form.settlement_card.as_str());
        let kept_id = application
            .id_fingerprint
            .is_some()
            .then_some(application.form.id_number.as_str());
        let checked = form
            .check(kept, kept_id)
            .map_err(OnboardingError::Invalid)?;
        if application.partner_id.is_none() {
            self.limits
                .submission(&checked.mobile, self.now())
                .map_err(|refused| OnboardingError::TooMany {
                    reason: "too many applications were submitted with this mobile number today",
                    retry_after_seconds: refused.retry_after_seconds,
                })?;
        }
        if checked.settlement_card.is_some() {
            application.card_fingerprint = self.fingerprint_of(&form.settlement_card).await?;
        }
        if checked.id_number.is_some() {
            application.id_fingerprint = self.id_fingerprint_of(&form.id_number).await?;
        }
        application.form = form.for_storage();
        let assessment = self.assess(&application, &checked).await?;
        let automatic = !assessment.needs_review();
        application.risk = Some(assessment);
        application.status = Status::Submitted;
        application.note = None;
        application.reviewed_by = None;
        self.write(&mut application).await?;
        tracing::info!(application = %application.id, score = application.risk.as_ref().map_or(0, |r| r.score), "application submitted");
        if automatic {
            application.reviewed_by = Some(SYSTEM.to_owned());
            let provisioned = self.approve(application, SYSTEM).await?;
            let application = application::load(&self.store, &provisioned.0.id)
                .await?
                .ok_or(OnboardingError::UnknownApplication)?;
            return Ok((application, Some(provisioned.1)));
        }
        Ok((application, None))
    }

    async fn assess(
        &self,
        application: &Application,
        checked: &Checked,
    ) -> Result<Assessment, OnboardingError> {
        let (same_credit_code, same_id_number) = application::duplicates(
            &self.store,
            &application.id,
            &checked.credit_code,
            application.id_fingerprint.as_deref().unwrap_or_default(),
        )
        .await?;
        let yuan = checked.monthly_volume.minor() / 100;
        Ok(checks::assess(
            checked.category,
            yuan,
            checked.terminal_count,
            &checks::Context {
                same_credit_code,
                same_id_number,
                partner_submitted: application.partner_id.is_some(),
            },
        ))
    }

    /// An operator's decision. Only platform operators decide; the approver must not be the
    /// reviewer who recommended it.
    pub async fn decide(
        &self,
        principal: &Principal,
        id: &str,
        decision: Decision,
    ) -> Result<(Application, Option<Provisioned>), OnboardingError> {
        if principal.user.role != Role::PlatformOperator {
            return Err(OnboardingError::Forbidden(
                "only the acquirer's operators review applications",
            ));
        }
        let mut application = application::load(&self.store, id)
            .await?
            .ok_or(OnboardingError::UnknownApplication)?;
        let me = principal.user.id.clone();
        match decision {
            Decision::Recommend => {
                if application.status != Status::Submitted {
                    return Err(OnboardingError::WrongStatus(application.status));
                }
                application.reviewed_by = Some(me);
                self.write(&mut application).await?;
                Ok((application, None))
            }
            Decision::Approve => {
                match application.status {
                    Status::Submitted => {}
                    // An interrupted approval is finished by its own checker.
                    Status::Approving
                        if application.approved_by.as_deref() == Some(me.as_str()) => {}
                    status => return Err(OnboardingError::WrongStatus(status)),
                }
                match application.reviewed_by.as_deref() {
                    None => {
                        return Err(OnboardingError::Forbidden(
                            "an application is first reviewed (recommended for approval) by one operator, then approved by another",
                        ));
                    }
                    Some(reviewer) if reviewer == me => return Err(OnboardingError::SamePerson),
                    Some(_) => {}
                }
                let (application, provisioned) = self.approve(application, &me).await?;
                Ok((application, Some(provisioned)))
            }
            Decision::Reject { reason } | Decision::MoreInfo { note: reason }
                if reason.trim().is_empty() =>
            {
                Err(OnboardingError::ReasonRequired)
            }
            Decision::Reject { reason } => {
                if application.status != Status::Submitted && application.status != Status::MoreInfo
                {
                    return Err(OnboardingError::WrongStatus(application.status));
                }
                application.status = Status::Rejected;
                application.note = Some(reason.trim().chars().take(1000).collect());
                application.approved_by = Some(me);
                self.write(&mut application).await?;
                Ok((application, None))
            }
            Decision::MoreInfo { note } => {
                if application.status != Status::Submitted {
                    return Err(OnboardingError::WrongStatus(application.status));
                }
                application.status = Status::MoreInfo;
                application.note = Some(note.trim().chars().take(1000).collect());
                application.reviewed_by = None;
                self.write(&mut application).await?;
                Ok((application, None))
            }
        }
    }

    /// Allocates the next id of sequence `name`, starting at `first`.
    async fn next(&self, name: &str, first: i64) -> Result<i64, OnboardingError> {
        let rows = self
            .store
            .onboarding_write_returning(
                "INSERT INTO sequences (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1 RETURNING value",
                vec![Cell::text(name), Cell::int(first)],
                &[Kind::Int],
            )
            .await?;
        rows.first().and_then(|row| row[0].as_int()).ok_or_else(|| {
            OnboardingError::Store(StoreError::Write("sequence returned nothing".into()))
        })
    }

    /// Allocates a merchant id (15 digits: 898, the city's area code, the MCC, a sequence) and
    /// terminal ids (8 digits from 50000001), skipping ids the directory has already.
    async fn allocate(
        &self,
        application: &Application,
        count: u32,
    ) -> Result<(String, Vec<String>), OnboardingError> {
        let directory = self.store.load_directory().await?;
        let area = area_code(&application.form.city);
        let mcc = application.form.mcc.trim();
        let merchant_id = loop {
            let sequence = self.next(&format!("mid/{area}{mcc}"), 101).await?;
            let id = format!("898{area}{mcc}{:04}", sequence % 10_000);
            if !directory.merchants.iter().any(|merchant| merchant.id == id) {
                break id;
            }
        };
        let mut terminal_ids = Vec::new();
        while terminal_ids.len() < count as usize {
            let id = format!("{:08}", self.next("tid", 50_000_001).await?);
            if !directory.terminals.iter().any(|terminal| terminal.id == id) {
                terminal_ids.push(id);
            }
        }
        Ok((merchant_id, terminal_ids))
    }

    /// Approves and provisions: see the module's overview for the order of the steps.
    async fn approve(
        &self,
        mut application: Application,
        approver: &str,
    ) -> Result<(Application, Provisioned), OnboardingError> {
        let form = application.form.clone();
        let count = crate::validate::terminal_count(&form.terminal_count)
            .map_err(|e| OnboardingError::Invalid(vec![e]))?;
        if application.status != Status::Approving {
            let (merchant_id, terminal_ids) = self.allocate(&application, count).await?;
            application.status = Status::Approving;
            application.approved_by = Some(approver.to_owned());
            application.merchant_id = Some(merchant_id);
            application.terminal_ids = terminal_ids;
            self.write(&mut application).await?;
        }
        let merchant_id = application
            .merchant_id
            .clone()
            .ok_or(OnboardingError::WrongStatus(application.status))?;
        let settlement_account = demo::account_id(&format!("merchant/{merchant_id}"));
        for result in self
            .store
            .create_accounts(vec![ledger::AccountSpec::new(
                settlement_account,
                self.settings.acquirer,
                money::Currency::CNY,
                demo::CODE_MERCHANT_PAYABLE,
            )])
            .await?
        {
            result.map_err(|error| {
                OnboardingError::BadRequest(format!("the merchant's account: {error}"))
            })?;
        }
        let merchant = Merchant {
            id: merchant_id.clone(),
            acquirer: self.settings.acquirer,
            name: form.business_name.trim().to_owned(),
            name_zh: form.business_name.trim().to_owned(),
            city: form.city.trim().to_owned(),
            mcc: form.mcc.trim().to_owned(),
            settlement_account,
        };
        let terminals: Vec<Terminal> = application
            .terminal_ids
            .iter()
            .map(|id| Terminal {
                id: id.clone(),
                merchant_id: merchant_id.clone(),
                status: "inactive".into(),
            })
            .collect();
        self.store
            .put_directory(store::directory::Directory {
                merchants: vec![merchant.clone()],
                terminals: terminals.clone(),
                ..Default::default()
            })
            .await?;
        // Each terminal's master key, generated in the HSM; kept only as a token.
        let existing: Vec<String> = self
            .store
            .keys()
            .await?
            .into_iter()
            .map(|key| key.name)
            .collect();
        let mut keys = Vec::new();
        for terminal in &terminals {
            let name = demo::terminal_master_key_name(&terminal.id);
            if !existing.contains(&name) {
                let token = self.hsm.generate_key(&KeySpec::terminal_master_key())?;
                keys.push(StoredKey {
                    name,
                    check_value: paycrypto::to_hex(&self.hsm.key_check_value(&token)?),
                    token: token.as_str().to_owned(),
                });
            }
        }
        self.store.put_keys(keys).await?;
        self.store
            .put_terminal_sessions(
                terminals
                    .iter()
                    .map(|t| demo::terminal_session(&t.id))
                    .collect(),
            )
            .await?;
        let kind = form.terminal_kind.trim().to_owned();
        let now = self.now();
        let details: Vec<Step> = terminals
            .iter()
            .map(|terminal| {
                Step::new(
                    "INSERT INTO terminal_details (terminal_id, model, serial, kind, location, status, updated_at) VALUES ($1, $2, $3, $4, $5, 'provisioned', $6) ON CONFLICT (terminal_id) DO NOTHING",
                    vec![
                        Cell::text(&terminal.id),
                        Cell::text(crate::terminals::model_of(&kind)),
                        Cell::text(format!("EP{}", terminal.id)),
                        Cell::text(&kind),
                        Cell::text(form.address.trim()),
                        Cell::int(now),
                    ],
                )
            })
            .collect();
        self.store.onboarding_execute(details).await?;
        if let Some(partner) = &application.partner_id {
            self.store
                .put_referrals(vec![Referral {
                    partner_id: partner.clone(),
                    merchant_id: merchant_id.clone(),
                }])
                .await?;
        }
        // The merchant's administrator, with a random password nobody knows: they choose
        // their own through the invitation.
        let admin_id = format!("U-{merchant_id}-admin");
        let admin_username = format!("m{merchant_id}.admin");
        let created = self
            .store
            .put_users(vec![
                NewUser::new(
                    &admin_id,
                    &admin_username,
                    form.legal_name.trim(),
                    Role::MerchantAdmin,
                    Tenant::Merchant(merchant_id.clone()),
                    &random_token(32),
                    now,
                )
                .map_err(|error| OnboardingError::BadRequest(error.to_string()))?,
            ])
            .await?;
        let invitation = if created == 1 {
            let token = random_token(32);
            self.store
                .onboarding_execute(vec![Step::new(
                    "INSERT INTO invitations (digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                    vec![Cell::text(digest(&token)), Cell::text(&admin_id), Cell::int(now), Cell::int(now + INVITATION_SECONDS)],
                )])
                .await?;
            // The token is the operator's to pass on; the log says only that it exists.
            tracing::info!(merchant = %merchant_id, user = %admin_username, "merchant administrator invited");
            Some(token)
        } else {
            None
        };
        application.status = Status::Approved;
        self.write(&mut application).await?;
        tracing::info!(application = %application.id, merchant = %merchant_id, approver, "application approved");
        let provisioned = Provisioned {
            merchant_id,
            terminal_ids: application.terminal_ids.clone(),
            admin_username,
            invitation,
        };
        Ok((application, provisioned))
    }

    /// A new merchant administrator chooses their password with the invitation token.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: &str,
    ) -> Result<String, OnboardingError> {
        let rows = self
            .store
            .onboarding_query(
                "SELECT user_id FROM invitations WHERE digest = $1 AND used_at IS NULL AND expires_at > $2",
                vec![Cell::text(digest(token.trim())), Cell::int(self.now())],
                &[Kind::Text],
            )
            .await?;
        let user_id = rows
            .first()
            .and_then(|row| row[0].as_text())
            .map(str::to_owned)
            .ok_or(OnboardingError::BadInvitation)?;
        let hash = store::accounts::hash_password(password)
            .map_err(|error| OnboardingError::BadRequest(error.to_string()))?;
        let user = self
            .store
            .user(&user_id)
            .await?
            .ok_or(OnboardingError::BadInvitation)?;
        let done = self
            .store
            .onboarding_execute(vec![
                Step::new(
                    "UPDATE invitations SET used_at = $2 WHERE digest = $1 AND used_at IS NULL AND expires_at > $2",
                    vec![Cell::text(digest(token.trim())), Cell::int(self.now())],
                )
                .expect_one(),
                Step::new(
                    "UPDATE users SET password_hash = $2 WHERE id = $1",
                    vec![Cell::text(&user_id), Cell::text(hash)],
                )
                .expect_one(),
            ])
            .await?;
        if !done {
            return Err(OnboardingError::BadInvitation);
        }
        Ok(user.username)
    }
}

/// Constant-time comparison of two digests.
fn subtle_eq(a: &[u8], b: &[u8]) -> subtle::Choice {
    use subtle::ConstantTimeEq;
    if a.len() != b.len() {
        return subtle::Choice::from(0);
    }
    a.ct_eq(b)
}

/// The four-digit area code of a city in merchant ids (China UnionPay's region codes for the
/// large cities; 9990 for the rest).
pub fn area_code(city: &str) -> &'static str {
    let city = city.trim().to_lowercase();
    match city.as_str() {
        "shanghai" | "上海" | "上海市" => "3100",
        "beijing" | "北京" | "北京市" => "1100",
        "guangzhou" | "广州" | "广州市" => "5810",
        "shenzhen" | "深圳" | "深圳市" => "5840",
        "hangzhou" | "杭州" | "杭州市" => "3310",
        "chengdu" | "成都" | "成都市" => "6510",
        _ => "9990",
    }
}
