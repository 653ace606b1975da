//! Evaluation: every rule against the windows, under one short lock.

use crate::config::{Check, Config, Rule, Scope};
use crate::state::{Event, State, key};
use crate::{Action, Authorization, Entry, Kind, Outcome, ResponseCode2};
use std::sync::{Arc, Mutex, RwLock};

/// The engine's answer for an authorization: the strongest action of the rules that fired
/// (or a decline when their scores reach `decline_score`).
pub type Verdict = Action;

/// A rule that fired, and why, for the journal and the transaction's detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub rule: String,
    pub action: Action,
    pub score: u32,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub verdict: Verdict,
    /// The fired rules' scores, added up.
    pub score: u32,
    pub fired: Vec<Fired>,
}

impl Assessment {
    pub fn decline_code(&self) -> Option<ResponseCode2> {
        match self.verdict {
            Action::Decline(code) => Some(code),
            _ => None,
        }
    }

    /// The fired rules in one line, `name(action,score): reason; …`, for the journal.
    pub fn summary(&self) -> String {
        self.fired
            .iter()
            .map(|fired| {
                format!(
                    "{}({},{}): {}",
                    fired.rule,
                    fired.action.name(),
                    fired.score,
                    fired.reason
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The rules and what they remember. Shared by the host's tasks: evaluation takes one lock for
/// a few hundred nanoseconds.
#[derive(Debug)]
pub struct Engine {
    /// The rules in force, replaced whole by [`Engine::replace_rules`] while the windows stay.
    rules: RwLock<Arc<Rules>>,
    state: Mutex<State>,
}

/// One set of rules and what follows from it.
#[derive(Debug)]
struct Rules {
    config: Arc<Config>,
    retention_ms: i64,
    /// The stored version these rules are (0: not from the store: a file or the demo rules).
    version: i64,
}

impl Rules {
    fn new(config: Config, version: i64) -> Rules {
        let retention_ms = (config.retention_secs() as i64).saturating_mul(1000);
        Rules {
            config: Arc::new(config),
            retention_ms,
            version,
        }
    }
}

impl Engine {
    pub fn new(config: Config) -> Engine {
        Self::with_caps(
            config,
            (
                crate::state::MAX_CARDS,
                crate::state::MAX_TERMINALS,
                crate::state::MAX_MERCHANTS,
            ),
        )
    }

    /// An engine remembering at most `caps` (cards, terminals, merchants); for tests of the caps.
    pub fn with_caps(config: Config, caps: (usize, usize, usize)) -> Engine {
        Engine {
            rules: RwLock::new(Arc::new(Rules::new(config, 0))),
            state: Mutex::new(State::new(caps)),
        }
    }

    fn rules(&self) -> Arc<Rules> {
        self.rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The rules in force.
    pub fn config(&self) -> Arc<Config> {
        self.rules().config.clone()
    }

    /// The stored version of the rules in force (0 when they came from a file or the demo).
    pub fn rules_version(&self) -> i64 {
        self.rules().version
    }

    /// Puts `config` (stored as `version`) in force from the next authorization on, keeping
    /// what the engine remembers. A longer window than before sees only what the old rules
    /// kept (their longest window) until it fills.
    pub fn replace_rules(&self, config: Config, version: i64) {
        *self
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(Rules::new(config, version));
    }

    /// Keys remembered now: (cards, terminals, merchants).
    pub fn remembered(&self) -> (usize, usize, usize) {
        let state = self.lock();
        (
            state.cards.len(),
            state.terminals.len(),
            state.merchants.len(),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves windows that are still consistent
        // enough for risk scoring: go on with them.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Evaluates every rule for `authorization` at `now_ms` (Unix milliseconds), then
    /// remembers it.
    pub fn evaluate(&self, authorization: &Authorization<'_>, now_ms: i64) -> Assessment {
        let card = key(authorization.card);
        let terminal = key(authorization.terminal);
        let merchant = key(authorization.merchant);
        let rules = self.rules();
        let config = &*rules.config;
        let since_ms = now_ms.saturating_sub(rules.retention_ms);
        let mut state = self.lock();
        let State {
            cards,
            terminals,
            merchants,
        } = &mut *state;
        let card_state = &*cards.touch(card, now_ms, since_ms);
        let terminal_state = terminals.get(terminal);
        let mut fired = Vec::new();
        let mut score = 0u32;
        let mut verdict = Action::Approve;
        for rule in &config.rules {
            let reason = match &rule.check {
                Check::Velocity { scope, .. } => {
                    let place = match scope {
                        Scope::Card => None,
                        Scope::Terminal => terminal_state,
                        Scope::Merchant => merchants.get(merchant),
                    };
                    let events = match (scope, place) {
                        (Scope::Card, _) => Some(&card_state.attempts),
                        (_, place) => place.map(|place| &place.attempts),
                    };
                    velocity(rule, authorization, events, now_ms)
                }
                _ => check(
                    config,
                    rule,
                    authorization,
                    card_state,
                    terminal_state,
                    now_ms,
                ),
            };
            if let Some(reason) = reason {
                score = score.saturating_add(rule.score);
                if rule.action.strength() > verdict.strength() {
                    verdict = rule.action;
                }
                fired.push(Fired {
                    rule: rule.name.clone(),
                    action: rule.action,
                    score: rule.score,
                    reason,
                });
            }
        }
        if let Some(threshold) = config.decline_score
            && score >= threshold
            && !matches!(verdict, Action::Decline(_))
        {
            verdict = Action::Decline(config.decline_code);
        }

        // Remember it. A refund or void is not a purchase attempt.
        if authorization.kind.is_purchase() {
            let event = Event {
                at_ms: now_ms,
                amount_minor: authorization.amount_minor,
                card,
                merchant,
            };
            let card_state = cards.touch(card, now_ms, since_ms);
            card_state.first_seen_ms.get_or_insert(now_ms);
            card_state.attempts.push(event);
            terminals
                .touch(terminal, now_ms, since_ms)
                .attempts
                .push(event);
            merchants
                .touch(merchant, now_ms, since_ms)
                .attempts
                .push(event);
        }
        Assessment {
            verdict,
            score,
            fired,
        }
    }

    /// Rebuilds the windows after a restart from what the journal says happened at `at_ms`:
    /// the purchase attempt as [`Engine::evaluate`] remembers it (without running the rules),
    /// then its outcome as [`Engine::record`] learns it. Replay the journal's rows of the last
    /// [`Engine::retention_secs`] oldest first.
    pub fn replay(&self, authorization: &Authorization<'_>, outcome: &Outcome<'_>, at_ms: i64) {
        if authorization.kind.is_purchase() {
            let card = key(authorization.card);
            let merchant = key(authorization.merchant);
            let since_ms = at_ms.saturating_sub(self.rules().retention_ms);
            let event = Event {
                at_ms,
                amount_minor: authorization.amount_minor,
                card,
                merchant,
            };
            let mut state = self.lock();
            let card_state = state.cards.touch(card, at_ms, since_ms);
            card_state.first_seen_ms.get_or_insert(at_ms);
            card_state.attempts.push(event);
            state
                .terminals
                .touch(key(authorization.terminal), at_ms, since_ms)
                .attempts
                .push(event);
            state
                .merchants
                .touch(merchant, at_ms, since_ms)
                .attempts
                .push(event);
        }
        self.record(outcome, at_ms);
    }

    /// How far back the windows reach: the longest window of any rule, in seconds.
    pub fn retention_secs(&self) -> i64 {
        self.rules().retention_ms / 1000
    }

    /// Learns what became of an authorization: approvals make the card's history, declines
    /// feed card testing, wrong PINs the PIN rule.
    pub fn record(&self, outcome: &Outcome<'_>, now_ms: i64) {
        let card = key(outcome.card);
        let merchant = key(outcome.merchant);
        let since_ms = now_ms.saturating_sub(self.rules().retention_ms);
        let event = Event {
            at_ms: now_ms,
            amount_minor: outcome.amount_minor,
            card,
            merchant,
        };
        let mut state = self.lock();
        let card_state = state.cards.touch(card, now_ms, since_ms);
        if outcome.wrong_pin {
            card_state.wrong_pins.push(event);
        }
        let purchase = matches!(outcome.kind, Kind::Sale | Kind::PreAuthorization);
        if outcome.approved && purchase {
            card_state.approved.push(event);
        }
        if !outcome.approved {
            state
                .terminals
                .touch(key(outcome.terminal), now_ms, since_ms)
                .declines
                .push(event);
        }
    }
}

/// The rules other than velocity. `None` when the rule does not fire.
fn check(
    config: &Config,
    rule: &Rule,
    authorization: &Authorization<'_>,
    card: &crate::state::CardState,
    terminal: Option<&crate::state::PlaceState>,
    now_ms: i64,
) -> Option<String> {
    let purchase = authorization.kind.is_purchase();
    let amount = authorization.amount_minor;
    let since = |window_secs: u64| now_ms.saturating_sub((window_secs as i64).saturating_mul(1000));
    match &rule.check {
        Check::Velocity { .. } => None,
        Check::AmountAnomaly {
            window_secs,
            min_history,
            factor_percent,
            min_amount_minor,
        } if purchase && amount >= *min_amount_minor => {
            let (count, total) = card
                .approved
                .since(since(*window_secs))
                .fold((0i128, 0i128), |(count, total), event| {
                    (count + 1, total + i128::from(event.amount_minor))
                });
            // amount > average × factor / 100, in integers: amount × count × 100 > total × factor.
            (count >= i128::from(*min_history)
                    && i128::from(amount) * count * 100 > total * i128::from(*factor_percent))
                .then(|| {
                    format!(
                        "amount {amount} is above {factor_percent}% of the card's average {} over {count} approvals",
                        total / count.max(1)
                    )
                })
        }
        Check::CardTesting {
            window_secs,
            distinct_cards,
            small_amount_minor,
        } if purchase => {
            let this = key(authorization.card);
            let mut cards: Vec<u64> = Vec::new();
            if amount <= *small_amount_minor {
                cards.push(this);
            }
            let from = since(*window_secs);
            let events = terminal.into_iter().flat_map(|place| {
                place
                    .attempts
                    .since(from)
                    .filter(|event| event.amount_minor <= *small_amount_minor)
                    .chain(place.declines.since(from))
            });
            for event in events {
                if cards.len() >= *distinct_cards as usize {
                    break;
                }
                if !cards.contains(&event.card) {
                    cards.push(event.card);
                }
            }
            // Only when this authorization is itself small or from a card seen testing.
            (cards.len() >= *distinct_cards as usize && cards.contains(&this)).then(|| {
                    format!(
                        "{} cards with small or declined authorizations at the terminal in {window_secs} s",
                        cards.len()
                    )
                })
        }
        Check::NewCard {
            window_secs,
            min_amount_minor,
        } if purchase && amount >= *min_amount_minor => {
            let new = card
                .first_seen_ms
                .is_none_or(|first| first >= since(*window_secs));
            new.then(|| {
                format!("amount {amount} on a card first seen less than {window_secs} s ago")
            })
        }
        Check::BusinessHours { open, close } => {
            let minute = (now_ms.div_euclid(60_000) + i64::from(config.utc_offset_minutes))
                .rem_euclid(1440) as u16;
            let inside = if open < close {
                (*open..*close).contains(&minute)
            } else {
                minute >= *open || minute < *close
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
        Check::Mcc { mccs } => mccs
            .contains(&authorization.mcc)
            .then(|| format!("merchant category {:04} is high-risk", authorization.mcc)),
        Check::CrossBorder if purchase => {
            let home = config.home_currency;
            (authorization.currency != home
                || authorization.card_currency != authorization.currency)
                .then(|| {
                    format!(
                        "sale in {}, card in {}, home currency {}",
                        authorization.currency.alpha(),
                        authorization.card_currency.alpha(),
                        home.alpha()
                    )
                })
        }
        Check::Fallback if purchase => match authorization.entry {
            Entry::Fallback => Some("the terminal fell back to the stripe".to_owned()),
            Entry::Magstripe if authorization.chip_card => {
                Some("a chip card read by its stripe".to_owned())
            }
            _ => None,
        },
        Check::PinFailures {
            window_secs,
            max_failures,
        } if purchase => {
            let failures = card.wrong_pins.since(since(*window_secs)).count();
            (failures >= *max_failures as usize)
                .then(|| format!("{failures} wrong PINs on the card in {window_secs} s"))
        }
        Check::RefundWithoutSale { window_secs } if authorization.kind == Kind::Refund => {
            let merchant = key(authorization.merchant);
            let paid = card
                .approved
                .since(since(*window_secs))
                .any(|event| event.merchant == merchant && event.amount_minor >= amount);
            (!paid).then(|| {
                    format!("no approved sale of {amount} or more on the card at the merchant in {window_secs} s")
                })
        }
        _ => None,
    }
}

/// A velocity rule over `events` (the scope's attempts), counting this authorization too.
fn velocity(
    rule: &Rule,
    authorization: &Authorization<'_>,
    events: Option<&crate::state::Events>,
    now_ms: i64,
) -> Option<String> {
    let Check::Velocity {
        scope,
        window_secs,
        max_count,
        max_amount_minor,
    } = &rule.check
    else {
        return None;
    };
    if !authorization.kind.is_purchase() {
        return None;
    }
    let from = now_ms.saturating_sub((*window_secs as i64).saturating_mul(1000));
    let (count, total) = events
        .into_iter()
        .flat_map(|events| events.since(from))
        .fold(
            (1u32, i128::from(authorization.amount_minor)),
            |(count, total), event| (count + 1, total + i128::from(event.amount_minor)),
        );
    let scope = match scope {
        Scope::Card => "card",
        Scope::Terminal => "terminal",
        Scope::Merchant => "merchant",
    };
    if let Some(max) = max_count
        && count > *max
    {
        return Some(format!(
            "{count} authorizations on the {scope} in {window_secs} s (at most {max})"
        ));
    }
    if let Some(max) = max_amount_minor
        && total > i128::from(*max)
    {
        return Some(format!(
            "{total} in authorizations on the {scope} in {window_secs} s (at most {max})"
        ));
    }
    None
}
