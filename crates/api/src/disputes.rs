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
    Ok(Json(DisputeView::from(&dispute)))
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
    Ok(Json(DisputeView::from(&dispute)))
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

/// The type of an evidence file, from its first bytes (what it claims to be is not trusted):
/// PDF, PNG or JPEG, or JSON (a certificate); `None` for anything else.
fn evidence_type(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"%PDF-") {
        Some(("application/pdf", "pdf"))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some(("image/jpeg", "jpg"))
    } else {
        None
    }
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

/// Writes `bytes` to `file` beside a temporary, synced, then renamed: a reader never sees
/// half a file.
async fn write_file(file: std::path::PathBuf, bytes: Vec<u8>) -> ApiResult<()> {
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let dir = file
            .parent()
            .ok_or_else(|| std::io::Error::other("no directory"))?;
        std::fs::create_dir_all(dir)?;
        let temporary = file.with_extension("upload");
        std::fs::write(&temporary, &bytes)?;
        std::fs::File::open(&temporary)?.sync_all()?;
        std::fs::rename(&temporary, &file)
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(store::StoreError::Write(format!("evidence file: {error}")).into()),
        Err(error) => Err(store::StoreError::Write(format!("evidence file: {error}")).into()),
    }
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
    if party(principal)? != Party::Merchant {
        return Err(Problem::forbidden(
            "the merchant's manager or administrator answers a dispute",
        ));
    }
    let (dispute, _) = visible_dispute(state, principal, id).await?;
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
        let (content_type, extension) = evidence_type(&upload.bytes).ok_or_else(|| {
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
            let file = dir.join(format!(
                "{:016x}{:016x}.{extension}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ));
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
            if let Err(problem) = write_file(file, bytes).await {
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
