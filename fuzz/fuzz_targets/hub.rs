//! The hub's topics and queues through its public API, against a model:
//! subscribe, unsubscribe, unsubscribe_all, publish, policies, and
//! subscribers (implemented here) that answer each offer as the input says.
//!
//! Invariants: each topic's sequence numbers go up by one per publish, from
//! 1, across subscribers coming and going; a message is offered exactly once
//! to each subscriber of its topic at the time of the publish, to no one
//! else, with its topic, number, kind, payload and the topic's policy (its
//! own, or the default), so each subscriber gets its topics' messages in
//! order; `subscribe` and `unsubscribe` say whether anything changed, and
//! `unsubscribed` is called once per subscription removed; the counts
//! (`subscribers`, `last_seq`, `Published::queued`, and the stats) agree
//! with the model.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use boardcast::hub::{Delivery, Encoded, Subscriber};
use boardcast::{Hub, Policy};
use libfuzzer_sys::fuzz_target;

const TOPICS: [&str; 4] = ["a", "b", "c", "d"];
const SUBSCRIBERS: usize = 4;
const POLICIES: [Policy; 3] = [Policy::Disconnect, Policy::DropOldest, Policy::KeepLatest];
const ANSWERS: [Delivery; 5] = [
    Delivery::Queued,
    Delivery::Superseded,
    Delivery::DroppedOldest,
    Delivery::Disconnected,
    Delivery::Closed,
];

/// What a subscriber was offered: topic, number, text or not, payload,
/// policy.
type Offer = (String, u64, bool, Vec<u8>, Policy);

/// Records every offer and every `unsubscribed`, and answers offers with
/// its current answer.
#[derive(Debug)]
struct Recorder {
    offers: Mutex<Vec<Offer>>,
    left: Mutex<Vec<String>>,
    answer: Mutex<Delivery>,
}

impl Subscriber for Recorder {
    fn offer(&self, message: &Encoded, policy: Policy) -> Delivery {
        let topic = message.topic().expect("a published message has a topic");
        self.offers.lock().unwrap().push((
            topic.to_string(),
            message.seq(),
            message.is_text(),
            message.payload().to_vec(),
            policy,
        ));
        *self.answer.lock().unwrap()
    }

    fn unsubscribed(&self, topic: &str) {
        self.left.lock().unwrap().push(topic.to_owned());
    }
}

#[derive(Default)]
struct Model {
    /// Topic -> its subscribers (indexes).
    subscribed: BTreeMap<&'static str, BTreeSet<usize>>,
    seq: BTreeMap<&'static str, u64>,
    policy: BTreeMap<&'static str, Policy>,
    default_policy: Option<Policy>,
    published: u64,
    superseded: u64,
    dropped_oldest: u64,
    disconnected: u64,
}

