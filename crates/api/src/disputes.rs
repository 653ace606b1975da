//! Disputes and chargebacks through the API (issue 9, R9, R18; `aftersale::disputes`,
//! docs/aftersale.md): the cardholder disputes their sale, the card's issuer's operator
//! reviews and decides, the merchant's manager or administrator answers before the deadline.
//! A dispute is seen by whoever may see its sale (others get 404); every step is in the audit
//! log and on the sale's timeline.

use crate::ApiState;
use crate::access::{Principal, Scope};
use crate::problem::Problem;
use crate::views::AmountView;
use aftersale::disputes::{Decision, DisputeError, Disputes, Party, Review};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use store::accounts::{Role, TransactionRecord};
use store::disputes::Dispute;

type ApiResult<T> = Result<T, Problem>;

/// A dispute as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DisputeView {
    pub id: String,
    pub transaction_id: String,
    pub merchant_id: String,
    pub amount: Option<AmountView>,
    pub reason: String,
    pub description: String,
    pub status: String,
    pub opened_by: String,
    pub opened_at: String,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
    pub review_note: Option<String>,
    /// The merchant answers before this, once charged back.
    pub answer_due_at: Option<String>,
    pub answered_by: Option<String>,
    pub answered_at: Option<String>,
    pub evidence: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_note: Option<String>,
    /// The answer's files (`GET /api/v1/disputes/{id}` and the answer's reply list them; lists
    /// of disputes leave this empty).
    pub documents: Vec<DisputeDocumentView>,
}

/// A file of a dispute's answer: its name (the upload's own, made safe), type, size,
/// SHA-256, and where the dispute's parties download it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DisputeDocumentView {
    pub name: String,
    pub content_type: String,
    pub bytes: i64,
    pub sha256: String,
    pub uploaded_by: String,
    pub uploaded_at: String,
    pub url: String,
}

impl From<&store::disputes::DisputeDocument> for DisputeDocumentView {
    fn from(document: &store::disputes::DisputeDocument) -> Self {
        DisputeDocumentView {
            name: document.name.clone(),
            content_type: document.content_type.clone(),
            bytes: document.bytes,
            sha256: document.sha256.clone(),
            uploaded_by: document.uploaded_by.clone(),
            uploaded_at: crate::time::rfc3339_seconds(document.uploaded_at),
            url: document_url(&document.dispute_id, &document.name),
        }
    }
}

/// Where the file `name` of dispute `id` is downloaded.
pub fn document_url(id: &str, name: &str) -> String {
    format!(
        "/api/v1/disputes/{}/documents/{}",
        crate::files::percent_encode(id),
        crate::files::percent_encode(name)
    )
}

impl DisputeView {
    /// `dispute` with its answer's files, for one of its parties.
    pub async fn with_documents(state: &ApiState, dispute: &Dispute) -> ApiResult<Self> {
        let mut view = DisputeView::from(dispute);
        view.documents = state
            .store
            .dispute_documents(&dispute.id)
            .await?
            .iter()
            .map(DisputeDocumentView::from)
            .collect();
        Ok(view)
    }
}

