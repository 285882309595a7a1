//! The HTTP transports (issue 14, `docs/transports.md`): Server-Sent
//! Events, long polling, `POST /send`, `/latest` with its `ETag`, and
//! keep-alive, against raw sockets, with the same handler a WebSocket
//! client gets.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use boardcast::hub::Retention;
use boardcast::{Client, Config, Message, Transports};
use serde_json::Value;
use support::*;

/// An echo handler that reports each client's transport, and what it got.
fn start(
    config: Config,
    transports: Transports,
) -> (Running, mpsc::Receiver<(String, Vec<String>)>) {
    let server = server(config).transports(transports);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let running = Running::start(server, move |mut client: Client| {
        let transport = client.transport().to_string();
        let mut got = Vec::new();
        while let Ok(Some(message)) = client.recv() {
            if let Message::Text(text) = &message {
                got.push(text.clone());
                let _ = client.send_text(&format!("echo {text}"));
            }
        }
        let _ = tx.lock().unwrap().send((transport, got));
    });
    (running, rx)
}

fn quick() -> Transports {
    Transports::default()
        .poll_timeout(Duration::from_secs(1))
        .session_timeout(Duration::from_secs(2))
}

fn epoch(running: &Running) -> String {
    format!("{:016x}", running.hub.epoch())
}

