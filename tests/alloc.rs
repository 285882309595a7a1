//! Heap allocations on the handshake's success path, counted by a global
//! allocator.
//!
//! The counter is per thread, so the test harness running other tests on
//! other threads does not disturb a measurement. Logging is not set up in
//! this binary: with no logger, `log` macros format nothing and allocate
//! nothing.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use boardcast::handshake::{Request, Status};
use boardcast::{Config, Message};
use support::Pipe;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while a thread's locals are gone.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the number of allocations and
/// reallocations it made on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    let after = ALLOCATIONS.with(Cell::get);
    (value, after - before)
}

/// What Chrome 120 on Linux sends to a board's dashboard.
const CHROME: &[u8] = b"GET /ws HTTP/1.1\r\n\
    Host: 192.168.1.20:8080\r\n\
    Connection: Upgrade\r\n\
    Pragma: no-cache\r\n\
    Cache-Control: no-cache\r\n\
    User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
    Chrome/120.0.0.0 Safari/537.36\r\n\
    Upgrade: websocket\r\n\
    Origin: http://192.168.1.20:8080\r\n\
    Sec-WebSocket-Version: 13\r\n\
    Accept-Encoding: gzip, deflate, br\r\n\
    Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n\
    Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
    \r\n";

const CHROME_ACCEPT: &str = "HSmrc0sMlYUkAGmm5OPpG2HaGWk=";

#[test]
fn counter_sees_allocations() {
    // The instrument itself: a test that counted nothing would prove nothing.
    let (v, n) = allocations(|| vec![1u8; 100]);
    assert_eq!((v.len(), n), (100, 1));
    let (s, n) = allocations(|| {
        let mut s = String::with_capacity(1);
        s.push_str("more than one byte");
        s
    });
    assert_eq!((s.len(), n), (18, 2));
}

#[test]
fn parse_makes_no_allocation() {
    let config = Config::default();
    let (result, n) = allocations(|| Request::parse(CHROME, &config));
    let Ok(Status::Complete(request)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(n, 0, "Request::parse allocated");
    assert_eq!(request.len(), CHROME.len());
    assert_eq!(request.path(), "/ws");

    // Every partial prefix is also answered without allocating.
    let (partials, n) = allocations(|| {
        (0..CHROME.len())
            .filter(|&cut| Request::parse(&CHROME[..cut], &config) == Ok(Status::Partial))
            .count()
    });
    assert_eq!(partials, CHROME.len());
    assert_eq!(n, 0, "Request::parse of a partial head allocated");
}

#[test]
fn validate_and_accept_key_make_no_allocation() {
    let config = Config::default().allowed_origins(["http://192.168.1.20:8080"]);
    let Ok(Status::Complete(request)) = Request::parse(CHROME, &config) else {
        panic!()
    };
    let (accept, n) = allocations(|| request.validate(&config));
    assert_eq!(n, 0, "validate allocated");
    assert_eq!(accept.unwrap().as_str(), CHROME_ACCEPT);

    let (checks, n) = allocations(|| {
        (
            request.is_upgrade(),
            request.host(),
            request.origin(),
            request.query(),
        )
    });
    assert_eq!(n, 0);
    assert_eq!(
        checks,
        (
            true,
            Some("192.168.1.20:8080"),
            Some("http://192.168.1.20:8080"),
            None
        )
    );
}

#[test]
fn header_iteration_makes_no_allocation() {
    let config = Config::default();
    let Ok(Status::Complete(request)) = Request::parse(CHROME, &config) else {
        panic!()
    };
    let ((count, bytes, language), n) = allocations(|| {
        let mut headers = request.headers();
        let (count, bytes) = headers.by_ref().fold((0, 0), |(c, b), (name, value)| {
            (c + 1, b + name.len() + value.len())
        });
        (
            count,
            bytes,
            request.header("accept-language").map(str::len),
        )
    });
    assert_eq!(n, 0, "iterating headers allocated");
    assert_eq!(count, 12);
    assert_eq!(language, Some("en-US,en;q=0.9,de;q=0.8".len()));
    assert!(bytes > 300, "{bytes}");
}

/// The whole server side of a handshake over an in-memory stream: reading
/// the request, validating it, writing the 101, and setting up the
/// connection. The one allocation is the request buffer, which then holds
/// the response and is freed when `accept` returns; the connection's read
/// buffer comes with the first `recv`.
#[test]
fn accept_path_makes_one_allocation() {
    // Without permessage-deflate, which Chromium offers: agreeing to it
    // allocates (below).
    let config = Config::default().deflate(false);
    let pipe = Pipe::new(CHROME, 4096);
    let (connection, n) = allocations(|| boardcast::accept(pipe, &config));
    let connection = connection.expect("accept");
    let written = &connection.get_ref().output;
    let response = std::str::from_utf8(written).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{response}"
    );
    assert!(response.contains(&format!("\r\nSec-WebSocket-Accept: {CHROME_ACCEPT}\r\n")));
    assert_eq!(n, 1, "allocations on the accept path");
}

/// With the `deflate` feature, agreeing to Chromium's offer costs the
/// parsed offers, the agreed parameters, the response header and the two
/// halves of the codec (no compressor or decompressor: those come from the
/// pools with the first message): measured 11 in all, 10 more than without.
#[cfg(feature = "deflate")]
#[test]
fn accept_path_with_permessage_deflate_allocates_the_agreement_only() {
    let config = Config::default();
    let pipe = Pipe::new(CHROME, 4096);
    let (connection, n) = allocations(|| boardcast::accept(pipe, &config));
    let connection = connection.expect("accept");
    let response = String::from_utf8_lossy(&connection.get_ref().output).into_owned();
    assert!(
        response.contains("\r\nSec-WebSocket-Extensions: permessage-deflate"),
        "{response}"
    );
    assert!(n <= 12, "{n} allocations on the accept path with deflate");
}

/// The same with a selected subprotocol and the first frame arriving with
/// the request: two more allocations, the selected protocol's name (owned
/// by `Accept`) and the pipelined bytes, which become the read buffer.
#[test]
fn accept_with_protocol_and_pipelined_frame_makes_three_allocations() {
    let config = Config::default().deflate(false).protocols(["sensors.v1"]);
    let mut input = String::from_utf8(CHROME.to_vec())
        .unwrap()
        .replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Protocol: other, sensors.v1\r\n\r\n",
        )
        .into_bytes();
    input.extend_from_slice(&support::client_frame(true, support::op::TEXT, b"hello"));
    let pipe = Pipe::new(input, 4096);
    let (connection, n) = allocations(|| boardcast::accept(pipe, &config));
    let mut connection = connection.expect("accept");
    assert!(String::from_utf8_lossy(&connection.get_ref().output)
        .contains("\r\nSec-WebSocket-Protocol: sensors.v1\r\n"));
    assert_eq!(n, 3, "allocations on the accept path with a subprotocol");

    // Receiving a small text message costs one: its own buffer.
    let (message, n) = allocations(|| connection.recv());
    assert_eq!(message.unwrap(), Some(Message::Text("hello".into())));
    assert_eq!(n, 1, "allocations to receive a text message");
}
