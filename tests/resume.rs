//! History and resume over the wire (issue 13): the server's side of
//! `boardcast.v1` (`docs/protocol.md`) and `GET /latest`, against a
//! tungstenite client.

mod support;

use std::io::Write;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boardcast::hub::{Policy, Retention};
use boardcast::{Config, Message};
use support::*;
use tungstenite::Message as WsMessage;

fn start(config: Config) -> Running {
    let server = server(config);
    let hub = server.hub();
    let server = server.on_http(move |request| match request.path() {
        "/latest" => boardcast::wire::json::latest_response(&hub, request),
        _ => boardcast::Response::text(404, "not found"),
    });
    Running::start(server, echo)
}

fn epoch_of(running: &Running) -> String {
    format!("{:016x}", running.hub.epoch())
}

#[test]
fn the_welcome_names_the_epoch_and_raw_clients_get_plain_payloads() {
    let running = start(Config::default());
    let (mut v1, epoch) = connect_v1(running.addr);
    assert_eq!(epoch, epoch_of(&running));

    // A raw client gets no welcome and no envelope.
    let mut raw = connect(running.addr, "/ws");
    send_text(&mut raw, "hello");
    assert_eq!(next_text(&mut raw), "hello");

    // The v1 client's messages are d frames both ways.
    send_v1(&mut v1, "d\nhello\nworld");
    assert_eq!(read_v1(&mut v1), V1::Direct(b"hello\nworld".to_vec(), true));
    v1.send(WsMessage::binary(vec![0u8, b'm', b' ', 255]))
        .unwrap();
    assert_eq!(
        read_v1(&mut v1),
        V1::Direct(vec![0, b'm', b' ', 255], false)
    );
}

#[test]
fn subscribe_gets_the_latest_then_live_messages_in_the_envelope() {
    let running = start(Config::default());
    let hub = &running.hub;
    hub.publish_text("temp", "41");
    hub.publish_text("temp", "42");
    let (mut ws, _) = connect_v1(running.addr);
    send_v1(&mut ws, "s temp");
    assert_eq!(read_v1(&mut ws), V1::Subscribed("temp".into(), false, 2));
    assert_eq!(next_published(&mut ws), ("temp".into(), 2, "42".into()));
    hub.publish_text("temp", "43");
    assert_eq!(next_published(&mut ws), ("temp".into(), 3, "43".into()));
    hub.publish_binary("temp", &[1, 2, 3]);
    assert_eq!(
        read_v1(&mut ws),
        V1::Published("temp".into(), 4, vec![1, 2, 3], false)
    );

    // A topic never published to: nothing kept, nothing replayed.
    send_v1(&mut ws, "s fresh");
    assert_eq!(read_v1(&mut ws), V1::Subscribed("fresh".into(), false, 0));
    hub.publish_text("fresh", "first");
    assert_eq!(next_published(&mut ws), ("fresh".into(), 1, "first".into()));
}

#[test]
fn resume_replays_what_was_missed_then_goes_live() {
    let running = start(Config::default());
    let hub = &running.hub;
    for i in 1..=10 {
        hub.publish_text("temp", &i.to_string());
    }
    let (mut ws, epoch) = connect_v1(running.addr);
    send_v1(&mut ws, &format!("s temp {epoch} 6"));
    assert_eq!(read_v1(&mut ws), V1::Subscribed("temp".into(), true, 10));
    for seq in 7..=10 {
        assert_eq!(
            next_published(&mut ws),
            ("temp".into(), seq, seq.to_string())
        );
    }
    hub.publish_text("temp", "11");
    assert_eq!(next_published(&mut ws), ("temp".into(), 11, "11".into()));

    // Up to date: nothing to replay, recovered.
    let (mut again, _) = connect_v1(running.addr);
    send_v1(&mut again, &format!("s temp {epoch} 11"));
    assert_eq!(read_v1(&mut again), V1::Subscribed("temp".into(), true, 11));
    hub.publish_text("temp", "12");
    assert_eq!(next_published(&mut again), ("temp".into(), 12, "12".into()));
}

#[test]
fn another_epoch_or_a_position_too_old_is_not_recovered_and_gets_the_latest() {
    let running = start(Config::default());
    let hub = &running.hub;
    hub.set_retention("temp", Retention::default().messages(3));
    for i in 1..=10 {
        hub.publish_text("temp", &i.to_string());
    }
    let (mut ws, epoch) = connect_v1(running.addr);
    // Kept: 8, 9, 10. After 7 is the oldest kept: recovered.
    send_v1(&mut ws, &format!("s temp {epoch} 7"));
    assert_eq!(read_v1(&mut ws), V1::Subscribed("temp".into(), true, 10));
    for seq in 8..=10 {
        assert_eq!(next_published(&mut ws).1, seq);
    }
    // After 6: 7 is gone.
    let (mut late, _) = connect_v1(running.addr);
    send_v1(&mut late, &format!("s temp {epoch} 6"));
    assert_eq!(read_v1(&mut late), V1::Subscribed("temp".into(), false, 10));
    assert_eq!(next_published(&mut late), ("temp".into(), 10, "10".into()));
    // Another epoch (the board restarted).
    let other = if epoch == "0000000000000001" {
        "0000000000000002"
    } else {
        "0000000000000001"
    };
    let (mut restarted, _) = connect_v1(running.addr);
    send_v1(&mut restarted, &format!("s temp {other} 9"));
    assert_eq!(
        read_v1(&mut restarted),
        V1::Subscribed("temp".into(), false, 10)
    );
    assert_eq!(next_published(&mut restarted).1, 10);
    hub.publish_text("temp", "11");
    assert_eq!(next_published(&mut restarted).1, 11);
}

