//! The time limits a driver keeps while it reads: keepalive pings and
//! their pong deadline, the closing handshake's timeout, and the message
//! deadline. The protocol keeps no clock: it says only whether a message is
//! on its way ([`Inbound::is_receiving`]); the times are kept here.
//!
//! [`Inbound::is_receiving`]: crate::protocol::Inbound::is_receiving

use std::time::{Duration, Instant};

use crate::config::Config;

/// How a driver reaches its [`Clock`]: the server's client keeps one
/// inline (on the heap, with the rest of its state); a [`Connection`] keeps
/// a [`Time`], which makes its clock when the first read needs it.
///
/// [`Connection`]: crate::Connection
pub(crate) trait Timekeeper {
    /// The clock, made now if it is yet to be; `None` for a driver with no
    /// time limits.
    fn clock(&mut self) -> Option<&mut Clock>;
    /// The clock, if it has been made.
    fn made(&mut self) -> Option<&mut Clock>;
}

impl Timekeeper for Clock {
    fn clock(&mut self) -> Option<&mut Clock> {
        Some(self)
    }

    fn made(&mut self) -> Option<&mut Clock> {
        Some(self)
    }
}

/// A plain connection's time keeping. Small, because a `Connection` lives
/// in its caller's stack frames, and a connection thread keeps every stack
/// page it ever touched (a [`Clock`] inline cost an idle `examples/echo`
/// connection a 4 KiB page more); and made lazily, so that accepting
/// allocates nothing more: the clock is boxed by the first read that needs
/// it.
#[derive(Debug)]
pub(crate) enum Time {
    /// No time limits (a connection from `from_upgraded`).
    Off,
    /// The limits, until the first read.
    Limits(Limits),
    /// The clock.
    On(Box<Clock>),
}

/// A connection's limits in milliseconds, [`NONE`] for none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    ping_interval: u32,
    pong_timeout: u32,
    close_timeout: u32,
    message_timeout: u32,
}

/// No limit, in [`Limits`].
const NONE: u32 = u32::MAX;

fn millis(limit: Option<Duration>) -> u32 {
    limit.map_or(NONE, |d| d.as_millis().min(u128::from(NONE - 1)) as u32)
}

fn duration(millis: u32) -> Option<Duration> {
    (millis != NONE).then(|| Duration::from_millis(millis.into()))
}

impl Time {
    /// Every time limit of `config`.
    pub(crate) fn keepalive(config: &Config) -> Time {
        Time::Limits(Limits {
            ping_interval: millis(config.ping_interval),
            pong_timeout: millis(Some(config.pong_timeout)),
            close_timeout: millis(Some(config.close_timeout)),
            message_timeout: millis(config.message_timeout),
        })
    }

    /// Sets the caller's read timeout (see [`Clock::set_read_timeout`]),
    /// making the clock if there is none.
    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        if let Time::Off = self {
            *self = Time::On(Box::new(Clock::off()));
        }
        if let Some(clock) = self.clock() {
            clock.set_read_timeout(timeout);
        }
    }
}

impl Timekeeper for Time {
    fn clock(&mut self) -> Option<&mut Clock> {
        if let Time::Limits(limits) = *self {
            *self = Time::On(Box::new(Clock::from_limits(limits)));
        }
        self.made()
    }

    fn made(&mut self) -> Option<&mut Clock> {
        match self {
            Time::On(clock) => Some(clock),
            _ => None,
        }
    }
}

/// A driver's deadlines, enforced through the stream's read timeout: each
/// read waits at most until the earliest of them.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    /// After this long without receiving anything, ping (`None`: someone
    /// else pings, or nobody does).
    ping_interval: Option<Duration>,
    pong_timeout: Duration,
    /// How long to wait for the peer's close after ours (`None`: someone
    /// else waits).
    close_timeout: Option<Duration>,
    message_timeout: Option<Duration>,
    /// How long one `recv` may wait for a message, the caller's choice.
    read_timeout: Option<Duration>,
    /// When the current `recv` gives up, by `read_timeout`.
    recv_until: Option<Instant>,
    /// When bytes last arrived.
    received: Instant,
    /// When our keepalive ping went out, until anything arrives.
    ping_sent: Option<Instant>,
    /// When the frame or message on its way began to arrive.
    receiving_since: Option<Instant>,
    /// When this driver first saw our close frame out.
    closing_since: Option<Instant>,
    /// The read timeout last set on the stream, `None` while unknown.
    armed: Option<Option<Duration>>,
}

