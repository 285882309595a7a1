//! A message must arrive whole within `Config::message_timeout`: a frame
//! header announcing 200 KiB followed by a byte at a time is failed with
//! close code 1008, on the `accept` path and on the `Server`, even though
//! each byte answers the keepalive; a fragmented message trickled as whole
//! small fragments is cut the same way; a slow but steady message within
//! the deadline arrives.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use boardcast::{Config, Error, ProtocolError};
use support::{op, Server, Waiter, MASK, TIMEOUT};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A short message deadline, and a keepalive that a trickle of a byte every
/// 50 ms satisfies: only the deadline can cut it.
fn config() -> Config {
    Config::default()
        .message_timeout(Some(ms(500)))
        .ping_interval(Some(ms(150)))
        .pong_timeout(ms(300))
}

/// Writes each piece after the last, `every` apart, until the server hangs
/// up or the pieces run out; returns how many went out.
fn trickle(mut stream: TcpStream, pieces: Vec<Vec<u8>>, every: Duration) -> Waiter<usize> {
    support::bounded("trickle", move || {
        let start = Instant::now();
        for (sent, piece) in pieces.iter().enumerate() {
            if stream.write_all(piece).is_err() {
                return sent;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "still trickling after {sent} pieces"
            );
            std::thread::sleep(every);
        }
        pieces.len()
    })
}

/// A header announcing a 200 KiB binary message, then its payload one
/// byte at a time (more bytes than can go out before the test's timeout).
fn trickled_message() -> Vec<Vec<u8>> {
    let len = 200 << 10;
    let mut pieces = vec![support::frame_header(true, op::BINARY, len, Some(MASK))];
    pieces.extend((0..len).map(|i| vec![MASK[i as usize % 4]]));
    pieces
}

/// Reads server frames, skipping keepalive pings, until a close frame;
/// returns its code.
fn close_code(stream: &mut TcpStream) -> Option<u16> {
    loop {
        let frame = support::read_frame(stream).expect("a close frame before the end");
        if frame.opcode == op::CLOSE {
            return frame.close_code();
        }
        assert_eq!(frame.opcode, op::PING, "{frame:?}");
    }
}

fn assert_too_slow(end: &Result<(), Error>) {
    match end {
        Err(Error::Protocol(ProtocolError::MessageTooSlow)) => {}
        other => panic!("expected MessageTooSlow, got {other:?}"),
    }
}

/// A handler on the `accept` path: echoes data until the connection ends;
/// returns how it ended.
fn accept_echo(config: Config) -> Server<Result<(), Error>> {
    Server::spawn(1, move |stream| {
        let mut connection = boardcast::accept(stream, &config)?;
        while let Some(message) = connection.recv()? {
            if message.is_data() {
                connection.send(message)?;
            }
        }
        Ok(())
    })
}

/// Trickles `pieces` `every` apart to `addr`'s server, which must close
/// with 1008; returns how long that took from the first piece.
fn assert_closed_for_policy(addr: SocketAddr, pieces: Vec<Vec<u8>>, every: Duration) -> Duration {
    let mut stream = support::raw_upgrade(addr, "/");
    let start = Instant::now();
    let trickling = trickle(stream.try_clone().unwrap(), pieces, every);
    assert_eq!(close_code(&mut stream), Some(1008));
    let cut_after = start.elapsed();
    support::expect_eof(&mut stream);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    trickling.join();
    cut_after
}

#[test]
fn trickled_message_is_closed_with_1008_on_accept() {
    let server = accept_echo(config());
    let cut_after = assert_closed_for_policy(server.addr(), trickled_message(), ms(50));
    assert_too_slow(&server.result());
    eprintln!("trickled 200 KiB message on accept: closed with 1008 after {cut_after:?}");
}

