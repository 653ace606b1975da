//! Rate limits with injected time: a [`TokenBucket`] for one sender and a [`RateLimiter`] that
//! keeps one bucket per key (the acquirer's key is the terminal id, field 41) for a bounded
//! number of keys.
//!
//! A bucket is kept in the form of the generic cell rate algorithm (GCRA): one "theoretical
//! arrival time" instead of a token count and a refill time. It admits exactly what a token
//! bucket of `burst` tokens refilled at `per_second` admits, with integer time arithmetic and
//! one `Instant` of state.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::error::Error;

/// The highest `per_second` and `burst` accepted. Far above any terminal or link; it keeps the
/// interval at least 1 µs and every time sum far from overflow.
pub const MAX_RATE: u32 = 1_000_000;

/// A message rate: `per_second` on average, and up to `burst` back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    per_second: u32,
    burst: u32,
}

impl Rate {
    pub fn new(per_second: u32, burst: u32) -> Result<Self, Error> {
        Self::checked(per_second, burst).ok_or(Error::Limit {
            name: "rate",
            reason: "per_second and burst must each be between 1 and 1 000 000",
        })
    }

    /// `new` for constants: `None` when out of range.
    pub const fn checked(per_second: u32, burst: u32) -> Option<Self> {
        if per_second == 0 || per_second > MAX_RATE || burst == 0 || burst > MAX_RATE {
            return None;
        }
        Some(Self { per_second, burst })
    }

    pub fn per_second(self) -> u32 {
        self.per_second
    }

    pub fn burst(self) -> u32 {
        self.burst
    }

    /// Time one token takes to come back.
    fn interval(self) -> Duration {
        Duration::from_nanos(1_000_000_000 / u64::from(self.per_second))
    }

    /// How far ahead of real time the bucket may run: the burst beyond the first message.
    fn tolerance(self) -> Duration {
        self.interval().saturating_mul(self.burst - 1)
    }
}

/// The answer when a message is over the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// When the next message would be admitted.
    pub retry_after: Duration,
}

/// One sender's bucket. Time is passed in, so tests step it exactly.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    /// When the bucket will be full again (GCRA's theoretical arrival time); `None` = never
    /// used, which is the same as full.
    full_at: Option<Instant>,
}

impl TokenBucket {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            full_at: None,
        }
    }

    /// Takes one token at `now`, or says how long until one is there.
    pub fn check(&mut self, now: Instant) -> Result<(), Limited> {
        let full_at = self.full_at.map_or(now, |at| at.max(now));
        let latest = now.checked_add(self.rate.tolerance()).unwrap_or(now);
        if full_at > latest {
            return Err(Limited {
                retry_after: full_at.saturating_duration_since(latest),
            });
        }
        self.full_at = Some(full_at.checked_add(self.rate.interval()).unwrap_or(full_at));
        Ok(())
    }

    /// True when the bucket holds every token again, so forgetting it changes nothing.
    fn is_full(&self, now: Instant) -> bool {
        self.full_at.is_none_or(|at| at <= now)
    }
}

