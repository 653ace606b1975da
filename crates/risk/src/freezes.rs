//! Emergency freezes: terminals, merchants and cards declined on their next authorization,
//! whatever the rules say. Kept in memory for the host's hot path (an empty list costs one
//! atomic load); the store holds them durably and the API changes both.

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What a freeze stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FreezeScope {
    Terminal,
    Merchant,
    Card,
    /// Every refund of a merchant (the target is its merchant id); its sales go on.
    Refunds,
}

impl FreezeScope {
    pub fn parse(text: &str) -> Option<FreezeScope> {
        match text {
            "terminal" => Some(FreezeScope::Terminal),
            "merchant" => Some(FreezeScope::Merchant),
            "card" => Some(FreezeScope::Card),
            "refunds" => Some(FreezeScope::Refunds),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FreezeScope::Terminal => "terminal",
            FreezeScope::Merchant => "merchant",
            FreezeScope::Card => "card",
            FreezeScope::Refunds => "refunds",
        }
    }
}

/// The frozen terminal ids, merchant ids and directory card ids.
#[derive(Debug, Default)]
pub struct Freezes {
    sets: RwLock<[HashSet<String>; 4]>,
    count: AtomicUsize,
    /// Bumped by every [`Freezes::set`] (under the write lock), so that a reconciliation read
    /// from the store before a local change never undoes it.
    generation: AtomicU64,
}

fn index(scope: FreezeScope) -> usize {
    match scope {
        FreezeScope::Terminal => 0,
        FreezeScope::Merchant => 1,
        FreezeScope::Card => 2,
        FreezeScope::Refunds => 3,
    }
}

impl Freezes {
    pub fn new() -> Freezes {
        Freezes::default()
    }

    /// Freezes (`frozen`) or thaws one target.
    pub fn set(&self, scope: FreezeScope, target: &str, frozen: bool) {
        let mut sets = self
            .sets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let set = &mut sets[index(scope)];
        if frozen {
            set.insert(target.to_owned());
        } else {
            set.remove(target);
        }
        let count = sets.iter().map(HashSet::len).sum();
        self.count.store(count, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The number of local changes so far; read it before reading the store's freezes and
    /// pass it to [`Freezes::replace_all`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// What of this authorization is frozen, terminal first, then merchant, then card.
    pub fn frozen(&self, terminal: &str, merchant: &str, card: &str) -> Option<FreezeScope> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let sets = self
            .sets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        [
            (FreezeScope::Terminal, terminal),
            (FreezeScope::Merchant, merchant),
            (FreezeScope::Card, card),
        ]
        .into_iter()
        .find(|(scope, target)| sets[index(*scope)].contains(*target))
        .map(|(scope, _)| scope)
    }

    /// Makes the freezes exactly `all` (scope, target), read from the store after
    /// [`Freezes::generation`] returned `seen`: what another host sharing the store froze or
    /// lifted becomes this host's too. `None` (and nothing changed) when a local change came
    /// in between, which the read may not include; else how many changed.
    pub fn replace_all<'a>(
        &self,
        seen: u64,
        all: impl IntoIterator<Item = (FreezeScope, &'a str)>,
    ) -> Option<usize> {
        let mut wanted: [HashSet<String>; 4] = Default::default();
        for (scope, target) in all {
            wanted[index(scope)].insert(target.to_owned());
        }
        let mut sets = self
            .sets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.generation.load(Ordering::Acquire) != seen {
            return None;
        }
        let changed = sets
            .iter()
            .zip(&wanted)
            .map(|(have, want)| have.symmetric_difference(want).count())
            .sum();
        if changed > 0 {
            *sets = wanted;
            let count = sets.iter().map(HashSet::len).sum();
            self.count.store(count, Ordering::Release);
        }
        Some(changed)
    }

    /// Whether `merchant`'s refunds are frozen.
    pub fn refunds_frozen(&self, merchant: &str) -> bool {
        if self.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.sets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())[index(FreezeScope::Refunds)]
        .contains(merchant)
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freezing_and_thawing_each_scope() {
        let freezes = Freezes::new();
        assert_eq!(freezes.frozen("t1", "m1", "c1"), None);
        freezes.set(FreezeScope::Card, "c1", true);
        assert_eq!(freezes.frozen("t1", "m1", "c1"), Some(FreezeScope::Card));
        assert_eq!(freezes.frozen("t1", "m1", "c2"), None);
        freezes.set(FreezeScope::Merchant, "m1", true);
        freezes.set(FreezeScope::Terminal, "t1", true);
        assert_eq!(
            freezes.frozen("t1", "m1", "c1"),
            Some(FreezeScope::Terminal)
        );
        assert_eq!(
            freezes.frozen("t2", "m1", "c2"),
            Some(FreezeScope::Merchant)
        );
        freezes.set(FreezeScope::Terminal, "t1", false);
        freezes.set(FreezeScope::Merchant, "m1", false);
        freezes.set(FreezeScope::Card, "c1", false);
        assert!(freezes.is_empty());
        assert_eq!(freezes.frozen("t1", "m1", "c1"), None);
        freezes.set(FreezeScope::Refunds, "m1", true);
        assert!(freezes.refunds_frozen("m1"));
        assert!(!freezes.refunds_frozen("m2"));
        assert_eq!(freezes.frozen("t1", "m1", "c1"), None, "sales go on");
        freezes.set(FreezeScope::Refunds, "m1", false);
        assert!(!freezes.refunds_frozen("m1"));
        assert_eq!(FreezeScope::parse("refunds"), Some(FreezeScope::Refunds));

        // Another host froze t9 and lifted nothing here: reconciled to the store's list.
        let before_local_change = freezes.generation();
        freezes.set(FreezeScope::Terminal, "t1", true);
        // A store read from before the local freeze does not undo it.
        assert_eq!(freezes.replace_all(before_local_change, []), None);
        assert_eq!(freezes.frozen("t1", "m", "c"), Some(FreezeScope::Terminal));
        let store = [(FreezeScope::Terminal, "t9"), (FreezeScope::Refunds, "m1")];
        let changed = freezes.replace_all(freezes.generation(), store);
        assert_eq!(changed, Some(3), "t1 lifted, t9 and m1's refunds frozen");
        assert_eq!(freezes.frozen("t1", "m", "c"), None);
        assert_eq!(freezes.frozen("t9", "m", "c"), Some(FreezeScope::Terminal));
        assert!(freezes.refunds_frozen("m1"));
        assert_eq!(freezes.len(), 2);
        assert_eq!(freezes.replace_all(freezes.generation(), store), Some(0));
        assert_eq!(freezes.replace_all(freezes.generation(), []), Some(2));
        assert!(freezes.is_empty());
        assert_eq!(FreezeScope::parse("card"), Some(FreezeScope::Card));
        assert_eq!(FreezeScope::parse("cards"), None);
    }
}
