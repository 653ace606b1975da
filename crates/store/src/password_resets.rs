//! Emergency password resets (issue 10): the users who must choose a new password before the
//! console or the API serve them again, and the change that clears it. Statements are written
//! once (PostgreSQL's `$n`) and run through [`Store::onboarding_execute`] and
//! [`Store::onboarding_query`], so the backends cannot drift apart.

use crate::onboarding::{Cell, Kind, Step};
use crate::{Store, StoreError};

impl Store {
    /// Requires each of `user_ids` to choose a new password (a reset already required keeps
    /// its first time and reason); returns how many were newly required.
    pub async fn require_password_resets(
        &self,
        user_ids: &[String],
        by: &str,
        reason: &str,
        at: i64,
    ) -> Result<usize, StoreError> {
        let mut newly = 0;
        for user_id in user_ids {
            let rows = self
                .onboarding_write_returning(
                    "INSERT INTO password_resets (user_id, required_at, required_by, reason) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
                    vec![Cell::text(user_id), Cell::int(at), Cell::text(by), Cell::text(reason)],
                    &[Kind::Text],
                )
                .await?;
            newly += rows.len();
        }
        Ok(newly)
    }

    /// Whether `user_id` must choose a new password first.
    pub async fn password_reset_required(&self, user_id: &str) -> Result<bool, StoreError> {
        Ok(!self
            .onboarding_query(
                "SELECT user_id FROM password_resets WHERE user_id = $1",
                vec![Cell::text(user_id)],
                &[Kind::Text],
            )
            .await?
            .is_empty())
    }

    /// Sets `user_id`'s password hash (from [`crate::accounts::hash_password`]) and clears a
    /// required reset, together; `false` when there is no such user.
    pub async fn change_password(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.onboarding_execute(vec![
            Step::new(
                "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL WHERE id = $1",
                vec![Cell::text(user_id), Cell::text(password_hash)],
            )
            .expect_one(),
            Step::new(
                "DELETE FROM password_resets WHERE user_id = $1",
                vec![Cell::text(user_id)],
            ),
        ])
        .await
    }
}
