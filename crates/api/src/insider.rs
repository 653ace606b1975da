//! Insider alerts to the merchant's case queue (docs/risk.md#insider-alerts): the host reads
//! the journal's new rows every 2 seconds, feeds their sales, voids and refunds with the
//! operator number to [`risk::insider::InsiderWatch`], and opens a case (severity `alert`) in
//! the merchant's queue for each alert. A repeated alert for the same operator, terminal and
//! rule counts `hits` on the open case instead of opening another.

use risk::insider::{InsiderAlert, InsiderRules, InsiderWatch, StaffAction, StaffKind};
use std::time::Duration;
use store::Store;
use store::cases::NewCase;
use store::journal::JournalEntry;

/// Journal rows one pass reads at most; a backlog is worked through on the next passes.
pub const ROWS_PER_PASS: i64 = 5_000;
/// How often the host reads the new journal rows.
pub const INSIDER_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The watch and where in the journal it is.
#[derive(Debug)]
pub struct InsiderFeed {
    watch: InsiderWatch,
    /// The id of the last journal row fed.
    after_id: i64,
    /// The risk rules version whose `[insider]` thresholds are in force (0: none read yet).
    version: i64,
}

impl InsiderFeed {
    /// A feed that starts after journal row `after_id` (the newest row at start: what came
    /// before a restart is not alerted on again).
    pub fn new(rules: InsiderRules, after_id: i64) -> Self {
        InsiderFeed {
            watch: InsiderWatch::new(rules),
            after_id,
            version: 0,
        }
    }

    /// The thresholds in force.
    pub fn rules(&self) -> &InsiderRules {
        self.watch.rules()
    }

    /// Takes the `[insider]` thresholds of the newest risk rules version when it changed
    /// (docs/risk.md#insider-alerts); a version that does not parse (none can be saved) keeps
    /// the thresholds in force.
    pub async fn follow_rules(&mut self, store: &Store) -> Result<(), store::StoreError> {
        let Some(current) = store.current_risk_rules().await? else {
            return Ok(());
        };
        if current.version == self.version {
            return Ok(());
        }
        match risk::Config::from_toml(&current.toml) {
            Ok(config) => {
                tracing::info!(
                    version = current.version,
                    "insider alerts: thresholds of this risk rules version"
                );
                self.watch.set_rules(config.insider);
            }
            Err(error) => {
                tracing::error!(%error, version = current.version, "insider alerts: the stored rules do not parse; the thresholds in force stay");
            }
        }
        self.version = current.version;
        Ok(())
    }

    /// Reads the journal's new rows and opens a case per alert; returns the cases opened.
    pub async fn pass(&mut self, store: &Store) -> Result<usize, store::StoreError> {
        self.follow_rules(store).await?;
        let rows = store.journal_after(self.after_id, ROWS_PER_PASS).await?;
        let mut opened = 0;
        for (id, entry) in rows {
            if let Some(action) = staff_action(&entry) {
                for alert in self.watch.observe(&action) {
                    // On a failure the row is read again next pass (its alert is not lost;
                    // the operator's counts may count it twice).
                    store.open_case(case(&entry, &action, &alert)).await?;
                    opened += 1;
                }
            }
            self.after_id = id;
        }
        Ok(opened)
    }
}

/// A terminal's sale, void or refund, as the insider rules see it; `None` for other messages
/// and for messages the host could not answer.
fn staff_action(entry: &JournalEntry) -> Option<StaffAction<'_>> {
    let kind = match entry.kind.as_str() {
        "Sale" => StaffKind::Sale,
        "SaleVoid" => StaffKind::Void,
        "Refund" => StaffKind::Refund,
        _ => return None,
    };
    let response = entry.response.as_deref()?;
    Some(StaffAction {
        kind,
        at_ms: entry.received_at / 1_000,
        merchant: &entry.merchant_id,
        terminal: &entry.terminal_id,
        operator: entry.operator.as_deref().unwrap_or(""),
        // The masked card: a refund refused for another card than its sale's carries no card
        // id, and the rules must see both the same way.
        card: entry.card.as_deref().unwrap_or(""),
        approved: response == "00",
    })
}

fn case(entry: &JournalEntry, action: &StaffAction<'_>, alert: &InsiderAlert) -> NewCase {
    NewCase {
        at: entry.received_at / 1_000_000,
        merchant_id: entry.merchant_id.clone(),
        terminal_id: entry.terminal_id.clone(),
        // The card matters to a refund alert; the operator rules are about the operator, so
        // their case is one per operator whatever the cards.
        card_id: match alert.rule {
            "insider-refund-unpaid-card" => entry.card_id.clone().unwrap_or_default(),
            _ => String::new(),
        },
        rules: format!("{}(alert,0): {}", alert.rule, alert.reason),
        severity: "alert".into(),
        // With merchant, terminal and card, the de-duplication key: one open case per
        // operator and rule.
        rule_names: vec![
            alert.rule.to_owned(),
            format!("operator {}", action.operator),
        ],
    }
}

/// A feed starting after the journal's newest row.
async fn start_feed(store: &Store, rules: InsiderRules) -> InsiderFeed {
    let start = match store.journal_last_id().await {
        Ok(id) => id,
        Err(error) => {
            tracing::warn!(%error, "insider alerts: cannot read the journal; they start from its beginning");
            0
        }
    };
    InsiderFeed::new(rules, start)
}

/// Runs passes every `interval` until `stop` says so; a failed pass is logged and retried.
///
/// Of several nodes sharing the store, the one that leads the job runs the passes
/// (docs/scaling.md). A node that becomes the leader starts its feed at the journal's newest
/// row, as a restarted host does: the rows between the last leader's last pass and the
/// takeover are not alerted on.
pub async fn run(
    store: std::sync::Arc<Store>,
    rules: InsiderRules,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let job = store::leader::Job::InsiderAlerts;
    let mut feed = None;
    if store.leads(job).await {
        feed = Some(start_feed(&store, rules.clone()).await);
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        if !store.leads(job).await {
            feed = None;
            continue;
        }
        let feed = match feed.as_mut() {
            Some(feed) => feed,
            None => feed.insert(start_feed(&store, rules.clone()).await),
        };
        match feed.pass(&store).await {
            Ok(0) => {}
            Ok(opened) => tracing::info!(opened, "insider alerts opened cases"),
            Err(error) => tracing::warn!(%error, "insider alerts: the pass failed; will retry"),
        }
    }
}
