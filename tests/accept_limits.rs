//! `boardcast::accept` over a `TcpStream` keeps `Config`'s time limits as
//! the `Server` does: a request trickled byte by byte is cut at the
//! handshake deadline, a silent peer is pinged and then cut, a peer that
//! answers its pings stays, and a peer that never reads cannot pin the
//! connection's thread in a write.

mod support;

use std::io::{self, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use boardcast::{Config, Error, Message};
use support::{op, Server, TIMEOUT};

/// Time limits short enough for a fast suite, long enough for a loaded
/// machine's scheduling.
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn request_trickled_byte_by_byte_is_cut_at_the_handshake_deadline() {
    // Each byte comes well within a per-read timeout of the deadline's
    // length: only a deadline for the whole request cuts it.
    let config = Config::default().handshake_timeout(ms(400));
    let server = Server::spawn(1, move |stream| {
        let start = Instant::now();
        let result = boardcast::accept(stream, &config).map(drop);
        (result, start.elapsed())
    });
    let request = support::upgrade_request("/", "");
    let mut stream = support::tcp(server.addr());
    // Each wait for the end paces the trickle: a byte per 100 ms.
    stream.set_read_timeout(Some(ms(100))).unwrap();
    let start = Instant::now();
    let mut sent = 0;
    for byte in request.bytes() {
        if stream.write_all(&[byte]).is_err() || support::is_closed(&mut stream) {
            break;
        }
        sent += 1;
        assert!(
            start.elapsed() < TIMEOUT,
            "still trickling after {sent} bytes"
        );
    }
    let cut_after = start.elapsed();
    assert!(
        sent < request.len(),
        "the whole request went out: never cut"
    );
    let (result, held) = server.result();
    match result {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}"),
        other => panic!("expected the handshake to time out, got {other:?}"),
    }
    eprintln!(
        "slowloris on accept: cut after {sent} of {} bytes, {cut_after:?} (accept held {held:?})",
        request.len()
    );
}

