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
//! process restarts: together they name a message across reconnects.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use crate::frame::{Frame, OpCode};
use crate::message::Message;

mod stats;
mod subscriber;

pub use stats::Stats;
pub(crate) use stats::{bump, bump_by, Counters};
pub use subscriber::{Delivery, Encoded, Policy, Subscriber};

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
    topics: RwLock<HashMap<Arc<str>, Topic>>,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Topic {
    policy: Option<Policy>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    /// The last sequence number given. Held while a message is offered, so
    /// every subscriber gets the topic's messages in sequence order.
    seq: Mutex<u64>,
}

impl Topic {
    fn seq(&self) -> std::sync::MutexGuard<'_, u64> {
        self.seq.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the topic holds nothing worth keeping: no subscriber, no
    /// policy, and no sequence number to continue from.
    fn is_unused(&self) -> bool {
        self.subscribers.is_empty() && self.policy.is_none() && *self.seq() == 0
    }
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
        let mut topics = self.topics_write();
        match topics.get_mut(topic) {
            Some(t) => t.policy = Some(policy),
            None => {
                let entry = Topic {
                    policy: Some(policy),
                    ..Topic::default()
                };
                topics.insert(topic.into(), entry);
            }
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
        let mut seq = entry.seq();
        *seq += 1;
        let mut published = Published {
            seq: *seq,
            queued: 0,
        };
        if entry.subscribers.is_empty() {
            return published;
        }
        let frame = Frame::new(opcode, payload, None);
        let encoded = Encoded::new(Some(Arc::clone(name)), *seq, &frame);
        let policy = entry.policy.unwrap_or_else(|| self.default_policy());
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
        published
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

    /// The sequence number of the last message published to `topic` (0 if
    /// none was, in this epoch).
    pub fn last_seq(&self, topic: &str) -> u64 {
        self.topics_read().get(topic).map_or(0, |t| *t.seq())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Subscribes `subscriber` to `topic`; returns false if it already was.
    /// Messages published from now on are offered to it.
    pub fn subscribe(&self, topic: &str, subscriber: &Arc<dyn Subscriber>) -> bool {
        let mut topics = self.topics_write();
        let entry = match topics.get_mut(topic) {
            Some(entry) => entry,
            None => topics.entry(topic.into()).or_default(),
        };
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
mod tests {
    use super::*;

    /// Records what it is offered, and answers as told.
    #[derive(Debug, Default)]
    struct Recorder {
        offered: Mutex<Vec<(Encoded, Policy)>>,
        left: Mutex<Vec<String>>,
    }

    impl Subscriber for Recorder {
        fn offer(&self, message: &Encoded, policy: Policy) -> Delivery {
            assert!(message.topic().is_some(), "published");
            self.offered.lock().unwrap().push((message.clone(), policy));
            Delivery::Queued
        }

        fn unsubscribed(&self, topic: &str) {
            self.left.lock().unwrap().push(topic.into());
        }
    }

    fn recorder() -> (Arc<Recorder>, Arc<dyn Subscriber>) {
        let recorder = Arc::new(Recorder::default());
        let subscriber: Arc<dyn Subscriber> = recorder.clone();
        (recorder, subscriber)
    }

    #[test]
    fn each_topic_numbers_its_messages() {
        let hub = Hub::new();
        let (recorder, subscriber) = recorder();
        assert!(hub.subscribe("a", &subscriber));
        assert!(!hub.subscribe("a", &subscriber), "once per topic");
        assert_eq!(hub.publish_text("a", "1"), Published { seq: 1, queued: 1 });
        assert_eq!(hub.publish_text("b", "1"), Published { seq: 1, queued: 0 });
        assert_eq!(
            hub.publish_binary("a", b"2"),
            Published { seq: 2, queued: 1 }
        );
        assert_eq!(hub.last_seq("a"), 2);
        assert_eq!(
            hub.publish("a", &Message::Ping(vec![])),
            Published { seq: 0, queued: 0 }
        );
        let offered = recorder.offered.lock().unwrap();
        let seqs: Vec<(&str, u64, &[u8])> = offered
            .iter()
            .map(|(m, _)| (&**m.topic().unwrap(), m.seq(), m.payload()))
            .collect();
        assert_eq!(seqs, [("a", 1, &b"1"[..]), ("a", 2, &b"2"[..])]);
    }

    #[test]
    fn sequence_numbers_survive_the_last_subscriber() {
        let hub = Hub::new();
        let (_, subscriber) = recorder();
        hub.subscribe("t", &subscriber);
        hub.publish_text("t", "x");
        assert!(hub.unsubscribe("t", &subscriber));
        assert!(!hub.unsubscribe("t", &subscriber));
        assert_eq!(hub.publish_text("t", "y").seq, 2);
        // A topic only ever subscribed to is forgotten with its subscriber.
        hub.subscribe("quiet", &subscriber);
        hub.unsubscribe_all(&subscriber);
        assert_eq!(hub.topics_read().len(), 1);
    }

    #[test]
    fn policies_and_departures() {
        let hub = Hub::new();
        let (recorder, subscriber) = recorder();
        hub.set_default_policy(Policy::DropOldest);
        hub.set_policy("latest", Policy::KeepLatest);
        for topic in ["latest", "other"] {
            hub.subscribe(topic, &subscriber);
            hub.publish_text(topic, "x");
        }
        let policies: Vec<Policy> = recorder
            .offered
            .lock()
            .unwrap()
            .iter()
            .map(|o| o.1)
            .collect();
        assert_eq!(policies, [Policy::KeepLatest, Policy::DropOldest]);
        assert_eq!(hub.stats().subscriptions, 2);
        hub.unsubscribe_all(&subscriber);
        assert_eq!(hub.stats().subscriptions, 0);
        let mut left = recorder.left.lock().unwrap().clone();
        left.sort();
        assert_eq!(left, ["latest", "other"]);
        assert_eq!(hub.publish_text("latest", "y").queued, 0);
    }

    #[test]
    fn epochs_differ_between_hubs() {
        let (a, b) = (Hub::new(), Hub::new());
        assert_ne!(a.epoch(), b.epoch());
        assert_eq!(a.epoch(), a.clone().epoch());
    }
}