impl From<&Dispute> for DisputeView {
    fn from(d: &Dispute) -> Self {
        let text = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        let time = |at: Option<i64>| at.map(crate::time::rfc3339_seconds);
        let currency = u16::try_from(d.currency)
            .ok()
            .and_then(|numeric| money::Currency::from_numeric(numeric).ok());
        DisputeView {
            id: d.id.clone(),
            transaction_id: d.transaction_id.to_string(),
            merchant_id: d.merchant_id.clone(),
            amount: currency.map(|currency| AmountView::new(d.amount_minor, currency)),
            reason: d.reason.clone(),
            description: d.description.clone(),
            status: d.status.clone(),
            opened_by: d.opened_by.clone(),
            opened_at: crate::time::rfc3339_seconds(d.opened_at),
            reviewed_by: text(&d.reviewed_by),
            reviewed_at: time(d.reviewed_at),
            review_note: text(&d.review_note),
            answer_due_at: time(d.answer_due_at),
            answered_by: text(&d.answered_by),
            answered_at: time(d.answered_at),
            evidence: text(&d.evidence),
            decided_by: text(&d.decided_by),
            decided_at: time(d.decided_at),
            decision_note: text(&d.decision_note),
            documents: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDispute {
    pub reason: String,
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// `chargeback` or `reject`.
    pub decision: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    pub evidence: String,
    /// Attach the transaction certificate (signed by the acquirer) to the answer.
    #[serde(default)]
    pub certificate: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `cardholder` or `merchant`.
    pub in_favour_of: String,
    pub note: String,
}

impl From<DisputeError> for Problem {
    fn from(error: DisputeError) -> Self {
        let detail = error.to_string();
        let unprocessable = |slug: &str, title: &'static str| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                slug,
                title,
                detail.clone(),
            )
        };
        match error {
            DisputeError::NotDisputable(_) => unprocessable("not-disputable", "Not disputable"),
            DisputeError::Late { .. } => unprocessable("answer-too-late", "Answer too late"),
            DisputeError::Refused(_) => unprocessable("chargeback-refused", "Chargeback refused"),
            DisputeError::Invalid(_) => Problem::bad_request(detail),
            DisputeError::Forbidden(_) => Problem::forbidden(detail),
            DisputeError::Conflict(_) => Problem::new(
                StatusCode::CONFLICT,
                "dispute-state",
                "Not in a state that allows this",
                detail,
            ),
            DisputeError::Store(error) => Problem::internal(&error),
            DisputeError::Unavailable(error) => {
                tracing::error!(%error, "chargeback not posted");
                unavailable("the acquirer could not move the money now; retry later")
            }
        }
    }
}

fn unavailable(detail: &str) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "disputes-unavailable",
        "Disputes unavailable",
        detail,
    )
}

fn disputes(state: &ApiState) -> ApiResult<&Arc<Disputes>> {
    state.disputes.as_ref().ok_or_else(|| {
        unavailable("this server takes no disputes: it runs without the acquirer host")
    })
}

/// How the caller takes part in disputes.
fn party(principal: &Principal) -> ApiResult<Party> {
    match principal.user.role {
        Role::Cardholder => Ok(Party::Cardholder),
        Role::IssuerOperator => Ok(Party::Issuer),
        Role::MerchantAdmin | Role::MerchantManager => Ok(Party::Merchant),
        _ => Err(Problem::forbidden(
            "disputes are opened by the cardholder, reviewed and decided by the card's issuer, answered by the merchant's manager or administrator",
        )),
    }
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes, shape: &str) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|error| Problem::bad_request(format!("the body must be {shape}: {error}")))
}

/// Whether the caller is one of a dispute's parties (the cardholder, the card's issuer, the
/// merchant's manager or administrator), who see its answer's files; the acquirer's
/// operators and the merchant's other staff follow the dispute without them.
pub fn sees_documents(principal: &Principal) -> bool {
    party(principal).is_ok()
}

/// The dispute `id` and its sale, if the caller may see the sale.
pub async fn visible_dispute(
    state: &ApiState,
    principal: &Principal,
    id: &str,
) -> ApiResult<(Dispute, TransactionRecord)> {
    let not_found = || Problem::not_found(format!("no dispute {id:?} that you may see"));
    let dispute = state.store.dispute(id).await?.ok_or_else(not_found)?;
    let sale =
        crate::routes::visible_transaction(state, principal, &dispute.transaction_id.to_string())
            .await
            .map_err(|problem| match problem.status {
                404 => not_found(),
                _ => problem,
            })?;
    Ok((dispute, sale))
}

async fn audited(
    state: &ApiState,
    principal: &Principal,
    action: &str,
    dispute: &Dispute,
) -> ApiResult<()> {
    let detail = format!(
        "transaction {} amount_minor {} status {}",
        dispute.transaction_id, dispute.amount_minor, dispute.status
    );
    state
        .audit(
            &principal.user,
            action,
            &format!("dispute:{}", dispute.id),
            &detail,
            crate::audit::merchant_label(&dispute.merchant_id),
        )
        .await?;
    Ok(())
}

