//! A client that stops reading does not delay the others, and is handled by
//! its topic's policy.
//!
//! The stalled client is a raw socket that completes the handshake and then
//! never reads: the publisher sends it megabytes, its kernel buffers fill,
//! its writer thread blocks, and its queue fills. Meanwhile healthy clients
//! must get every message in order; their delivery delay is printed (see
//! `--nocapture`), not asserted.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use boardcast::{Config, Policy, Stats};
use support::{Progress, Running, Ws, TIMEOUT};

const HEALTHY: usize = 4;
/// Large messages, so a few megabytes fill the stalled client's buffers.
const SIZE: usize = 16 << 10;
const QUEUE: usize = 8;
/// The most messages a healthy client may have outstanding: under its queue
/// length, so a healthy client never overflows, however loaded the machine.
const WINDOW: u64 = 4;
/// A write timeout no test lives to see: a client's writer blocked on a
/// stalled socket stays blocked until the test resumes reading, however
/// slowly the machine runs the test meanwhile.
const NEVER: Duration = Duration::from_secs(3600);
/// Enough to fill any loopback socket's buffers many times over.
const MAX_MESSAGES: u64 = 4000;
/// Published after the stalled client was dealt with.
const AFTER: u64 = 50;
/// The sequence number of the last message.
const END: u64 = u64::MAX;

/// Subscribes each client to the topic named by its path; `policy` is the
/// hub's default.
fn start(policy: Policy, config: Config) -> Running {
    let running = Running::start(support::server(config), |mut client| {
        let topic = client.request().path().trim_start_matches('/').to_owned();
        client.subscribe(&topic);
        while let Ok(Some(_)) = client.recv() {}
    });
    running.hub.set_default_policy(policy);
    running
}

/// Small queues, and a write that never times out: a stalled client's
/// writer waits for the test to read again.
fn config() -> Config {
    Config::default()
        .write_timeout(NEVER)
        .queue_messages(QUEUE)
        .queue_bytes(QUEUE * (SIZE + 16))
}

/// Connects healthy readers and the stalled client, publishes (keeping the
/// healthy ones within [`WINDOW`]) until `handled` says the policy acted,
/// then [`AFTER`] more and an end marker. Returns the stalled socket, the
/// number of messages published before the end marker, and the stats.
fn publish_past_a_stalled_client(
    running: &Running,
    handled: impl Fn(&Stats) -> bool,
) -> (TcpStream, u64, Stats) {
    let progress = Arc::new(Progress::new(HEALTHY));
    let readers: Vec<_> = (0..HEALTHY)
        .map(|i| {
            let ws = support::connect(running.addr, "/feed");
            let progress = Arc::clone(&progress);
            thread::Builder::new()
                .name(format!("test-healthy-{i}"))
                .spawn(move || read_in_order(ws, i, &progress))
                .unwrap()
        })
        .collect();
    let stalled = support::raw_upgrade(running.addr, "/feed");
    support::wait_until(TIMEOUT, "every client subscribed", || {
        running.hub.subscribers("feed") == HEALTHY + 1
    });

    let mut seq = 0;
    let mut handled_at = None;
    while handled_at.is_none_or(|at| seq < at + AFTER) {
        assert!(
            seq < MAX_MESSAGES,
            "{seq} messages and the stalled client is still unhandled: {:?}",
            running.stats()
        );
        progress.wait_all((seq + 1).saturating_sub(WINDOW));
        running
            .hub
            .publish_binary("feed", &support::stamp(seq, SIZE));
        seq += 1;
        if handled_at.is_none() && handled(&running.stats()) {
            eprintln!(
                "stalled client handled after {seq} messages ({} KiB)",
                (seq * SIZE as u64) >> 10
            );
            handled_at = Some(seq);
        }
    }
    running.hub.publish_binary("feed", &support::stamp(END, 16));

    let mut delays = Vec::new();
    for reader in readers {
        let (count, mut mine) = reader.join().expect("a healthy reader failed");
        assert_eq!(count, seq, "messages a healthy client got");
        delays.append(&mut mine);
    }
    eprintln!(
        "healthy clients' delay with one stalled: {}",
        support::summary(&mut delays)
    );
    (stalled, seq, running.stats())
}

