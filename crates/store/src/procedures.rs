//! A merchant's operating procedures and the training record (issue 10, R16): versions of the
//! procedures text, each saved whole by the merchant's admin, and who acknowledged which
//! version when. The `api` crate gives them rules and rights; here they are rows.
//!
//! Statements are written once (PostgreSQL's `$n`) and run through
//! [`Store::onboarding_execute`] and [`Store::onboarding_query`], so the backends cannot drift
//! apart.

use crate::onboarding::{Cell, Kind};
use crate::{Store, StoreError};

/// Most versions a history read returns, newest first.
pub const MAX_PROCEDURE_VERSIONS_LISTED: i64 = 50;

/// One saved version of a merchant's procedures.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProcedureVersion {
    pub merchant_id: String,
    /// 1, 2, 3 … per merchant.
    pub version: i64,
    pub text: String,
    /// The user name of the admin who saved it.
    pub saved_by: String,
    pub saved_at: i64,
    pub note: String,
}

/// One line of the training record: a user's acknowledgement of a version.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Acknowledgement {
    pub user_id: String,
    pub version: i64,
    pub acknowledged_at: i64,
}

const VERSION_COLUMNS: &str = "merchant_id, version, text, saved_by, saved_at, note";
const VERSION_KINDS: [Kind; 6] = [
    Kind::Text,
    Kind::Int,
    Kind::Text,
    Kind::Text,
    Kind::Int,
    Kind::Text,
];

fn version_of(row: &[Cell]) -> Option<ProcedureVersion> {
    Some(ProcedureVersion {
        merchant_id: row.first()?.as_text()?.to_owned(),
        version: row.get(1)?.as_int()?,
        text: row.get(2)?.as_text()?.to_owned(),
        saved_by: row.get(3)?.as_text()?.to_owned(),
        saved_at: row.get(4)?.as_int()?,
        note: row.get(5)?.as_text()?.to_owned(),
    })
}

impl Store {
    /// The merchant's newest procedures, if it wrote any.
    pub async fn current_procedures(
        &self,
        merchant_id: &str,
    ) -> Result<Option<ProcedureVersion>, StoreError> {
        Ok(self
            .procedure_versions(merchant_id, 1)
            .await?
            .into_iter()
            .next())
    }

    /// The merchant's newest `limit` versions (at most [`MAX_PROCEDURE_VERSIONS_LISTED`]),
    /// newest first.
    pub async fn procedure_versions(
        &self,
        merchant_id: &str,
        limit: i64,
    ) -> Result<Vec<ProcedureVersion>, StoreError> {
        let rows = self
            .onboarding_query(
                &format!(
                    "SELECT {VERSION_COLUMNS} FROM procedure_versions WHERE merchant_id = $1 ORDER BY version DESC LIMIT $2"
                ),
                vec![
                    Cell::text(merchant_id),
                    Cell::int(limit.clamp(1, MAX_PROCEDURE_VERSIONS_LISTED)),
                ],
                &VERSION_KINDS,
            )
            .await?;
        Ok(rows.iter().filter_map(|row| version_of(row)).collect())
    }

    /// Saves `version` as the merchant's next version: `false` (nothing written) when that
    /// version exists already (someone saved meanwhile), so a save never overwrites another.
    pub async fn save_procedures(&self, version: &ProcedureVersion) -> Result<bool, StoreError> {
        let written = self
            .onboarding_write_returning(
                &format!(
                    "INSERT INTO procedure_versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (merchant_id, version) DO NOTHING RETURNING version"
                ),
                vec![
                    Cell::text(&version.merchant_id),
                    Cell::int(version.version),
                    Cell::text(&version.text),
                    Cell::text(&version.saved_by),
                    Cell::int(version.saved_at),
                    Cell::text(&version.note),
                ],
                &[Kind::Int],
            )
            .await?;
        Ok(!written.is_empty())
    }

    /// Records that `user_id` acknowledged the merchant's `version` at `at`; `false` when they
    /// had acknowledged it already (the first time stands).
    pub async fn acknowledge_procedures(
        &self,
        merchant_id: &str,
        version: i64,
        user_id: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let written = self
            .onboarding_write_returning(
                "INSERT INTO procedure_acknowledgements (merchant_id, version, user_id, acknowledged_at) VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id, version, user_id) DO NOTHING RETURNING version",
                vec![
                    Cell::text(merchant_id),
                    Cell::int(version),
                    Cell::text(user_id),
                    Cell::int(at),
                ],
                &[Kind::Int],
            )
            .await?;
        Ok(!written.is_empty())
    }

    /// Every user's newest acknowledgement of the merchant's procedures (one per user who
    /// acknowledged any version).
    pub async fn procedure_acknowledgements(
        &self,
        merchant_id: &str,
    ) -> Result<Vec<Acknowledgement>, StoreError> {
        let rows = self
            .onboarding_query(
                "SELECT user_id, version, acknowledged_at FROM procedure_acknowledgements WHERE merchant_id = $1 ORDER BY user_id, version DESC",
                vec![Cell::text(merchant_id)],
                &[Kind::Text, Kind::Int, Kind::Int],
            )
            .await?;
        let mut newest: Vec<Acknowledgement> = Vec::new();
        for row in &rows {
            let (Some(user_id), Some(version), Some(acknowledged_at)) = (
                row.first().and_then(Cell::as_text),
                row.get(1).and_then(Cell::as_int),
                row.get(2).and_then(Cell::as_int),
            ) else {
                continue;
            };
            // Rows come newest version first per user: keep the first of each.
            if newest.last().is_some_and(|last| last.user_id == user_id) {
                continue;
            }
            newest.push(Acknowledgement {
                user_id: user_id.to_owned(),
                version,
                acknowledged_at,
            });
        }
        Ok(newest)
    }

    /// Whether `user_id` of `merchant_id` still has to acknowledge the current procedures
    /// (`false` when the merchant wrote none).
    pub async fn procedures_unacknowledged(
        &self,
        merchant_id: &str,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let rows = self
            .onboarding_query(
                "SELECT v.version FROM procedure_versions v WHERE v.merchant_id = $1 AND v.version = (SELECT MAX(version) FROM procedure_versions WHERE merchant_id = $1) AND NOT EXISTS (SELECT 1 FROM procedure_acknowledgements a WHERE a.merchant_id = v.merchant_id AND a.version = v.version AND a.user_id = $2)",
                vec![Cell::text(merchant_id), Cell::text(user_id)],
                &[Kind::Int],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}