#[test]
fn unsubscribe_ends_the_topic_and_bad_commands_get_errors() {
    let running = start(Config::default());
    let hub = &running.hub;
    let (mut ws, _) = connect_v1(running.addr);
    send_v1(&mut ws, "s a");
    assert_eq!(read_v1(&mut ws), V1::Subscribed("a".into(), false, 0));
    send_v1(&mut ws, "s a");
    assert_eq!(read_v1(&mut ws), V1::Refused("already subscribed a".into()));
    send_v1(&mut ws, "s b");
    assert_eq!(read_v1(&mut ws), V1::Subscribed("b".into(), false, 0));
    send_v1(&mut ws, "x a");
    assert_eq!(read_v1(&mut ws), V1::Unsubscribed("a".into()));
    hub.publish_text("a", "gone");
    hub.publish_text("b", "here");
    // Nothing of a after its u: the next frame is b's.
    assert_eq!(next_published(&mut ws), ("b".into(), 1, "here".into()));
    assert_eq!(hub.subscribers("a"), 0);

    for (command, error) in [
        ("s a b", "malformed command"),
        ("s bad,name", "bad topic name"),
        ("s a 0123 1", "malformed command"),
        ("hello", "unknown verb"),
        ("", "unknown verb"),
    ] {
        send_v1(&mut ws, command);
        assert_eq!(read_v1(&mut ws), V1::Refused(error.into()), "{command:?}");
    }
    // Still open, and still subscribed to b.
    hub.publish_text("b", "still");
    assert_eq!(next_published(&mut ws).2, "still");
}

#[test]
fn a_client_may_subscribe_to_256_topics_not_more() {
    let running = start(Config::default());
    let (mut ws, _) = connect_v1(running.addr);
    for i in 0..256 {
        send_v1(&mut ws, &format!("s t{i}"));
        assert!(matches!(read_v1(&mut ws), V1::Subscribed(..)));
    }
    send_v1(&mut ws, "s one-more");
    assert_eq!(
        read_v1(&mut ws),
        V1::Refused("too many subscriptions (at most 256)".into())
    );
    send_v1(&mut ws, "x t0");
    assert_eq!(read_v1(&mut ws), V1::Unsubscribed("t0".into()));
    send_v1(&mut ws, "s one-more");
    assert!(matches!(read_v1(&mut ws), V1::Subscribed(..)));
}

/// The publisher runs flat out while the client drops its connection and
/// resumes, again and again: across all connections the client sees every
/// message once, in order.
#[test]
fn resumes_racing_a_publisher_lose_and_repeat_nothing() {
    let running = start(Config::default());
    let hub = running.hub.clone();
    hub.set_retention(
        "race",
        Retention::default().messages(1 << 20).bytes(64 << 20),
    );
    hub.set_history_budget(64 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (hub, stop) = (hub.clone(), Arc::clone(&stop));
        bounded("publisher", move || {
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed) && count < 200_000 {
                count = hub.publish_text("race", "reading").seq;
                if count % 64 == 0 {
                    std::thread::yield_now();
                }
            }
            count
        })
    };
    let mut seen: Vec<u64> = Vec::new();
    let mut position: Option<(String, u64)> = None;
    let deadline = Instant::now() + TIMEOUT;
    let mut cut_slow = 0;
    for round in 0..8 {
        let (mut ws, epoch) = connect_v1(running.addr);
        match &position {
            Some((e, seq)) => send_v1(&mut ws, &format!("s race {e} {seq}")),
            None => send_v1(&mut ws, "s race"),
        }
        match read_v1(&mut ws) {
            V1::Subscribed(topic, recovered, _) => {
                assert_eq!(topic, "race");
                assert_eq!(recovered, position.is_some(), "round {round}");
            }
            other => panic!("expected the answer to the subscribe, got {other:?}"),
        }
        // Read some, then drop the link without a close; or the server
        // cut the client as too slow (1013), which is a drop too.
        for _ in 0..500 {
            match ws.read().expect("read") {
                WsMessage::Text(text) => {
                    let (line, _) = text.split_once('\n').expect("an m frame");
                    let seq = line.strip_prefix("m race ").expect("an m frame");
                    let seq: u64 = seq.parse().unwrap();
                    seen.push(seq);
                    position = Some((epoch.clone(), seq));
                }
                WsMessage::Close(frame) => {
                    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1013));
                    cut_slow += 1;
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let _ = ws.get_mut().shutdown(Shutdown::Both);
        assert!(Instant::now() < deadline, "too slow");
    }
    stop.store(true, Ordering::Relaxed);
    let published = publisher.join();
    assert!(
        published > seen.len() as u64,
        "the publisher raced the client"
    );
    // The first connection started from the latest; from there on every
    // number once, in order.
    let first = seen[0];
    let expected: Vec<u64> = (first..first + seen.len() as u64).collect();
    if let Some(at) = (0..seen.len()).find(|&i| seen[i] != expected[i]) {
        let around = &seen[at.saturating_sub(3)..(at + 3).min(seen.len())];
        panic!(
            "a gap or a duplicate across resumes at {at} (of {}): {around:?}",
            seen.len()
        );
    }
    eprintln!(
        "{} messages over 8 connections ({cut_slow} cut as too slow); {published} published",
        seen.len()
    );
}