/// The cardholder disputes sale `id` (the API's caller, the console's user, or a fraud
/// report): the dispute, and whether it is new.
pub async fn open_dispute(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    reason: &str,
    description: &str,
) -> ApiResult<(Dispute, bool)> {
    let party = party(principal)?;
    if party != Party::Cardholder {
        return Err(Problem::forbidden(
            "only the cardholder disputes a transaction on their card",
        ));
    }
    let sale = crate::routes::visible_transaction(state, principal, id).await?;
    let scope = Scope::of(&state.store, &principal.user).await?;
    let card = scope
        .cards
        .iter()
        .find(|card| Some(card.masked_pan()) == sale.card)
        .ok_or_else(|| Problem::not_found(format!("no card of yours made transaction {id:?}")))?;
    let (dispute, new) = disputes(state)?
        .open(
            &sale,
            party,
            &principal.user.username,
            &card.id,
            reason,
            description,
            state.now_seconds(),
        )
        .await?;
    if new {
        audited(state, principal, "dispute.open", &dispute).await?;
    }
    Ok((dispute, new))
}

/// `POST /api/v1/transactions/{id}/dispute`: 201 with the new dispute, 200 with the sale's
/// dispute opened before.
pub async fn create_dispute(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<DisputeView>)> {
    let new: NewDispute = body(
        &bytes,
        "{\"reason\": \"not_recognised\", \"description\": \"what happened\"}",
    )?;
    let (dispute, created) =
        open_dispute(&state, &principal, &id, &new.reason, &new.description).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(DisputeView::from(&dispute))))
}

