//! Time for the store, injected so tests can make holds expire without waiting.

use std::sync::atomic::{AtomicU64, Ordering};

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Nanoseconds since the Unix epoch.
    fn now(&self) -> u64;

    /// What befalls the writer's next commit: asked once per commit by the SQLite writer. The
    /// clock is the store's whole environment as tests inject it, so the deterministic
    /// simulation (crates/acquirer/tests/simulation.rs) schedules disk faults here with its
    /// time. Production clocks never fault.
    fn commit_fault(&self) -> Option<CommitFault> {
        None
    }
}

/// A disk fault at a commit, injected by a test through [`Clock::commit_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitFault {
    /// The commit fails and is rolled back: nothing is written and every caller of the group
    /// gets an error.
    Fail,
    /// The commit is durable but its callers get an error, as when the disk or the connection
    /// fails after the data reached it: the caller cannot tell this from [`CommitFault::Fail`].
    LoseAnswer,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        let elapsed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(start: u64) -> Self {
        ManualClock(AtomicU64::new(start))
    }

    pub fn advance(&self, nanos: u64) {
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