fuzz_target!(|data: &[u8]| {
    let hub = Hub::new();
    let recorders: Vec<Arc<Recorder>> = (0..SUBSCRIBERS)
        .map(|_| {
            Arc::new(Recorder {
                offers: Mutex::default(),
                left: Mutex::default(),
                answer: Mutex::new(Delivery::Queued),
            })
        })
        .collect();
    let subscribers: Vec<Arc<dyn Subscriber>> = recorders
        .iter()
        .map(|r| Arc::clone(r) as Arc<dyn Subscriber>)
        .collect();
    let mut model = Model::default();
    // What each subscriber must have been offered, and must have left.
    let mut offered: Vec<Vec<Offer>> = vec![Vec::new(); SUBSCRIBERS];
    let mut left: Vec<Vec<String>> = vec![Vec::new(); SUBSCRIBERS];

    for op in data.chunks_exact(2) {
        let (kind, arg) = (op[0] % 8, op[1]);
        let topic = TOPICS[usize::from(op[0] >> 3) % TOPICS.len()];
        let who = usize::from(arg) % SUBSCRIBERS;
        match kind {
            0 => {
                let new = model.subscribed.entry(topic).or_default().insert(who);
                assert_eq!(hub.subscribe(topic, &subscribers[who]), new);
            }
            1 => {
                let was = model
                    .subscribed
                    .get_mut(topic)
                    .is_some_and(|s| s.remove(&who));
                assert_eq!(hub.unsubscribe(topic, &subscribers[who]), was);
                if was {
                    left[who].push(topic.to_owned());
                }
            }
            2 => {
                for (name, subs) in &mut model.subscribed {
                    if subs.remove(&who) {
                        left[who].push(name.to_string());
                    }
                }
                hub.unsubscribe_all(&subscribers[who]);
                // Order among topics is the hub's: compare as sets.
                let mut got = recorders[who].left.lock().unwrap().clone();
                let mut want = left[who].clone();
                got.sort();
                want.sort();
                assert_eq!(got, want, "unsubscribed calls of {who}");
                *recorders[who].left.lock().unwrap() = left[who].clone();
            }
            3 | 4 => {
                let seq = model.seq.entry(topic).or_insert(0);
                *seq += 1;
                let seq = *seq;
                model.published += 1;
                let payload = vec![arg; usize::from(arg % 8)];
                let text = kind == 3;
                let published = if text {
                    let text = String::from_utf8_lossy(&payload).into_owned();
                    hub.publish_text(topic, &text)
                } else {
                    hub.publish_binary(topic, &payload)
                };
                assert_eq!(published.seq, seq, "sequence number of {topic}");
                let policy = model
                    .policy
                    .get(topic)
                    .copied()
                    .or(model.default_policy)
                    .unwrap_or(Policy::Disconnect);
                let mut queued = 0;
                for &s in model.subscribed.get(topic).into_iter().flatten() {
                    let payload = match text {
                        true => String::from_utf8_lossy(&payload).into_owned().into_bytes(),
                        false => payload.clone(),
                    };
                    offered[s].push((topic.to_owned(), seq, text, payload, policy));
                    match *recorders[s].answer.lock().unwrap() {
                        Delivery::Queued => queued += 1,
                        Delivery::Superseded => {
                            queued += 1;
                            model.superseded += 1;
                        }
                        Delivery::DroppedOldest => {
                            queued += 1;
                            model.dropped_oldest += 1;
                        }
                        Delivery::Disconnected => model.disconnected += 1,
                        _ => {}
                    }
                }
                assert_eq!(published.queued, queued, "queued for {topic}");
            }
            5 => {
                let policy = POLICIES[usize::from(arg) % POLICIES.len()];
                hub.set_policy(topic, policy);
                model.policy.insert(topic, policy);
            }
            6 => {
                let policy = POLICIES[usize::from(arg) % POLICIES.len()];
                hub.set_default_policy(policy);
                model.default_policy = Some(policy);
            }
            _ => {
                *recorders[who].answer.lock().unwrap() =
                    ANSWERS[usize::from(arg >> 2) % ANSWERS.len()];
            }
        }

        // After every operation, the hub agrees with the model.
        for topic in TOPICS {
            let subs = model.subscribed.get(topic).map_or(0, BTreeSet::len);
            assert_eq!(hub.subscribers(topic), subs, "subscribers of {topic}");
            let seq = model.seq.get(topic).copied().unwrap_or(0);
            assert_eq!(hub.last_seq(topic), seq, "last_seq of {topic}");
        }
        for (i, recorder) in recorders.iter().enumerate() {
            assert_eq!(*recorder.offers.lock().unwrap(), offered[i], "offers to {i}");
            assert_eq!(*recorder.left.lock().unwrap(), left[i], "unsubscribed of {i}");
        }
        let stats = hub.stats();
        let subscriptions: usize = model.subscribed.values().map(BTreeSet::len).sum();
        assert_eq!(stats.subscriptions, subscriptions);
        assert_eq!(stats.published, model.published);
        assert_eq!(stats.dropped_superseded, model.superseded);
        assert_eq!(stats.dropped_oldest, model.dropped_oldest);
        assert_eq!(stats.disconnected_slow, model.disconnected);
    }
    // Each subscriber's offers of a topic are that topic's numbers in order.
    for offers in &offered {
        for topic in TOPICS {
            let seqs: Vec<u64> = offers
                .iter()
                .filter(|o| o.0 == topic)
                .map(|o| o.1)
                .collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{topic}: {seqs:?}");
        }
    }
});