/// `GET /api/v1/disputes/{id}`.
pub async fn get_dispute(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<DisputeView>> {
    let (dispute, _) = visible_dispute(&state, &principal, &id).await?;
    if sees_documents(&principal) {
        Ok(Json(DisputeView::with_documents(&state, &dispute).await?))
    } else {
        // The acquirer's operators follow the dispute; its files are the parties'.
        Ok(Json(DisputeView::from(&dispute)))
    }
}

/// The issuer's review of dispute `id` (`decision`: `chargeback` or `reject`), for the API's
/// caller or the console's user.
pub async fn review_step(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    decision: &str,
    note: &str,
) -> ApiResult<Dispute> {
    let party = party(principal)?;
    let decision = match decision {
        "chargeback" => Review::ChargeBack,
        "reject" => Review::Reject,
        other => {
            return Err(Problem::bad_request(format!(
                "decision: chargeback or reject, got {other:?}"
            )));
        }
    };
    let (dispute, sale) = visible_dispute(state, principal, id).await?;
    let dispute = disputes(state)?
        .review(
            &sale,
            dispute,
            party,
            &principal.user.username,
            decision,
            note,
            state.now_seconds(),
        )
        .await?;
    audited(state, principal, "dispute.review", &dispute).await?;
    Ok(dispute)
}

/// The merchant's answer to dispute `id`, for the API's caller or the console's user.
pub async fn answer_step(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    evidence: &str,
) -> ApiResult<Dispute> {
    let party = party(principal)?;
    let (dispute, _) = visible_dispute(state, principal, id).await?;
    let dispute = disputes(state)?
        .answer(
            dispute,
            party,
            &principal.user.username,
            evidence,
            state.now_seconds(),
        )
        .await?;
    audited(state, principal, "dispute.answer", &dispute).await?;
    Ok(dispute)
}

/// The issuer's decision of dispute `id` (`in_favour_of`: `cardholder` or `merchant`), for
/// the API's caller or the console's user.
pub async fn decide_step(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    in_favour_of: &str,
    note: &str,
) -> ApiResult<Dispute> {
    let party = party(principal)?;
    let outcome = match in_favour_of {
        "cardholder" => Decision::ForCardholder,
        "merchant" => Decision::ForMerchant,
        other => {
            return Err(Problem::bad_request(format!(
                "in_favour_of: cardholder or merchant, got {other:?}"
            )));
        }
    };
    let (dispute, sale) = visible_dispute(state, principal, id).await?;
    let dispute = disputes(state)?
        .decide(
            &sale,
            dispute,
            party,
            &principal.user.username,
            outcome,
            note,
            state.now_seconds(),
        )
        .await?;
    audited(state, principal, "dispute.decide", &dispute).await?;
    Ok(dispute)
}

/// `POST /api/v1/disputes/{id}/review`: the issuer charges back or rejects.
pub async fn review_dispute(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<DisputeView>> {
    let review: ReviewBody = body(
        &bytes,
        "{\"decision\": \"chargeback\" or \"reject\", \"note\": \"…\"}",
    )?;
    let dispute = review_step(&state, &principal, &id, &review.decision, &review.note).await?;
    Ok(Json(DisputeView::from(&dispute)))
}

/// `POST /api/v1/disputes/{id}/answer`: the merchant's evidence, before the deadline.
pub async fn answer_dispute(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<DisputeView>> {
    let answer: AnswerBody = body(&bytes, "{\"evidence\": \"…\", \"certificate\": true}")?;
    let dispute = if answer.certificate {
        answer_with_documents(&state, &principal, &id, &answer.evidence, true, Vec::new())
            .await?
            .0
    } else {
        answer_step(&state, &principal, &id, &answer.evidence).await?
    };
    Ok(Json(DisputeView::with_documents(&state, &dispute).await?))
}

/// `POST /api/v1/disputes/{id}/decide`: the issuer decides for the cardholder or the merchant.
pub async fn decide_dispute(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<DisputeView>> {
    let decision: DecisionBody = body(
        &bytes,
        "{\"in_favour_of\": \"cardholder\" or \"merchant\", \"note\": \"…\"}",
    )?;
    let dispute = decide_step(
        &state,
        &principal,
        &id,
        &decision.in_favour_of,
        &decision.note,
    )
    .await?;
    Ok(Json(DisputeView::from(&dispute)))
}

/// Largest file a merchant attaches to a dispute's answer, and most files per answer.
pub const MAX_EVIDENCE_FILE_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_EVIDENCE_FILES: usize = 5;

/// A file the merchant uploads with an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The file's name as the browser sent it.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Longest name an evidence file keeps, in characters.
pub const MAX_EVIDENCE_NAME_CHARS: usize = 100;

/// The name an upload is shown and downloaded under: its own name as the browser sent it, made
/// safe — the last path segment only, without control characters or the characters a disk or
/// a header refuses (`" * / : < > ? \ |`), no leading dots or spaces, at most
/// [`MAX_EVIDENCE_NAME_CHARS`] characters — ending in the extension its content says (a PNG
/// sent as `photo.exe` is `photo.exe.png`; `scan.JPEG` stays). No name: `evidence-N`.
pub fn evidence_name(sent: &str, index: usize, extension: &str) -> String {
    let last = sent.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '*' | ':' | '<' | '>' | '?' | '|'))
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let stem = if cleaned.is_empty() {
        format!("evidence-{}", index + 1)
    } else {
        cleaned.to_owned()
    };
    let own = stem
        .rsplit_once('.')
        .map(|(_, own)| own.to_ascii_lowercase());
    let same = match (own.as_deref(), extension) {
        (Some("jpg" | "jpeg"), "jpg") => true,
        (Some(own), extension) => own == extension,
        (None, _) => false,
    };
    let room = MAX_EVIDENCE_NAME_CHARS - extension.len() - 1;
    if same {
        let (base, own) = stem.rsplit_once('.').unwrap_or((&stem, extension));
        let base: String = base
            .chars()
            .take(MAX_EVIDENCE_NAME_CHARS - own.chars().count() - 1)
            .collect();
        format!("{base}.{own}")
    } else {
        let base: String = stem.chars().take(room).collect();
        format!("{base}.{extension}")
    }
}

/// `name`, or `name` with ` (2)`, ` (3)` … before its extension: the first not in `taken`.
fn unique_name(name: String, taken: &[String]) -> String {
    if !taken.contains(&name) {
        return name;
    }
    let (base, extension) = name.rsplit_once('.').unwrap_or((&name, ""));
    (2..)
        .map(|n| format!("{base} ({n}).{extension}"))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(name)
}

/// Removes the files an answer wrote when the answer was refused (each has its own random
/// name, so no other record uses it).
async fn remove_files(files: Vec<String>) {
    let removed = tokio::task::spawn_blocking(move || {
        for file in files {
            if let Err(error) = std::fs::remove_file(&file)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(%error, file, "a refused answer's evidence file stays");
            }
        }
    })
    .await;
    if let Err(error) = removed {
        tracing::warn!(%error, "removing a refused answer's evidence files");
    }
}

/// Dispute `id`, if the caller may answer it: 403 for a role that does not answer disputes,
/// 404 for a dispute they may not see (another merchant's).
async fn answerable(state: &ApiState, principal: &Principal, id: &str) -> ApiResult<Dispute> {
    if party(principal)? != Party::Merchant {
        return Err(Problem::forbidden(
            "the merchant's manager or administrator answers a dispute",
        ));
    }
    Ok(visible_dispute(state, principal, id).await?.0)
}

/// The merchant answers dispute `id` with `evidence` text, the transaction certificate when
/// `certificate` (signed by the acquirer, as `GET /api/v1/transactions/{id}/certificate`
/// gives it) and `uploads` (PDF, PNG or JPEG). The files are kept in the documents
/// directory and listed, with their SHA-256, at the end of the answer's text; they are
/// recorded with the dispute only once the answer is accepted (before its deadline, by the
/// merchant, once charged back), so a refused answer attaches nothing.
pub async fn answer_with_documents(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    evidence: &str,
    certificate: bool,
    uploads: Vec<Upload>,
) -> ApiResult<(Dispute, Vec<store::disputes::DisputeDocument>)> {
    use sha2::Digest;
    let dispute = answerable(state, principal, id).await?;
    if uploads.len() > MAX_EVIDENCE_FILES {
        return Err(Problem::bad_request(format!(
            "at most {MAX_EVIDENCE_FILES} files per answer"
        )));
    }
    // (shown name, content type, extension on disk, bytes)
    let mut files: Vec<(String, &'static str, &'static str, Vec<u8>)> = Vec::new();
    let mut taken = Vec::new();
    for (index, upload) in uploads.into_iter().enumerate() {
        let shown = if upload.name.trim().is_empty() {
            format!("file {}", index + 1)
        } else {
            format!("{:?}", upload.name)
        };
        if upload.bytes.len() > MAX_EVIDENCE_FILE_BYTES {
            return Err(Problem::bad_request(format!(
                "{shown}: {} bytes, larger than the {} MiB a file may have; nothing was attached",
                upload.bytes.len(),
                MAX_EVIDENCE_FILE_BYTES / (1024 * 1024)
            )));
        }
        // The type comes from the first bytes (what the file claims to be is not trusted), as
        // for every upload (`crate::files::sniff`).
        let (content_type, extension) = crate::files::sniff(&upload.bytes).ok_or_else(|| {
            Problem::bad_request(format!(
                "{shown}: not a PDF, PNG or JPEG file (judged by its content, not its name); nothing was attached"
            ))
        })?;
        let name = unique_name(evidence_name(&upload.name, index, extension), &taken);
        taken.push(name.clone());
        files.push((name, content_type, extension, upload.bytes));
    }
    if certificate {
        let issued = crate::certificates::certificate_of(
            state,
            principal,
            &dispute.transaction_id.to_string(),
            "json",
        )
        .await?;
        files.push((
            format!("certificate-{}.json", dispute.transaction_id),
            "application/json",
            "json",
            issued.json.into_bytes(),
        ));
    }
    let mut documents = Vec::new();
    if !files.is_empty() {
        let dir = state.documents_dir.as_ref().ok_or_else(|| {
            unavailable("this server keeps no documents: answer with text, or attach nothing")
        })?;
        let dir = dir.join("disputes").join(&dispute.id);
        let now = state.now_seconds();
        for (name, content_type, extension, bytes) in files {
            // On disk under a random name of its own: the shown name may be anything the
            // sender chose, and two answers racing never write the same file.
            let on_disk = format!(
                "{:016x}{:016x}.{extension}",
                rand::random::<u64>(),
                rand::random::<u64>()
            );
            let file = dir.join(&on_disk);
            documents.push(store::disputes::DisputeDocument {
                dispute_id: dispute.id.clone(),
                name,
                content_type: content_type.to_owned(),
                bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
                sha256: hex::encode(sha2::Sha256::digest(&bytes)),
                file: file.to_string_lossy().into_owned(),
                uploaded_by: principal.user.username.clone(),
                uploaded_at: now,
            });
            if let Err(error) = crate::files::write_atomic(&dir, &on_disk, &bytes).await {
                let problem = Problem::internal(&format!("evidence file: {error}"));
                // Nothing half-attached: the files written so far go too.
                remove_files(
                    documents
                        .iter()
                        .map(|document| document.file.clone())
                        .collect(),
                )
                .await;
                return Err(problem);
            }
        }
    }
    let mut text = evidence.trim().to_owned();
    if !documents.is_empty() {
        text.push_str("\n\nAttached:");
        for document in &documents {
            text.push_str(&format!(
                "\n- {} ({}, {} bytes, SHA-256 {})",
                document.name, document.content_type, document.bytes, document.sha256
            ));
        }
    }
    let answered = match answer_step(state, principal, id, &text).await {
        Ok(answered) => answered,
        Err(problem) => {
            remove_files(
                documents
                    .iter()
                    .map(|document| document.file.clone())
                    .collect(),
            )
            .await;
            return Err(problem);
        }
    };
    for document in &documents {
        state.store.put_dispute_document(document.clone()).await?;
    }
    Ok((answered, documents))
}

/// An answer as a `multipart/form-data` body carries it, from the console's form or the
/// API's `PUT /api/v1/disputes/{id}/answer`: the `evidence` text, `certificate` (any value:
/// attach it) and up to [`MAX_EVIDENCE_FILES`] `file` parts, each with its own file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerForm {
    pub evidence: String,
    pub certificate: bool,
    pub uploads: Vec<Upload>,
    /// The console's form token (`csrf`); the API sends none.
    pub csrf: String,
}

