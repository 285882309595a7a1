//! What lets a page tell a quiet board from a dead link, and draw its
//! recent past at once: the heartbeat on every transport
//! (`Config::heartbeat_interval`, named in the welcome), and subscribes
//! that ask for the messages of the last seconds (`past=`), over
//! WebSocket (`boardcast.v1`), Server-Sent Events and long polling.

mod support;

use std::time::{Duration, Instant};

use boardcast::hub::{Policy, Retention};
use boardcast::{Client, Config, Transports};
use serde_json::Value;
use support::*;

/// The heartbeat interval of these tests: short, so they wait little.
const BEAT: Duration = Duration::from_millis(200);

/// A server whose handler subscribes raw WebSocket clients to "t" (pages
/// subscribe themselves) and keeps each client until it leaves.
fn start(config: Config) -> Running {
    // Longer than any read here waits (support::TIMEOUT): a poll held
    // `poll_timeout` fails the test; one held the heartbeat passes.
    let transports = Transports::default().poll_timeout(Duration::from_secs(600));
    let server = server(config).transports(transports);
    Running::start(server, |mut client: Client| {
        if client.transport() == "websocket" && !client.speaks_v1() {
            client.subscribe("t");
        }
        while let Ok(Some(_)) = client.recv() {}
    })
}

/// `GET target`, answered `200` with JSON.
fn get_ok(running: &Running, target: &str) -> Value {
    let (status, json) = get_json(running.addr, target);
    assert_eq!(status, 200, "{target}: {json}");
    json
}

#[test]
fn a_quiet_page_hears_a_heartbeat_on_every_transport_and_a_raw_client_none() {
    let running = start(Config::default().heartbeat_interval(Some(BEAT)));

    // WebSocket, boardcast.v1: the welcome names the interval, then `h`
    // frames come with nothing published.
    let mut ws = connect_v1_raw(running.addr);
    assert_eq!(
        next_text(&mut ws),
        format!("w {:016x} 200", running.hub.epoch())
    );
    let mut raw = connect(running.addr, "/ws");
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(read_v1_or_heartbeat(&mut ws), None, "a heartbeat");
    }
    assert!(started.elapsed() >= BEAT * 2, "three beats, 200 ms apart");
    // A raw client got no heartbeat meanwhile: what it reads first is the
    // next publish.
    running.hub.publish_text("t", "published");
    assert_eq!(next_text(&mut raw), "published");

    // Server-Sent Events: the welcome names it, then `h` events.
    let mut events = Events::open(running.addr, "/sse", "");
    assert_eq!(events.welcome_json()["heartbeat"], 200);
    for _ in 0..2 {
        let beat = events.next_event();
        assert_eq!((beat.event.as_deref(), beat.data.as_str()), (Some("h"), ""));
    }

    // Long polling: a held poll with nothing to say is answered, empty,
    // within the heartbeat (not poll_timeout, 600 s here: the read would
    // time out first).
    let first = get_ok(&running, "/poll?topics=q");
    assert_eq!(first["heartbeat"], 200);
    let session = first["session"].as_str().unwrap();
    let cursor = first["cursor"].as_str().unwrap();
    let empty = get_ok(&running, &format!("/poll?session={session}&after={cursor}"));
    assert_eq!(empty["events"], serde_json::json!([]));
}

#[test]
fn heartbeats_can_be_turned_off() {
    let running = start(Config::default().heartbeat_interval(None));
    let mut ws = connect_v1_raw(running.addr);
    assert_eq!(
        next_text(&mut ws),
        format!("w {:016x}", running.hub.epoch())
    );
    let mut events = Events::open(running.addr, "/sse", "");
    assert!(events.welcome_json().get("heartbeat").is_none());
}

/// A topic with ten messages kept, published over the test's first moments.
fn ten_kept(running: &Running) {
    running.hub.set_policy("t", Policy::KeepLatest);
    running.hub.set_retention(
        "t",
        Retention::default().max_age(Some(Duration::from_secs(600))),
    );
    for n in 1..=10 {
        running.hub.publish_text("t", &n.to_string());
    }
}

#[test]
fn a_subscribe_may_ask_for_the_recent_past_on_every_transport() {
    let running = start(Config::default());
    ten_kept(&running);

    // WebSocket: `past=` brings every message of the last minute, then live.
    let (mut ws, epoch) = connect_v1(running.addr);
    send_v1(&mut ws, "s t past=60");
    assert_eq!(read_v1(&mut ws), V1::Subscribed("t".into(), false, 10));
    for n in 1..=10 {
        assert_eq!(next_published(&mut ws), ("t".into(), n, n.to_string()));
    }
    running.hub.publish_text("t", "11");
    assert_eq!(next_published(&mut ws), ("t".into(), 11, "11".into()));
    // Without it, the latest only; with a position, the resume (past= is
    // only the fallback).
    let (mut other, _) = connect_v1(running.addr);
    send_v1(&mut other, "s t");
    assert_eq!(read_v1(&mut other), V1::Subscribed("t".into(), false, 11));
    assert_eq!(next_published(&mut other), ("t".into(), 11, "11".into()));
    let (mut resumed, _) = connect_v1(running.addr);
    send_v1(&mut resumed, &format!("s t {epoch} 9 past=60"));
    assert_eq!(read_v1(&mut resumed), V1::Subscribed("t".into(), true, 11));
    assert_eq!(next_published(&mut resumed).1, 10);
    assert_eq!(next_published(&mut resumed).1, 11);

    // Server-Sent Events and long polling: `past=` in the URL.
    let mut events = Events::open(running.addr, "/sse?topics=t&past=60", "");
    events.welcome();
    let subscribed = events.next();
    assert_eq!(subscribed.event.as_deref(), Some("subscribed"));
    let data: Vec<String> = (0..11).map(|_| events.next().data).collect();
    let expected: Vec<String> = (1..=11).map(|n| n.to_string()).collect();
    assert_eq!(data, expected);

    let polled = get_ok(&running, "/poll?topics=t&past=60");
    let seqs: Vec<u64> = polled["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>(), "{polled}");

    // A bad past is refused, clearly.
    let response = http(
        running.addr,
        "GET /sse?topics=t&past=soon HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    send_v1(&mut ws, "s u past=x");
    assert_eq!(read_v1(&mut ws), V1::Refused("malformed command".into()));
}
