//! Fan-out of server pushes: publish once, every subscriber of the topic
//! receives it, and no client can slow the publisher or the others.
//!
//! A published message is encoded into one frame whose bytes all
//! subscribers share (server frames are unmasked, so they are identical for
//! every client). Each client has an outbox: a bounded
//! `crossbeam-channel` queue, drained by the client's own writer thread.
//! Publishing never blocks and never writes to a socket: it offers the
//! frame to each queue, and when a queue is full the topic's [`Policy`]
//! decides what gives.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::frame::{self, CloseCode, OpCode};
use crate::message::Message;

/// What happens when a message is published to a client whose queue is
/// full, because the client (or its link) is slower than the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Close the client with code 1013 (try again later): it keeps every
    /// message it gets in order, or none. The default. Its queue is freed at
    /// once; the close frame follows the write in progress, and a client
    /// that reads nothing at all is cut at the write timeout.
    #[default]
    Disconnect,
    /// Drop the oldest queued message to make room: the client keeps up with
    /// the present and loses part of the past.
    DropOldest,
    /// Keep only the newest message of this topic waiting for the client: a
    /// new one replaces the one not yet sent. The right policy for sensor
    /// readings: a dashboard that fell behind wants the current value, not a
    /// backlog.
    KeepLatest,
}

/// The hub's and server's counters, read with [`Hub::stats`].
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
    /// Messages dropped by [`Policy::DropOldest`].
    pub dropped_oldest: u64,
    /// Messages replaced by a newer one under [`Policy::KeepLatest`].
    pub dropped_superseded: u64,
    /// Clients disconnected by [`Policy::Disconnect`] for being too slow.
    pub disconnected_slow: u64,
    /// Clients disconnected for not answering the keepalive ping.
    pub disconnected_unresponsive: u64,
    /// Clients disconnected because a write failed or timed out.
    pub disconnected_write: u64,
    /// Connections refused with 503 because the server was full.
    pub rejected_full: u64,
    /// Handshakes that failed: refused, timed out, or broken off.
    pub handshake_failed: u64,
}

/// Shared counters; `Stats` is a snapshot of them.
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
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> Stats {
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
        }
    }
}

/// A complete server frame, encoded once, shared by every queue it is in.
///
/// One pointer wide, so a client's queue of 64 slots costs 1 KiB.
#[derive(Clone)]
pub(crate) struct Frame(Arc<FrameData>);

struct FrameData {
    /// The topic it was published to; `None` for a message sent to one
    /// client.
    topic: Option<Arc<str>>,
    bytes: Box<[u8]>,
}

impl Frame {
    pub(crate) fn encode(opcode: OpCode, payload: &[u8], topic: Option<Arc<str>>) -> Frame {
        let (header, len) = frame::server_header(opcode, payload.len());
        let mut bytes = Vec::with_capacity(len + payload.len());
        bytes.extend_from_slice(&header[..len]);
        bytes.extend_from_slice(payload);
        Frame(Arc::new(FrameData {
            topic,
            bytes: bytes.into_boxed_slice(),
        }))
    }

    /// The frame as it goes on the wire.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    pub(crate) fn topic(&self) -> Option<&Arc<str>> {
        self.0.topic.as_ref()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("len", &self.0.bytes.len())
            .field("topic", &self.0.topic)
            .finish()
    }
}

/// Everything waiting to be written to one client.
///
/// Data frames queue in a bounded channel, which the client's writer thread
/// sleeps on. Control frames owed by the reader (pong, close) and the
/// newest frame of [`Policy::KeepLatest`] topics wait in [`Pending`],
/// coalesced, so they are bounded too and never stuck behind a full queue;
/// a `None` in the channel (the bell, at most one at a time) wakes the
/// writer to look at them.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: Sender<Option<Frame>>,
    pub(crate) rx: Receiver<Option<Frame>>,
    /// Whether a bell is in the channel.
    bell_queued: AtomicBool,
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    closing: AtomicBool,
    pending: Mutex<Pending>,
    /// Signalled when the writer has taken frames and a handler waits for
    /// byte room (`waiting` of them).
    space: Condvar,
    waiting: AtomicUsize,
}

/// What waits beside the queue; the writer takes it all at each wake-up.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The latest ping payload to answer (older ones are superseded).
    pub(crate) pong: Option<Vec<u8>>,
    /// A close frame to send: code (none for an empty close) and reason.
    pub(crate) close: Option<(Option<CloseCode>, String)>,
    /// The newest frame per [`Policy::KeepLatest`] topic that found the
    /// queue full, or whose topic already had one waiting.
    pub(crate) latest: Vec<Frame>,
    /// The reader is finished: no more replies will be owed.
    pub(crate) reader_done: bool,
    /// The topics this client subscribes to.
    pub(crate) topics: Vec<Arc<str>>,
}

