//! PostgreSQL side of [`crate::onboarding`]: the same statements, on the store's connection
//! for non-ledger work, a group in one transaction.

use super::PostgresStore;
use crate::StoreError;
use crate::onboarding::{Cell, Kind, Step};
use tokio_postgres::types::ToSql;

fn param(cell: &Cell) -> Box<dyn ToSql + Sync + Send> {
    match cell {
        Cell::Text(value) => Box::new(value.clone()),
        Cell::Int(value) => Box::new(*value),
    }
}

fn read(row: &tokio_postgres::Row, kinds: &[Kind]) -> Result<Vec<Cell>, StoreError> {
    kinds
        .iter()
        .enumerate()
        .map(|(index, kind)| {
            Ok(match kind {
                Kind::Text => Cell::Text(row.try_get(index)?),
                Kind::Int => Cell::Int(row.try_get(index)?),
            })
        })
        .collect()
}

impl PostgresStore {
    pub(crate) async fn onboarding_execute(&self, steps: Vec<Step>) -> Result<bool, StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        for step in &steps {
            let params: Vec<Box<dyn ToSql + Sync + Send>> = step.params.iter().map(param).collect();
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|value| value.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let changed = transaction.execute(step.sql.as_str(), &refs).await?;
            if step.expect_one && changed != 1 {
                transaction.rollback().await?;
                return Ok(false);
            }
        }
        transaction.commit().await?;
        Ok(true)
    }

    pub(crate) async fn onboarding_query(
        &self,
        sql: &str,
        params: Vec<Cell>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let client = self.other.lock().await?;
        let params: Vec<Box<dyn ToSql + Sync + Send>> = params.iter().map(param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(sql, &refs).await?;
        rows.iter().map(|row| read(row, kinds)).collect()
    }
}
