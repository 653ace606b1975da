//! An application as typed ([`Form`]), as checked ([`Checked`]) and as stored
//! ([`Application`]), with its statuses and the statements that keep it.

use crate::validate::{self, FieldError};
use money::Amount;
use store::onboarding::{Cell, Kind, Step};
use store::{Store, StoreError};

/// The form's fields as typed. A draft may hold anything; submitting checks everything. The
/// settlement card number is never kept: a stored form holds it masked (first six and last
/// four digits), and that masked text stands for the number already given.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Form {
    pub business_name: String,
    pub credit_code: String,
    pub legal_name: String,
    pub id_number: String,
    pub mobile: String,
    pub address: String,
    pub city: String,
    pub mcc: String,
    pub settlement_card: String,
    pub bank: String,
    pub monthly_volume: String,
    pub terminal_count: String,
    pub terminal_kind: String,
    pub consent: String,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Form")
            .field("business_name", &self.business_name)
            .field("credit_code", &self.credit_code)
            .field("mcc", &self.mcc)
            .finish_non_exhaustive()
    }
}

/// Every field of a form, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Checked {
    pub business_name: String,
    pub credit_code: String,
    pub legal_name: String,
    /// The full number when newly typed; `None` when the form kept the masked one.
    pub id_number: Option<String>,
    pub mobile: String,
    pub address: String,
    pub city: String,
    pub category: &'static crate::mcc::Category,
    /// The full number when newly typed; `None` when the form kept the masked one.
    pub settlement_card: Option<String>,
    pub bank: String,
    pub monthly_volume: Amount,
    pub terminal_count: u32,
    pub terminal_kind: &'static str,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("business_name", &self.business_name)
            .field("credit_code", &self.credit_code)
            .finish_non_exhaustive()
    }
}

/// The masked form of a card number: first six, stars, last four.
pub fn mask_card(digits: &str) -> String {
    if digits.len() < 10 {
        return "*".repeat(digits.len());
    }
    format!(
        "{}{}{}",
        &digits[..6],
        "*".repeat(digits.len() - 10),
        &digits[digits.len() - 4..]
    )
}

/// Whether `text` is a masked card number (as [`mask_card`] writes them).
pub fn is_masked_card(text: &str) -> bool {
    text.len() >= 16
        && text.contains('*')
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'*')
}

/// The masked form of a resident ID number: the first six (the region), stars, the last four.
pub fn mask_id(text: &str) -> String {
    let chars: Vec<char> = text.trim().chars().collect();
    if chars.len() < 14 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

/// Whether `text` is a masked ID number (as [`mask_id`] writes them), or nothing.
pub fn is_masked_id(text: &str) -> bool {
    text.is_empty()
        || (text.contains('*')
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || matches!(byte, b'*' | b'X' | b'x')))
}