/// Reads an [`AnswerForm`] from a body of type `content_type`.
pub fn answer_form(content_type: &str, body: &[u8]) -> ApiResult<AnswerForm> {
    let parts = crate::files::form_parts(content_type, body).ok_or_else(|| {
        Problem::bad_request(
            "the body must be multipart/form-data with the fields evidence, certificate (to attach the transaction certificate) and file (up to 5)",
        )
    })?;
    Ok(AnswerForm {
        evidence: crate::files::text_field(&parts, "evidence"),
        certificate: !crate::files::text_field(&parts, "certificate").is_empty(),
        // A file input left empty sends an empty part: it is no file.
        uploads: parts
            .iter()
            .filter(|part| part.name == "file" && !part.content.is_empty())
            .map(|part| Upload {
                // The sender's name for it, made safe by `evidence_name`.
                name: part.filename.unwrap_or("").to_owned(),
                bytes: part.content.to_vec(),
            })
            .collect(),
        csrf: crate::files::text_field(&parts, "csrf"),
    })
}

/// The largest answer body: every file at its largest, and room for the text fields.
pub const MAX_ANSWER_BODY_BYTES: usize = MAX_EVIDENCE_FILES * MAX_EVIDENCE_FILE_BYTES + 64 * 1024;

/// `PUT /api/v1/disputes/{id}/answer` (`multipart/form-data`, as [`AnswerForm`]): the
/// merchant's answer with its evidence files, under the console's rules (same size, type,
/// count and name handling: [`answer_with_documents`]). A PUT, not a POST: the files are
/// larger than the idempotent POST bodies; a dispute is answered once, so a repeat is refused
/// (409) and the first answer stands.
pub async fn put_answer(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<DisputeView>> {
    let body = body.map_err(|rejection| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "evidence-too-large",
            "Evidence too large",
            format!(
                "the files are too large together ({rejection}): at most {MAX_EVIDENCE_FILES} files of {} MiB each; nothing was attached and the dispute is not answered",
                MAX_EVIDENCE_FILE_BYTES / (1024 * 1024)
            ),
        )
    })?;
    // Who may answer is settled before the body is read: someone else's dispute is not found
    // whatever they send.
    answerable(&state, &principal, &id).await?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let form = answer_form(content_type, &body)?;
    let (dispute, _) = answer_with_documents(
        &state,
        &principal,
        &id,
        &form.evidence,
        form.certificate,
        form.uploads,
    )
    .await?;
    Ok(Json(DisputeView::with_documents(&state, &dispute).await?))
}