/// One token bucket per key, for at most `max_keys` keys.
///
/// When a new key arrives and the map is full, keys whose buckets are full again are dropped
/// (forgetting them changes no answer). If every bucket is still in use, the one closest to
/// full is dropped: that key gets a fresh burst, the smallest gift we can make. A flood of new
/// keys therefore costs one scan of the map per new key at worst, and never more memory.
///
/// Takes `&mut self`; share it behind a `std::sync::Mutex` (checks are sub-microsecond and
/// never held across an `.await`).
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: Rate,
    max_keys: usize,
    buckets: HashMap<K, TokenBucket>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(rate: Rate, max_keys: usize) -> Result<Self, Error> {
        if max_keys == 0 {
            return Err(Error::Limit {
                name: "rate_limiter.max_keys",
                reason: "must be at least 1",
            });
        }
        Ok(Self {
            rate,
            max_keys,
            buckets: HashMap::new(),
        })
    }

    /// Takes one token from `key`'s bucket at `now`.
    pub fn check(&mut self, key: K, now: Instant) -> Result<(), Limited> {
        if let Some(bucket) = self.buckets.get_mut(&key) {
            return bucket.check(now);
        }
        if self.buckets.len() >= self.max_keys {
            self.make_room(now);
        }
        let mut bucket = TokenBucket::new(self.rate);
        let decision = bucket.check(now);
        self.buckets.insert(key, bucket);
        decision
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn make_room(&mut self, now: Instant) {
        self.buckets.retain(|_, bucket| !bucket.is_full(now));
        if self.buckets.len() >= self.max_keys {
            let closest_to_full = self
                .buckets
                .iter()
                .min_by_key(|(_, bucket)| bucket.full_at)
                .map(|(key, _)| key.clone());
            if let Some(key) = closest_to_full {
                self.buckets.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn rate(per_second: u32, burst: u32) -> Rate {
        Rate::new(per_second, burst).unwrap()
    }

    #[test]
    fn rate_rejects_zero_and_huge() {
        assert!(Rate::new(0, 1).is_err());
        assert!(Rate::new(1, 0).is_err());
        assert!(Rate::new(MAX_RATE + 1, 1).is_err());
        assert!(Rate::new(1, MAX_RATE + 1).is_err());
        assert!(Rate::new(MAX_RATE, MAX_RATE).is_ok());
    }

    #[test]
    fn bucket_admits_the_burst_then_one_per_interval() {
        // 10 per second = one token every 100 ms, 3 back to back.
        let mut bucket = TokenBucket::new(rate(10, 3));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(bucket.check(t0), Ok(()));
        }
        assert_eq!(
            bucket.check(t0),
            Err(Limited {
                retry_after: 100 * MS
            })
        );
        // A refused message takes no token: 99 ms later it is still 1 ms early.
        assert_eq!(bucket.check(t0 + 99 * MS), Err(Limited { retry_after: MS }));
        assert_eq!(bucket.check(t0 + 100 * MS), Ok(()));
        assert!(bucket.check(t0 + 100 * MS).is_err());
        // After a long silence the bucket is full again, never fuller.
        let later = t0 + 10_000 * MS;
        for _ in 0..3 {
            assert_eq!(bucket.check(later), Ok(()));
        }
        assert!(bucket.check(later).is_err());
    }

    #[test]
    fn steady_rate_at_the_limit_is_never_refused() {
        let mut bucket = TokenBucket::new(rate(50, 1));
        let t0 = Instant::now();
        for step in 0..1000u32 {
            assert_eq!(bucket.check(t0 + step * 20 * MS), Ok(()), "message {step}");
        }
        assert!(bucket.check(t0 + 999 * 20 * MS + 19 * MS).is_err());
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let mut limiter = RateLimiter::new(rate(1, 2), 10).unwrap();
        let t0 = Instant::now();
        assert_eq!(limiter.check("T0000001", t0), Ok(()));
        assert_eq!(limiter.check("T0000001", t0), Ok(()));
        assert!(limiter.check("T0000001", t0).is_err());
        assert_eq!(limiter.check("T0000002", t0), Ok(()));
        assert_eq!(limiter.check("T0000001", t0 + 1000 * MS), Ok(()));
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn key_count_stays_bounded_and_full_buckets_go_first() {
        let mut limiter = RateLimiter::new(rate(1, 2), 3).unwrap();
        let t0 = Instant::now();
        // Key 1 used at t0 (full again at t0 + 1 s); keys 2 and 3 drained later.
        assert_eq!(limiter.check(1, t0), Ok(()));
        let t1 = t0 + 1500 * MS;
        for key in [2, 3] {
            assert_eq!(limiter.check(key, t1), Ok(()));
            assert_eq!(limiter.check(key, t1), Ok(()));
            assert!(limiter.check(key, t1).is_err());
        }
        // Key 4 needs room: key 1's bucket is full, so forgetting it loses nothing.
        assert_eq!(limiter.check(4, t1), Ok(()));
        assert_eq!(limiter.len(), 3);
        // The busy keys were kept: still limited.
        assert!(limiter.check(2, t1).is_err());
        assert!(limiter.check(3, t1).is_err());
    }

    #[test]
    fn when_every_key_is_busy_the_one_closest_to_full_goes() {
        let mut limiter = RateLimiter::new(rate(1, 5), 2).unwrap();
        let t0 = Instant::now();
        assert_eq!(limiter.check('a', t0), Ok(())); // full again at t0 + 1 s
        for _ in 0..3 {
            assert_eq!(limiter.check('b', t0), Ok(())); // full again at t0 + 3 s
        }
        assert_eq!(limiter.check('c', t0), Ok(()));
        assert_eq!(limiter.len(), 2);
        // 'b' kept its state: 2 tokens left, then refused.
        assert_eq!(limiter.check('b', t0), Ok(()));
        assert_eq!(limiter.check('b', t0), Ok(()));
        assert!(limiter.check('b', t0).is_err());
        // A flood of new keys never grows the map.
        for key in 'd'..='z' {
            let _ = limiter.check(key, t0);
            assert!(limiter.len() <= 2);
        }
    }

    #[test]
    fn zero_keys_is_refused() {
        assert!(RateLimiter::<u32>::new(rate(1, 1), 0).is_err());
    }
}
