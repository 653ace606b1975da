//! Insider alerts (issue 10, R16): what a merchant's own staff do at the terminal, watched per
//! operator number (the cashier signed on), for the merchant's admin. Like the engine, pure: the
//! caller feeds the journal's sales, voids and refunds in order with their times.
//!
//! | rule | fires when |
//! |---|---|
//! | `insider-refund-unpaid-card` | a refund (approved or not) to a card with no approved sale at the merchant within `paid_window_secs` |
//! | `insider-undo-spike` | an operator's voids and refunds at a merchant within `spike_window_secs` exceed `spike_max` |
//! | `insider-quick-voids` | an operator made `quick_void_max` voids within `spike_window_secs`, each within `quick_void_secs` of that operator's own approved sale on the same card |
//! | `insider-after-hours` | an operator's sale, void or refund outside `open`–`close` local time |
//!
//! ```
//! use risk::insider::{InsiderRules, InsiderWatch, StaffAction, StaffKind};
//! let mut watch = InsiderWatch::new(InsiderRules::default());
//! let noon_ms = 1_800_000_000_000 - (1_800_000_000_000 % 86_400_000) + 4 * 3_600_000;
//! let refund = StaffAction {
//!     kind: StaffKind::Refund, at_ms: noon_ms, merchant: "898310058120001",
//!     terminal: "10000001", operator: "01", card: "622202******1234", approved: true,
//! };
//! let alerts = watch.observe(&refund);
//! assert_eq!(alerts[0].rule, "insider-refund-unpaid-card");
//! ```

use std::collections::{HashMap, VecDeque};

/// Cards remembered as having paid at a merchant. When full, those older than the window go,
/// and if that is not enough all are forgotten: a refund of a forgotten card's sale then
/// alerts (an alert too many, which the admin checks against the journal; never one missed).
pub const MAX_PAID_CARDS: usize = 1_000_000;
/// Operators (per merchant) remembered; when full, idle ones go.
pub const MAX_OPERATORS: usize = 100_000;
/// Events kept per operator and kind: a count saturates here.
pub const MAX_EVENTS_PER_OPERATOR: usize = 256;

/// The rules' settings. [`InsiderRules::default`] gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsiderRules {
    pub paid_window_secs: i64,
    pub spike_window_secs: i64,
    pub spike_max: usize,
    pub quick_void_secs: i64,
    pub quick_void_max: usize,
    /// Business hours, minutes of the local day (`open` after `close` spans midnight).
    pub open_minute: u16,
    pub close_minute: u16,
    pub utc_offset_minutes: i32,
}

impl Default for InsiderRules {
    fn default() -> Self {
        InsiderRules {
            // A refund is usually of a purchase within weeks; 30 days bounds the memory.
            paid_window_secs: 30 * 86_400,
            spike_window_secs: 3_600,
            spike_max: 5,
            quick_void_secs: 120,
            quick_void_max: 3,
            open_minute: 7 * 60,
            close_minute: 23 * 60 + 30,
            utc_offset_minutes: 480,
        }
    }
}

/// What the operator did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaffKind {
    Sale,
    Void,
    Refund,
}

/// One sale, void or refund keyed at a terminal.
#[derive(Clone, Copy, Debug)]
pub struct StaffAction<'a> {
    pub kind: StaffKind,
    pub at_ms: i64,
    pub merchant: &'a str,
    pub terminal: &'a str,
    /// The operator number; empty when unknown (only the refund rule applies then).
    pub operator: &'a str,
    /// The card as the journal keeps it (masked, or the directory's card id): never a number.
    pub card: &'a str,
    pub approved: bool,
}

/// An alert for the merchant's admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsiderAlert {
    pub rule: &'static str,
    pub reason: String,
}

#[derive(Debug, Default)]
struct OperatorState {
    last_ms: i64,
    /// Approved sales: (when, card hash).
    sales: VecDeque<(i64, u64)>,
    /// Voids and refunds, approved or not.
    undos: VecDeque<i64>,
    /// Voids soon after the operator's own sale on the card.
    quick_voids: VecDeque<i64>,
}

/// The insider rules and what they remember.
#[derive(Debug)]
pub struct InsiderWatch {
    rules: InsiderRules,
    /// Last approved sale per (merchant, card).
    paid: HashMap<u64, i64>,
    operators: HashMap<u64, OperatorState>,
}

fn hash(parts: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut hasher);
    hasher.finish()
}