/// `POST /send?session=ID` with a text body; the status.
fn post(addr: SocketAddr, session: &str, body: &str) -> u16 {
    let response = http(
        addr,
        &format!(
            "POST /send?session={session} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    response[9..12].parse().unwrap()
}

#[test]
fn sse_streams_published_messages_and_takes_posts() {
    // The stream's writer looks for a page that left at each heartbeat.
    let config = Config::default().ping_interval(Some(Duration::from_millis(500)));
    let (running, handled) = start(config, quick());
    let hub = &running.hub;
    hub.publish_text("temp", "41");
    let mut events = Events::open(running.addr, "/sse?topics=temp", "");
    assert!(events.head.starts_with("HTTP/1.1 200"), "{}", events.head);
    assert!(
        events.head.contains("Content-Type: text/event-stream"),
        "{}",
        events.head
    );
    assert!(
        events.head.contains("X-Accel-Buffering: no"),
        "{}",
        events.head
    );
    let session = events.welcome();
    assert_eq!(session.len(), 32);
    let subscribed = events.next();
    assert_eq!(subscribed.event.as_deref(), Some("subscribed"));
    assert_eq!(
        subscribed.data,
        r#"{"topic":"temp","recovered":false,"last":1}"#
    );
    let latest = events.next();
    assert_eq!(latest.id, Some(format!("{}~temp~1", epoch(&running))));
    assert_eq!(latest.data, "41");

    hub.publish_text("temp", "two\nlines");
    let live = events.next();
    assert_eq!(
        (live.id.unwrap(), live.data),
        (format!("{}~temp~2", epoch(&running)), "two\nlines".into())
    );
    hub.publish_binary("temp", &[0, 1, 2]);
    let binary = events.next();
    assert_eq!(
        (binary.event.as_deref(), binary.data.as_str()),
        (Some("binary"), "AAEC")
    );

    // The page's messages reach the handler, whose sends come back.
    assert_eq!(post(running.addr, &session, "d\nhello"), 204);
    let echo = events.next();
    assert_eq!(
        (echo.event.as_deref(), echo.data.as_str()),
        (Some("direct"), "echo hello")
    );
    // Commands: subscribe another topic, unsubscribe.
    assert_eq!(post(running.addr, &session, "s other"), 204);
    let subscribed = events.next();
    assert_eq!(
        subscribed.data,
        r#"{"topic":"other","recovered":false,"last":0}"#
    );
    assert_eq!(post(running.addr, &session, "x temp"), 204);
    let unsubscribed = events.next();
    assert_eq!(
        (unsubscribed.event.as_deref(), unsubscribed.data.as_str()),
        (Some("unsubscribed"), "temp")
    );
    assert_eq!(post(running.addr, &session, "q"), 204);
    let refused = events.next();
    assert_eq!(
        (refused.event.as_deref(), refused.data.as_str()),
        (Some("refused"), "unknown verb")
    );
    hub.publish_text("temp", "not for it");
    hub.publish_text("other", "for it");
    assert_eq!(events.next().data, "for it");

    // The page goes: the handler's recv ends (within the heartbeat).
    drop(events);
    let (transport, got) = handled.recv_timeout(TIMEOUT).expect("the handler ended");
    assert_eq!(
        (transport.as_str(), got),
        ("sse", vec!["hello".to_string()])
    );
}

#[test]
fn sse_resumes_from_last_event_id_or_the_query() {
    let (running, _) = start(Config::default(), quick());
    let hub = &running.hub;
    for i in 1..=10 {
        hub.publish_text("t", &i.to_string());
    }
    let epoch = epoch(&running);
    let mut header = Events::open(
        running.addr,
        &format!("/sse?topics=t&lastEventID={epoch}~t~2"),
        &format!("Last-Event-ID: {epoch}~t~6\r\n"),
    );
    header.welcome();
    assert_eq!(
        header.next().data,
        r#"{"topic":"t","recovered":true,"last":10}"#
    );
    for seq in 7..=10 {
        let event = header.next();
        assert_eq!(
            (event.id.unwrap(), event.data),
            (format!("{epoch}~t~{seq}"), seq.to_string())
        );
    }
    let mut query = Events::open(
        running.addr,
        &format!("/sse?topics=t&lastEventID={epoch}~t~9"),
        "",
    );
    query.welcome();
    assert_eq!(
        query.next().data,
        r#"{"topic":"t","recovered":true,"last":10}"#
    );
    assert_eq!(query.next().data, "10");
    // Another epoch: not recovered, the latest.
    let mut old = Events::open(
        running.addr,
        "/sse?topics=t&lastEventID=0000000000000001~t~9",
        "",
    );
    old.welcome();
    assert_eq!(
        old.next().data,
        r#"{"topic":"t","recovered":false,"last":10}"#
    );
    assert_eq!(old.next().data, "10");
}

#[test]
fn long_polls_are_held_until_a_message_and_lose_nothing_between_polls() {
    let (running, handled) = start(Config::default(), quick());
    let hub = &running.hub;
    hub.set_retention("t", Retention::default());
    hub.publish_text("t", "1");
    let (status, first) = get_json(running.addr, "/poll?topics=t");
    assert_eq!(status, 200, "{first}");
    let session = first["session"].as_str().unwrap().to_string();
    assert_eq!(first["epoch"], epoch(&running));
    let events = first["events"].as_array().unwrap();
    assert_eq!(
        events[0],
        serde_json::json!({"type":"r","topic":"t","recovered":false,"last":1})
    );
    assert_eq!(
        events[1],
        serde_json::json!({"type":"m","topic":"t","seq":1,"data":"1"})
    );
    let cursor = first["cursor"].as_str().unwrap().to_string();
    assert_eq!(cursor, format!("{}~t~1", epoch(&running)));

    // Published between polls: the next poll answers at once.
    hub.publish_text("t", "2");
    hub.publish_binary("t", &[255]);
    let (_, next) = get_json(
        running.addr,
        &format!("/poll?session={session}&after={cursor}"),
    );
    let events = next["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{next}");
    assert_eq!(
        events[1],
        serde_json::json!({"type":"m","topic":"t","seq":3,"data":"/w==","binary":true})
    );
    let lost = next["cursor"].as_str().unwrap().to_string();
    // The answer was lost: polling from the old cursor gets it again.
    let (_, again) = get_json(
        running.addr,
        &format!("/poll?session={session}&after={cursor}"),
    );
    assert_eq!(again["events"], next["events"]);
    let cursor = lost;

    // Held: nothing to answer for now, so no answer (a server that
    // answered at once would be caught here, most of the time); a publish
    // ends it.
    let mut stream = tcp(running.addr);
    let poll =
        format!("GET /poll?session={session}&after={cursor} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(poll.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0];
    let early = stream.read(&mut byte);
    assert!(
        early.is_err(),
        "answered before anything was published: {early:?}"
    );
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    hub.publish_text("t", "4");
    let answer = read_kept_response(&mut stream);
    let held: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(held["events"][0]["data"], "4", "{held}");

    // POST from a long-polling page; the handler's echo comes with the next
    // poll.
    assert_eq!(post(running.addr, &session, "d\nhello"), 204);
    let cursor = held["cursor"].as_str().unwrap().to_string();
    let (_, echo) = get_json(
        running.addr,
        &format!("/poll?session={session}&after={cursor}"),
    );
    assert_eq!(
        echo["events"][0],
        serde_json::json!({"type":"d","data":"echo hello"})
    );

    // Nothing at all: the poll times out empty (poll_timeout is 1 s here).
    let (_, empty) = get_json(
        running.addr,
        &format!("/poll?session={session}&after={cursor}"),
    );
    assert_eq!(empty["events"], serde_json::json!([]));

    // A client that stops polling is forgotten (session_timeout 2 s): its
    // handler ends, and the session is gone.
    let (transport, got) = handled.recv_timeout(TIMEOUT).expect("the session expired");
    assert_eq!(
        (transport.as_str(), got),
        ("poll", vec!["hello".to_string()])
    );
    let (status, _) = get_json(
        running.addr,
        &format!("/poll?session={session}&after={cursor}"),
    );
    assert_eq!(status, 404);
    // A page that goes away says so: its session ends at once.
    let (_, other) = get_json(running.addr, "/poll?topics=t");
    let other = other["session"].as_str().unwrap().to_string();
    assert_eq!(post(running.addr, &other, "c"), 204);
    let (transport, _) = handled
        .recv_timeout(TIMEOUT)
        .expect("the closed session ended");
    assert_eq!(transport, "poll");
    let (status, _) = get_json(running.addr, &format!("/poll?session={other}"));
    assert_eq!(status, 404);

    // It comes back with its cursor: a new session, nothing lost.
    hub.publish_text("t", "5");
    let (_, back) = get_json(running.addr, &format!("/poll?topics=t&after={cursor}"));
    let events = back["events"].as_array().unwrap();
    assert_eq!(events[0]["recovered"], true, "{back}");
    assert_eq!(events[1]["data"], "5", "{back}");
}

#[test]
fn latest_answers_304_while_nothing_changed() {
    let (running, _) = start(Config::default(), quick());
    running.hub.publish_text("t", "1");
    let request = |tag: &str| {
        let extra = if tag.is_empty() {
            String::new()
        } else {
            format!("If-None-Match: {tag}\r\n")
        };
        http(
            running.addr,
            &format!("GET /latest?topics=t HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"),
        )
    };
    let first = request("");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains("Cache-Control: no-cache"), "{first}");
    let tag = first
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("an ETag")
        .to_string();
    let cached = request(&tag);
    assert!(cached.starts_with("HTTP/1.1 304"), "{cached}");
    assert!(cached.ends_with("\r\n\r\n"), "a 304 has no body: {cached}");
    running.hub.publish_text("t", "2");
    let changed = request(&tag);
    assert!(changed.starts_with("HTTP/1.1 200"), "{changed}");
}

#[test]
fn polling_endpoints_keep_the_connection_alive() {
    let (running, _) = start(Config::default(), quick());
    running.hub.publish_text("t", "1");
    let mut stream = tcp(running.addr);
    for _ in 0..3 {
        stream
            .write_all(b"GET /latest?topics=t HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let response = read_kept_response(&mut stream);
        assert_eq!(response.status, 200);
        assert_eq!(response.header("Connection"), Some("keep-alive"));
        assert_eq!(response.header("Keep-Alive"), Some("timeout=9"));
    }
    // Two requests in one write (pipelined): two answers, in order.
    stream
        .write_all(
            b"GET /latest?topics=t HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
              GET /boardcast.js HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    assert_eq!(read_kept_response(&mut stream).status, 200);
    let script = read_kept_response(&mut stream);
    assert_eq!(script.header("Connection"), Some("close"));
    assert!(script.body_text().contains("boardcast"));
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed after Connection: close");
}

#[test]
fn bad_requests_get_clear_errors() {
    let (running, _) = start(Config::default(), quick());
    let addr = running.addr;
    let status = |request: &str| -> u16 { http(addr, request)[9..12].parse().unwrap() };
    let (_, first) = get_json(addr, "/poll?topics=t");
    let session = first["session"].as_str().unwrap().to_string();
    let head = "Host: 127.0.0.1\r\nConnection: close";
    assert_eq!(post(addr, "0123456789abcdef0123456789abcdef", "d\nx"), 404);
    assert_eq!(
        status(&format!(
            "GET /send?session={session} HTTP/1.1\r\n{head}\r\n\r\n"
        )),
        405
    );
    assert_eq!(
        status(&format!(
            "POST /send?session={session} HTTP/1.1\r\n{head}\r\n\r\n"
        )),
        411
    );
    assert_eq!(
        status(&format!(
            "POST /send?session={session} HTTP/1.1\r\n{head}\r\nContent-Length: 99999999\r\n\r\n"
        )),
        413
    );
    assert_eq!(
        status(&format!(
            "POST /send?session={session} HTTP/1.1\r\n{head}\r\nOrigin: http://evil.example\r\nContent-Length: 3\r\n\r\nd\nx"
        )),
        403
    );
    let not_utf8 = [
        format!("POST /send?session={session} HTTP/1.1\r\n{head}\r\nContent-Length: 2\r\n\r\n")
            .as_bytes(),
        &[0xff, 0xfe][..],
    ]
    .concat();
    assert_eq!(request(addr, &not_utf8).status, 400);
    assert_eq!(
        status(&format!("GET /sse?topics=a%20b HTTP/1.1\r\n{head}\r\n\r\n")),
        400
    );
    assert_eq!(
        status(&format!(
            "GET /sse?topics=a&lastEventID=nope HTTP/1.1\r\n{head}\r\n\r\n"
        )),
        400
    );
    assert_eq!(
        status(&format!(
            "POST /sse HTTP/1.1\r\n{head}\r\nContent-Length: 0\r\n\r\n"
        )),
        405
    );
    assert_eq!(
        status(&format!("GET /poll?after=zz HTTP/1.1\r\n{head}\r\n\r\n")),
        400
    );
    assert_eq!(
        status(&format!(
            "GET /poll?topics=t HTTP/1.1\r\n{head}\r\nOrigin: http://evil.example\r\n\r\n"
        )),
        403
    );
    assert_eq!(
        status(&format!(
            "GET /poll?session=nope HTTP/1.1\r\n{head}\r\n\r\n"
        )),
        404
    );

    // A handler that does not read: its inbox fills, then 429.
    let server = server(Config::default()).transports(quick());
    let (release, wait) = mpsc::channel::<()>();
    let wait = Mutex::new(wait);
    let stuck = Running::start(server, move |mut client| {
        let _ = wait.lock().unwrap().recv_timeout(TIMEOUT);
        while let Ok(Some(_)) = client.recv() {}
    });
    let (_, first) = get_json(stuck.addr, "/poll?topics=t");
    let session = first["session"].as_str().unwrap().to_string();
    let statuses: Vec<u16> = (0..40)
        .map(|_| post(stuck.addr, &session, "d\nx"))
        .collect();
    assert!(statuses[..32].iter().all(|&s| s == 204), "{statuses:?}");
    assert!(statuses[32..].iter().all(|&s| s == 429), "{statuses:?}");
    let _ = release.send(());
}

#[test]
fn shutdown_ends_streams_and_held_polls() {
    let (running, handled) = start(Config::default(), Transports::default());
    let mut events = Events::open(running.addr, "/sse?topics=t", "");
    events.welcome();
    let (_, first) = get_json(running.addr, "/poll?topics=t");
    let session = first["session"].as_str().unwrap().to_string();
    let cursor = first["cursor"].as_str().unwrap().to_string();
    let addr = running.addr;
    // What the held poll gets: its answer, or the connection cut by the
    // shutdown; either way, at once.
    let mut stream = tcp(addr);
    let request =
        format!("GET /poll?session={session}&after={cursor} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let held = bounded("held poll", move || {
        let mut answer = Vec::new();
        let ended = stream.read_to_end(&mut answer);
        (ended.is_ok(), answer.len())
    });
    // The poll is held (25 s by default); shut down: both end promptly.
    wait_until(TIMEOUT, "two clients", || running.stats().clients == 2);
    let took = running.shutdown(TIMEOUT);
    let _ = held.join();
    let mut rest = Vec::new();
    let _ = events.reader.read_to_end(&mut rest);
    assert!(took < Duration::from_secs(10), "{took:?}");
    let mut transports: Vec<String> = (0..2)
        .map(|_| handled.recv_timeout(TIMEOUT).unwrap().0)
        .collect();
    transports.sort();
    assert_eq!(transports, ["poll", "sse"]);
}

#[test]
fn sessions_count_against_the_connection_cap() {
    let config = Config::default().max_connections(3);
    let (running, _) = start(config, quick());
    // Two long-poll sessions, and the connection of the third request.
    for _ in 0..2 {
        let (status, _) = get_json(running.addr, "/poll?topics=t");
        assert_eq!(status, 200);
    }
    let (status, _) = get_json(running.addr, "/poll?topics=t");
    assert_eq!(status, 503);
}

#[test]
fn sessions_count_against_the_cap_per_address() {
    let config = Config::default()
        .limit_loopback(true)
        .max_connections_per_ip(3);
    let (running, _) = start(config, quick());
    // The request's own connection and two sessions make three.
    for _ in 0..2 {
        let (status, _) = get_json(running.addr, "/poll?topics=t");
        assert_eq!(status, 200);
    }
    let (status, _) = get_json(running.addr, "/poll?topics=t");
    assert_eq!(status, 503);
}

#[test]
fn a_body_that_never_comes_is_cut_at_the_request_deadline() {
    let config = Config::default().handshake_timeout(Duration::from_millis(500));
    let (running, _) = start(config, quick());
    let (_, first) = get_json(running.addr, "/poll?topics=t");
    let session = first["session"].as_str().unwrap().to_string();
    let mut stream = tcp(running.addr);
    let head = format!(
        "POST /send?session={session} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nd\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    // No answer, and the connection ends (within the test's read timeout).
    let mut rest = Vec::new();
    let ended = stream.read_to_end(&mut rest);
    assert!(
        ended.is_ok(),
        "the server did not end the connection: {ended:?}"
    );
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}