/// The answer's file `name` of dispute `id` and its bytes, for the dispute's parties only: the
/// cardholder, the card's issuer, the merchant's manager and administrator (others, and
/// anyone who may not see the dispute, get 404).
pub async fn document_bytes(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    name: &str,
) -> ApiResult<(store::disputes::DisputeDocument, Vec<u8>)> {
    let not_found = || {
        Problem::not_found(format!(
            "dispute {id:?} has no file {name:?} that you may see"
        ))
    };
    if !sees_documents(principal) {
        return Err(not_found());
    }
    let (dispute, _) = visible_dispute(state, principal, id).await?;
    let document = state
        .store
        .dispute_documents(&dispute.id)
        .await?
        .into_iter()
        .find(|document| document.name == name)
        .ok_or_else(not_found)?;
    let file = document.file.clone();
    let read = tokio::task::spawn_blocking(move || std::fs::read(file))
        .await
        .map_err(std::io::Error::other)
        .and_then(|read| read);
    let bytes = read.map_err(|error| {
        tracing::error!(%error, dispute = id, "an evidence file is missing");
        Problem::internal(&error)
    })?;
    Ok((document, bytes))
}

/// The file as a download: its type, its name, its SHA-256.
pub fn document_response(
    document: &store::disputes::DisputeDocument,
    bytes: Vec<u8>,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&document.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&crate::files::attachment_disposition(&document.name))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&document.sha256) {
        headers.insert("x-document-sha256", value);
    }
    response
}

