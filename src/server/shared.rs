//! What the accept loop, every connection thread and the handles share.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::hub::{Counters, Hub};
use crate::server::flusher::Flusher;
use crate::server::outbox::Outbox;
use crate::server::tracker::Tracker;
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
    /// outbox once upgraded.
    pub(super) connections: Mutex<HashMap<u64, Live>>,
    pub(super) next_id: AtomicU64,
    pub(super) threads: Arc<Tracker>,
    /// The origin of the millisecond clocks below.
    pub(super) started: Instant,
}

#[derive(Debug, Clone)]
pub(super) struct Live {
    pub(super) stream: Arc<dyn Socket>,
    pub(super) outbox: Option<Arc<Outbox>>,
}

impl Shared {
    pub(super) fn connections(&self) -> MutexGuard<'_, HashMap<u64, Live>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Milliseconds since the server was made: the clock of keepalives.
    pub(super) fn millis(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}