/// Reads until the end marker; every message must be the next in order.
/// Returns the count and each message's delay.
fn read_in_order(mut ws: Ws, i: usize, progress: &Progress) -> (u64, Vec<Duration>) {
    let mut delays = Vec::new();
    let mut expected = 0;
    for _ in 0..=MAX_MESSAGES {
        let payload = match support::next_message(&mut ws) {
            tungstenite::Message::Binary(payload) => payload,
            other => panic!("healthy client {i} got {other:?} after {expected} messages"),
        };
        let (seq, delay) = support::unstamp(&payload);
        if seq == END {
            support::close(ws);
            return (expected, delays);
        }
        assert_eq!(seq, expected, "healthy client {i} out of order");
        delays.push(delay);
        expected += 1;
        progress.set(i, expected);
    }
    panic!("healthy client {i}: no end marker");
}

#[test]
fn stalled_client_is_disconnected_without_delaying_others() {
    // The disconnected client's writer is blocked writing to it until it
    // reads again; the write never times out, so the 1013 the policy
    // queued is written once it does.
    let running = start(Policy::Disconnect, config());
    let (mut stalled, _, stats) =
        publish_past_a_stalled_client(&running, |s| s.disconnected_slow > 0);
    assert_eq!(stats.disconnected_slow, 1);
    assert_eq!(stats.disconnected_write, 0, "counted as slow, not failed");
    assert_eq!(stats.dropped_oldest, 0);

    // Resumed, it gets what its buffers held, then a close 1013 (try again
    // later), and once it answers, the end of the connection.
    let mut messages = 0;
    let mut close = None;
    while let Some(frame) = support::read_frame(&mut stalled) {
        match frame.opcode {
            0x2 => {
                assert!(frame.fin, "fragmented server frame");
                messages += 1;
            }
            0x8 => {
                close = frame.close_code();
                stalled
                    .write_all(&support::client_frame(true, 0x8, &frame.payload[..2]))
                    .expect("send a frame");
            }
            _ => {}
        }
        assert!(messages <= MAX_MESSAGES, "no end of the connection");
    }
    eprintln!("the stalled client then read {messages} messages and close {close:?}");
    assert_eq!(close, Some(1013), "the stalled client's close");
    support::wait_until(TIMEOUT, "the stalled client's handler returned", || {
        running.stats().clients == 0
    });
    let stats = running.stats();
    assert_eq!(
        (stats.disconnected_slow, stats.disconnected_write),
        (1, 0),
        "{stats:?}"
    );
}

#[test]
fn stalled_client_loses_its_oldest_messages_without_delaying_others() {
    // The write never times out: the stalled client stays until it
    // resumes reading, however long the test takes to get there.
    let running = start(Policy::DropOldest, config());
    let (mut stalled, published, stats) =
        publish_past_a_stalled_client(&running, |s| s.dropped_oldest > 0);
    assert!(stats.dropped_oldest > 0);
    assert_eq!(stats.disconnected_slow, 0);
    // The healthy clients closed, but their handlers may not have returned
    // yet: wait until they have; the stalled client is still connected.
    support::wait_until(TIMEOUT, "the healthy clients' handlers returned", || {
        running.stats().clients == 1
    });
    assert_eq!(running.hub.subscribers("feed"), 1, "the stalled client");
    let stats = running.stats();
    assert_eq!(
        (stats.disconnected_slow, stats.disconnected_write),
        (0, 0),
        "{stats:?}"
    );

    // Resumed, it gets an ordered subset that ends with the newest.
    let seqs = read_until_end(&mut stalled, published + 1);
    assert_strictly_increasing(&seqs);
    assert!(
        (seqs.len() as u64) < published,
        "got all {published} messages, none dropped"
    );
    eprintln!(
        "the stalled client got {} of {published} messages",
        seqs.len()
    );
}

#[test]
fn keep_latest_gives_a_resumed_client_the_newest_value() {
    let running = start(Policy::Disconnect, config());
    running.hub.set_policy("latest", Policy::KeepLatest);
    let mut stalled = support::raw_upgrade(running.addr, "/latest");
    support::wait_until(TIMEOUT, "the client subscribed", || {
        running.hub.subscribers("latest") == 1
    });

    // Publish 1..=N, N found as we go: until messages have been superseded
    // for a while.
    let mut last = 0;
    let mut superseded_at = None;
    while superseded_at.is_none_or(|at| last < at + AFTER) {
        assert!(
            last < MAX_MESSAGES,
            "nothing superseded: {:?}",
            running.stats()
        );
        last += 1;
        running
            .hub
            .publish_binary("latest", &support::stamp(last, SIZE));
        if superseded_at.is_none() && running.stats().dropped_superseded > 0 {
            superseded_at = Some(last);
        }
    }
    let stats = running.stats();
    assert!(stats.dropped_superseded > 0);
    assert_eq!(stats.disconnected_slow, 0, "keep-latest disconnects no one");

    let seqs = read_until_end(&mut stalled, last);
    assert_strictly_increasing(&seqs);
    assert!(
        (seqs.len() as u64) < last,
        "got all {last} messages, none superseded"
    );
    eprintln!(
        "keep-latest: the resumed client got {} of {last} messages, the newest included",
        seqs.len()
    );
}

