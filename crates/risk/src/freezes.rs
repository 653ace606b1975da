//! Emergency freezes: terminals, merchants and cards declined on their next authorization,
//! whatever the rules say. Kept in memory for the host's hot path (an empty list costs one
//! atomic load); the store holds them durably and the API changes both.

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

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
        assert_eq!(FreezeScope::parse("card"), Some(FreezeScope::Card));
        assert_eq!(FreezeScope::parse("cards"), None);
    }
}