fn push_bounded<T>(events: &mut VecDeque<T>, event: T) {
    if events.len() == MAX_EVENTS_PER_OPERATOR {
        events.pop_front();
    }
    events.push_back(event);
}

fn drop_before<T>(events: &mut VecDeque<T>, since_ms: i64, at: impl Fn(&T) -> i64) {
    while events.front().is_some_and(|event| at(event) < since_ms) {
        events.pop_front();
    }
}

impl InsiderWatch {
    pub fn new(rules: InsiderRules) -> Self {
        InsiderWatch {
            rules,
            paid: HashMap::new(),
            operators: HashMap::new(),
        }
    }

    /// Puts `rules` in force from the next action on, keeping what the watch remembers (a
    /// window that grew sees only what the old one kept until it fills).
    pub fn set_rules(&mut self, rules: InsiderRules) {
        self.rules = rules;
    }

    pub fn rules(&self) -> &InsiderRules {
        &self.rules
    }

    /// Learns `action` and returns the alerts it raises.
    pub fn observe(&mut self, action: &StaffAction<'_>) -> Vec<InsiderAlert> {
        let rules = self.rules.clone();
        let mut alerts = Vec::new();
        let card = hash(&[action.merchant, action.card]);
        let since = |secs: i64| action.at_ms.saturating_sub(secs.saturating_mul(1000));
        if action.kind == StaffKind::Refund {
            let paid = self
                .paid
                .get(&card)
                .is_some_and(|at| *at >= since(rules.paid_window_secs));
            if !paid {
                alerts.push(InsiderAlert {
                    rule: "insider-refund-unpaid-card",
                    reason: format!(
                        "refund {}by operator {} to a card with no approved sale at the merchant in {} days",
                        if action.approved { "" } else { "attempt " },
                        operator_label(action.operator),
                        rules.paid_window_secs / 86_400
                    ),
                });
            }
        }
        if action.kind == StaffKind::Sale && action.approved {
            self.remember_paid(card, action.at_ms);
        }
        if action.operator.is_empty() {
            return alerts;
        }
        if let Some(reason) = self.outside_hours(action.at_ms) {
            alerts.push(InsiderAlert {
                rule: "insider-after-hours",
                reason: format!(
                    "{} by operator {} {reason}",
                    kind_name(action.kind),
                    action.operator
                ),
            });
        }
        let operator = self.operator(action);
        let spike_since = since(rules.spike_window_secs);
        drop_before(&mut operator.undos, spike_since, |at| *at);
        drop_before(&mut operator.quick_voids, spike_since, |at| *at);
        drop_before(&mut operator.sales, since(rules.quick_void_secs), |sale| {
            sale.0
        });
        match action.kind {
            StaffKind::Sale => {
                if action.approved {
                    push_bounded(&mut operator.sales, (action.at_ms, card));
                }
            }
            StaffKind::Void | StaffKind::Refund => {
                push_bounded(&mut operator.undos, action.at_ms);
                if operator.undos.len() > rules.spike_max {
                    alerts.push(InsiderAlert {
                        rule: "insider-undo-spike",
                        reason: format!(
                            "{} voids and refunds by operator {} in {} s (at most {})",
                            operator.undos.len(),
                            action.operator,
                            rules.spike_window_secs,
                            rules.spike_max
                        ),
                    });
                }
                let after_own_sale = operator.sales.iter().any(|(_, sold)| *sold == card);
                if action.kind == StaffKind::Void && after_own_sale {
                    push_bounded(&mut operator.quick_voids, action.at_ms);
                    if operator.quick_voids.len() >= rules.quick_void_max {
                        alerts.push(InsiderAlert {
                            rule: "insider-quick-voids",
                            reason: format!(
                                "{} voids by operator {} within {} s of their own sale on the card, in {} s",
                                operator.quick_voids.len(),
                                action.operator,
                                rules.quick_void_secs,
                                rules.spike_window_secs
                            ),
                        });
                    }
                }
            }
        }
        alerts
    }

    fn remember_paid(&mut self, card: u64, at_ms: i64) {
        if self.paid.len() >= MAX_PAID_CARDS && !self.paid.contains_key(&card) {
            let since = at_ms.saturating_sub(self.rules.paid_window_secs.saturating_mul(1000));
            self.paid.retain(|_, at| *at >= since);
            if self.paid.len() >= MAX_PAID_CARDS {
                self.paid.clear();
            }
        }
        self.paid.insert(card, at_ms);
    }

