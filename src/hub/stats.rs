//! The hub's and server's counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The hub's and server's counters, read with [`Hub::stats`](super::Hub::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Clients connected now (after their handshake).
    pub clients: usize,
    /// Subscriptions now: (client, topic) pairs.
    pub subscriptions: usize,
    /// Messages published.
    pub published: u64,
    /// Published messages written to a client's socket, counted per client.
    pub delivered: u64,
    /// Messages dropped by [`Policy::DropOldest`](super::Policy::DropOldest).
    pub dropped_oldest: u64,
    /// Messages replaced by a newer one under
    /// [`Policy::KeepLatest`](super::Policy::KeepLatest).
    pub dropped_superseded: u64,
    /// Clients disconnected by [`Policy::Disconnect`](super::Policy::Disconnect)
    /// for being too slow.
    pub disconnected_slow: u64,
    /// Clients disconnected for not answering the keepalive ping.
    pub disconnected_unresponsive: u64,
    /// Clients disconnected because a write failed or timed out.
    pub disconnected_write: u64,
    /// Connections refused with 503: the server was full
    /// (`max_connections`), or their address had its share
    /// (`max_connections_per_ip`).
    pub rejected_full: u64,
    /// Handshakes that failed: refused, timed out, or broken off.
    pub handshake_failed: u64,
    /// Bytes the topics' histories hold now (see
    /// [`Retention`](super::Retention)).
    pub history_bytes: usize,
    /// Published messages compressed for permessage-deflate clients: once
    /// per message (and window size, 4 KiB or 512 bytes), however many
    /// clients it went to. Counted for the whole process, all servers
    /// together; always 0 without the `deflate` feature.
    pub deflated: u64,
}

/// Shared counters; [`Stats`] is a snapshot of them. The hub counts
/// publishing, the transports delivery and connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) clients: AtomicUsize,
    pub(crate) subscriptions: AtomicUsize,
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped_oldest: AtomicU64,
    pub(crate) dropped_superseded: AtomicU64,
    pub(crate) disconnected_slow: AtomicU64,
    pub(crate) disconnected_unresponsive: AtomicU64,
    pub(crate) disconnected_write: AtomicU64,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) handshake_failed: AtomicU64,
    pub(crate) history_bytes: AtomicUsize,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    bump_by(counter, 1);
}

/// Adds `n` to a counter.
pub(crate) fn bump_by(counter: &AtomicU64, n: usize) {
    if n > 0 {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            clients: self.clients.load(Ordering::Relaxed),
            subscriptions: self.subscriptions.load(Ordering::Relaxed),
            published: get(&self.published),
            delivered: get(&self.delivered),
            dropped_oldest: get(&self.dropped_oldest),
            dropped_superseded: get(&self.dropped_superseded),
            disconnected_slow: get(&self.disconnected_slow),
            disconnected_unresponsive: get(&self.disconnected_unresponsive),
            disconnected_write: get(&self.disconnected_write),
            rejected_full: get(&self.rejected_full),
            handshake_failed: get(&self.handshake_failed),
            history_bytes: self.history_bytes.load(Ordering::Relaxed),
            #[cfg(feature = "deflate")]
            deflated: crate::extension::deflate::shared_count(),
            #[cfg(not(feature = "deflate"))]
            deflated: 0,
        }
    }
}
