//! What the engine remembers: per card, terminal and merchant, the recent events its rules look
//! back on. Every part has a cap, so memory stays bounded whatever the traffic: at most
//! [`MAX_EVENTS_PER_KEY`] events per window, and at most `MAX_CARDS` / `MAX_TERMINALS` /
//! `MAX_MERCHANTS` keys, the least recently seen forgotten first.

use crate::config::MAX_EVENTS_PER_KEY;
use std::collections::{HashMap, VecDeque};

/// Cards remembered at once: a busy acquirer's cards of the last two weeks; beyond it the least
/// recently seen are forgotten (and look new again).
pub const MAX_CARDS: usize = 1_000_000;
/// Terminals remembered at once.
pub const MAX_TERMINALS: usize = 200_000;
/// Merchants remembered at once.
pub const MAX_MERCHANTS: usize = 100_000;

/// One authorization in a window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub at_ms: i64,
    pub amount_minor: i64,
    /// The card's key (a hash of its directory id).
    pub card: u64,
    /// The merchant's key, for a card's approvals.
    pub merchant: u64,
}

/// Events, oldest first, at most [`MAX_EVENTS_PER_KEY`].
#[derive(Debug, Default)]
pub(crate) struct Events(VecDeque<Event>);

impl Events {
    pub fn push(&mut self, event: Event) {
        if self.0.len() >= MAX_EVENTS_PER_KEY {
            self.0.pop_front();
        }
        self.0.push_back(event);
    }

    /// Drops what is older than `since_ms`.
    pub fn prune(&mut self, since_ms: i64) {
        while self.0.front().is_some_and(|event| event.at_ms < since_ms) {
            self.0.pop_front();
        }
    }

    /// Events at or after `since_ms`, newest first.
    pub fn since(&self, since_ms: i64) -> impl Iterator<Item = &Event> {
        self.0
            .iter()
            .rev()
            .take_while(move |event| event.at_ms >= since_ms)
    }
}

#[derive(Debug, Default)]
pub(crate) struct CardState {
    pub first_seen_ms: Option<i64>,
    pub attempts: Events,
    /// Approved sales and pre-authorizations.
    pub approved: Events,
    pub wrong_pins: Events,
}

impl CardState {
    fn prune(&mut self, since_ms: i64) {
        self.attempts.prune(since_ms);
        self.approved.prune(since_ms);
        self.wrong_pins.prune(since_ms);
    }
}

#[derive(Debug, Default)]
pub(crate) struct PlaceState {
    pub attempts: Events,
    pub declines: Events,
}

impl PlaceState {
    fn prune(&mut self, since_ms: i64) {
        self.attempts.prune(since_ms);
        self.declines.prune(since_ms);
    }
}

pub(crate) trait Prune {
    fn prune_before(&mut self, since_ms: i64);
}

impl Prune for CardState {
    fn prune_before(&mut self, since_ms: i64) {
        self.prune(since_ms);
    }
}

impl Prune for PlaceState {
    fn prune_before(&mut self, since_ms: i64) {
        self.prune(since_ms);
    }
}

/// A map with a cap on its keys.
#[derive(Debug)]
pub(crate) struct Keyed<T> {
    map: HashMap<u64, (i64, T)>,
    cap: usize,
}

impl<T: Default + Prune> Keyed<T> {
    pub fn new(cap: usize) -> Self {
        Keyed {
            map: HashMap::new(),
            cap,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, key: u64) -> Option<&T> {
        self.map.get(&key).map(|(_, value)| value)
    }

    /// The key's state, pruned to `since_ms`, made if missing (forgetting the least recently
    /// seen keys when full).
    pub fn touch(&mut self, key: u64, now_ms: i64, since_ms: i64) -> &mut T {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.evict(since_ms);
        }
        let (last_ms, value) = self
            .map
            .entry(key)
            .or_insert_with(|| (now_ms, T::default()));
        *last_ms = (*last_ms).max(now_ms);
        value.prune_before(since_ms);
        value
    }

    /// Forgets keys not seen since `since_ms`, then, if still three quarters full, the least
    /// recently seen quarter. Rare (only when full), so a scan is fine.
    fn evict(&mut self, since_ms: i64) {
        self.map.retain(|_, (last_ms, _)| *last_ms >= since_ms);
        if self.map.len() * 4 < self.cap * 3 {
            return;
        }
        let mut seen: Vec<i64> = self.map.values().map(|(last_ms, _)| *last_ms).collect();
        let quarter = seen.len() / 4;
        let (_, threshold, _) = seen.select_nth_unstable(quarter);
        let threshold = *threshold;
        self.map.retain(|_, (last_ms, _)| *last_ms > threshold);
    }
}

/// Everything the engine remembers.
#[derive(Debug)]
pub(crate) struct State {
    pub cards: Keyed<CardState>,
    pub terminals: Keyed<PlaceState>,
    pub merchants: Keyed<PlaceState>,
}

impl State {
    pub fn new(caps: (usize, usize, usize)) -> Self {
        State {
            cards: Keyed::new(caps.0),
            terminals: Keyed::new(caps.1),
            merchants: Keyed::new(caps.2),
        }
    }
}

/// The key of an id: a hash, so that windows hold no strings (and no card id).
pub(crate) fn key(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}