#[test]
fn latest_answers_json_keyed_by_topic() {
    let running = start(Config::default());
    let hub = &running.hub;
    hub.set_policy("temp", Policy::KeepLatest);
    hub.publish_text("temp", r#"{"c":41}"#);
    hub.publish_text("temp", r#"{"c":42}"#);
    hub.publish_binary("cam", &[0, 1, 2]);
    let epoch = epoch_of(&running);
    let all = http(
        running.addr,
        "GET /latest HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    assert!(all.contains("Content-Type: application/json"), "{all}");
    let body = all.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(
        body,
        format!(
            r#"{{"cam":{{"epoch":"{epoch}","seq":1,"data":"AAEC","binary":true}},"temp":{{"epoch":"{epoch}","seq":2,"data":"{{\"c\":42}}"}}}}"#
        )
    );
    let one = http(
        running.addr,
        "GET /latest?topics=temp%2Cnothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert!(
        one.ends_with(&format!(
            r#"{{"temp":{{"epoch":"{epoch}","seq":2,"data":"{{\"c\":42}}"}}}}"#
        )),
        "{one}"
    );
    let bad = http(
        running.addr,
        "GET /latest?topics=a%20b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let post = http(
        running.addr,
        "POST /latest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
}

/// A client that subscribes and unsubscribes again and again without
/// reading would queue replay after replay: its connection thread waits
/// for room, then gives up, and the client is cut.
#[test]
fn a_client_that_asks_for_replays_and_never_reads_is_cut() {
    let config = Config::default().write_timeout(Duration::from_secs(1));
    let server = server(config);
    let hub = server.hub();
    let (tx, ended) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let running = Running::start(server, move |mut client| {
        let end = loop {
            match client.recv() {
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let _ = tx.lock().unwrap().send(end);
    });
    let payload = "x".repeat(1000);
    for _ in 0..100 {
        hub.publish_text("big", &payload);
    }
    let mut stream = raw_upgrade_v1(running.addr);
    // Never read; write until the server stops taking commands.
    let commands = client_frame(true, 1, b"s big")
        .into_iter()
        .chain(client_frame(true, 1, b"x big"))
        .collect::<Vec<u8>>();
    let mut sent = 0;
    while sent < 10_000 {
        if stream.write_all(&commands).is_err() {
            break;
        }
        sent += 1;
    }
    let end = ended.recv_timeout(TIMEOUT).expect("the handler ended");
    match end {
        Err(boardcast::Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    drop(running);
}

/// A raw upgrade offering `boardcast.v1`, its 101 read.
fn raw_upgrade_v1(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let mut stream = tcp(addr);
    let request = upgrade_request("/ws", "Sec-WebSocket-Protocol: boardcast.v1\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut stream);
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

#[test]
fn client_resume_replays_plain_payloads_to_a_raw_client() {
    let server = server(Config::default());
    let hub = server.hub();
    let running = Running::start(server, move |mut client| {
        let Ok(Some(Message::Text(after))) = client.recv() else {
            return;
        };
        let after = after.parse().ok().map(|seq| boardcast::hub::Position {
            epoch: client.hub().epoch(),
            seq,
        });
        let _ = client.resume("temp", after);
        let _ = client.send_text("resumed");
        while let Ok(Some(_)) = client.recv() {}
    });
    for i in 1..=5 {
        hub.publish_text("temp", &format!("r{i}"));
    }
    let mut ws = connect(running.addr, "/ws");
    send_text(&mut ws, "3");
    assert_eq!(next_text(&mut ws), "r4");
    assert_eq!(next_text(&mut ws), "r5");
    assert_eq!(next_text(&mut ws), "resumed");
    hub.publish_text("temp", "r6");
    assert_eq!(next_text(&mut ws), "r6");
}
