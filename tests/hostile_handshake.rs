//! Hostile handshakes against a `Server`: ten thousand header fields, and a
//! header line of a mebibyte that never ends. Each gets its 431 while the
//! client is still sending, the server reads no more than its limit, its
//! thread ends, and a normal client is served right after.
//!
//! "While still sending": the client sends a part of its request and holds
//! the rest until the whole refusal has arrived. "No more than its limit":
//! [`boardcast::Handshake::read`], which the server's connection threads
//! run, is given the same requests over a stream that counts what is read.
//!
//! The tests take [`support::serial`]: they count the server's threads.

mod support;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use boardcast::Config;
use support::Running;

/// Sends the first `answered_after` bytes of `wire` from another thread
/// (the server may stop reading them, so the write may block and then
/// fail), and the rest only once the whole response has been read, up to
/// the server's end of the connection: the server must answer before the
/// request is all sent. Returns the response and how long it took to
/// arrive.
fn refused_while_sending(
    addr: SocketAddr,
    wire: Vec<u8>,
    answered_after: usize,
) -> (String, Duration) {
    let mut stream = support::tcp(addr);
    let mut sender = stream.try_clone().unwrap();
    let (answered, rest) = mpsc::channel::<()>();
    let start = Instant::now();
    let sending = std::thread::Builder::new()
        .name("test-sender".into())
        .spawn(move || {
            // Fails once the server has hung up: that is expected.
            if sender.write_all(&wire[..answered_after]).is_ok() {
                // Held until the response has arrived (or the reader gave
                // up and dropped the channel).
                let _ = rest.recv();
                let _ = sender.write_all(&wire[answered_after..]);
            }
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
    drop(answered);
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

/// An upgrade request with `count` extra header fields and, after its
/// head, a mebibyte of masked frames that a refused client never gets to
/// send.
fn many_headers_then_frames(count: usize) -> Vec<u8> {
    let mut wire = many_headers(count);
    let frame = support::client_frame(true, support::op::BINARY, &[0x5A; 64 << 10]);
    for _ in 0..16 {
        wire.extend_from_slice(&frame);
    }
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

/// A hostile request: what it is, its bytes, how many of them the server
/// must have answered after, and the reason its 431 must give.
type Hostile = (
    &'static str,
    fn() -> Vec<u8>,
    fn(&Config) -> usize,
    &'static str,
);

/// A stream whose reads come from `input` and are counted; writes are kept.
struct Counted<'a> {
    input: &'a [u8],
    read: usize,
    written: Vec<u8>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input[self.read..].len().min(buf.len());
        buf[..n].copy_from_slice(&self.input[self.read..self.read + n]);
        self.read += n;
        Ok(n)
    }
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An in-memory stream: no time limits apply.
impl boardcast::Timeouts for Counted<'_> {}

/// Gives each hostile request to [`boardcast::Handshake::read`] whole, as
/// fast as it can read: it must read at most `max_request_size` bytes and
/// write the same 431.
fn assert_read_within_the_limit(config: &Config, requests: &[Hostile]) {
    for (what, request, _, reason) in requests {
        let wire = request();
        let mut stream = Counted {
            input: &wire,
            read: 0,
            written: Vec::new(),
        };
        match boardcast::Handshake::read(&mut stream, config) {
            Err(boardcast::Error::Handshake(e)) => assert_eq!(e.status(), 431, "{what}: {e}"),
            Err(e) => panic!("{what}: {e}"),
            Ok(_) => panic!("{what}: accepted"),
        }
        assert!(
            stream.read <= config.max_request_size,
            "{what}: read {} bytes, the limit is {}",
            stream.read,
            config.max_request_size
        );
        assert_431(&String::from_utf8_lossy(&stream.written), reason);
    }
}

/// Refuses each hostile request with 431 and its reason, then checks the
/// server is back to serving with no thread left for them.
fn assert_refused(config: Config, requests: &[Hostile]) {
    let _serial = support::serial();
    assert_read_within_the_limit(&config, requests);
    let running = Running::start(support::server(config.clone()), support::echo);
    for (i, (what, request, answered_after, reason)) in requests.iter().enumerate() {
        let wire = request();
        let answered_after = answered_after(&config);
        assert!(answered_after < wire.len(), "{what}: all of it sent first");
        let (response, took) = refused_while_sending(running.addr, wire, answered_after);
        eprintln!("{what}: 431 after {took:?}, {answered_after} bytes sent");
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
                |config| config.max_request_size,
                "request header too large",
            ),
            (
                "1 MiB header line",
                endless_header_line,
                |config| config.max_request_size,
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
            || many_headers_then_frames(10_000),
            // The count is known once the head is complete.
            |_| many_headers(10_000).len(),
            "too many header fields",
        )],
    );
}
