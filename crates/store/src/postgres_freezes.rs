//! PostgreSQL side of [`crate::freezes`].

use super::PostgresStore;
use crate::StoreError;
use crate::freezes::{FREEZE_COLUMNS, Freeze};

impl PostgresStore {
    pub(crate) async fn freezes(&self) -> Result<Vec<Freeze>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!("SELECT {FREEZE_COLUMNS} FROM freezes ORDER BY scope, target"),
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Freeze {
                    scope: row.try_get(0)?,
                    target: row.try_get(1)?,
                    reason: row.try_get(2)?,
                    frozen_by: row.try_get(3)?,
                    frozen_at: row.try_get(4)?,
                })
            })
            .collect()
    }

    pub(crate) async fn put_freeze(&self, freeze: &Freeze) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                &format!("INSERT INTO freezes ({FREEZE_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, target) DO UPDATE SET reason = excluded.reason, frozen_by = excluded.frozen_by, frozen_at = excluded.frozen_at"),
                &[&freeze.scope, &freeze.target, &freeze.reason, &freeze.frozen_by, &freeze.frozen_at],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn delete_freeze(
        &self,
        scope: &str,
        target: &str,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let changed = client
            .execute(
                "DELETE FROM freezes WHERE scope = $1 AND target = $2",
                &[&scope, &target],
            )
            .await?;
        Ok(changed == 1)
    }
}