    fn operator(&mut self, action: &StaffAction<'_>) -> &mut OperatorState {
        let key = hash(&[action.merchant, action.operator]);
        if self.operators.len() >= MAX_OPERATORS && !self.operators.contains_key(&key) {
            let idle = action
                .at_ms
                .saturating_sub(self.rules.spike_window_secs.saturating_mul(1000));
            self.operators.retain(|_, state| state.last_ms >= idle);
            if self.operators.len() >= MAX_OPERATORS {
                self.operators.clear();
            }
        }
        let state = self.operators.entry(key).or_default();
        state.last_ms = action.at_ms;
        state
    }

    /// `Some("at 02:10 local, outside 07:00-23:30")` outside business hours.
    fn outside_hours(&self, at_ms: i64) -> Option<String> {
        let (open, close) = (self.rules.open_minute, self.rules.close_minute);
        let minute = (at_ms.div_euclid(60_000) + i64::from(self.rules.utc_offset_minutes))
            .rem_euclid(1440) as u16;
        let inside = if open < close {
            (open..close).contains(&minute)
        } else {
            minute >= open || minute < close
        };
        (!inside).then(|| {
            format!(
                "at {:02}:{:02} local, outside business hours {:02}:{:02}-{:02}:{:02}",
                minute / 60,
                minute % 60,
                open / 60,
                open % 60,
                close / 60,
                close % 60
            )
        })
    }
}

fn kind_name(kind: StaffKind) -> &'static str {
    match kind {
        StaffKind::Sale => "sale",
        StaffKind::Void => "void",
        StaffKind::Refund => "refund",
    }
}

fn operator_label(operator: &str) -> &str {
    if operator.is_empty() {
        "unknown"
    } else {
        operator
    }
}

/// Supervisors (per merchant) whose terminals are remembered; when full, all are forgotten
/// (their next use at a new terminal is then not alerted: the history starts again).
pub const MAX_SUPERVISORS: usize = 100_000;
/// Terminals remembered per supervisor: the usual ones.
pub const MAX_TERMINALS_PER_SUPERVISOR: usize = 16;

/// Where each supervisor's terminal password is used (`insider-supervisor-unusual-terminal`):
/// a void or refund allowed by a supervisor's password, keyed at a terminal where that
/// password was never used before, while another operator (a cashier) is signed on there,
/// alerts, once the supervisor has a history elsewhere. The host feeds it every void or refund
/// whose supervisor password it checked, keeps each terminal new to a supervisor in the store
/// (table `supervisor_terminals`), and teaches them back with [`SupervisorWatch::remember`] at
/// start, so that a restart does not forget the usual terminals.
#[derive(Debug, Default)]
pub struct SupervisorWatch {
    terminals: HashMap<u64, Vec<String>>,
}

impl SupervisorWatch {
    /// Whether `supervisor`'s password allowed something at `terminal` before (a terminal the
    /// watch would not learn again).
    pub fn knows(&self, merchant: &str, supervisor: &str, terminal: &str) -> bool {
        self.terminals
            .get(&hash(&[merchant, supervisor]))
            .is_some_and(|known| known.iter().any(|seen| seen == terminal))
    }

    /// Learns a usual terminal of `supervisor` without alerting (the history read at start,
    /// oldest first).
    pub fn remember(&mut self, merchant: &str, supervisor: &str, terminal: &str) {
        // The supervisor themself signed on: never an alert, always learnt.
        let _quiet = self.observe(merchant, supervisor, terminal, supervisor);
    }

    /// Learns that `supervisor`'s password allowed an undo at `terminal` while `operator` was
    /// signed on there; the alert when that is unusual.
    pub fn observe(
        &mut self,
        merchant: &str,
        supervisor: &str,
        terminal: &str,
        operator: &str,
    ) -> Option<InsiderAlert> {
        if self.terminals.len() >= MAX_SUPERVISORS {
            self.terminals.clear();
        }
        let known = self
            .terminals
            .entry(hash(&[merchant, supervisor]))
            .or_default();
        if known.iter().any(|seen| seen == terminal) {
            return None;
        }
        let usual = known.join(", ");
        let alert = (!known.is_empty() && operator != supervisor).then(|| InsiderAlert {
            rule: "insider-supervisor-unusual-terminal",
            reason: format!(
                "supervisor {supervisor}'s password allowed a void or refund at terminal {terminal}, where operator {operator} is signed on; it was used before only at {usual}"
            ),
        });
        if known.len() == MAX_TERMINALS_PER_SUPERVISOR {
            known.remove(0);
        }
        known.push(terminal.to_owned());
        alert
    }
}
