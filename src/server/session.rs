//! Sessions: the clients of the HTTP transports (an SSE stream, a
//! long-poll client), which a handler sees as a `Client` like a WebSocket
//! one. What the page POSTs reaches the handler through the session's
//! inbox; what is sent to it waits in its outbox.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::handshake::{Parts, Request};
use crate::hub::Encoded;
use crate::message::Message;
use crate::server::outbox::{Outbox, Wake};
use crate::wire::cursor::Cursor;

/// How many messages a session's handler may have waiting from its page.
pub(crate) const INBOX: usize = 32;

/// One client of an HTTP transport.
pub(crate) struct Session {
    /// 32 lowercase hex digits, 128 random bits: the client names its
    /// session with it in `POST /send` and `GET /poll`.
    pub(crate) id: String,
    /// Where sends go (and, for SSE, the hub subscriber).
    pub(crate) outbox: Arc<Outbox>,
    inbox_tx: Mutex<Option<Sender<Message>>>,
    inbox: Receiver<Message>,
    /// The address of the client that opened it.
    pub(crate) peer: Option<IpAddr>,
    /// The request that opened it.
    head: Vec<u8>,
    parts: Parts,
    pub(crate) kind: Kind,
    state: Mutex<State>,
    changed: Condvar,
}

/// Which transport a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Server-Sent Events: it lives as long as its stream.
    Stream,
    /// Long polling: it lives while its client polls.
    Poll,
}

/// What changes under the session's lock.
#[derive(Debug)]
pub(crate) struct State {
    /// Bumped at each change a held poll waits for.
    generation: u64,
    pub(crate) closed: bool,
    /// Long polling: when the last poll ended, and how many are held now.
    pub(crate) last_poll: Instant,
    pub(crate) polling: usize,
    /// Long polling: the number of the latest poll; an older one held
    /// gives way to it.
    pub(crate) ticket: u64,
    /// Long polling: the last answer's events (sent again if the client
    /// polls from before it: the answer was lost), and the cursors before
    /// and after it.
    pub(crate) sent: Vec<Encoded>,
    pub(crate) sent_after: Option<String>,
    pub(crate) cursor: Cursor,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for the client of `request`, writing to `outbox`, resuming
    /// from `cursor`.
    pub(crate) fn new(
        kind: Kind,
        peer: IpAddr,
        request: &Request<'_>,
        outbox: Arc<Outbox>,
        cursor: Cursor,
    ) -> Arc<Session> {
        let (tx, inbox) = crossbeam_channel::bounded(INBOX);
        let head = request.head().to_vec();
        let session = Arc::new(Session {
            id: new_id(),
            outbox,
            inbox_tx: Mutex::new(Some(tx)),
            inbox,
            parts: request.parts(),
            peer: Some(peer.to_canonical()),
            head,
            kind,
            state: Mutex::new(State {
                generation: 0,
                closed: false,
                last_poll: Instant::now(),
                polling: 0,
                ticket: 0,
                sent: Vec::new(),
                sent_after: None,
                cursor,
            }),
            changed: Condvar::new(),
        });
        let waker: Arc<dyn Wake> = session.clone();
        session.outbox.set_waker(waker);
        session
    }

    /// The request that opened the session.
    pub(crate) fn request(&self) -> Request<'_> {
        Request::from_parts(&self.head, self.parts)
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a message of the page to the handler.
    ///
    /// # Errors
    ///
    /// `Full` when the handler has [`INBOX`] messages waiting, `Closed`
    /// once the session is over.
    pub(crate) fn deliver(&self, message: Message) -> Result<(), Refused> {
        let tx = self.inbox_tx.lock().unwrap_or_else(|p| p.into_inner());
        match tx.as_ref().map(|tx| tx.try_send(message)) {
            Some(Ok(())) => Ok(()),
            Some(Err(TrySendError::Full(_))) => Err(Refused::Full),
            Some(Err(TrySendError::Disconnected(_))) | None => Err(Refused::Closed),
        }
    }

    /// The next message of the page, waiting at most `timeout`: `Ok(None)`
    /// once the session is over and its inbox empty.
    pub(crate) fn recv(&self, timeout: Duration) -> Result<Option<Message>, ()> {
        match self.inbox.recv_timeout(timeout) {
            Ok(message) => Ok(Some(message)),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(()),
        }
    }

    /// Ends the session: its handler's `recv` returns `Ok(None)` once the
    /// inbox is empty, and held polls return.
    pub(crate) fn close(&self) {
        self.inbox_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut state = self.state();
        state.closed = true;
        state.generation += 1;
        drop(state);
        self.changed.notify_all();
    }

    /// Whether the session is over.
    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// The change counter, for [`wait`](Self::wait).
    pub(crate) fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Waits until the session changes after `seen` (a message queued, the
    /// session closed), at most until `deadline`; returns whether it did.
    pub(crate) fn wait(&self, seen: u64, deadline: Instant) -> bool {
        let mut state = self.state();
        while state.generation == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

impl Wake for Session {
    fn wake(&self) {
        let mut state = self.state();
        state.generation += 1;
        // Called at every message queued for the session: wake threads
        // only if a poll is held (each notify is a system call).
        if state.polling > 0 {
            drop(state);
            self.changed.notify_all();
        }
    }
}

/// Why a message from the page was not handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Closed,
}

/// The sessions of a server, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert(&self, session: &Arc<Session>) {
        self.map().insert(session.id.clone(), Arc::clone(session));
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map().get(id).cloned()
    }

    pub(crate) fn remove(&self, id: &str) {
        self.map().remove(id);
    }

    /// How many long-poll sessions there are, in all and from `ip` (an SSE
    /// session is counted as its stream's connection).
    pub(crate) fn polling(&self, ip: Option<IpAddr>) -> (usize, usize) {
        let map = self.map();
        let polls = map.values().filter(|s| s.kind == Kind::Poll);
        let (mut all, mut from) = (0, 0);
        for session in polls {
            all += 1;
            from += usize::from(ip.is_some() && session.peer == ip.map(|ip| ip.to_canonical()));
        }
        (all, from)
    }

    /// Every session, to close them at shutdown.
    pub(crate) fn all(&self) -> Vec<Arc<Session>> {
        self.map().values().cloned().collect()
    }
}

/// A new session id: 128 bits from SipHash under the process's random
/// keys, over a counter and the time, so no two are alike and none can be
/// guessed from another.
fn new_id() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let now = SystemTime::now();
    let hasher = RandomState::new();
    let a = hasher.hash_one((count, now, 0u8));
    let b = hasher.hash_one((count, now, 1u8));
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }
}
