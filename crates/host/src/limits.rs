//! Every bound the listener enforces, with its default and the reason for it.
//! `docs/transport.md` lists what happens when each one is hit.

use std::time::Duration;

use iso8583::frame::MAX_FRAME_LEN;

use crate::error::Error;
use crate::rate::Rate;

/// Default frame limit: the codec's own. No POS message comes near 8 KiB (see
/// `iso8583::frame::MAX_FRAME_LEN`), and the listener's per-connection buffer is this size.
pub const DEFAULT_MAX_FRAME_LEN: usize = MAX_FRAME_LEN;

/// Default connection limit. Each connection holds a socket and an 8 KiB buffer; 512 stays well
/// under the usual soft limit of 1024 open files, leaving room for the store and HTTP. A bench
/// with more virtual terminals raises both.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Default idle timeout. A terminal keeps its connection between sales for a short while at
/// most; a connection silent this long with nothing pending belongs to a terminal that went
/// away, and its socket is worth more to the next one.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Default per-connection message rate: 100 per second, 100 back to back. A terminal sends a
/// few messages a minute; this only stops one connection from flooding the host. Raise it for
/// a bench that drives many messages over one connection.
pub const DEFAULT_CONNECTION_RATE: Rate = match Rate::checked(100, 100) {
    Some(rate) => rate,
    // Evaluated at compile time: a bad constant fails the build, never a run.
    None => panic!("the default connection rate is out of range"),
};

/// Default per-frame read deadline. A whole 8 KiB frame over a slow GPRS link (about 10 kbit/s)
/// takes under 7 s, a usual 300-byte message well under 1 s; a frame still incomplete after
/// 10 s is a slow-loris holding a socket on purpose.
pub const DEFAULT_FRAME_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Default handler deadline. A POS terminal commonly waits 30 to 60 s before it gives up and
/// reverses; answering within 20 s (with the handler's deadline reply, a 96, if need be) leaves
/// margin for the network so the terminal gets an answer rather than a timeout.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(20);

/// Default write timeout. A reply is a few hundred bytes, which the kernel buffers at once; a
/// peer that has not taken it within 10 s has stopped reading.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default in-flight messages per connection. A terminal has one request outstanding (two while
/// a reversal follows a timed-out sale); pipelining peers (the bench, a switch link) get a few
/// more, while one connection cannot take the whole handler.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;

/// Default shutdown grace. Longer than the handler deadline, so every message in flight at
/// shutdown ends with its answer or its deadline reply before connections are cut.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// The longest any duration limit may be. Longer than any sane timeout, and it keeps deadline
/// arithmetic (`Instant + Duration`) far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The listener's bounds. Build with `Limits::default()` and change fields; `Listener::bind`
/// checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body accepted or sent, at most `iso8583::frame::MAX_FRAME_LEN`.
    pub max_frame_len: usize,
    /// Connections open at once; more are closed at once and counted.
    pub max_connections: usize,
    /// Close a connection when no byte has moved either way for this long and no reply is owed.
    pub idle_timeout: Duration,
    /// A frame whose first byte has arrived must be complete within this.
    pub frame_read_timeout: Duration,
    /// Time a handler has for one message.
    pub handler_timeout: Duration,
    /// Time the peer has to take one reply.
    pub write_timeout: Duration,
    /// Messages handed to the handler and not yet answered, per connection. At the limit the
    /// listener stops reading that connection (TCP back-pressure).
    pub max_in_flight: usize,
    /// Message rate per connection; a faster connection is closed.
    pub connection_rate: Rate,
    /// After shutdown is asked, how long in-flight messages have before connections are cut.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            frame_read_timeout: DEFAULT_FRAME_READ_TIMEOUT,
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            connection_rate: DEFAULT_CONNECTION_RATE,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

impl Limits {
    /// Refuses limits that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |name, reason| Err(Error::Limit { name, reason });
        if !(1..=MAX_FRAME_LEN).contains(&self.max_frame_len) {
            return fail("max_frame_len", "must be between 1 and 8192 bytes");
        }
        if self.max_connections == 0 {
            return fail("max_connections", "must be at least 1");
        }
        if self.max_in_flight == 0 {
            return fail("max_in_flight", "must be at least 1");
        }
        let durations = [
            ("idle_timeout", self.idle_timeout),
            ("frame_read_timeout", self.frame_read_timeout),
            ("handler_timeout", self.handler_timeout),
            ("write_timeout", self.write_timeout),
            ("shutdown_grace", self.shutdown_grace),
        ];
        for (name, duration) in durations {
            if duration.is_zero() {
                return fail(name, "must be longer than zero");
            }
            if duration > MAX_DURATION {
                return fail(name, "must be at most one day");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(Limits::default().validate().is_ok());
        let zero_idle = Limits {
            idle_timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert!(matches!(
            zero_idle.validate(),
            Err(Error::Limit {
                name: "idle_timeout",
                ..
            })
        ));
        let huge_frame = Limits {
            max_frame_len: MAX_FRAME_LEN + 1,
            ..Limits::default()
        };
        assert!(matches!(
            huge_frame.validate(),
            Err(Error::Limit {
                name: "max_frame_len",
                ..
            })
        ));
    }
}
