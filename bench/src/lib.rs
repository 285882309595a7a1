//! The load generator `wsload` and its helpers, for BENCHMARKS.md.
//!
//! The generator speaks just enough RFC 6455 to drive a server hard while
//! spending as little CPU as it can: every request frame is built and masked
//! once and reused, buffers are allocated once per connection, and all the
//! connections of a worker share one `epoll` loop (`mio`), so a response
//! costs a `read` and an amortised `epoll_wait`, not a context switch.
//! A worker with a single connection uses plain blocking calls instead.
//!
//! - [`echo`]: lock-step round trips (one request in flight per
//!   connection) against a WebSocket or raw TCP echo server;
//! - [`fanout`]: subscribers of a broadcast server, counting deliveries,
//!   delivery latency, lost and out-of-order messages per subscriber;
//! - [`conns`]: idle connections, handshakes/s, and the server's memory
//!   and threads per connection from `/proc`;
//! - [`resume`]: a `boardcast.v1` client that drops its link and resumes,
//!   timing the reconnect, the replay and catching up, and checking that
//!   no message is lost or doubled;
//! - [`transports`]: clients of one transport (WebSocket `boardcast.v1`,
//!   Server-Sent Events, long polling, polling `/latest`) of the broadcast
//!   example, and what each delivered message costs on the wire and on
//!   the server.
//!
//! Each prints one JSON object per measurement on stdout.

pub mod args;
pub mod conns;
pub mod echo;
pub mod fanout;
pub mod http;
pub mod procfs;
pub mod resume;
pub mod transports;
pub mod wire;

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the UNIX epoch, the clock of the broadcast payloads.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A latency histogram in nanoseconds, 1 ns to 100 s, 3 significant digits.
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds")
}

/// Microseconds at quantile `q`, or 0 for an empty histogram.
pub fn quantile_us(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Rounds for JSON: three decimals are plenty.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