/// What became of a frame offered to a client.
enum Offer {
    Queued,
    Superseded,
    DroppedOldest,
    Disconnect,
    Closed,
}

impl Outbox {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Outbox {
        // One more slot than messages, for the bell.
        let (tx, rx) = crossbeam_channel::bounded(max_messages.max(1) + 1);
        Outbox {
            tx,
            rx,
            bell_queued: AtomicBool::new(false),
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
            closing: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            space: Condvar::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    pub(crate) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the writer to look at [`Pending`]; rings once however often it
    /// is called. With the channel full the writer is awake anyway, and
    /// looks at `Pending` after draining it.
    pub(crate) fn ring(&self) {
        if !self.bell_queued.swap(true, Ordering::AcqRel) && self.tx.try_send(None).is_err() {
            self.bell_queued.store(false, Ordering::Release);
        }
    }

    /// The next frame in the queue, without waiting; bells are skipped.
    pub(crate) fn try_take(&self) -> Option<Frame> {
        loop {
            match self.rx.try_recv() {
                Ok(Some(frame)) => {
                    self.taken(&frame);
                    return Some(frame);
                }
                Ok(None) => self.bell_queued.store(false, Ordering::Release),
                Err(_) => return None,
            }
        }
    }

    /// Waits at most `timeout` for a frame or the bell; the frame, if one
    /// came.
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> Option<Frame> {
        match self.rx.recv_timeout(timeout) {
            Ok(Some(frame)) => {
                self.taken(&frame);
                Some(frame)
            }
            Ok(None) => {
                self.bell_queued.store(false, Ordering::Release);
                None
            }
            Err(_) => None,
        }
    }

    /// Whether a close frame has been queued: nothing more is accepted.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Records that `frame` left the queue.
    fn taken(&self, frame: &Frame) {
        self.queued_bytes
            .fetch_sub(frame.bytes().len(), Ordering::Relaxed);
    }

    fn has_room_for(&self, frame: &Frame) -> bool {
        self.queued_bytes.load(Ordering::Relaxed) + frame.bytes().len() <= self.max_bytes
    }

    fn try_queue(&self, frame: Frame) -> Result<(), Frame> {
        if !self.has_room_for(&frame) {
            return Err(frame);
        }
        let len = frame.bytes().len();
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        match self.tx.try_send(Some(frame)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(frame) | TrySendError::Disconnected(frame)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                Err(frame.expect("the frame sent"))
            }
        }
    }

