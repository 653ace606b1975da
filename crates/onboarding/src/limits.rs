//! Limits on public applications, so the open form cannot be used to flood the review queue,
//! the duplicate checks or the documents directory: new applications per client address, and
//! submissions per mobile number. Channel partners apply through their authenticated route
//! and are not limited here.
//!
//! Each key has a fixed window: its first use opens it, and `limit` uses fit in it. Time is
//! the service's clock, so tests step it.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// New applications (drafts or submissions) from one client address per hour: a shared office
/// or a mobile carrier's address serves several applicants, a script far more.
pub const APPLICATIONS_PER_ADDRESS: u32 = 20;
pub const ADDRESS_WINDOW_SECONDS: i64 = 60 * 60;
/// Submissions with one mobile number per day: a merchant submits once, perhaps again after
/// amending; more is someone else using its number.
pub const SUBMISSIONS_PER_MOBILE: u32 = 5;
pub const MOBILE_WINDOW_SECONDS: i64 = 24 * 60 * 60;
/// Keys tracked at once by each limit; when full, windows that are over are forgotten first,
/// then the oldest.
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// What a limit refused: which, and when the window ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub retry_after_seconds: i64,
}

/// Uses of each key in its current window.
#[derive(Debug)]
struct Windows<K> {
    limit: u32,
    window_seconds: i64,
    opened: HashMap<K, (i64, u32)>,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    fn new(limit: u32, window_seconds: i64) -> Self {
        Windows {
            limit,
            window_seconds,
            opened: HashMap::new(),
        }
    }

    /// Counts one use of `key` at `now`, or says when the next one will fit.
    fn take(&mut self, key: &K, now: i64) -> Result<(), Refused> {
        if !self.opened.contains_key(key) && self.opened.len() >= MAX_TRACKED_KEYS {
            let window = self.window_seconds;
            self.opened.retain(|_, (start, _)| now < *start + window);
            if self.opened.len() >= MAX_TRACKED_KEYS
                && let Some(oldest) = self
                    .opened
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(key, _)| key.clone())
            {
                self.opened.remove(&oldest);
            }
        }
        let entry = self.opened.entry(key.clone()).or_insert((now, 0));
        if now >= entry.0 + self.window_seconds {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(Refused {
                retry_after_seconds: entry.0 + self.window_seconds - now,
            });
        }
        entry.1 += 1;
        Ok(())
    }
}

/// The limits of one platform (shared by the REST API and the console's form).
#[derive(Debug)]
pub struct ApplicationLimits {
    addresses: Mutex<Windows<IpAddr>>,
    mobiles: Mutex<Windows<String>>,
}

impl Default for ApplicationLimits {
    fn default() -> Self {
        ApplicationLimits::new(APPLICATIONS_PER_ADDRESS, SUBMISSIONS_PER_MOBILE)
    }
}

impl ApplicationLimits {
    /// `per_address` new applications per address and hour, `per_mobile` submissions per
    /// mobile number and day.
    pub fn new(per_address: u32, per_mobile: u32) -> Self {
        ApplicationLimits {
            addresses: Mutex::new(Windows::new(per_address, ADDRESS_WINDOW_SECONDS)),
            mobiles: Mutex::new(Windows::new(per_mobile, MOBILE_WINDOW_SECONDS)),
        }
    }

    /// Counts a new application from `address` at `now` (seconds).
    pub fn new_application(&self, address: IpAddr, now: i64) -> Result<(), Refused> {
        // A poisoned lock lets the application through: the limit protects capacity, it must
        // not stop applications by itself.
        match self.addresses.lock() {
            Ok(mut windows) => windows.take(&address, now),
            Err(_) => Ok(()),
        }
    }

    /// Counts a submission with mobile number `mobile` (as checked: 11 digits) at `now`.
    pub fn submission(&self, mobile: &str, now: i64) -> Result<(), Refused> {
        match self.mobiles.lock() {
            Ok(mut windows) => windows.take(&mobile.to_owned(), now),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_then_refuses_until_it_ends() {
        let mut windows = Windows::new(2, 60);
        assert_eq!(windows.take(&"a", 100), Ok(()));
        assert_eq!(windows.take(&"a", 110), Ok(()));
        assert_eq!(
            windows.take(&"a", 130),
            Err(Refused {
                retry_after_seconds: 30
            })
        );
        assert_eq!(windows.take(&"b", 130), Ok(()), "another key has its own");
        assert_eq!(windows.take(&"a", 160), Ok(()), "a new window");
    }
}
