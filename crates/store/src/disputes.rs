//! Disputes and chargebacks (issue 9, R9, R18): one dispute per sale, its steps and who took
//! them. The rules and the money are `aftersale::disputes`; a step is written only from the
//! status it expects ([`Store::update_dispute`]), so two people deciding at once change it once.

use crate::{Store, StoreError};

/// A dispute of a sale.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dispute {
    /// `dp_` and 16 hex digits.
    pub id: String,
    /// The journal id of the sale disputed.
    pub transaction_id: i64,
    pub merchant_id: String,
    /// The directory id of the card that paid.
    pub card_id: String,
    /// What is disputed (and charged back), minor units.
    pub amount_minor: i64,
    /// ISO 4217 numeric.
    pub currency: i64,
    /// `not_recognised`, `duplicate`, `wrong_amount`, `not_received` or `cancelled`.
    pub reason: String,
    pub description: String,
    /// `opened`, `rejected`, `charged_back`, `answered`, `won_by_cardholder` or
    /// `won_by_merchant`.
    pub status: String,
    pub opened_by: String,
    /// Seconds since the epoch, like every time here.
    pub opened_at: i64,
    pub reviewed_by: String,
    pub reviewed_at: Option<i64>,
    pub review_note: String,
    /// The merchant answers before this, once charged back.
    pub answer_due_at: Option<i64>,
    pub answered_by: String,
    pub answered_at: Option<i64>,
    pub evidence: String,
    pub decided_by: String,
    pub decided_at: Option<i64>,
    pub decision_note: String,
}

pub(crate) const DISPUTE_COLUMNS: &str = "id, transaction_id, merchant_id, card_id, amount_minor, currency, reason, description, status, opened_by, opened_at, reviewed_by, reviewed_at, review_note, answer_due_at, answered_by, answered_at, evidence, decided_by, decided_at, decision_note";

const UPDATE_SQLITE: &str = "UPDATE disputes SET status = ?3, reviewed_by = ?4, reviewed_at = ?5, review_note = ?6, answer_due_at = ?7, answered_by = ?8, answered_at = ?9, evidence = ?10, decided_by = ?11, decided_at = ?12, decision_note = ?13 WHERE id = ?1 AND status = ?2";
pub(crate) const UPDATE_POSTGRES: &str = "UPDATE disputes SET status = $3, reviewed_by = $4, reviewed_at = $5, review_note = $6, answer_due_at = $7, answered_by = $8, answered_at = $9, evidence = $10, decided_by = $11, decided_at = $12, decision_note = $13 WHERE id = $1 AND status = $2";

fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Dispute> {
    Ok(Dispute {
        id: row.get(0)?,
        transaction_id: row.get(1)?,
        merchant_id: row.get(2)?,
        card_id: row.get(3)?,
        amount_minor: row.get(4)?,
        currency: row.get(5)?,
        reason: row.get(6)?,
        description: row.get(7)?,
        status: row.get(8)?,
        opened_by: row.get(9)?,
        opened_at: row.get(10)?,
        reviewed_by: row.get(11)?,
        reviewed_at: row.get(12)?,
        review_note: row.get(13)?,
        answer_due_at: row.get(14)?,
        answered_by: row.get(15)?,
        answered_at: row.get(16)?,
        evidence: row.get(17)?,
        decided_by: row.get(18)?,
        decided_at: row.get(19)?,
        decision_note: row.get(20)?,
    })
}