#[test]
fn keep_latest_keeps_order_against_a_racing_publisher() {
    // A one-message queue: a publisher on another core keeps racing the
    // writer between the queue and the newest-value slot.
    const PUBLISHED: u64 = 200_000;
    let running = start(Policy::KeepLatest, config().queue_messages(1));
    let mut ws = support::connect_small(running.addr, "/racing");
    support::wait_until(TIMEOUT, "the client subscribed", || {
        running.hub.subscribers("racing") == 1
    });
    let hub = running.hub.clone();
    let publisher = thread::Builder::new()
        .name("test-publisher".into())
        .spawn(move || {
            for seq in 1..=PUBLISHED {
                hub.publish_binary("racing", &support::stamp(seq, 16));
            }
        })
        .unwrap();
    let mut seqs = Vec::new();
    while seqs.last() != Some(&PUBLISHED) {
        assert!(
            seqs.len() as u64 <= PUBLISHED,
            "more messages than published"
        );
        let (seq, _) = support::unstamp(&support::next_message(&mut ws).into_data());
        seqs.push(seq);
    }
    publisher.join().unwrap();
    eprintln!("racing keep-latest: received {} of {PUBLISHED}", seqs.len());
    assert_strictly_increasing(&seqs);
}

/// Reads the stalled client's frames until the one numbered `end` (or the
/// end marker); returns the numbers received.
fn read_until_end(stalled: &mut TcpStream, end: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    for _ in 0..=MAX_MESSAGES {
        let Some(frame) = support::read_frame(stalled) else {
            panic!("connection ended after {:?}", seqs.last());
        };
        if frame.opcode != 0x2 {
            assert_eq!(frame.opcode, 0x9, "unexpected {frame:?}");
            continue;
        }
        assert!(frame.fin, "fragmented server frame");
        let (seq, _) = support::unstamp(&frame.payload);
        if seq == end || seq == END {
            seqs.push(end);
            return seqs;
        }
        seqs.push(seq);
    }
    panic!("no message {end} among {} messages", seqs.len());
}

fn assert_strictly_increasing(seqs: &[u64]) {
    if let Some(w) = seqs.windows(2).find(|w| w[0] >= w[1]) {
        panic!("{} came after {}", w[1], w[0]);
    }
}

#[test]
fn a_client_that_falls_behind_and_catches_up_gets_everything_in_order() {
    // More than the socket buffers hold, and all of it fits the queue: the
    // flusher's non-blocking writes fill the socket, hand the rest to the
    // client's writer thread (which blocks), and get it back once the
    // client reads again. Nothing may be lost, doubled or reordered.
    const BURST: u64 = 400;
    let running = start(
        Policy::Disconnect,
        Config::default()
            .write_timeout(NEVER)
            .queue_messages(BURST as usize + 1)
            .queue_bytes((BURST as usize + 1) * (SIZE + 16)),
    );
    let mut late = support::raw_upgrade(running.addr, "/feed");
    support::wait_until(TIMEOUT, "the client subscribed", || {
        running.hub.subscribers("feed") == 1
    });
    for seq in 0..BURST {
        let queued = running
            .hub
            .publish_binary("feed", &support::stamp(seq, SIZE));
        assert_eq!(queued.queued, 1, "message {seq} queued");
    }
    running.hub.publish_binary("feed", &support::stamp(END, 16));
    let seqs = read_until_end(&mut late, BURST);
    assert_eq!(
        seqs,
        (0..=BURST).collect::<Vec<_>>(),
        "every message once, in order"
    );
    support::wait_until(TIMEOUT, "delivered counts the burst", || {
        running.stats().delivered == BURST + 1
    });
    assert_eq!(running.stats().disconnected_slow, 0);
}
