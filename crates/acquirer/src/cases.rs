//! Cases from the risk rules (issue 10): when rules alert, put up for review or decline, the
//! host hands a case to a bounded channel without waiting (`try_send`: the authorization path
//! never waits for, nor reads, the store for it), and [`write_cases`] opens it in the store in
//! the background. When the channel is full the case is dropped and counted; the journal's
//! `risk` column still has the fired rules.

use store::Store;
use store::cases::NewCase;
use tokio::sync::mpsc;

/// Cases waiting for the writer; beyond it they are dropped (and counted), never waited for.
pub const CASE_QUEUE: usize = 4_096;

/// A channel for [`crate::TerminalHandler::with_cases`] and [`write_cases`].
pub fn case_channel() -> (mpsc::Sender<NewCase>, mpsc::Receiver<NewCase>) {
    mpsc::channel(CASE_QUEUE)
}

/// Opens every case received until the senders are gone.
pub async fn write_cases(store: std::sync::Arc<Store>, mut cases: mpsc::Receiver<NewCase>) {
    while let Some(case) = cases.recv().await {
        if let Err(error) = store.open_case(case).await {
            tracing::error!(%error, "a risk case could not be opened");
        }
    }
}

/// The case of an assessment whose rules alert, review or decline; `None` when it only
/// approves (nothing fired, or rules on trial).
pub(crate) fn case_of(
    assessment: &risk::Assessment,
    merchant_id: &str,
    terminal_id: &str,
    card_id: &str,
    now_ms: i64,
) -> Option<NewCase> {
    if assessment.verdict == risk::Action::Approve {
        return None;
    }
    Some(NewCase {
        at: now_ms / 1000,
        merchant_id: merchant_id.to_owned(),
        terminal_id: terminal_id.to_owned(),
        card_id: card_id.to_owned(),
        rules: assessment.summary(),
        severity: assessment.verdict.name().to_owned(),
        rule_names: assessment
            .fired
            .iter()
            .filter(|fired| fired.action != risk::Action::Approve)
            .map(|fired| fired.rule.clone())
            .collect(),
    })
}
