//! The connection cap and the handshake deadline.
//!
//! The tests take [`support::serial`]: they count the server's threads.

mod support;

use std::io::Write;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use boardcast::Config;
use support::{Running, TIMEOUT};

/// An echo handler: what most tests here need from a served client.
fn echo(mut client: boardcast::Client) {
    while let Ok(Some(message)) = client.recv() {
        if message.is_data() {
            let _ = client.send(message);
        }
    }
}

fn echoes(ws: &mut support::Ws, text: &str) {
    support::send_text(ws, text);
    assert_eq!(support::next_text(ws), text);
}

#[test]
fn full_server_answers_503_without_a_thread_and_frees_slots() {
    let _serial = support::serial();
    let running = Running::start(support::server(Config::default().max_connections(2)), echo);
    let addr = running.addr;
    let mut first = support::connect(addr, "/");
    let mut second = support::connect(addr, "/");
    echoes(&mut first, "one");
    echoes(&mut second, "two");
    let threads = support::server_threads();
    assert_eq!(threads, 4, "two threads per client");

    // Read to the end of the connection (or a reset, if the request
    // arrived after the server closed).
    let reply = support::http(addr, &support::upgrade_request("/", ""));
    assert_503(&reply);
    assert_eq!(support::server_threads(), threads, "a thread for the 503");
    assert_eq!(running.stats().rejected_full, 1);
    assert_eq!(running.stats().clients, 2);

    // A slot frees when its client leaves, again and again.
    support::close(first);
    for round in 0..3 {
        // Its slot is free once both its threads are gone.
        support::wait_until(TIMEOUT, "a client left", || {
            running.stats().clients == 1 && support::server_threads() == 2
        });
        let mut next = support::try_connect(addr, format!("ws://{addr}/"))
            .unwrap_or_else(|e| panic!("round {round}: a freed slot refused: {e}"));
        echoes(&mut next, "again");
        support::close(next);
    }
    echoes(&mut second, "still served");
    assert_eq!(running.stats().rejected_full, 1);
}

#[test]
fn slowloris_is_dropped_at_the_handshake_deadline_while_others_are_served() {
    let _serial = support::serial();
    let deadline = Duration::from_millis(300);
    let running = Running::start(
        support::server(Config::default().handshake_timeout(deadline)),
        echo,
    );
    let addr = running.addr;

    // One byte every 50 ms at most (a beat is one read timeout): the whole
    // request, padded, would take over 30 s, beyond the deadline plus
    // TIMEOUT, the upper bound on the cut below.
    let padding = format!("X-Pad: {}\r\n", "p".repeat(500));
    let request = support::upgrade_request("/", &padding);
    let (connected, started) = mpsc::channel();
    let slowloris = thread::Builder::new()
        .name("test-slowloris".into())
        .spawn(move || {
            // Started before the connection: the server's deadline cannot
            // start earlier than this clock.
            let start = Instant::now();
            let mut stream = support::tcp(addr);
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            connected.send(()).unwrap();
            for (sent, byte) in request.bytes().enumerate() {
                if stream.write_all(&[byte]).is_err() || support::is_closed(&mut stream) {
                    return (sent, start.elapsed());
                }
            }
            panic!("the whole request went out: the server waited for it");
        })
        .unwrap();
    started.recv_timeout(TIMEOUT).unwrap();

    // Served meanwhile.
    let mut client = support::connect(addr, "/");
    echoes(&mut client, "not blocked by the slowloris");

    let (sent, after) = slowloris.join().expect("the slowloris panicked");
    eprintln!("slowloris cut after {sent} bytes and {after:?}");
    assert!(after >= deadline, "cut before its deadline: {after:?}");
    assert!(
        after < deadline + TIMEOUT,
        "cut {after:?} after connecting, the deadline is {deadline:?}"
    );
    echoes(&mut client, "still served");
    support::wait_until(TIMEOUT, "the failed handshake counted", || {
        running.stats().handshake_failed == 1
    });
    // The slowloris's thread counts its failure just before it ends.
    support::wait_until(TIMEOUT, "only the echo client's threads are left", || {
        support::server_threads() == 2
    });
}

/// Checks a whole 503 as the server sends it when full: its status, that
/// it says the connection closes, when to retry, and its body, whose length
/// `Content-Length` gives.
fn assert_503(reply: &str) {
    let (head, body) = reply.split_once("\r\n\r\n").expect("a response head");
    let response = support::HttpResponse::parse(
        format!("{head}\r\n\r\n").as_bytes(),
        body.as_bytes().to_vec(),
    );
    assert_eq!(
        response.status_line, "HTTP/1.1 503 Service Unavailable",
        "{reply:?}"
    );
    assert_eq!(response.header("Connection"), Some("close"), "{reply:?}");
    assert_eq!(response.header("Retry-After"), Some("1"), "{reply:?}");
    assert_eq!(response.body_text(), "server full, try again later");
    assert_eq!(
        response.header("Content-Length"),
        Some(response.body.len().to_string().as_str())
    );
}

#[test]
fn a_connection_in_its_handshake_holds_a_slot() {
    let _serial = support::serial();
    let running = Running::start(support::server(Config::default().max_connections(1)), echo);
    let addr = running.addr;
    // Connected, and half a request: the server is reading its handshake.
    let mut pending = support::tcp(addr);
    pending.write_all(b"GET / HTTP/1.1\r\nHost: 127").unwrap();
    support::wait_until(TIMEOUT, "the pending handshake has its thread", || {
        support::server_threads() == 1
    });
    // No slot for another, while it holds the only one.
    assert_503(&support::http(addr, &support::upgrade_request("/", "")));
    assert_eq!(running.stats().rejected_full, 1);
    // Its request completed, it is upgraded and served in its slot.
    let rest = support::upgrade_request("/", "");
    let rest = rest.split_once("Host: 127").unwrap().1;
    pending.write_all(rest.as_bytes()).unwrap();
    let response = support::HttpResponse::parse(&support::read_head(&mut pending), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    pending
        .write_all(&support::client_frame(true, support::op::TEXT, b"held"))
        .unwrap();
    assert_eq!(support::read_frame(&mut pending).unwrap().payload, b"held");
    pending.write_all(&support::client_close(1000, "")).unwrap();
    assert_eq!(
        support::read_frame(&mut pending).unwrap().close_code(),
        Some(1000)
    );
    support::expect_eof(&mut pending);
    // Its slot frees once its threads are gone.
    support::wait_until(TIMEOUT, "the slot freed", || {
        running.stats().clients == 0 && support::server_threads() == 0
    });
    let mut next = support::connect(addr, "/");
    echoes(&mut next, "the freed slot");
    assert_eq!(running.stats().rejected_full, 1);
}