#[test]
fn trickled_message_is_closed_with_1008_on_the_server() {
    let (handler, reports) = support::echo_reporting();
    let running = support::Running::start(support::server(config()), handler);
    let cut_after = assert_closed_for_policy(running.addr, trickled_message(), ms(50));
    let served = support::next_served(&reports);
    assert_too_slow(&served.end);
    assert!(served.messages.is_empty(), "{:?}", served.messages);
    eprintln!("trickled 200 KiB message on the server: closed with 1008 after {cut_after:?}");
    support::assert_served(running.addr);
}

#[test]
fn message_trickled_as_small_fragments_is_cut_on_the_server() {
    // Every frame arrives whole at once; the message never ends.
    let (handler, reports) = support::echo_reporting();
    let running = support::Running::start(support::server(config()), handler);
    let mut pieces = vec![support::client_frame(false, op::TEXT, b"a")];
    pieces.extend((0..1000).map(|_| support::client_frame(false, op::CONTINUATION, b"a")));
    let cut_after = assert_closed_for_policy(running.addr, pieces, ms(50));
    assert_too_slow(&support::next_served(&reports).end);
    eprintln!("message trickled as fragments on the server: closed with 1008 after {cut_after:?}");
}

/// 8 KiB in 16 pieces 30 ms apart: about half a second, well within a
/// deadline of 3 s.
fn steady_message(payload: &[u8]) -> Vec<Vec<u8>> {
    let frame = support::client_frame(true, op::BINARY, payload);
    frame
        .chunks(frame.len().div_ceil(16))
        .map(<[u8]>::to_vec)
        .collect()
}

fn assert_steady_message_arrives(addr: SocketAddr) {
    let payload: Vec<u8> = (0..8192u32).map(|i| i as u8).collect();
    let mut stream = support::raw_upgrade(addr, "/");
    let pieces = steady_message(&payload);
    let count = pieces.len();
    let trickling = trickle(stream.try_clone().unwrap(), pieces, ms(30));
    let echo = support::read_past_pings(&mut stream, "the echo");
    assert_eq!(echo.opcode, op::BINARY);
    assert!(echo.payload == payload, "the echo differs");
    assert_eq!(trickling.join(), count);
    stream.write_all(&support::client_close(1000, "")).unwrap();
    let close = support::read_past_pings(&mut stream, "the close answer");
    assert_eq!(close.close_code(), Some(1000));
}

#[test]
fn slow_but_steady_message_within_the_deadline_arrives_on_accept() {
    let server = accept_echo(config().message_timeout(Some(Duration::from_secs(3))));
    assert_steady_message_arrives(server.addr());
    server.result().expect("a clean close");
}

#[test]
fn slow_but_steady_message_within_the_deadline_arrives_on_the_server() {
    let (handler, reports) = support::echo_reporting();
    let config = config().message_timeout(Some(Duration::from_secs(3)));
    let running = support::Running::start(support::server(config), handler);
    assert_steady_message_arrives(running.addr);
    let served = support::next_served(&reports);
    served.end.expect("a clean close");
    let data: Vec<_> = served.messages.iter().filter(|m| m.is_data()).collect();
    assert_eq!(data.len(), 1, "{:?}", served.messages);
}

#[test]
fn the_deadline_is_per_message() {
    // Messages that each arrive at once, for longer than the deadline in
    // all: none is cut.
    let server = accept_echo(config().message_timeout(Some(ms(300))));
    let mut stream = support::raw_upgrade(server.addr(), "/");
    let start = Instant::now();
    let mut echoed = 0;
    while start.elapsed() < ms(900) {
        stream
            .write_all(&support::client_frame(true, op::TEXT, b"tick"))
            .unwrap();
        let frame = support::read_past_pings(&mut stream, "the echo");
        assert_eq!(frame.payload, b"tick", "{frame:?}");
        echoed += 1;
        std::thread::sleep(ms(20));
    }
    stream.write_all(&support::client_close(1000, "")).unwrap();
    server.result().expect("a clean close");
    assert!(echoed > 1);
}
