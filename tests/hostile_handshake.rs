//! Hostile handshakes against a `Server`: ten thousand header fields, and a
//! header line of a mebibyte that never ends. Each gets its 431 while the
//! client is still sending, the server reads no more than its limit, its
//! thread ends, and a normal client is served right after.
//!
//! The tests take [`support::serial`]: they count the server's threads.

mod support;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boardcast::Config;
use support::Running;

/// Sends `wire` from another thread (the server stops reading it, so the
/// write may block and then fail) while reading the response, up to the
/// server's end of the connection. Returns the response and how long it
/// took to arrive.
fn refused_while_sending(addr: SocketAddr, wire: Vec<u8>) -> (String, Duration) {
    let mut stream = support::tcp(addr);
    let mut sender = stream.try_clone().unwrap();
    let start = Instant::now();
    let sending = std::thread::Builder::new()
        .name("test-sender".into())
        .spawn(move || {
            // Fails once the server has hung up: that is expected.
            let _ = sender.write_all(&wire);
        })
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded by the read timeout and by the size of a refusal.
    while response.len() < 64 << 10 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // A reset after the reply: what arrived counts.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !response.is_empty() => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the response: {e} after {response:?}"),
        }
    }
    let took = start.elapsed();
    drop(stream);
    sending.join().expect("the sender panicked");
    (String::from_utf8(response).expect("UTF-8 response"), took)
}

/// An upgrade request with `count` extra header fields.
fn many_headers(count: usize) -> Vec<u8> {
    let mut wire = support::upgrade_request("/", "").into_bytes();
    wire.truncate(wire.len() - 2);
    for i in 0..count {
        wire.extend_from_slice(format!("X-Filler-{i}: v\r\n").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    wire
}

/// An upgrade request whose last header line is a mebibyte and never ends.
fn endless_header_line() -> Vec<u8> {
    let mut wire = support::upgrade_request("/", "").into_bytes();
    wire.truncate(wire.len() - 2);
    wire.extend_from_slice(b"X-Big: ");
    wire.resize(wire.len() + (1 << 20), b'a');
    wire
}

fn assert_431(response: &str, reason: &str) {
    assert!(
        response.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{response:?}"
    );
    assert!(response.ends_with(reason), "{response:?}");
}

/// A hostile request: what it is, its bytes, and the reason its 431 must
/// give.
type Hostile = (&'static str, fn() -> Vec<u8>, &'static str);

/// Refuses each hostile request with 431 and its reason, then checks the
/// server is back to serving with no thread left for them.
fn assert_refused(config: Config, requests: &[Hostile]) {
    let _serial = support::serial();
    let running = Running::start(support::server(config), support::echo);
    for (i, (what, request, reason)) in requests.iter().enumerate() {
        let (response, took) = refused_while_sending(running.addr, request());
        eprintln!("{what}: 431 after {took:?}");
        assert_431(&response, reason);
        support::wait_until(support::TIMEOUT, "the failed handshake counted", || {
            running.stats().handshake_failed == i as u64 + 1
        });
    }
    support::wait_until(
        support::TIMEOUT,
        "the refused connections' threads end",
        || support::server_threads() == 0,
    );
    support::assert_served(running.addr);
    // The served client's count drops once its thread is done with it,
    // which may be after our side of the close; the refused never counted.
    support::wait_until(support::TIMEOUT, "no client counted", || {
        running.stats().clients == 0
    });
}

#[test]
fn ten_thousand_headers_and_a_mebibyte_line_get_431_from_a_server() {
    // With the default limits, the head's size (8 KiB) gives out first.
    assert_refused(
        Config::default(),
        &[
            (
                "10,000 headers",
                || many_headers(10_000),
                "request header too large",
            ),
            (
                "1 MiB header line",
                endless_header_line,
                "request header too large",
            ),
        ],
    );
}

#[test]
fn ten_thousand_headers_within_the_size_limit_get_431_for_their_count() {
    assert_refused(
        Config::default().max_request_size(1 << 20),
        &[(
            "10,000 headers in 1 MiB",
            || many_headers(10_000),
            "too many header fields",
        )],
    );
}