/// A handler that accepts and receives until the connection ends; returns
/// what it received, how it ended, and how long it ran.
fn receive_until_end(config: Config) -> Server<(Vec<Message>, Result<(), Error>, Duration)> {
    Server::spawn(1, move |stream| {
        let start = Instant::now();
        let mut connection = match boardcast::accept(stream, &config) {
            Ok(connection) => connection,
            Err(e) => return (Vec::new(), Err(e), start.elapsed()),
        };
        let mut received = Vec::new();
        let end = loop {
            match connection.recv() {
                Ok(Some(message)) => received.push(message),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        (received, end, start.elapsed())
    })
}

#[test]
fn silent_peer_is_pinged_then_cut() {
    let config = Config::default()
        .ping_interval(Some(ms(200)))
        .pong_timeout(ms(300));
    let server = receive_until_end(config);
    let mut stream = support::raw_upgrade(server.addr(), "/");
    let start = Instant::now();
    let ping = support::read_frame(&mut stream).expect("a ping, not the end");
    assert_eq!(ping.opcode, op::PING, "{ping:?}");
    let pinged_after = start.elapsed();
    // Not answered: the server hangs up, with nothing more.
    support::expect_eof(&mut stream);
    let cut_after = start.elapsed();
    let (received, end, _) = server.result();
    assert!(received.is_empty(), "{received:?}");
    match end {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            assert!(e.to_string().contains("keepalive"), "{e}");
        }
        other => panic!("expected the keepalive to cut the peer, got {other:?}"),
    }
    eprintln!("silent peer on accept: pinged after {pinged_after:?}, cut after {cut_after:?}");
}

#[test]
fn peer_answering_pings_stays_connected() {
    let config = Config::default()
        .ping_interval(Some(ms(100)))
        .pong_timeout(ms(400));
    let server = receive_until_end(config);
    let mut stream = support::raw_upgrade(server.addr(), "/");
    // Three rounds: each ping answered by a pong, as a browser does; three
    // silent intervals pass, with no data at all.
    for round in 0..3 {
        let ping = support::read_frame(&mut stream)
            .unwrap_or_else(|| panic!("cut in round {round} though every ping was answered"));
        assert_eq!(ping.opcode, op::PING, "{ping:?}");
        stream
            .write_all(&support::client_frame(true, op::PONG, &ping.payload))
            .unwrap();
    }
    stream
        .write_all(&support::client_frame(true, op::TEXT, b"still here"))
        .unwrap();
    stream.write_all(&support::client_close(1000, "")).unwrap();
    // Pings may cross the close; the close answer comes last.
    let close = support::read_past_pings(&mut stream, "the close answer");
    assert_eq!(close.close_code(), Some(1000));
    let (received, end, _) = server.result();
    end.expect("a clean close");
    let pongs = received
        .iter()
        .filter(|m| matches!(m, Message::Pong(_)))
        .count();
    assert_eq!(pongs, 3, "{received:?}");
    assert!(
        received.contains(&Message::Text("still here".into())),
        "{received:?}"
    );
}

#[test]
fn peer_that_never_reads_cannot_pin_the_thread_in_a_write() {
    // Pings with the longest payload, never reading the pongs: the server's
    // socket fills, and its pong write blocks until the write timeout.
    let config = Config::default().write_timeout(ms(300));
    let server = receive_until_end(config);
    let stream = support::raw_upgrade(server.addr(), "/");
    let mut flood = stream.try_clone().unwrap();
    let start = Instant::now();
    let flooding = support::bounded("flood", move || {
        let ping = support::client_frame(true, op::PING, &[0x55; 125]);
        let batch = ping.repeat(256);
        let mut sent = 0usize;
        // Ends when the server hangs up (the write fails), or the test's
        // timeout does.
        while flood.write_all(&batch).is_ok() {
            sent += batch.len();
            assert!(
                start.elapsed() < TIMEOUT,
                "{sent} bytes of pings, never cut"
            );
        }
        sent
    });
    let (received, end, _) = server.result();
    let cut_after = start.elapsed();
    match end {
        Err(Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        other => panic!("expected the pong write to time out, got {other:?}"),
    }
    assert!(!received.is_empty(), "no ping was received");
    drop(stream);
    let sent = flooding.join();
    eprintln!(
        "pong flood on accept: cut after {cut_after:?}, {} pings received, {sent} bytes sent",
        received.len()
    );
}

#[test]
fn connection_read_timeout_returns_would_block_and_keepalive_runs_across_it() {
    // `recv` gives up every 50 ms; the ping is due after 300 ms of silence,
    // which only a clock kept across calls can see.
    let config = Config::default()
        .ping_interval(Some(ms(300)))
        .pong_timeout(ms(2000));
    let server = Server::spawn(1, move |stream| -> Result<(usize, Vec<Message>), Error> {
        let mut connection = boardcast::accept(stream, &config)?;
        connection.set_read_timeout(Some(ms(50)));
        let (mut ticks, mut received) = (0, Vec::new());
        loop {
            match connection.recv() {
                Ok(Some(message)) => received.push(message),
                Ok(None) => return Ok((ticks, received)),
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => ticks += 1,
                Err(e) => return Err(e),
            }
        }
    });
    let mut stream = support::raw_upgrade(server.addr(), "/");
    let ping = support::read_frame(&mut stream).expect("a ping");
    assert_eq!(ping.opcode, op::PING, "{ping:?}");
    stream
        .write_all(&support::client_frame(true, op::PONG, &ping.payload))
        .unwrap();
    stream
        .write_all(&support::client_frame(true, op::TEXT, b"done"))
        .unwrap();
    stream.write_all(&support::client_close(1000, "")).unwrap();
    let close = support::read_past_pings(&mut stream, "the close answer");
    assert_eq!(close.close_code(), Some(1000));
    let (ticks, received) = server.result().expect("a clean close");
    assert!(ticks >= 2, "recv returned WouldBlock {ticks} times");
    assert!(
        received.contains(&Message::Text("done".into())),
        "{received:?}"
    );
}

/// Receives with `recv` returning `WouldBlock` every 50 ms, reporting each
/// time on `ticks`, until a message comes; returns it.
fn receive_through_timeouts(
    connection: &mut boardcast::Connection<TcpStream>,
    ticks: &std::sync::mpsc::Sender<()>,
) -> Result<Message, Error> {
    loop {
        match connection.recv() {
            Ok(Some(message)) if message.is_data() => return Ok(message),
            Ok(other) => panic!("{other:?}"),
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                let _ = ticks.send(());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends a 64 KiB message in two parts, the second once the server's
/// `recv` has timed out three times in the middle of it.
fn send_with_timeouts_between(
    stream: &mut TcpStream,
    ticks: &std::sync::mpsc::Receiver<()>,
) -> Vec<u8> {
    let payload: Vec<u8> = (0..64 << 10).map(|i: u32| (i % 251) as u8).collect();
    let frame = support::client_frame(true, op::BINARY, &payload);
    stream.write_all(&frame[..8 << 10]).unwrap();
    for _ in 0..3 {
        ticks.recv_timeout(TIMEOUT).expect("recv timed out");
    }
    stream.write_all(&frame[8 << 10..]).unwrap();
    payload
}

#[test]
fn read_timeouts_in_the_middle_of_a_message_lose_nothing() {
    // A large payload is read straight into the message; a read that times
    // out must give back the room it was lent.
    let (ticks, ticked) = std::sync::mpsc::channel();
    let server = Server::spawn(1, move |stream| {
        let mut connection = boardcast::accept(stream, &Config::default())?;
        connection.set_read_timeout(Some(ms(50)));
        receive_through_timeouts(&mut connection, &ticks)
    });
    let mut stream = support::raw_upgrade(server.addr(), "/");
    let payload = send_with_timeouts_between(&mut stream, &ticked);
    match server.result() {
        Ok(Message::Binary(got)) => assert!(got == payload, "{} bytes, changed", got.len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stream_read_timeouts_in_the_middle_of_a_message_lose_nothing() {
    // The same with no time limits: a connection from `from_upgraded` and
    // the stream's own read timeout.
    let (ticks, ticked) = std::sync::mpsc::channel();
    let server = Server::spawn(1, move |stream: TcpStream| {
        stream.set_read_timeout(Some(ms(50)))?;
        let mut connection = boardcast::Connection::from_upgraded(
            stream,
            boardcast::protocol::Role::Server,
            &Config::default(),
        );
        receive_through_timeouts(&mut connection, &ticks)
    });
    let mut stream = support::tcp(server.addr());
    let payload = send_with_timeouts_between(&mut stream, &ticked);
    match server.result() {
        Ok(Message::Binary(got)) => assert!(got == payload, "{} bytes, changed", got.len()),
        other => panic!("{other:?}"),
    }
}