impl Store {
    /// Stores `dispute` unless its sale is disputed already; either way, the sale's dispute.
    pub async fn put_dispute(&self, dispute: Dispute) -> Result<Dispute, StoreError> {
        let transaction_id = dispute.transaction_id;
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let d = &dispute;
                        connection
                            .prepare_cached(&format!(
                                "INSERT INTO disputes ({DISPUTE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) ON CONFLICT (transaction_id) DO NOTHING"
                            ))?
                            .execute(rusqlite::params![
                                d.id, d.transaction_id, d.merchant_id, d.card_id, d.amount_minor,
                                d.currency, d.reason, d.description, d.status, d.opened_by,
                                d.opened_at, d.reviewed_by, d.reviewed_at, d.review_note,
                                d.answer_due_at, d.answered_by, d.answered_at, d.evidence,
                                d.decided_by, d.decided_at, d.decision_note
                            ])?;
                        Ok(())
                    })
                    .await?;
            }
            Store::Postgres(store) => store.put_dispute(&dispute).await?,
        }
        self.dispute_of_transaction(transaction_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a stored dispute is missing".into()))
    }

    /// Writes `dispute`'s steps if it is still in status `from`; `false` when it is not (someone
    /// else moved it first).
    pub async fn update_dispute(&self, dispute: &Dispute, from: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                let (d, from) = (dispute.clone(), from.to_owned());
                store
                    .write(move |connection| {
                        let changed = connection.prepare_cached(UPDATE_SQLITE)?.execute(
                            rusqlite::params![
                                d.id,
                                from,
                                d.status,
                                d.reviewed_by,
                                d.reviewed_at,
                                d.review_note,
                                d.answer_due_at,
                                d.answered_by,
                                d.answered_at,
                                d.evidence,
                                d.decided_by,
                                d.decided_at,
                                d.decision_note
                            ],
                        )?;
                        Ok(changed == 1)
                    })
                    .await
            }
            Store::Postgres(store) => store.update_dispute(dispute, from).await,
        }
    }

    /// The dispute with this id.
    pub async fn dispute(&self, id: &str) -> Result<Option<Dispute>, StoreError> {
        self.dispute_where("id", DisputeKey::Text(id.to_owned()))
            .await
    }

    /// The dispute of this sale (a journal id).
    pub async fn dispute_of_transaction(
        &self,
        transaction_id: i64,
    ) -> Result<Option<Dispute>, StoreError> {
        self.dispute_where("transaction_id", DisputeKey::Int(transaction_id))
            .await
    }

    /// Disputes whose money moved in `[from, to)` (seconds): charged back (`reviewed_at`) or
    /// decided (`decided_at`) then, oldest first, at most `limit`. End of day reads a cycle's
    /// chargebacks from these (`clearing`).
    pub async fn disputes_moved_between(
        &self,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<Dispute>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE (reviewed_at >= ?1 AND reviewed_at < ?2) OR (decided_at >= ?1 AND decided_at < ?2) ORDER BY id LIMIT ?3"
                        ))?;
                        let rows = statement
                            .query_map(rusqlite::params![from, to, i64::from(limit)], |row| {
                                from_sqlite(row)
                            })?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.disputes_moved_between(from, to, limit).await,
        }
    }

    async fn dispute_where(
        &self,
        column: &'static str,
        key: DisputeKey,
    ) -> Result<Option<Dispute>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE {column} = ?1"
                        ))?;
                        let mut rows = match &key {
                            DisputeKey::Text(text) => statement.query(rusqlite::params![text])?,
                            DisputeKey::Int(number) => {
                                statement.query(rusqlite::params![number])?
                            }
                        };
                        Ok(match rows.next()? {
                            Some(row) => Some(from_sqlite(row)?),
                            None => None,
                        })
                    })
                    .await
            }
            Store::Postgres(store) => store.dispute_where(column, &key).await,
        }
    }
}

/// A look-up key of [`Store::dispute_where`].
#[derive(Clone, Debug)]
pub(crate) enum DisputeKey {
    Text(String),
    Int(i64),
}

/// A file of a dispute's answer, kept in the documents directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisputeDocument {
    pub dispute_id: String,
    /// The name shown (`certificate-42.json`, or the upload's own, made safe).
    pub name: String,
    pub content_type: String,
    pub bytes: i64,
    pub sha256: String,
    /// Its path in the documents directory.
    pub file: String,
    pub uploaded_by: String,
    pub uploaded_at: i64,
}

const DOCUMENT_COLUMNS: &str =
    "dispute_id, name, content_type, bytes, sha256, file, uploaded_by, uploaded_at";

/// Most disputes one list returns.
pub const MAX_DISPUTE_LIST: i64 = 500;

