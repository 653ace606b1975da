//! Signing receipts in batches: one Ed25519 signature for the approvals that are answered
//! together.
//!
//! A group commit releases many approvals at the same moment, and each would otherwise pay for
//! its own signature (a base-point multiplication, tens of microseconds). [`ReceiptBatcher`]
//! hands the statements to one task that takes whatever has queued up, lets the approvals
//! released with them queue too (it yields to the scheduler while more keep arriving), and
//! signs up to [`receipt::MAX_BATCH`] at a time with [`ReceiptKeys::sign_batch`]. Alone, a
//! statement is signed at once as version 1, so a quiet shop's receipts keep the short form.

use crate::receipt::{self, Statement};
use crate::signer::{ReceiptError, ReceiptKeys};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use tokio::sync::{mpsc, oneshot};

/// How many times the task yields while more statements keep arriving before it signs.
const MAX_YIELDS: usize = 4;

type Pending = (Statement, oneshot::Sender<Result<String, ReceiptError>>);

/// Signs statements in batches, in a task started on first use (so it can be made outside a
/// runtime). Cheap to share behind an `Arc`.
pub struct ReceiptBatcher {
    keys: Arc<ReceiptKeys>,
    queue: OnceLock<mpsc::UnboundedSender<Pending>>,
    counts: Arc<Counts>,
}

/// Statements signed, and the signatures that took.
#[derive(Debug, Default)]
struct Counts {
    statements: AtomicU64,
    signatures: AtomicU64,
}

/// How well the batches are filling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchStats {
    pub statements: u64,
    pub signatures: u64,
}

impl std::fmt::Debug for ReceiptBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptBatcher").finish_non_exhaustive()
    }
}

impl ReceiptBatcher {
    pub fn new(keys: Arc<ReceiptKeys>) -> Self {
        Self {
            keys,
            queue: OnceLock::new(),
            counts: Arc::default(),
        }
    }

    /// Statements signed so far, and the signatures they took.
    pub fn stats(&self) -> BatchStats {
        BatchStats {
            statements: self.counts.statements.load(Ordering::Relaxed),
            signatures: self.counts.signatures.load(Ordering::Relaxed),
        }
    }

    /// The keys it signs with.
    pub fn keys(&self) -> &Arc<ReceiptKeys> {
        &self.keys
    }

    /// Signs `statement` (its key id is set here) and returns its QR payload: version 1 when
    /// it was signed alone, version 2 with its proof when in a batch.
    pub async fn sign(&self, statement: Statement) -> Result<String, ReceiptError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            // The task holds the keys weakly: dropping the batcher (and with it the last
            // strong hold on the keys, and through them on the store) frees them at once,
            // not whenever the task next runs, so a shutdown can close the store.
            tokio::spawn(run(
                Arc::downgrade(&self.keys),
                receiver,
                self.counts.clone(),
            ));
            sender
        });
        let (reply, answer) = oneshot::channel();
        queue
            .send((statement, reply))
            .map_err(|_| ReceiptError::Batch("the signing task has stopped".into()))?;
        answer
            .await
            .map_err(|_| ReceiptError::Batch("the signing task has stopped".into()))?
    }
}

async fn run(
    keys: Weak<ReceiptKeys>,
    mut queue: mpsc::UnboundedReceiver<Pending>,
    counts: Arc<Counts>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        for _ in 0..MAX_YIELDS {
            if batch.len() >= receipt::MAX_BATCH {
                break;
            }
            // The approvals released with this one run now, and queue their statements.
            tokio::task::yield_now().await;
            let before = batch.len();
            while batch.len() < receipt::MAX_BATCH {
                match queue.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
            if batch.len() == before {
                break;
            }
        }
        let (statements, replies): (Vec<Statement>, Vec<_>) = batch.into_iter().unzip();
        let Some(keys) = keys.upgrade() else {
            // The batcher is gone: nobody will send more, and no key is left to sign with.
            for reply in replies {
                let _ = reply.send(Err(ReceiptError::Batch(
                    "the receipt keys were dropped".into(),
                )));
            }
            return;
        };
        counts
            .statements
            .fetch_add(statements.len() as u64, Ordering::Relaxed);
        counts.signatures.fetch_add(1, Ordering::Relaxed);
        for (reply, payload) in replies.into_iter().zip(keys.sign_batch(statements)) {
            // A waiter that gave up (its deadline passed) no longer needs the payload.
            let _ = reply.send(payload);
        }
    }
}
