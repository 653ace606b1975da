//! The journal's own writer on PostgreSQL: one connection and one task that append the rows
//! of every handler waiting at that moment in one statement (group commit), as the ledger's
//! writer does for transfers. Each caller is answered after the commit, so "in the journal
//! before the answer leaves" still holds; a message costs a share of one commit instead of a
//! transaction of its own on the pooled connections the reads need. A lost connection fails
//! the group in flight (its handlers answer 96) and is opened again before the next group
//! (`postgres_connection.rs`).

use super::Reply;
use super::connection::{Prepare, Redial, Session, lost_reason};
use crate::StoreError;
use crate::group::take_waiting;
use crate::journal::{JOURNAL_COLUMNS, JournalEntry};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Statement};

/// Journal writes waiting for the writer (back-pressure beyond this).
const QUEUE_CAPACITY: usize = 16_384;
/// Most journal rows in one statement.
const MAX_GROUP_ROWS: usize = 4_096;

/// Every column as one array parameter: the statement's text is the same for one row or a
/// thousand, so it is prepared once and each group is a single round trip.
fn insert_sql() -> String {
    format!(
        "INSERT INTO journal ({JOURNAL_COLUMNS}) SELECT * FROM UNNEST(\
         $1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::int8[], $9::int8[], $10::text[], $11::int8[], $12::int8[], $13::text[], \
         $14::int8[], $15::int8[], $16::text[], $17::text[], $18::text[], $19::bytea[], \
         $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], $25::text[])"
    )
}

/// The insert, prepared on each connection the writer opens.
struct Insert(Statement);

impl Prepare for Insert {
    async fn prepare(client: &Client) -> Result<Insert, StoreError> {
        Ok(Insert(client.prepare(&insert_sql()).await?))
    }
}

struct Job {
    entries: Vec<JournalEntry>,
    reply: Reply<()>,
}

/// The sending side, kept by the store.
#[derive(Debug)]
pub(crate) struct JournalWriter {
    jobs: Option<mpsc::Sender<Job>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl JournalWriter {
    /// Connects the writer's own connection, prepares its statement and starts the task.
    pub(crate) async fn start(
        url: &str,
        statement_timeout_ms: u64,
    ) -> Result<JournalWriter, StoreError> {
        let session = Session::new(url, "easypos journal", statement_timeout_ms, "");
        let link = Redial::open(session).await?;
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(run(link, receiver));
        Ok(JournalWriter {
            jobs: Some(sender),
            task: Some(task),
        })
    }

    /// Appends `entries` with whatever else is waiting; returns once they are committed.
    pub(crate) async fn append(&self, entries: Vec<JournalEntry>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let jobs = self.jobs.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        jobs.send(Job { entries, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops taking writes and waits for the ones queued to be committed.
    pub(crate) async fn close(&mut self) -> Result<(), StoreError> {
        drop(self.jobs.take());
        if let Some(task) = self.task.take() {
            task.await.map_err(|error| {
                StoreError::Write(format!("the journal writer task failed: {error}"))
            })?;
        }
        Ok(())
    }
}

async fn run(mut link: Redial<Insert>, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let (group, _) = take_waiting(first, &mut jobs, |job| job.entries.len(), MAX_GROUP_ROWS);
        let entries: Vec<&JournalEntry> = group.iter().flat_map(|job| &job.entries).collect();
        let written = match link.ready().await {
            Ok((client, insert)) => write(client, insert, &entries).await,
            Err(error) => Err(error),
        };
        match written {
            Ok(()) => {
                for job in group {
                    drop(job.reply.send(Ok(())));
                }
            }
            // Lost with its connection (committed or not): not written again, so never twice.
            Err(error) if link.lost(&error) => {
                let error = lost_reason(&error);
                tracing::warn!(%error, "the journal writer lost its connection; the next group reconnects");
                let message = format!(
                    "the connection was lost during the journal write, which may or may not have committed: {error}"
                );
                fail(group, StoreError::Unavailable, &message);
            }
            Err(StoreError::Unavailable(message)) => fail(group, StoreError::Unavailable, &message),
            // One caller's rows must not fail the others': each alone, so only a bad one fails.
            Err(_) if group.len() > 1 => {
                for job in group {
                    let entries: Vec<&JournalEntry> = job.entries.iter().collect();
                    let result = match link.ready().await {
                        Ok((client, insert)) => write(client, insert, &entries).await,
                        Err(error) => Err(error),
                    };
                    if let Err(error) = &result {
                        link.lost(error);
                    }
                    drop(job.reply.send(result));
                }
            }
            Err(error) => fail(group, StoreError::Write, &format!("journal: {error}")),
        }
    }
    tracing::debug!("postgres journal writer drained and stopped");
}

fn fail(group: Vec<Job>, error: fn(String) -> StoreError, message: &str) {
    for job in group {
        drop(job.reply.send(Err(error(message.to_owned()))));
    }
}

/// One statement, so one implicit transaction: all the rows or none.
async fn write(
    client: &Client,
    Insert(insert): &Insert,
    entries: &[&JournalEntry],
) -> Result<(), StoreError> {
    fn column<'a, T>(entries: &[&'a JournalEntry], pick: impl Fn(&'a JournalEntry) -> T) -> Vec<T> {
        entries.iter().map(|entry| pick(entry)).collect()
    }
    client
        .execute(
            insert,
            &[
                &column(entries, |entry| entry.received_at),
                &column(entries, |entry| entry.duration_us),
                &column(entries, |entry| entry.peer.as_str()),
                &column(entries, |entry| entry.terminal_id.as_str()),
                &column(entries, |entry| entry.merchant_id.as_str()),
                &column(entries, |entry| entry.mti.as_str()),
                &column(entries, |entry| entry.kind.as_str()),
                &column(entries, |entry| entry.batch),
                &column(entries, |entry| entry.stan),
                &column(entries, |entry| entry.transmission.as_deref()),
                &column(entries, |entry| entry.amount_minor),
                &column(entries, |entry| entry.currency),
                &column(entries, |entry| entry.card.as_deref()),
                &column(entries, |entry| entry.original_batch),
                &column(entries, |entry| entry.original_stan),
                &column(entries, |entry| entry.response.as_deref()),
                &column(entries, |entry| entry.rrn.as_deref()),
                &column(entries, |entry| entry.auth_code.as_deref()),
                &column(entries, |entry| entry.answer.as_deref()),
                &column(entries, |entry| entry.request_mac.as_deref()),
                &column(entries, |entry| entry.risk.as_deref()),
                &column(entries, |entry| entry.card_id.as_deref()),
                &column(entries, |entry| entry.operator.as_deref()),
                &column(entries, |entry| entry.entry_mode.as_deref()),
                &column(entries, |entry| entry.card_verification.as_deref()),
            ],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JOURNAL_COLUMN_COUNT;

    #[test]
    fn the_insert_has_one_array_per_column() {
        let sql = insert_sql();
        assert_eq!(sql.matches("[]").count(), JOURNAL_COLUMN_COUNT);
        assert!(sql.contains(&format!("${JOURNAL_COLUMN_COUNT}::")));
        assert!(!sql.contains(&format!("${}::", JOURNAL_COLUMN_COUNT + 1)));
    }
}
