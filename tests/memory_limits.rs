//! The server-wide memory bounds: one budget for the messages in progress
//! of all connections (close 1013 past it), and a per-address connection
//! limit (503 past it), over real sockets.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use boardcast::Config;
use support::{echo, op, Running, TIMEOUT};

/// A client that holds a fragmented message in progress of `held` bytes:
/// its first fragment, then a ping whose pong shows the server has read
/// the fragment (the pong is owed only once the bytes before it are used).
fn holding(addr: SocketAddr, held: usize) -> TcpStream {
    let mut stream = support::raw_upgrade(addr, "/");
    let mut wire = support::client_frame(false, op::BINARY, &vec![1; held]);
    wire.extend(support::client_frame(true, op::PING, b"read?"));
    stream.write_all(&wire).expect("send a fragment and a ping");
    let pong = support::read_frame(&mut stream).expect("the pong");
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (op::PONG, &b"read?"[..])
    );
    stream
}

/// Sends a `len`-byte binary message on a new connection and returns the
/// server's first frame: the echo, or a close.
fn send_message(addr: SocketAddr, len: usize) -> support::Frame {
    let mut stream = support::raw_upgrade(addr, "/");
    // The server may close before it has read it all: a failed write is
    // fine, the close frame is what counts.
    let _ = stream.write_all(&support::client_frame(true, op::BINARY, &vec![2; len]));
    support::read_frame(&mut stream).expect("an echo or a close")
}

#[test]
fn messages_in_progress_share_one_budget_and_past_it_close_with_1013() {
    // Each message's first 4 KiB (a read buffer) is its connection's own;
    // the budget counts the rest.
    let config = Config::default().max_partial_bytes(8 << 10);
    let running = Running::start(support::server(config), echo);
    let addr = running.addr;

    // 6,000 bytes held (a message's storage never passes the end of the
    // frames that arrived) take 1,904 of the budget and leave 6,288: a
    // 12,000-byte message, which needs 7,904, does not fit beside them.
    let mut first = holding(addr, 6000);
    let refused = send_message(addr, 12_000);
    assert_eq!(refused.close_code(), Some(1013), "{refused:?}");

    // The held message completes, and gives its share back before the
    // handler has it: the same message now fits.
    first
        .write_all(&support::client_frame(true, op::CONTINUATION, b"end"))
        .unwrap();
    let echoed = support::read_frame(&mut first).expect("the echo");
    assert_eq!(echoed.payload.len(), 6003);
    let served = send_message(addr, 12_000);
    assert_eq!(
        (served.opcode, served.payload.len()),
        (op::BINARY, 12_000),
        "refused after the held message completed"
    );

    // A client gone in the middle of its message gives its share back too
    // (once the server has seen it go).
    drop(holding(addr, 6000));
    support::wait_until(TIMEOUT, "the gone client's share given back", || {
        send_message(addr, 12_000).opcode == op::BINARY
    });
    support::assert_served(addr);
}

#[test]
fn with_the_budget_spent_small_messages_and_bare_headers_still_pass() {
    // 10,000 bytes held take 5,904 of a 6 KiB budget: what is left is less
    // than any large message needs.
    let config = Config::default().max_partial_bytes(6 << 10);
    let running = Running::start(support::server(config), echo);
    let addr = running.addr;
    let _first = holding(addr, 10_000);
    assert_eq!(send_message(addr, 9000).close_code(), Some(1013));

    // A header alone takes only its read buffer, the connection's own: it
    // is not refused, and its 4,000 bytes, sent afterwards, are echoed.
    // So are small messages: commands and readings pass while large
    // messages hold the budget.
    let mut second = support::raw_upgrade(addr, "/");
    let frame = support::client_frame(true, op::BINARY, &[3; 4000]);
    second.write_all(&frame[..8]).unwrap();
    let small = send_message(addr, 100);
    assert_eq!((small.opcode, small.payload.len()), (op::BINARY, 100));
    second.write_all(&frame[8..]).unwrap();
    let echoed = support::read_frame(&mut second).expect("the echo");
    assert_eq!(echoed.payload, vec![3; 4000]);
}

#[test]
fn one_address_past_its_limit_gets_503_and_slots_free_again() {
    let config = Config::default()
        .max_connections_per_ip(2)
        .limit_loopback(true);
    let running = Running::start(support::server(config), echo);
    let addr = running.addr;
    let first = support::connect(addr, "/");
    let mut second = support::connect(addr, "/");

    let reply = support::http(addr, &support::upgrade_request("/", ""));
    assert!(reply.starts_with("HTTP/1.1 503 "), "{reply:?}");
    assert!(
        reply.to_ascii_lowercase().contains("\r\nretry-after: "),
        "{reply:?}"
    );
    assert_eq!(running.stats().rejected_full, 1);

    // The address's slot frees when its client leaves.
    support::close(first);
    support::wait_until(TIMEOUT, "the first client gone", || {
        running.stats().clients == 1
    });
    // Its slot is free once its threads let go of the connection; a new
    // connection may still meet the 503 until then.
    let mut third = None;
    support::wait_until(TIMEOUT, "a slot of the address free again", || {
        third = support::try_connect(addr, format!("ws://{addr}/")).ok();
        third.is_some()
    });
    let mut third = third.unwrap();
    support::send_text(&mut third, "third");
    assert_eq!(support::next_text(&mut third), "third");
    support::send_text(&mut second, "second");
    assert_eq!(support::next_text(&mut second), "second");
}

#[test]
fn loopback_peers_are_exempt_by_default() {
    // A reverse proxy on the board makes every client 127.0.0.1.
    let config = Config::default().max_connections_per_ip(1);
    let running = Running::start(support::server(config), echo);
    let mut clients: Vec<_> = (0..3)
        .map(|_| support::connect(running.addr, "/"))
        .collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        support::send_text(ws, &format!("client {i}"));
        assert_eq!(support::next_text(ws), format!("client {i}"));
    }
    assert_eq!(running.stats().rejected_full, 0);
}