impl Form {
    /// Checks every field; all faults, in the form's order. `stored_card` and `stored_id` are
    /// the masked card and ID number the stored application holds, which the form may repeat
    /// instead of the numbers.
    pub fn check(
        &self,
        stored_card: Option<&str>,
        stored_id: Option<&str>,
    ) -> Result<Checked, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut keep = |result: Result<(), FieldError>| {
            if let Err(error) = result {
                errors.push(error);
            }
        };
        for (name, value) in self.fields() {
            if name == "settlement_card" && stored_card.is_some_and(|card| card == value) {
                continue;
            }
            if name == "id_number" && stored_id.is_some_and(|id| id == value) {
                continue;
            }
            if let Some(result) = validate::field(name, value) {
                keep(result);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let unwrap = |result: Result<String, FieldError>| result.map_err(|error| vec![error]);
        let kept_card = stored_card.is_some_and(|card| card == self.settlement_card);
        let kept_id = stored_id.is_some_and(|id| id == self.id_number);
        Ok(Checked {
            business_name: unwrap(validate::text("business_name", &self.business_name))?,
            credit_code: unwrap(validate::credit_code(&self.credit_code))?,
            legal_name: unwrap(validate::text("legal_name", &self.legal_name))?,
            id_number: if kept_id {
                None
            } else {
                Some(unwrap(validate::resident_id(&self.id_number))?)
            },
            mobile: unwrap(validate::mobile(&self.mobile))?,
            address: unwrap(validate::text("address", &self.address))?,
            city: unwrap(validate::text("city", &self.city))?,
            category: validate::mcc(&self.mcc).map_err(|error| vec![error])?,
            settlement_card: if kept_card {
                None
            } else {
                Some(unwrap(validate::settlement_card(&self.settlement_card))?)
            },
            bank: unwrap(validate::text("bank", &self.bank))?,
            monthly_volume: validate::monthly_volume(&self.monthly_volume)
                .map_err(|error| vec![error])?,
            terminal_count: validate::terminal_count(&self.terminal_count)
                .map_err(|error| vec![error])?,
            terminal_kind: validate::terminal_kind(&self.terminal_kind)
                .map_err(|error| vec![error])?,
        })
    }

    /// (name, value) of every field, in the form's order.
    pub fn fields(&self) -> [(&'static str, &str); 14] {
        [
            ("business_name", &self.business_name),
            ("credit_code", &self.credit_code),
            ("legal_name", &self.legal_name),
            ("id_number", &self.id_number),
            ("mobile", &self.mobile),
            ("address", &self.address),
            ("city", &self.city),
            ("mcc", &self.mcc),
            ("settlement_card", &self.settlement_card),
            ("bank", &self.bank),
            ("monthly_volume", &self.monthly_volume),
            ("terminal_count", &self.terminal_count),
            ("terminal_kind", &self.terminal_kind),
            ("consent", &self.consent),
        ]
    }

    /// The form as it may be stored: a full card number replaced by its masked form.
    pub fn for_storage(&self) -> Form {
        let mut form = self.clone();
        let digits: String = form
            .settlement_card
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if !is_masked_card(&form.settlement_card) && !digits.is_empty() {
            form.settlement_card = mask_card(&digits);
        }
        if !is_masked_id(&form.id_number) {
            form.id_number = mask_id(&form.id_number);
        }
        form
    }
}

/// Where an application is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Saved, not submitted; the applicant may come back to it.
    Draft,
    /// Submitted and checked; waiting for an operator.
    Submitted,
    /// An operator asked for more information; the applicant may amend and resubmit.
    MoreInfo,
    /// Approved; the merchant and terminals are being created (a retry of the approval
    /// finishes an interrupted one with the same ids).
    Approving,
    Approved,
    Rejected,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Draft,
        Status::Submitted,
        Status::MoreInfo,
        Status::Approving,
        Status::Approved,
        Status::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::MoreInfo => "more_info",
            Status::Approving => "approving",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Whether the applicant may still change the form.
    pub fn editable(self) -> bool {
        matches!(self, Status::Draft | Status::MoreInfo)
    }
}

/// An application as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Application {
    /// The tracking number the applicant is given.
    pub id: String,
    /// SHA-256 (hex) of the applicant's resume token, the secret that lets them see and
    /// change the application.
    pub resume_digest: String,
    pub status: Status,
    /// The channel partner that submitted it, if one did.
    pub partner_id: Option<String>,
    pub form: Form,
    /// Keyed fingerprint (hex) of the settlement card number.
    pub card_fingerprint: Option<String>,
    /// The keyed fingerprint of the legal representative's ID number (the form keeps it
    /// masked), for the duplicate check.
    pub id_fingerprint: Option<String>,
    pub risk: Option<crate::checks::Assessment>,
    /// The operator who recommended approval (maker).
    pub reviewed_by: Option<String>,
    /// The operator who approved (checker), or `system` for an automatic approval.
    pub approved_by: Option<String>,
    /// The reason of a rejection or what more information is asked for.
    pub note: Option<String>,
    pub merchant_id: Option<String>,
    pub terminal_ids: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped by every change; a change applies only to the version its writer read.
    pub version: i64,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("partner_id", &self.partner_id)
            .field("merchant_id", &self.merchant_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, resume_digest, status, partner_id, credit_code, id_fingerprint, card_fingerprint, form, risk_score, risk_reasons, reviewed_by, approved_by, note, merchant_id, terminal_ids, created_at, updated_at, version";
const KINDS: [Kind; 18] = [
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Int,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Int,
    Kind::Int,
    Kind::Int,
];

fn text(value: &Option<String>) -> Cell {
    Cell::Text(value.clone())
}

impl Application {
    fn cells(&self) -> Result<Vec<Cell>, StoreError> {
        let form = serde_json::to_string(&self.form)
            .map_err(|error| StoreError::Write(format!("application form: {error}")))?;
        let reasons = self
            .risk
            .as_ref()
            .map(|risk| serde_json::to_string(&risk.reasons))
            .transpose()
            .map_err(|error| StoreError::Write(format!("risk reasons: {error}")))?;
        let searchable =
            |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_ascii_uppercase());
        Ok(vec![
            Cell::text(&self.id),
            Cell::text(&self.resume_digest),
            Cell::text(self.status.as_str()),
            text(&self.partner_id),
            Cell::Text(searchable(&self.form.credit_code)),
            text(&self.id_fingerprint),
            text(&self.card_fingerprint),
            Cell::text(form),
            Cell::Int(self.risk.as_ref().map(|risk| i64::from(risk.score))),
            Cell::Text(reasons),
            text(&self.reviewed_by),
            text(&self.approved_by),
            text(&self.note),
            text(&self.merchant_id),
            Cell::Text((!self.terminal_ids.is_empty()).then(|| self.terminal_ids.join(","))),
            Cell::int(self.created_at),
            Cell::int(self.updated_at),
            Cell::int(self.version),
        ])
    }

    fn from_cells(cells: &[Cell]) -> Result<Application, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("application {what}"));
        let text = |index: usize| cells.get(index).and_then(Cell::as_text).map(str::to_owned);
        let int = |index: usize| cells.get(index).and_then(Cell::as_int);
        let status = text(2)
            .as_deref()
            .and_then(Status::parse)
            .ok_or_else(|| corrupt("status"))?;
        let form: Form = serde_json::from_str(&text(7).ok_or_else(|| corrupt("form"))?)
            .map_err(|_| corrupt("form"))?;
        let risk = match (int(8), text(9)) {
            (Some(score), Some(reasons)) => Some(crate::checks::Assessment {
                score: u32::try_from(score).map_err(|_| corrupt("risk score"))?,
                reasons: serde_json::from_str(&reasons).map_err(|_| corrupt("risk reasons"))?,
            }),
            _ => None,
        };
        Ok(Application {
            id: text(0).ok_or_else(|| corrupt("id"))?,
            resume_digest: text(1).ok_or_else(|| corrupt("resume digest"))?,
            status,
            partner_id: text(3),
            form,
            card_fingerprint: text(6),
            id_fingerprint: text(5),
            risk,
            reviewed_by: text(10),
            approved_by: text(11),
            note: text(12),
            merchant_id: text(13),
            terminal_ids: text(14)
                .map(|ids| ids.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            created_at: int(15).ok_or_else(|| corrupt("created_at"))?,
            updated_at: int(16).ok_or_else(|| corrupt("updated_at"))?,
            version: int(17).ok_or_else(|| corrupt("version"))?,
        })
    }