/// A deadline that has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The link has been quiet for the ping interval: ping.
    Ping,
    /// Our ping had no answer within the pong timeout.
    Pong,
    /// The peer did not answer our close within the close timeout.
    Close,
    /// The frame or message on its way did not arrive whole in time.
    Message,
    /// The caller's read timeout passed with no message.
    ReadTimeout,
}

impl Clock {
    /// No deadlines: the read timeout is left to whoever set it.
    pub(crate) fn off() -> Clock {
        Clock {
            ping_interval: None,
            pong_timeout: Duration::ZERO,
            close_timeout: None,
            message_timeout: None,
            read_timeout: None,
            recv_until: None,
            received: Instant::now(),
            ping_sent: None,
            receiving_since: None,
            closing_since: None,
            armed: Some(None),
        }
    }

    /// Every deadline of `limits`, for a connection that pings by itself:
    /// a [`Connection`](crate::Connection) over a stream that takes timeouts.
    fn from_limits(limits: Limits) -> Clock {
        Clock {
            ping_interval: duration(limits.ping_interval),
            pong_timeout: duration(limits.pong_timeout).unwrap_or(Duration::MAX),
            close_timeout: duration(limits.close_timeout),
            message_timeout: duration(limits.message_timeout),
            armed: None,
            ..Clock::off()
        }
    }

    /// Only the message deadline, for a server's client: its writer thread
    /// pings and waits for the close. The server leaves its socket with no
    /// read timeout once the handshake is done.
    pub(crate) fn message_only(config: &Config) -> Clock {
        Clock {
            message_timeout: config.message_timeout,
            ..Clock::off()
        }
    }

