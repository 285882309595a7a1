//! Tests of the hub: numbering, policies, departures, history and resume.

use std::time::{Duration, Instant};

use super::*;

/// Records what it is offered and replayed.
#[derive(Debug, Default)]
struct Recorder {
    offered: Mutex<Vec<(Encoded, Policy)>>,
    left: Mutex<Vec<String>>,
    /// Each replay: the sequence numbers, and whether it recovered.
    replays: Mutex<Vec<(Vec<u64>, bool)>>,
}

impl Recorder {
    /// The sequence numbers offered (live) so far.
    fn seqs(&self) -> Vec<u64> {
        self.offered
            .lock()
            .unwrap()
            .iter()
            .map(|(m, _)| m.seq())
            .collect()
    }
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

    fn replay(&self, replay: &Replay<'_>, policy: Policy) {
        let seqs = replay.messages.iter().map(Encoded::seq).collect();
        self.replays.lock().unwrap().push((seqs, replay.recovered));
        for message in replay.messages {
            self.offer(message, policy);
        }
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

/// A hub with one topic "t" that has had messages 1..=`count` published,
/// each `size` bytes, keeping at most `keep` of them.
fn published(count: u64, size: usize, keep: usize) -> Hub {
    let hub = Hub::new();
    hub.set_retention("t", Retention::default().messages(keep));
    for _ in 0..count {
        hub.publish_binary("t", &vec![7; size]);
    }
    hub
}

fn resume(hub: &Hub, seq: u64) -> (Arc<Recorder>, Resumed) {
    let (recorder, subscriber) = recorder();
    let position = Position {
        epoch: hub.epoch(),
        seq,
    };
    let resumed = hub
        .resume("t", &subscriber, Some(position))
        .expect("not yet subscribed");
    (recorder, resumed)
}

#[test]
fn resume_from_the_oldest_kept_message_and_one_before_it() {
    let hub = published(10, 10, 4); // keeps 7, 8, 9, 10
                                    // After 6: 7 is the oldest kept, so nothing is missing.
    let (got, resumed) = resume(&hub, 6);
    assert_eq!(resumed, Resumed::Recovered { replayed: 4 });
    assert_eq!(got.seqs(), [7, 8, 9, 10]);
    assert_eq!(*got.replays.lock().unwrap(), [(vec![7, 8, 9, 10], true)]);
    // After 5: 6 is gone: not recovered, the latest instead.
    let (got, resumed) = resume(&hub, 5);
    assert_eq!(resumed, Resumed::NotRecovered { replayed: 1 });
    assert_eq!(got.seqs(), [10]);
    assert_eq!(*got.replays.lock().unwrap(), [(vec![10], false)]);
    // Up to date: nothing to replay, recovered.
    let (got, resumed) = resume(&hub, 10);
    assert_eq!(resumed, Resumed::Recovered { replayed: 0 });
    assert!(got.seqs().is_empty());
    // Ahead of the topic (a position from a confused client).
    let (_, resumed) = resume(&hub, 11);
    assert_eq!(resumed, Resumed::NotRecovered { replayed: 1 });
}

#[test]
fn live_messages_follow_the_replay() {
    let hub = published(5, 10, 100);
    let (got, _) = resume(&hub, 3);
    hub.publish_binary("t", b"6");
    assert_eq!(got.seqs(), [4, 5, 6]);
    // Resuming twice is refused: it would duplicate.
    let subscriber: Arc<dyn Subscriber> = got.clone();
    let position = Position {
        epoch: hub.epoch(),
        seq: 0,
    };
    assert_eq!(hub.resume("t", &subscriber, Some(position)), None);
}

#[test]
fn a_restart_is_not_recovered_and_gives_the_latest() {
    let before = published(5, 10, 100);
    let after = published(2, 10, 100);
    assert_ne!(before.epoch(), after.epoch());
    let (recorder, subscriber) = recorder();
    let position = Position {
        epoch: before.epoch(),
        seq: 1,
    };
    let resumed = after.resume("t", &subscriber, Some(position));
    assert_eq!(resumed, Some(Resumed::NotRecovered { replayed: 1 }));
    assert_eq!(recorder.seqs(), [2]);
}

#[test]
fn history_is_bounded_by_count_bytes_age_and_the_budget() {
    // By count.
    let hub = published(50, 10, 8);
    let (got, _) = resume(&hub, 0);
    assert_eq!(got.seqs(), [50], "1..42 trimmed: not recovered");
    let (got, _) = resume(&hub, 42);
    assert_eq!(got.seqs(), (43..=50).collect::<Vec<_>>());

    // By bytes: each message costs its 2-byte header, 100 bytes of payload
    // and the bookkeeping.
    let cost = 2 + 100 + ENTRY_OVERHEAD;
    let hub = Hub::new();
    hub.set_retention("t", Retention::default().bytes(3 * cost));
    for _ in 0..10 {
        hub.publish_binary("t", &[0; 100]);
    }
    assert_eq!(hub.stats().history_bytes, 3 * cost);
    let (got, _) = resume(&hub, 7);
    assert_eq!(got.seqs(), [8, 9, 10]);

    // By age: with a zero age, only the floor survives a publish (none for
    // this topic), so nothing is kept.
    let hub = Hub::new();
    hub.set_retention("t", Retention::default().max_age(Some(Duration::ZERO)));
    hub.publish_binary("t", b"x");
    let (got, resumed) = resume(&hub, 0);
    assert_eq!(
        (got.seqs(), resumed),
        (vec![], Resumed::NotRecovered { replayed: 0 })
    );

    // The hub's budget, across topics: past it, a topic keeps its latest.
    let hub = Hub::new();
    hub.set_history_budget(10 * cost);
    for topic in ["a", "b", "c"] {
        for _ in 0..20 {
            hub.publish_binary(topic, &[0; 100]);
        }
    }
    let used = hub.stats().history_bytes;
    assert!(used <= 10 * cost + 3 * cost, "{used} bytes kept");
    assert!(used >= 3 * cost, "every topic keeps its latest: {used}");
}

/// A subscriber whose transport writes messages in another form (the
/// `boardcast.v1` envelope), made as it is offered each one.
#[derive(Debug)]
struct Enveloping;

impl Subscriber for Enveloping {
    fn offer(&self, message: &Encoded, _: Policy) -> Delivery {
        message.form(crate::wire::v1::ENVELOPE);
        Delivery::Queued
    }

    fn replay(&self, replay: &Replay<'_>, policy: Policy) {
        for message in replay.messages {
            self.offer(message, policy);
        }
    }
}

#[test]
fn the_history_counts_the_forms_its_subscribers_made() {
    let hub = Hub::new();
    let subscriber: Arc<dyn Subscriber> = Arc::new(Enveloping);
    hub.subscribe("t", &subscriber);
    hub.set_retention("t", Retention::default().messages(3));
    // Nine: every envelope is the same size ("m t 7", "m t 8", "m t 9").
    for _ in 0..9 {
        hub.publish_binary("t", &[0; 100]);
    }
    // Each message: its frame (2 + 100), its envelope ("m t N\n" + 100,
    // framed), the forms' slots, and the bookkeeping.
    let latest = hub.latest("t").unwrap();
    let cost = latest.size() + ENTRY_OVERHEAD;
    assert!(latest.size() > 2 * (2 + 100), "{} bytes", latest.size());
    assert_eq!(hub.stats().history_bytes, 3 * cost);

    // The budget holds with the forms counted.
    hub.set_history_budget(2 * cost);
    hub.set_retention("t", Retention::default());
    for _ in 0..10 {
        hub.publish_binary("t", &[0; 100]);
    }
    assert!(
        hub.stats().history_bytes <= 2 * cost,
        "{}",
        hub.stats().history_bytes
    );
}

#[test]
fn a_keep_latest_topic_keeps_its_latest_whatever_the_retention() {
    let hub = Hub::new();
    hub.set_policy("t", Policy::KeepLatest);
    hub.set_retention("t", Retention::none());
    assert_eq!(hub.latest("t").map(|m| m.seq()), None);
    hub.publish_text("t", "20.5");
    hub.publish_text("t", "20.7");
    let latest = hub.latest("t").expect("kept");
    assert_eq!((latest.seq(), latest.payload()), (2, &b"20.7"[..]));
    // A resume from before it is not recovered, and gets the current value.
    let (got, resumed) = resume(&hub, 0);
    assert_eq!(resumed, Resumed::NotRecovered { replayed: 1 });
    assert_eq!(got.seqs(), [2]);
    // No retention and no keep-latest: nothing kept, no frame made.
    let hub = Hub::new();
    hub.set_retention("t", Retention::none());
    hub.publish_text("t", "x");
    assert!(hub.latest("t").is_none());
    assert_eq!(hub.stats().history_bytes, 0);
}

#[test]
fn publishes_racing_a_resume_leave_no_gap_and_no_duplicate() {
    const LAST: u64 = 50_000;
    let hub = Hub::new();
    let keep = Retention::default()
        .messages(LAST as usize)
        .bytes(usize::MAX);
    hub.set_retention("t", keep);
    hub.set_history_budget(usize::MAX);
    let publisher = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            for _ in 0..LAST {
                hub.publish_binary("t", b"reading");
            }
        })
    };
    // Resume again and again while the publisher runs, each time from a
    // little before its last message, and leave after the next resume:
    // every subscriber must have seen each message after its position
    // exactly once, in order, until it left.
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.last_seq("t") < 100 {
        assert!(Instant::now() < deadline, "the publisher did not start");
        std::thread::yield_now();
    }
    let mut resumed: Vec<(u64, Arc<Recorder>)> = Vec::new();
    while !publisher.is_finished() {
        assert!(Instant::now() < deadline, "the publisher did not finish");
        let from = hub.last_seq("t").saturating_sub(10);
        let (got, outcome) = resume(&hub, from);
        assert!(matches!(outcome, Resumed::Recovered { .. }), "{outcome:?}");
        if let Some((_, previous)) = resumed.last() {
            let previous: Arc<dyn Subscriber> = previous.clone();
            hub.unsubscribe_all(&previous);
        }
        resumed.push((from, got));
    }
    publisher.join().unwrap();
    assert!(resumed.len() > 1, "no resume raced the publisher");
    for (from, got) in &resumed {
        let seqs = got.seqs();
        let expected: Vec<u64> = (from + 1..).take(seqs.len()).collect();
        assert_eq!(seqs, expected, "from {from}");
        assert!(seqs.len() >= 10, "from {from}: the replay is missing");
    }
}