/// `GET /api/v1/disputes/{id}/documents/{name}`.
pub async fn get_document(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    let (document, bytes) = document_bytes(&state, &principal, &id, &name).await?;
    Ok(document_response(&document, bytes))
}

/// The disputes the caller may see: a merchant's staff their merchant's, an issuer's
/// operators their cards', the acquirer's operators their merchants', a cardholder theirs.
pub async fn visible_disputes(state: &ApiState, principal: &Principal) -> ApiResult<Vec<Dispute>> {
    let scope = Scope::of(&state.store, &principal.user).await?;
    let merchants = scope.merchants.iter().map(|m| m.id.clone()).collect();
    let cards = scope.cards.iter().map(|c| c.id.clone()).collect();
    Ok(state
        .store
        .disputes_of(merchants, cards, store::disputes::MAX_DISPUTE_LIST)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evidence_file_keeps_its_own_name_made_safe() {
        for (sent, extension, kept) in [
            ("receipt 000123.pdf", "pdf", "receipt 000123.pdf"),
            ("签购单.PDF", "pdf", "签购单.PDF"),
            ("scan.JPEG", "jpg", "scan.JPEG"),
            ("C:\\Users\\li\\photo.png", "png", "photo.png"),
            ("../../etc/passwd", "pdf", "passwd.pdf"),
            ("photo.exe", "png", "photo.exe.png"),
            ("..hidden.pdf", "pdf", "hidden.pdf"),
            ("a\"b<c>:d|e?*\r\n.pdf", "pdf", "abcde.pdf"),
            ("", "jpg", "evidence-3.jpg"),
            ("...", "pdf", "evidence-3.pdf"),
        ] {
            assert_eq!(evidence_name(sent, 2, extension), kept, "{sent:?}");
        }
        let long = format!("{}.pdf", "长".repeat(300));
        let name = evidence_name(&long, 0, "pdf");
        assert_eq!(name.chars().count(), MAX_EVIDENCE_NAME_CHARS);
        assert!(name.ends_with(".pdf"));
    }

    #[test]
    fn a_name_given_twice_is_numbered() {
        let taken = vec!["a.pdf".to_owned(), "a (2).pdf".to_owned()];
        assert_eq!(unique_name("a.pdf".into(), &taken), "a (3).pdf");
        assert_eq!(unique_name("b.pdf".into(), &taken), "b.pdf");
    }
}
