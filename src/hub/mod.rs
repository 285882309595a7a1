//! Fan-out of server pushes: publish once, every subscriber of the topic
//! receives it, and no subscriber can slow the publisher or the others.
//!
//! The hub knows topics, their policies and their sequence numbers, and
//! nothing of sockets: a published message is encoded once into an
//! [`Encoded`] that every subscriber's queue shares, and each subscriber is
//! reached through the [`Subscriber`] trait, which a WebSocket client
//! implements (see the server's outbox) and the other transports will too.
//!
//! Every message published to a topic gets the topic's next sequence
//! number, and the hub an [`epoch`](Hub::epoch) that changes when the
//! process restarts: together they name a message across reconnects. Each
//! topic keeps its recent past (see [`Retention`]), so a subscriber that
//! comes back can [`resume`](Hub::resume) after the last message it got,
//! with no gap and no duplicate.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::frame::{Frame, OpCode};
use crate::hub::history::Log;
use crate::message::Message;

mod history;
mod stats;
mod subscriber;

pub use history::{Retention, ENTRY_OVERHEAD};
pub use stats::Stats;
pub(crate) use stats::{bump, bump_by, Counters};
pub(crate) use subscriber::Form;
pub use subscriber::{Delivery, Encoded, Policy, Replay, Subscriber};

/// Publishes messages to topics; every subscriber of a topic receives each
/// message published to it, in order (under [`Policy::Disconnect`] and
/// [`Policy::DropOldest`] with room in its queue).
///
/// Cheap to clone: all clones are the same hub. A [`Server`] makes one; get
/// it from [`Server::hub`].
///
/// [`Server`]: crate::Server
/// [`Server::hub`]: crate::Server::hub
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
    epoch: u64,
    /// The default [`Policy`], as [`policy_bits`].
    default_policy: AtomicU8,
    default_retention: Mutex<Retention>,
    /// The most bytes all histories may hold together (beyond it, each
    /// topic keeps only its latest message).
    history_budget: AtomicUsize,
    topics: RwLock<HashMap<Arc<str>, Topic>>,
    counters: Arc<Counters>,
}

/// The hub's total history budget by default: 2 MiB.
const HISTORY_BUDGET: usize = 2 << 20;

#[derive(Debug, Default)]
struct Topic {
    policy: Option<Policy>,
    retention: Option<Retention>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    /// The numbering and the kept messages. Held while a message is
    /// numbered, kept and offered, so every subscriber gets the topic's
    /// messages in sequence order, and a resume sees no publish half done.
    log: Mutex<Log>,
}

impl Topic {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the topic holds nothing worth keeping: no subscriber, no
    /// policy or retention, and no sequence number to continue from.
    fn is_unused(&self) -> bool {
        self.subscribers.is_empty()
            && self.policy.is_none()
            && self.retention.is_none()
            && self.log().seq == 0
    }
}

/// Where a subscriber left off: the hub's [`epoch`](Hub::epoch) and the
/// sequence number of the last message it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The epoch the sequence number belongs to.
    pub epoch: u64,
    /// The last sequence number received.
    pub seq: u64,
}

/// Where a [`resume`](Hub::resume) starts: what the subscriber is sent
/// before the live messages.
///
/// The default starts from the latest kept message. `From` conversions let
/// a position (or none) stand for the start it names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Since {
    /// The last message the subscriber got: every kept message after it is
    /// replayed, if it is of this epoch and the one right after it is kept.
    pub after: Option<Position>,
    /// When `after` cannot be recovered (or there is none): the kept
    /// messages published within this long instead of only the latest, so
    /// that a page can draw the recent past at once.
    pub past: Option<Duration>,
}

impl Since {
    /// Resumes after `position`.
    pub fn after(position: Position) -> Since {
        Since {
            after: Some(position),
            past: None,
        }
    }

    /// Falls back to the messages of the last `past` (rather than only the
    /// latest) when nothing is recovered.
    pub fn or_past(mut self, past: Duration) -> Since {
        self.past = Some(past);
        self
    }
}

impl From<Option<Position>> for Since {
    fn from(after: Option<Position>) -> Since {
        Since { after, past: None }
    }
}

impl From<Position> for Since {
    fn from(after: Position) -> Since {
        Since::after(after)
    }
}

/// What a [`resume`](Hub::resume) could do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// Every message after the position was replayed (perhaps none): the
    /// subscriber goes on live with no gap and no duplicate.
    Recovered {
        /// How many were replayed.
        replayed: usize,
    },
    /// The position was from another epoch (the program restarted), or
    /// ahead of the topic, or messages after it are no longer kept (or
    /// there was none): the latest message (if any) was replayed instead,
    /// or those of [`Since::past`], and the subscriber goes on live from
    /// there.
    NotRecovered {
        /// How many were replayed: 1 (or those of [`Since::past`]), or 0 if
        /// the topic keeps nothing.
        replayed: usize,
    },
}