    /// Queues a message for this client alone, waiting while the queue is
    /// full, in messages or in bytes (a message larger than the byte bound
    /// waits for an empty queue): a handler that sends faster than its
    /// client reads is slowed down, not buffered without bound. Gives up
    /// after `timeout`.
    pub(crate) fn send(&self, frame: Frame, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let len = frame.bytes().len();
        let fits = || {
            let queued = self.queued_bytes.load(Ordering::Acquire);
            queued == 0 || queued + len <= self.max_bytes
        };
        if !fits() {
            let mut pending = self.pending();
            self.waiting.fetch_add(1, Ordering::AcqRel);
            while !fits() && !self.is_closing() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                pending = self
                    .space
                    .wait_timeout(pending, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            if !fits() {
                return false;
            }
        }
        if self.is_closing() {
            return false;
        }
        self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        let left = deadline.saturating_duration_since(Instant::now());
        if self.tx.send_timeout(Some(frame), left).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Wakes handlers waiting in [`send`](Self::send) for room; the writer
    /// calls it after taking frames, with no lock held.
    pub(crate) fn notify_space(&self) {
        if self.waiting.load(Ordering::Acquire) > 0 {
            // Taking the lock orders this after a waiter's check.
            drop(self.pending());
            self.space.notify_all();
        }
    }

    /// Queues our close frame (at most once); returns whether one had
    /// already been queued.
    pub(crate) fn close(&self, code: Option<CloseCode>, reason: &str) -> bool {
        let mut pending = self.pending();
        if self.closing.swap(true, Ordering::AcqRel) {
            return true;
        }
        pending.close = Some((code, reason.to_owned()));
        drop(pending);
        self.ring();
        self.space.notify_all();
        false
    }

    /// Queues a pong, replacing one not yet sent.
    pub(crate) fn pong(&self, payload: &[u8]) {
        if self.is_closing() {
            return;
        }
        self.pending().pong = Some(payload.to_vec());
        self.ring();
    }

    /// Offers a published frame under `policy`.
    fn offer(&self, frame: &Frame, policy: Policy) -> Offer {
        if self.is_closing() {
            return Offer::Closed;
        }
        match policy {
            Policy::Disconnect => match self.try_queue(frame.clone()) {
                Ok(()) => Offer::Queued,
                Err(_) => {
                    self.close(Some(CloseCode::TRY_AGAIN_LATER), "client too slow");
                    // What is queued will not be sent: free it now, and
                    // ring again, as the bell may have gone with it.
                    while self.try_take().is_some() {}
                    self.ring();
                    Offer::Disconnect
                }
            },
            Policy::DropOldest => {
                let mut frame = frame.clone();
                let mut dropped = false;
                loop {
                    match self.try_queue(frame) {
                        Ok(()) => break,
                        Err(back) => frame = back,
                    }
                    match self.try_take() {
                        Some(_) => dropped = true,
                        // Emptied by the writer meanwhile, or larger than
                        // the whole queue: drop the new one.
                        None if self.rx.is_empty() && !self.has_room_for(&frame) => {
                            return Offer::DroppedOldest
                        }
                        None => {}
                    }
                }
                if dropped {
                    Offer::DroppedOldest
                } else {
                    Offer::Queued
                }
            }
            Policy::KeepLatest => {
                // Under the lock, so the writer cannot take the slots between
                // a full queue and the slot being filled.
                let mut pending = self.pending();
                let topic = frame.topic();
                if let Some(slot) = pending.latest.iter_mut().find(|f| f.topic() == topic) {
                    *slot = frame.clone();
                    return Offer::Superseded;
                }
                if let Err(frame) = self.try_queue(frame.clone()) {
                    pending.latest.push(frame);
                    drop(pending);
                    self.ring();
                }
                Offer::Queued
            }
        }
    }
}

/// Publishes messages to topics; every client subscribed to a topic receives
/// each message published to it, in order (under [`Policy::Disconnect`]
/// and [`Policy::DropOldest`] with room in its queue).
///
/// Cheap to clone: all clones are the same hub. Get it from
/// [`Server::hub`](crate::Server::hub).
///
/// ```no_run
/// use boardcast::{Config, Server, hub::Policy};
///
/// # fn main() -> std::io::Result<()> {
/// let server = Server::bind("0.0.0.0:8080", Config::default())?;
/// let hub = server.hub();
/// hub.set_policy("temperature", Policy::KeepLatest);
/// std::thread::spawn(move || loop {
///     hub.publish_text("temperature", r#"{"celsius":41.2}"#);
///     std::thread::sleep(std::time::Duration::from_millis(100));
/// });
/// server.run(|mut client| {
///     client.subscribe("temperature");
///     while let Ok(Some(_)) = client.recv() {}
/// })
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    default_policy: Policy,
    topics: RwLock<HashMap<Arc<str>, Topic>>,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Topic {
    policy: Option<Policy>,
    subscribers: Vec<Arc<Outbox>>,
}

impl Hub {
    pub(crate) fn new(default_policy: Policy, counters: Arc<Counters>) -> Hub {
        Hub {
            inner: Arc::new(HubInner {
                default_policy,
                topics: RwLock::new(HashMap::new()),
                counters,
            }),
        }
    }

    fn topics_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Topic>> {
        self.inner.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn topics_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, Topic>> {
        self.inner.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the slow-consumer policy of one topic, overriding the hub's
    /// default ([`Config::policy`](crate::Config#structfield.policy)).
    pub fn set_policy(&self, topic: &str, policy: Policy) {
        let mut topics = self.topics_write();
        match topics.get_mut(topic) {
            Some(t) => t.policy = Some(policy),
            None => {
                let topic_name: Arc<str> = topic.into();
                topics.insert(
                    topic_name,
                    Topic {
                        policy: Some(policy),
                        subscribers: Vec::new(),
                    },
                );
            }
        }
    }

    /// Publishes a text or binary message to every subscriber of `topic`,
    /// and returns how many it was queued for (ping, pong and close
    /// messages are not published: 0).
    ///
    /// Never blocks on a client: the frame is encoded once and offered to
    /// each client's queue under the topic's [`Policy`].
    pub fn publish(&self, topic: &str, message: &Message) -> usize {
        match message {
            Message::Text(text) => self.publish_frame(topic, OpCode::Text, text.as_bytes()),
            Message::Binary(data) => self.publish_frame(topic, OpCode::Binary, data),
            _ => 0,
        }
    }

    /// Publishes a text message; see [`publish`](Self::publish).
    pub fn publish_text(&self, topic: &str, text: &str) -> usize {
        self.publish_frame(topic, OpCode::Text, text.as_bytes())
    }

    /// Publishes a binary message; see [`publish`](Self::publish).
    pub fn publish_binary(&self, topic: &str, data: &[u8]) -> usize {
        self.publish_frame(topic, OpCode::Binary, data)
    }

    fn publish_frame(&self, topic: &str, opcode: OpCode, payload: &[u8]) -> usize {
        let counters = &self.inner.counters;
        bump(&counters.published);
        let topics = self.topics_read();
        let Some((name, entry)) = topics.get_key_value(topic) else {
            return 0;
        };
        if entry.subscribers.is_empty() {
            return 0;
        }
        let frame = Frame::encode(opcode, payload, Some(Arc::clone(name)));
        let policy = entry.policy.unwrap_or(self.inner.default_policy);
        let mut queued = 0;
        for outbox in &entry.subscribers {
            match outbox.offer(&frame, policy) {
                Offer::Queued => queued += 1,
                Offer::Superseded => {
                    queued += 1;
                    bump(&counters.dropped_superseded);
                }
                Offer::DroppedOldest => {
                    queued += 1;
                    bump(&counters.dropped_oldest);
                }
                Offer::Disconnect => {
                    log::info!("disconnecting a client too slow for topic {topic:?}");
                    bump(&counters.disconnected_slow);
                }
                Offer::Closed => {}
            }
        }
        queued
    }

    /// The number of clients subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.topics_read()
            .get(topic)
            .map_or(0, |t| t.subscribers.len())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Subscribes a client's outbox; returns false if it already was.
    pub(crate) fn subscribe(&self, topic: &str, outbox: &Arc<Outbox>) -> bool {
        let mut topics = self.topics_write();
        let name: Arc<str> = match topics.get_key_value(topic) {
            Some((name, _)) => Arc::clone(name),
            None => topic.into(),
        };
        let entry = topics.entry(Arc::clone(&name)).or_default();
        if entry.subscribers.iter().any(|o| Arc::ptr_eq(o, outbox)) {
            return false;
        }
        entry.subscribers.push(Arc::clone(outbox));
        outbox.pending().topics.push(name);
        self.inner
            .counters
            .subscriptions
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Unsubscribes a client's outbox; returns false if it was not.
    pub(crate) fn unsubscribe(&self, topic: &str, outbox: &Arc<Outbox>) -> bool {
        let mut topics = self.topics_write();
        let Some(entry) = topics.get_mut(topic) else {
            return false;
        };
        let Some(at) = entry
            .subscribers
            .iter()
            .position(|o| Arc::ptr_eq(o, outbox))
        else {
            return false;
        };
        entry.subscribers.swap_remove(at);
        if entry.subscribers.is_empty() && entry.policy.is_none() {
            topics.remove(topic);
        }
        let mut pending = outbox.pending();
        pending.topics.retain(|t| &**t != topic);
        // A newest value still waiting must not arrive after this.
        pending
            .latest
            .retain(|f| f.topic().is_some_and(|t| &**t != topic));
        self.inner
            .counters
            .subscriptions
            .fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Removes a departing client from all its topics.
    pub(crate) fn unsubscribe_all(&self, outbox: &Arc<Outbox>) {
        let topics = std::mem::take(&mut outbox.pending().topics);
        for topic in topics {
            let _ = self.unsubscribe(&topic, outbox);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Frame {
        Frame::encode(OpCode::Binary, &vec![0; len], None)
    }

    #[test]
    fn handler_sends_are_bounded_in_bytes() {
        let outbox = Outbox::new(32, 1000);
        let short = Duration::from_millis(20);
        assert!(outbox.send(frame(400), short));
        assert!(outbox.send(frame(400), short));
        // 800 + 404 > 1000: no room, however many message slots are free.
        assert!(!outbox.send(frame(400), short));
        // Taking one frame makes room for a sender that waits.
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| outbox.send(frame(400), Duration::from_secs(10)));
            assert!(outbox.try_take().is_some());
            outbox.notify_space();
            // A wake-up that came before the waiter slept is not lost: it
            // checks for room under the lock first.
            assert!(waiter.join().unwrap());
        });
    }

    #[test]
    fn a_message_larger_than_the_bound_waits_for_an_empty_queue() {
        let outbox = Outbox::new(32, 1000);
        let short = Duration::from_millis(20);
        assert!(outbox.send(frame(5000), short));
        assert!(!outbox.send(frame(10), short));
        assert!(outbox.try_take().is_some());
        assert!(outbox.send(frame(5000), short));
    }

    #[test]
    fn closing_releases_a_waiting_sender() {
        let outbox = Outbox::new(32, 100);
        assert!(outbox.send(frame(90), Duration::from_millis(20)));
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| outbox.send(frame(90), Duration::from_secs(60)));
            outbox.close(Some(CloseCode::NORMAL), "");
            assert!(!waiter.join().unwrap());
        });
    }
}
