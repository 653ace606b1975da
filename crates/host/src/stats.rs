//! Counters the listener keeps, read as a [`HostStats`] snapshot (for `/metrics`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! host_stats {
    ($($(#[doc = $doc:literal])* $name:ident: $kind:literal,)*) => {
        /// A copy of the listener's counters at one moment. Every field but `connections_open`
        /// only grows.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct HostStats {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl HostStats {
            /// Every counter as (name, Prometheus type, help, value), so `/metrics` renders
            /// them in one loop and a new counter needs no change there.
            pub fn metrics(&self) -> Vec<Metric> {
                vec![$(Metric {
                    name: stringify!($name),
                    kind: $kind,
                    help: concat!($($doc),*).trim_ascii(),
                    value: self.$name,
                },)*]
            }
        }

        #[derive(Debug, Default)]
        struct Counters {
            $($name: AtomicU64,)*
        }

        impl Stats {
            /// Reads every counter (each atomically, not all at one instant).
            pub fn snapshot(&self) -> HostStats {
                HostStats {
                    $($name: self.0.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

host_stats! {
    /// Connections accepted and served.
    connections_accepted: "counter",
    /// Connections closed at once because `max_connections` were open.
    connections_refused: "counter",
    /// Connections open now.
    connections_open: "gauge",
    /// Complete frames received and handed to the handler.
    frames_in: "counter",
    /// Reply frames written.
    frames_out: "counter",
    /// Connections closed because a length prefix announced more than the frame limit.
    frames_oversized: "counter",
    /// Connections closed because a length prefix was not a length (ASCII non-digits).
    frames_malformed: "counter",
    /// Connections closed because a started frame was not complete within the read deadline.
    read_deadline_closes: "counter",
    /// Connections closed after the idle timeout without a byte.
    idle_closes: "counter",
    /// Connections closed because the peer did not take a reply within the write timeout.
    write_timeout_closes: "counter",
    /// Messages whose handler missed its deadline.
    handler_deadlines: "counter",
    /// Connections closed on the handler's request (Reply::Close, or a deadline without reply).
    handler_closes: "counter",
    /// Connections closed for sending messages faster than the per-connection rate.
    rate_limited: "counter",
}

/// One counter for a metrics page. Names are bare (`frames_in`); the page adds its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    pub help: &'static str,
    pub value: u64,
}

/// A shared handle on the listener's counters; clones are cheap and see the same counters.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Counters>);

/// The counters the listener bumps. Relaxed ordering: they are statistics, not
/// synchronisation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    ConnectionsAccepted,
    ConnectionsRefused,
    FramesIn,
    FramesOut,
    FramesOversized,
    FramesMalformed,
    ReadDeadlineCloses,
    IdleCloses,
    WriteTimeoutCloses,
    HandlerDeadlines,
    HandlerCloses,
    RateLimited,
}

impl Stats {
    pub(crate) fn count(&self, counter: Counter) {
        let counters = &self.0;
        let cell = match counter {
            Counter::ConnectionsAccepted => &counters.connections_accepted,
            Counter::ConnectionsRefused => &counters.connections_refused,
            Counter::FramesIn => &counters.frames_in,
            Counter::FramesOut => &counters.frames_out,
            Counter::FramesOversized => &counters.frames_oversized,
            Counter::FramesMalformed => &counters.frames_malformed,
            Counter::ReadDeadlineCloses => &counters.read_deadline_closes,
            Counter::IdleCloses => &counters.idle_closes,
            Counter::WriteTimeoutCloses => &counters.write_timeout_closes,
            Counter::HandlerDeadlines => &counters.handler_deadlines,
            Counter::HandlerCloses => &counters.handler_closes,
            Counter::RateLimited => &counters.rate_limited,
        };
        cell.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection as open until the guard is dropped, however its task ends.
    pub(crate) fn open_connection(&self) -> OpenConnection {
        self.0.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }
}

#[derive(Debug)]
pub(crate) struct OpenConnection(Stats);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        (self.0).0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauge_show_in_the_snapshot() {
        let stats = Stats::default();
        stats.count(Counter::FramesIn);
        stats.count(Counter::FramesIn);
        let open = stats.open_connection();
        assert_eq!(stats.snapshot().frames_in, 2);
        assert_eq!(stats.snapshot().connections_open, 1);
        drop(open);
        assert_eq!(stats.snapshot().connections_open, 0);
        let metrics = stats.snapshot().metrics();
        let frames_in = metrics.iter().find(|metric| metric.name == "frames_in");
        assert_eq!(
            frames_in.map(|metric| (metric.kind, metric.value)),
            Some(("counter", 2))
        );
        assert!(metrics.iter().all(|metric| !metric.help.is_empty()));
    }
}
