//! Required password changes (issue 10): the users who must choose a new password before the
//! console or the API serve them again — everyone of a merchant after an emergency reset, and
//! a new member of staff at their first login (the password an administrator gave them is a
//! temporary one) — and the change that clears it. Statements are written
//! once (PostgreSQL's `$n`) and run through [`Store::onboarding_execute`] and
//! [`Store::onboarding_query`], so the backends cannot drift apart.

use crate::accounts::NewUser;
use crate::onboarding::{Cell, Kind, Step};
use crate::{Store, StoreError};

/// The reason recorded for a new user's first login: the password an administrator gave them
/// is a temporary one.
pub const FIRST_LOGIN_REASON: &str = "first login: change the temporary password";

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
        Ok(self.password_reset_reason(user_id).await?.is_some())
    }

    /// Why `user_id` must choose a new password first ([`FIRST_LOGIN_REASON`], or an
    /// emergency reset's reason); `None` when they need not.
    pub async fn password_reset_reason(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .onboarding_query(
                "SELECT reason FROM password_resets WHERE user_id = $1",
                vec![Cell::text(user_id)],
                &[Kind::Text],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|row| row.first())
            .and_then(Cell::as_text)
            .map(str::to_owned))
    }

    /// Creates `user` with a temporary password that they must change at their first login
    /// (a password reset with [`FIRST_LOGIN_REASON`], required by `by`), both or neither;
    /// `false` when the id or user name is taken.
    pub async fn create_user_with_temporary_password(
        &self,
        user: &NewUser,
        by: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        self.onboarding_execute(vec![
            Step::new(
                "INSERT INTO users (id, username, display_name, password_hash, role, tenant_kind, tenant_id, failed_logins, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) ON CONFLICT DO NOTHING",
                vec![
                    Cell::text(&user.id),
                    Cell::text(&user.username),
                    Cell::text(&user.display_name),
                    Cell::text(&user.password_hash),
                    Cell::text(user.role.as_str()),
                    Cell::text(user.tenant.kind().as_str()),
                    Cell::text(user.tenant.id()),
                    Cell::int(user.created_at),
                ],
            )
            .expect_one(),
            Step::new(
                "INSERT INTO password_resets (user_id, required_at, required_by, reason) VALUES ($1, $2, $3, $4)",
                vec![
                    Cell::text(&user.id),
                    Cell::int(at),
                    Cell::text(by),
                    Cell::text(FIRST_LOGIN_REASON),
                ],
            ),
        ])
        .await
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
