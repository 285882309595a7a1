//! What the accept loop, every connection thread and the handles share.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::hub::{Counters, Hub};
use crate::protocol::MessageBudget;
use crate::server::flusher::Flusher;
use crate::server::outbox::Outbox;
use crate::server::session::Sessions;
use crate::server::tracker::Tracker;
use crate::server::transports::Transports;
use crate::socket::Socket;

/// State shared by the accept loop, every connection and the handles.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) hub: Hub,
    pub(super) counters: Arc<Counters>,
    /// Writes published frames to the WebSocket clients.
    pub(super) flusher: Arc<Flusher>,
    pub(super) stopping: AtomicBool,
    pub(super) local_addr: SocketAddr,
    /// Every open connection's socket, to cut them at shutdown, and its
    /// outbox once upgraded; and how many each address has.
    pub(super) connections: Mutex<Connections>,
    pub(super) next_id: AtomicU64,
    pub(super) threads: Arc<Tracker>,
    /// The origin of the millisecond clocks below.
    pub(super) started: Instant,
    /// What the messages in progress of all connections hold together.
    pub(super) partial: Arc<PartialBudget>,
    /// The HTTP transports served, and their sessions.
    pub(super) transports: Mutex<Arc<Transports>>,
    pub(super) sessions: Sessions,
}

#[derive(Debug, Clone)]
pub(super) struct Live {
    pub(super) stream: Arc<dyn Socket>,
    pub(super) outbox: Option<Arc<Outbox>>,
    /// The address it counts against under `max_connections_per_ip`, if
    /// any (loopback peers may be exempt).
    pub(super) ip: Option<IpKey>,
}

/// An address as the per-address limit counts it: an IPv4 address, or an
/// IPv6 address's /64 (a host usually has a whole /64, and could otherwise
/// take a new address for each connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum IpKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl IpKey {
    /// The key of `ip`; an IPv4-mapped IPv6 address is its IPv4 address.
    pub(super) fn of(ip: IpAddr) -> IpKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpKey::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                IpKey::V6Prefix(prefix)
            }
        }
    }
}

/// The open connections, and how many each address has.
#[derive(Debug, Default)]
pub(super) struct Connections {
    live: HashMap<u64, Live>,
    per_ip: HashMap<IpKey, usize>,
}

impl Connections {
    /// How many connections are open.
    pub(super) fn len(&self) -> usize {
        self.live.len()
    }

    /// How many open connections count against `ip`.
    pub(super) fn count_of(&self, ip: IpKey) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    pub(super) fn insert(&mut self, id: u64, live: Live) {
        if let Some(ip) = live.ip {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        }
        if let Some(old) = self.live.insert(id, live) {
            self.forget(&old);
        }
    }

    pub(super) fn remove(&mut self, id: &u64) -> Option<Live> {
        let live = self.live.remove(id)?;
        self.forget(&live);
        Some(live)
    }

    fn forget(&mut self, live: &Live) {
        let Some(ip) = live.ip else {
            return;
        };
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    pub(super) fn get_mut(&mut self, id: &u64) -> Option<&mut Live> {
        self.live.get_mut(id)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Live> {
        self.live.values()
    }
}

/// The server's budget for messages in progress
/// ([`Config::max_partial_bytes`](crate::Config#structfield.max_partial_bytes)):
/// every client's receiving half takes from it.
#[derive(Debug)]
pub(super) struct PartialBudget {
    used: AtomicUsize,
    limit: usize,
}

impl PartialBudget {
    pub(super) fn new(limit: usize) -> PartialBudget {
        PartialBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }
}

impl MessageBudget for Arc<PartialBudget> {
    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl Shared {
    pub(super) fn connections(&self) -> MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The HTTP transports served.
    pub(super) fn transports(&self) -> Arc<Transports> {
        Arc::clone(&self.transports.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Milliseconds since the server was made: the clock of keepalives.
    pub(super) fn millis(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}