impl Store {
    /// The disputes of these merchants or these cards, newest first, at most `limit`.
    pub async fn disputes_of(
        &self,
        merchants: Vec<String>,
        cards: Vec<String>,
        limit: i64,
    ) -> Result<Vec<Dispute>, StoreError> {
        let limit = limit.clamp(1, MAX_DISPUTE_LIST);
        if merchants.is_empty() && cards.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let marks = |from: usize, count: usize| {
                            (from..from + count)
                                .map(|index| format!("?{index}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        let sql = format!(
                            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE merchant_id IN ({}) OR card_id IN ({}) ORDER BY opened_at DESC, id DESC LIMIT {limit}",
                            marks(1, merchants.len()),
                            marks(1 + merchants.len(), cards.len())
                        );
                        let mut statement = connection.prepare(&sql)?;
                        let values: Vec<&dyn rusqlite::ToSql> = merchants
                            .iter()
                            .chain(cards.iter())
                            .map(|value| value as &dyn rusqlite::ToSql)
                            .collect();
                        let rows = statement
                            .query_map(values.as_slice(), from_sqlite)?
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(rows)
                    })
                    .await
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                client
                    .query(
                        &format!("SELECT {DISPUTE_COLUMNS} FROM disputes WHERE merchant_id = ANY($1) OR card_id = ANY($2) ORDER BY opened_at DESC, id DESC LIMIT $3"),
                        &[&merchants, &cards, &limit],
                    )
                    .await?
                    .iter()
                    .map(crate::postgres::disputes::dispute_from_row)
                    .collect()
            }
        }
    }

    /// Records a file of a dispute's answer (one of each name: a second replaces the first).
    pub async fn put_dispute_document(&self, document: DisputeDocument) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO dispute_documents (dispute_id, name, content_type, bytes, sha256, file, uploaded_by, uploaded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (dispute_id, name) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, sha256 = excluded.sha256, file = excluded.file, uploaded_by = excluded.uploaded_by, uploaded_at = excluded.uploaded_at";
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        connection.prepare_cached(SQL)?.execute(rusqlite::params![
                            document.dispute_id,
                            document.name,
                            document.content_type,
                            document.bytes,
                            document.sha256,
                            document.file,
                            document.uploaded_by,
                            document.uploaded_at
                        ])?;
                        Ok(())
                    })
                    .await
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                client
                    .execute(
                        &SQL.replace('?', "$"),
                        &[
                            &document.dispute_id,
                            &document.name,
                            &document.content_type,
                            &document.bytes,
                            &document.sha256,
                            &document.file,
                            &document.uploaded_by,
                            &document.uploaded_at,
                        ],
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// The files of a dispute's answer, by name.
    pub async fn dispute_documents(
        &self,
        dispute_id: &str,
    ) -> Result<Vec<DisputeDocument>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                let dispute_id = dispute_id.to_owned();
                store
                    .read(move |connection| {
                        Ok(connection
                            .prepare_cached(&format!(
                                "SELECT {DOCUMENT_COLUMNS} FROM dispute_documents WHERE dispute_id = ?1 ORDER BY name"
                            ))?
                            .query_map([dispute_id], |row| {
                                Ok(DisputeDocument {
                                    dispute_id: row.get(0)?,
                                    name: row.get(1)?,
                                    content_type: row.get(2)?,
                                    bytes: row.get(3)?,
                                    sha256: row.get(4)?,
                                    file: row.get(5)?,
                                    uploaded_by: row.get(6)?,
                                    uploaded_at: row.get(7)?,
                                })
                            })?
                            .collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                client
                    .query(
                        &format!("SELECT {DOCUMENT_COLUMNS} FROM dispute_documents WHERE dispute_id = $1 ORDER BY name"),
                        &[&dispute_id],
                    )
                    .await?
                    .iter()
                    .map(|row| {
                        Ok(DisputeDocument {
                            dispute_id: row.try_get(0)?,
                            name: row.try_get(1)?,
                            content_type: row.try_get(2)?,
                            bytes: row.try_get(3)?,
                            sha256: row.try_get(4)?,
                            file: row.try_get(5)?,
                            uploaded_by: row.try_get(6)?,
                            uploaded_at: row.try_get(7)?,
                        })
                    })
                    .collect()
            }
        }
    }
}