/// What became of a publish: the message's sequence number, and how many
/// subscribers it was queued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The message's sequence number in its topic (see [`Encoded::seq`]);
    /// 0 when nothing was published (a control message).
    pub seq: u64,
    /// How many subscribers it was queued for.
    pub queued: usize,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    /// A hub with no topics, its own counters and a new epoch. A
    /// [`Server`](crate::Server) makes its own; this one is for
    /// subscribers of your own.
    pub fn new() -> Hub {
        Hub::with_counters(Arc::new(Counters::default()))
    }

    pub(crate) fn with_counters(counters: Arc<Counters>) -> Hub {
        let epoch = RandomState::new().hash_one(SystemTime::now()).max(1);
        Hub {
            inner: Arc::new(HubInner {
                epoch,
                default_policy: AtomicU8::new(policy_bits(Policy::default())),
                default_retention: Mutex::new(Retention::default()),
                history_budget: AtomicUsize::new(HISTORY_BUDGET),
                topics: RwLock::new(HashMap::new()),
                counters,
            }),
        }
    }

    /// A number that changes each time the hub is made, that is each time
    /// the board's program starts: sequence numbers are only comparable
    /// within one epoch.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    fn topics_read(&self) -> RwLockReadGuard<'_, HashMap<Arc<str>, Topic>> {
        self.inner.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn topics_write(&self) -> RwLockWriteGuard<'_, HashMap<Arc<str>, Topic>> {
        self.inner.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the policy of topics that have none of their own. Default
    /// [`Policy::Disconnect`].
    pub fn set_default_policy(&self, policy: Policy) {
        self.inner
            .default_policy
            .store(policy_bits(policy), Ordering::Relaxed);
    }

    /// Sets the slow-consumer policy of one topic, overriding the hub's
    /// default.
    pub fn set_policy(&self, topic: &str, policy: Policy) {
        self.with_topic(topic, |t| t.policy = Some(policy));
    }

    /// Sets how much of its past one topic keeps, overriding the hub's
    /// default; takes effect at its next publish.
    pub fn set_retention(&self, topic: &str, retention: Retention) {
        self.with_topic(topic, |t| t.retention = Some(retention));
    }

    /// Sets how much of their past topics without a retention of their own
    /// keep. Default [`Retention::default`].
    pub fn set_default_retention(&self, retention: Retention) {
        *self
            .inner
            .default_retention
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = retention;
    }

    /// Sets the most bytes all topics' histories hold together, counted as
    /// [`Retention::bytes`] counts them. Past it, a publish trims its own
    /// topic down to the latest message, so the total stays within the
    /// budget plus one message per topic. Default 2 MiB.
    pub fn set_history_budget(&self, bytes: usize) {
        self.inner.history_budget.store(bytes, Ordering::Relaxed);
    }

    /// Runs `change` on `topic`, made if it does not exist.
    fn with_topic(&self, topic: &str, change: impl FnOnce(&mut Topic)) {
        let mut topics = self.topics_write();
        if !topics.contains_key(topic) {
            topics.insert(topic.into(), Topic::default());
        }
        if let Some(entry) = topics.get_mut(topic) {
            change(entry);
        }
    }

    /// Publishes a text or binary message to every subscriber of `topic`.
    /// Ping, pong and close messages are not published (sequence number 0,
    /// queued for none).
    ///
    /// Never blocks on a subscriber: the message is encoded once and
    /// offered to each one under the topic's [`Policy`], in the topic's
    /// sequence order even when several threads publish to it.
    ///
    /// A topic, once published to, is kept for the hub's life with its
    /// sequence number (about a hundred bytes), so that numbering goes on
    /// across subscribers: publish to a bounded set of topic names.
    pub fn publish(&self, topic: &str, message: &Message) -> Published {
        match message {
            Message::Text(text) => self.publish_frame(topic, OpCode::Text, text.as_bytes()),
            Message::Binary(data) => self.publish_frame(topic, OpCode::Binary, data),
            _ => Published { seq: 0, queued: 0 },
        }
    }

    /// Publishes a text message; see [`publish`](Self::publish).
    pub fn publish_text(&self, topic: &str, text: &str) -> Published {
        self.publish_frame(topic, OpCode::Text, text.as_bytes())
    }

    /// Publishes a binary message; see [`publish`](Self::publish).
    pub fn publish_binary(&self, topic: &str, data: &[u8]) -> Published {
        self.publish_frame(topic, OpCode::Binary, data)
    }

    fn publish_frame(&self, topic: &str, opcode: OpCode, payload: &[u8]) -> Published {
        let counters = &self.inner.counters;
        bump(&counters.published);
        let mut topics = self.topics_read();
        if !topics.contains_key(topic) {
            drop(topics);
            self.topics_write().entry(topic.into()).or_default();
            topics = self.topics_read();
        }
        let Some((name, entry)) = topics.get_key_value(topic) else {
            // Removed between the two locks: it had nothing to deliver to.
            return Published { seq: 0, queued: 0 };
        };
        let mut log = entry.log();
        log.seq += 1;
        let mut published = Published {
            seq: log.seq,
            queued: 0,
        };
        let policy = entry.policy.unwrap_or_else(|| self.default_policy());
        let retention = entry.retention.unwrap_or_else(|| self.default_retention());
        let floor = usize::from(policy == Policy::KeepLatest);
        let kept = retention.messages > 0 || floor > 0;
        if entry.subscribers.is_empty() && !kept {
            return published;
        }
        let frame = Frame::new(opcode, payload, None);
        let encoded = Encoded::new(Some(Arc::clone(name)), self.inner.epoch, log.seq, &frame);
        for subscriber in &entry.subscribers {
            match subscriber.offer(&encoded, policy) {
                Delivery::Queued => published.queued += 1,
                Delivery::Superseded => {
                    published.queued += 1;
                    bump(&counters.dropped_superseded);
                }
                Delivery::DroppedOldest => {
                    published.queued += 1;
                    bump(&counters.dropped_oldest);
                }
                Delivery::Disconnected => {
                    log::info!("disconnecting a client too slow for topic {topic:?}");
                    bump(&counters.disconnected_slow);
                }
                Delivery::Closed => {}
            }
        }
        // Kept after the offers, so that its cost counts the forms its
        // subscribers' transports made of it.
        if kept {
            self.keep(&mut log, encoded, &retention, floor);
        }
        published
    }

    /// Keeps `message` in the topic's history, within its retention and
    /// the hub's budget.
    fn keep(&self, log: &mut Log, message: Encoded, retention: &Retention, floor: usize) {
        let (added, freed) = log.keep(message, Instant::now(), retention, floor);
        self.charge(log, added, freed);
    }

    /// Counts `added` bytes more and `freed` fewer in the histories, then
    /// trims `log` down to its latest message while they are over the
    /// hub's budget.
    fn charge(&self, log: &mut Log, added: usize, mut freed: usize) {
        let used = &self.inner.counters.history_bytes;
        used.fetch_add(added, Ordering::Relaxed);
        let budget = self.inner.history_budget.load(Ordering::Relaxed);
        while used.load(Ordering::Relaxed).saturating_sub(freed) > budget && log.len() > 1 {
            freed += log.drop_oldest();
        }
        used.fetch_sub(freed, Ordering::Relaxed);
    }

    fn default_retention(&self) -> Retention {
        *self
            .inner
            .default_retention
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn default_policy(&self) -> Policy {
        match self.inner.default_policy.load(Ordering::Relaxed) {
            1 => Policy::DropOldest,
            2 => Policy::KeepLatest,
            _ => Policy::Disconnect,
        }
    }

    /// The number of subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.topics_read()
            .get(topic)
            .map_or(0, |t| t.subscribers.len())
    }

    /// The names of the topics the hub knows (published to, subscribed, or
    /// given a policy or retention), sorted.
    pub fn topics(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self.topics_read().keys().cloned().collect();
        names.sort();
        names
    }

    /// The sequence number of the last message published to `topic` (0 if
    /// none was, in this epoch).
    pub fn last_seq(&self, topic: &str) -> u64 {
        self.topics_read().get(topic).map_or(0, |t| t.log().seq)
    }

    /// The latest message of `topic` that its history keeps: what a new
    /// page shows before the next reading arrives.
    pub fn latest(&self, topic: &str) -> Option<Encoded> {
        let topics = self.topics_read();
        let entry = topics.get(topic)?;
        let mut log = entry.log();
        self.expire(entry, &mut log);
        log.latest().cloned()
    }

    /// Drops what has grown too old in a topic's history since its last
    /// publish.
    fn expire(&self, entry: &Topic, log: &mut Log) {
        let retention = entry.retention.unwrap_or_else(|| self.default_retention());
        if retention.max_age.is_some() {
            let policy = entry.policy.unwrap_or_else(|| self.default_policy());
            let floor = usize::from(policy == Policy::KeepLatest);
            let freed = log.trim(Instant::now(), &retention, floor);
            self.inner
                .counters
                .history_bytes
                .fetch_sub(freed, Ordering::Relaxed);
        }
    }

    /// Subscribes `subscriber` to `topic` after replaying what it missed
    /// since `since.after`, through [`Subscriber::replay`]: every kept
    /// message after the position if the position is of this epoch and the
    /// one right after it is still kept ([`Resumed::Recovered`]), else (or
    /// with no position) the latest kept message, or those of
    /// [`Since::past`] ([`Resumed::NotRecovered`]). No publish to any topic
    /// runs meanwhile, so the subscriber gets the replay and then the live
    /// messages with no gap and no duplicate.
    ///
    /// `since` is a [`Since`], or a position, or `None` (the latest).
    ///
    /// Returns `None`, and replays nothing, if it was already subscribed.
    pub fn resume(
        &self,
        topic: &str,
        subscriber: &Arc<dyn Subscriber>,
        since: impl Into<Since>,
    ) -> Option<Resumed> {
        let since = since.into();
        let mut topics = self.topics_write();
        if !topics.contains_key(topic) {
            topics.insert(topic.into(), Topic::default());
        }
        let entry = topics.get_mut(topic)?;
        if entry.subscribers.iter().any(|s| same(s, subscriber)) {
            return None;
        }
        let policy = entry.policy.unwrap_or_else(|| self.default_policy());
        let (backlog, recovered, last_seq) = {
            let mut log = entry.log();
            self.expire(entry, &mut log);
            let recovered = since
                .after
                .filter(|after| after.epoch == self.inner.epoch)
                .and_then(|after| log.since(after.seq));
            match (recovered, since.past) {
                (Some(backlog), _) => (backlog, true, log.seq),
                (None, Some(past)) => (log.within(Instant::now(), past), false, log.seq),
                (None, None) => (log.latest().cloned().into_iter().collect(), false, log.seq),
            }
        };
        subscriber.replay(
            &Replay {
                topic,
                messages: &backlog,
                recovered,
                last_seq,
            },
            policy,
        );
        // The replay may have made forms of kept messages (the envelope of
        // a transport no live subscriber had): they count now.
        let mut log = entry.log();
        let added = log.recount(backlog.len());
        if added > 0 {
            let retention = entry.retention.unwrap_or_else(|| self.default_retention());
            let floor = usize::from(policy == Policy::KeepLatest);
            let freed = log.trim(Instant::now(), &retention, floor);
            self.charge(&mut log, added, freed);
        }
        drop(log);
        entry.subscribers.push(Arc::clone(subscriber));
        self.inner
            .counters
            .subscriptions
            .fetch_add(1, Ordering::Relaxed);
        let replayed = backlog.len();
        Some(match recovered {
            true => Resumed::Recovered { replayed },
            false => Resumed::NotRecovered { replayed },
        })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Subscribes `subscriber` to `topic`; returns false if it already was.
    /// Messages published from now on are offered to it.
    pub fn subscribe(&self, topic: &str, subscriber: &Arc<dyn Subscriber>) -> bool {
        let mut topics = self.topics_write();
        let entry = topics.entry(topic.into()).or_default();
        if entry.subscribers.iter().any(|s| same(s, subscriber)) {
            return false;
        }
        entry.subscribers.push(Arc::clone(subscriber));
        self.inner
            .counters
            .subscriptions
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Unsubscribes `subscriber` from `topic`; returns false if it was not
    /// subscribed. Nothing of the topic reaches it after this returns.
    pub fn unsubscribe(&self, topic: &str, subscriber: &Arc<dyn Subscriber>) -> bool {
        let mut topics = self.topics_write();
        let Some(entry) = topics.get_mut(topic) else {
            return false;
        };
        let Some(at) = entry.subscribers.iter().position(|s| same(s, subscriber)) else {
            return false;
        };
        entry.subscribers.swap_remove(at);
        if entry.is_unused() {
            topics.remove(topic);
        }
        subscriber.unsubscribed(topic);
        self.inner
            .counters
            .subscriptions
            .fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Removes `subscriber` from every topic, when it goes away.
    pub fn unsubscribe_all(&self, subscriber: &Arc<dyn Subscriber>) {
        let mut topics = self.topics_write();
        let mut left = 0;
        topics.retain(|name, entry| {
            if let Some(at) = entry.subscribers.iter().position(|s| same(s, subscriber)) {
                entry.subscribers.swap_remove(at);
                subscriber.unsubscribed(name);
                left += 1;
            }
            !entry.is_unused()
        });
        self.inner
            .counters
            .subscriptions
            .fetch_sub(left, Ordering::Relaxed);
    }
}

/// Whether two handles are the same subscriber.
fn same(a: &Arc<dyn Subscriber>, b: &Arc<dyn Subscriber>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

fn policy_bits(policy: Policy) -> u8 {
    match policy {
        Policy::Disconnect => 0,
        Policy::DropOldest => 1,
        Policy::KeepLatest => 2,
    }
}

#[cfg(test)]
mod tests;