    /// Sets how long one `recv` may wait for a message (`None`: until one
    /// comes); at least a millisecond, so that a `recv` always reads.
    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
    }

    /// Records that a `recv` starts at `now`.
    pub(crate) fn start(&mut self, now: Instant) {
        self.recv_until = self.read_timeout.and_then(|t| now.checked_add(t));
    }

    /// Records a read that brought bytes, at `now`: anything received
    /// answers our ping.
    pub(crate) fn received(&mut self, now: Instant) {
        self.received = now;
        self.ping_sent = None;
    }

    /// Records whether a frame or message is on its way, once every byte
    /// received so far is used: its deadline runs from the read that
    /// brought its first byte.
    pub(crate) fn receiving(&mut self, receiving: bool) {
        if !receiving {
            self.receiving_since = None;
        } else if self.receiving_since.is_none() {
            self.receiving_since = Some(self.received);
        }
    }

    /// Records that our ping went out at `now`.
    pub(crate) fn pinged(&mut self, now: Instant) {
        self.ping_sent = Some(now);
    }

    /// The first deadline that has passed at `now`, if any; `closing` says
    /// whether our close frame is out (no more pings then, and the close
    /// timeout runs).
    pub(crate) fn due(&mut self, now: Instant, closing: bool) -> Option<Due> {
        if closing && self.closing_since.is_none() {
            self.closing_since = Some(now);
        }
        // A limit past the end of time never passes.
        let passed = |since: Option<Instant>, limit: Option<Duration>| {
            matches!((since, limit), (Some(since), Some(limit))
                if since.checked_add(limit).is_some_and(|end| now >= end))
        };
        if passed(self.receiving_since, self.message_timeout) {
            Some(Due::Message)
        } else if passed(self.closing_since, self.close_timeout) {
            Some(Due::Close)
        } else if closing && self.close_timeout.is_some() {
            None
        } else if passed(self.ping_sent, Some(self.pong_timeout)) {
            Some(Due::Pong)
        } else if self.ping_sent.is_none() && passed(Some(self.received), self.ping_interval) {
            Some(Due::Ping)
        } else if passed(self.recv_until, Some(Duration::ZERO)) {
            Some(Due::ReadTimeout)
        } else {
            None
        }
    }

    /// The read timeout to set before the next read at `now`, if it is not
    /// set already: the time to the earliest deadline. While the link is
    /// idle that is the ping interval, the same for every read, so a
    /// steady connection sets it once; it changes only while a ping is
    /// unanswered, our close is out, or a message is late in arriving.
    pub(crate) fn arm(&mut self, now: Instant) -> Option<Option<Duration>> {
        let mut due: Option<Instant> = None;
        let mut at = |since: Instant, limit: Duration| {
            if let Some(t) = since.checked_add(limit) {
                due = Some(due.map_or(t, |d| d.min(t)));
            }
        };
        match (self.closing_since, self.close_timeout) {
            (Some(since), Some(limit)) => at(since, limit),
            _ => match (self.ping_sent, self.ping_interval) {
                (Some(sent), _) => at(sent, self.pong_timeout),
                // Relative to this read, as the kernel's timeout is: a read
                // that waits out the interval has seen a quiet interval.
                (None, Some(interval)) => at(now, interval),
                (None, None) => {}
            },
        }
        if let (Some(since), Some(limit)) = (self.receiving_since, self.message_timeout) {
            at(since, limit);
        }
        if let Some(until) = self.recv_until {
            at(until, Duration::ZERO);
        }
        // A zero timeout is refused by `set_read_timeout`; `due` ran first,
        // so a deadline this close is a rounding away.
        let wait = due.map(|d| {
            d.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        });
        if self.armed == Some(wait) {
            return None;
        }
        self.armed = Some(wait);
        Some(wait)
    }

    /// Whether a read timeout is one this clock set, so that a read timing
    /// out means a deadline to check rather than the caller's own timeout.
    pub(crate) fn is_armed(&self) -> bool {
        matches!(self.armed, Some(Some(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Clock {
        fn keepalive(config: &Config) -> Clock {
            let Time::Limits(limits) = Time::keepalive(config) else {
                unreachable!()
            };
            Clock::from_limits(limits)
        }
    }

    fn config() -> Config {
        Config::default()
            .ping_interval(Some(Duration::from_secs(20)))
            .pong_timeout(Duration::from_secs(10))
            .close_timeout(Duration::from_secs(5))
            .message_timeout(Some(Duration::from_secs(30)))
    }

    #[test]
    fn idle_link_is_pinged_then_cut() {
        let mut clock = Clock::keepalive(&config());
        let t0 = Instant::now();
        clock.received(t0);
        assert_eq!(clock.arm(t0), Some(Some(Duration::from_secs(20))));
        // The same wait for every idle read: set once.
        assert_eq!(clock.arm(t0 + Duration::from_secs(1)), None);
        assert_eq!(clock.due(t0 + Duration::from_secs(19), false), None);
        assert_eq!(
            clock.due(t0 + Duration::from_secs(20), false),
            Some(Due::Ping)
        );
        clock.pinged(t0 + Duration::from_secs(20));
        assert_eq!(
            clock.arm(t0 + Duration::from_secs(20)),
            Some(Some(Duration::from_secs(10)))
        );
        assert_eq!(clock.due(t0 + Duration::from_secs(29), false), None);
        assert_eq!(
            clock.due(t0 + Duration::from_secs(30), false),
            Some(Due::Pong)
        );
        // Anything received answers the ping.
        clock.received(t0 + Duration::from_secs(29));
        assert_eq!(clock.due(t0 + Duration::from_secs(30), false), None);
    }

    #[test]
    fn trickled_message_is_due_however_often_bytes_come() {
        let mut clock = Clock::keepalive(&config());
        let t0 = Instant::now();
        clock.received(t0);
        clock.receiving(true);
        for s in (2..30).step_by(2) {
            let now = t0 + Duration::from_secs(s);
            clock.received(now);
            clock.receiving(true);
            assert_eq!(clock.due(now, false), None, "at {s} s");
        }
        let now = t0 + Duration::from_secs(30);
        assert_eq!(clock.due(now, false), Some(Due::Message));
        // Whole: the next message has a deadline of its own.
        clock.receiving(false);
        assert_eq!(clock.due(now, false), None);
    }

    #[test]
    fn a_late_message_shortens_the_wait() {
        let mut clock = Clock::keepalive(&config());
        let t0 = Instant::now();
        clock.received(t0);
        clock.receiving(true);
        let now = t0 + Duration::from_secs(25);
        assert_eq!(clock.arm(now), Some(Some(Duration::from_secs(5))));
    }

    #[test]
    fn after_our_close_only_the_close_timeout_runs() {
        let mut clock = Clock::keepalive(&config());
        let t0 = Instant::now();
        clock.received(t0);
        assert_eq!(clock.due(t0, true), None);
        assert_eq!(clock.arm(t0), Some(Some(Duration::from_secs(5))));
        assert_eq!(clock.due(t0 + Duration::from_secs(4), true), None);
        assert_eq!(
            clock.due(t0 + Duration::from_secs(25), true),
            Some(Due::Close)
        );
    }

    #[test]
    fn a_server_client_waits_without_timeout_unless_a_message_is_late() {
        let mut clock = Clock::message_only(&config());
        let t0 = Instant::now();
        clock.received(t0);
        assert_eq!(clock.arm(t0), None);
        assert!(!clock.is_armed());
        assert_eq!(clock.due(t0 + Duration::from_secs(3600), true), None);
        clock.receiving(true);
        assert_eq!(clock.arm(t0), Some(Some(Duration::from_secs(30))));
        assert!(clock.is_armed());
        clock.receiving(false);
        assert_eq!(clock.arm(t0), Some(None));
    }

    #[test]
    fn the_callers_read_timeout_runs_per_recv() {
        let mut clock = Clock::keepalive(&config());
        clock.set_read_timeout(Some(Duration::from_secs(1)));
        let t0 = Instant::now();
        clock.received(t0);
        clock.start(t0);
        assert_eq!(clock.arm(t0), Some(Some(Duration::from_secs(1))));
        assert_eq!(
            clock.due(t0 + Duration::from_secs(1), false),
            Some(Due::ReadTimeout)
        );
        // The keepalive runs across calls that time out.
        for s in 1..20 {
            clock.start(t0 + Duration::from_secs(s));
            assert_eq!(clock.due(t0 + Duration::from_secs(s), false), None);
        }
        clock.start(t0 + Duration::from_secs(20));
        assert_eq!(
            clock.due(t0 + Duration::from_secs(20), false),
            Some(Due::Ping)
        );
    }

    #[test]
    fn a_connections_clock_is_made_by_its_first_read() {
        let mut time = Time::keepalive(&config());
        assert!(time.made().is_none());
        assert!(time.clock().is_some());
        assert!(time.made().is_some());
        let mut off = Time::Off;
        assert!(off.clock().is_none());
        off.set_read_timeout(Some(Duration::from_secs(1)));
        assert!(off.made().is_some());
    }

    #[test]
    fn limits_past_the_end_of_time_never_pass() {
        let config = config()
            .message_timeout(Some(Duration::MAX))
            .ping_interval(Some(Duration::MAX));
        let mut clock = Clock::message_only(&config);
        let t0 = Instant::now();
        clock.received(t0);
        clock.receiving(true);
        assert_eq!(clock.due(t0 + Duration::from_secs(3600), false), None);
        assert_eq!(clock.arm(t0), None, "no timeout to set");
        let mut time = Time::keepalive(&config);
        let clock = time.clock().unwrap();
        clock.receiving(true);
        assert_eq!(
            clock.due(Instant::now() + Duration::from_secs(3600), false),
            None
        );
    }

    #[test]
    fn off_never_touches_the_stream() {
        let mut clock = Clock::off();
        let t0 = Instant::now();
        clock.receiving(true);
        assert_eq!(clock.arm(t0 + Duration::from_secs(3600)), None);
        assert_eq!(clock.due(t0 + Duration::from_secs(3600), false), None);
    }
}