    /// The statement that inserts this application (a new tracking number).
    pub fn insert(&self) -> Result<Step, StoreError> {
        Ok(Step::new(
            format!("INSERT INTO applications ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"),
            self.cells()?,
        )
        .expect_one())
    }

    /// The statement that replaces the stored application by this one, which must be the
    /// next version of the one read.
    pub fn update(&self) -> Result<Step, StoreError> {
        let mut cells = self.cells()?;
        cells.push(Cell::int(self.version - 1));
        Ok(Step::new(
            "UPDATE applications SET resume_digest = $2, status = $3, partner_id = $4, credit_code = $5, id_fingerprint = $6, card_fingerprint = $7, form = $8, risk_score = $9, risk_reasons = $10, reviewed_by = $11, approved_by = $12, note = $13, merchant_id = $14, terminal_ids = $15, created_at = $16, updated_at = $17, version = $18 WHERE id = $1 AND version = $19",
            cells,
        )
        .expect_one())
    }
}

/// Reads applications.
pub async fn load(store: &Store, id: &str) -> Result<Option<Application>, StoreError> {
    let rows = store
        .onboarding_query(
            &format!("SELECT {COLUMNS} FROM applications WHERE id = $1"),
            vec![Cell::text(id)],
            &KINDS,
        )
        .await?;
    rows.first()
        .map(|row| Application::from_cells(row))
        .transpose()
}

/// Most applications one list returns.
pub const MAX_LIST: i64 = 500;

/// Applications with `status` (any when `None`) of `partner` (any when `None`), newest
/// change first, at most [`MAX_LIST`].
pub async fn list(
    store: &Store,
    status: Option<Status>,
    partner: Option<&str>,
) -> Result<Vec<Application>, StoreError> {
    let rows = store
        .onboarding_query(
            &format!("SELECT {COLUMNS} FROM applications WHERE (CAST($1 AS TEXT) IS NULL OR status = CAST($1 AS TEXT)) AND (CAST($2 AS TEXT) IS NULL OR partner_id = CAST($2 AS TEXT)) ORDER BY updated_at DESC, id LIMIT $3"),
            vec![
                Cell::Text(status.map(|status| status.as_str().to_owned())),
                Cell::Text(partner.map(str::to_owned)),
                Cell::int(MAX_LIST),
            ],
            &KINDS,
        )
        .await?;
    rows.iter()
        .map(|row| Application::from_cells(row))
        .collect()
}

/// Tracking numbers of other live (submitted or later, not rejected) applications with this
/// credit code, and with this ID number (by its fingerprint).
pub async fn duplicates(
    store: &Store,
    id: &str,
    credit_code: &str,
    id_fingerprint: &str,
) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let mut found = (Vec::new(), Vec::new());
    for (column, value, into) in [
        ("credit_code", credit_code, &mut found.0),
        ("id_fingerprint", id_fingerprint, &mut found.1),
    ] {
        let rows = store
            .onboarding_query(
                &format!("SELECT id FROM applications WHERE {column} = $1 AND id <> $2 AND status NOT IN ('draft', 'rejected') ORDER BY id LIMIT 20"),
                vec![Cell::text(value), Cell::text(id)],
                &[Kind::Text],
            )
            .await?;
        into.extend(
            rows.iter()
                .filter_map(|row| row[0].as_text().map(str::to_owned)),
        );
    }
    Ok(found)
}
