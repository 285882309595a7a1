//! The closing handshake from either side, and failing the connection:
//! each violation is answered with a close frame carrying its exact code.

mod support;

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};

use boardcast::{CloseCode, CloseFrame, Config, Connection, Error, Message, ProtocolError};
use support::{client_close, client_frame, frame_header, op, raw_upgrade, read_frame, Server};
use tungstenite::protocol::frame::coding::CloseCode as TungCode;
use tungstenite::protocol::CloseFrame as TungFrame;
use tungstenite::Message as Tm;

/// What a server that only receives saw: every message, then how it ended.
type Received = (Vec<Message>, Result<(), Error>);

/// A server that receives until the end, sending nothing itself.
fn receiver(config: Config) -> Server<Received> {
    Server::spawn(1, move |stream| {
        let mut received = Vec::new();
        let result = (|| {
            let mut connection = boardcast::accept(stream, &config)?;
            while let Some(message) = connection.recv()? {
                received.push(message);
            }
            // Once closed, recv keeps saying so.
            assert!(connection.recv()?.is_none());
            Ok(())
        })();
        (received, result)
    })
}

fn client_closes_with(code: u16, reason: &'static str) {
    let server = receiver(Config::default());
    let mut ws = support::connect(server.addr(), "/");
    ws.close(Some(TungFrame {
        code: TungCode::from(code),
        reason: reason.into(),
    }))
    .unwrap();
    // The server echoes the code (§5.5.1), then ends the connection.
    match ws.read() {
        Ok(Tm::Close(Some(frame))) => assert_eq!(u16::from(frame.code), code),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    let (received, result) = server.result();
    result.expect("clean close");
    assert_eq!(
        received,
        [Message::Close(Some(CloseFrame {
            code: CloseCode(code),
            reason: reason.into()
        }))]
    );
}

#[test]
fn client_close_1000_is_echoed_and_ends_recv() {
    client_closes_with(1000, "bye");
}

#[test]
fn client_close_4000_is_echoed_and_ends_recv() {
    client_closes_with(4000, "application says so");
}

#[test]
fn client_close_without_code_is_echoed_without_code() {
    let server = receiver(Config::default());
    let mut stream = raw_upgrade(server.addr(), "/");
    stream
        .write_all(&client_frame(true, op::CLOSE, &[]))
        .unwrap();
    let reply = read_frame(&mut stream).expect("a frame");
    assert_eq!((reply.opcode, reply.payload.len()), (op::CLOSE, 0));
    support::expect_eof(&mut stream);
    let (received, result) = server.result();
    result.unwrap();
    assert_eq!(received, [Message::Close(None)]);
}

#[test]
fn server_close_is_seen_by_the_client_and_finished_by_recv() {
    let server = Server::spawn(1, |stream| -> Result<Vec<Option<Message>>, Error> {
        let mut connection = boardcast::accept(stream, &Config::default())?;
        connection.close(CloseCode(4001), "shutting down")?;
        assert!(connection.is_closing());
        // The client's reply, then the end.
        Ok(vec![connection.recv()?, connection.recv()?])
    });
    let mut ws = support::connect(server.addr(), "/");
    match ws.read() {
        Ok(Tm::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "shutting down");
        }
        other => panic!("{other:?}"),
    }
    // Tungstenite replies on its next read, and sees the server hang up.
    assert!(matches!(
        ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    let seen = server.result().expect("clean close");
    assert_eq!(
        seen,
        [
            Some(Message::Close(Some(CloseFrame {
                code: CloseCode(4001),
                // Tungstenite echoes the reason too.
                reason: "shutting down".into()
            }))),
            None
        ]
    );
}

#[test]
fn server_close_then_client_hang_up_is_a_clean_end() {
    // After our close frame the peer may just end the stream.
    let server = Server::spawn(1, |stream| -> Result<Option<Message>, Error> {
        let mut connection = boardcast::accept(stream, &Config::default())?;
        connection.close(CloseCode::AWAY, "")?;
        connection.recv()
    });
    let mut stream = raw_upgrade(server.addr(), "/");
    assert_eq!(
        read_frame(&mut stream).expect("a frame").close_code(),
        Some(1001)
    );
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.result().expect("clean end"), None);
}

/// Sends `wire` after the handshake and checks that the server fails the
/// connection with `expected`: a close frame with its code, the end of the
/// stream, and `Error::Protocol` from recv.
fn assert_fails_with(config: Config, wire: &[u8], expected: ProtocolError, code: u16) {
    let server = receiver(config);
    let mut stream = raw_upgrade(server.addr(), "/");
    stream.write_all(wire).unwrap();
    let close = read_frame(&mut stream).expect("a frame");
    assert_eq!(close.close_code(), Some(code), "{expected:?}");
    assert_eq!(
        std::str::from_utf8(&close.payload[2..]).unwrap(),
        expected.to_string()
    );
    support::expect_eof(&mut stream);
    let (received, result) = server.result();
    assert_eq!(received, []);
    match result {
        Err(Error::Protocol(e)) => assert_eq!(e, expected),
        other => panic!("{expected:?}: {other:?}"),
    }
}

#[test]
fn unmasked_frame_fails_with_1002() {
    let mut wire = frame_header(true, op::TEXT, 2, None);
    wire.extend_from_slice(b"hi");
    assert_fails_with(Config::default(), &wire, ProtocolError::UnmaskedFrame, 1002);
}

#[test]
fn invalid_utf8_fails_with_1007() {
    let wire = client_frame(true, op::TEXT, b"ok \xff\xfe");
    assert_fails_with(Config::default(), &wire, ProtocolError::InvalidUtf8, 1007);
}

#[test]
fn invalid_utf8_in_a_first_fragment_fails_before_the_message_ends() {
    // No final fragment is ever sent: the server must not wait for it.
    let wire = client_frame(false, op::TEXT, b"\xc0\xaf");
    assert_fails_with(Config::default(), &wire, ProtocolError::InvalidUtf8, 1007);
}

#[test]
fn oversized_frame_header_fails_with_1009_before_its_payload() {
    // Only the header of a 1 MiB frame (the default limit is 256 KiB): a
    // server that waited for the payload would never answer.
    let wire = frame_header(true, op::BINARY, 1 << 20, Some([1, 2, 3, 4]));
    assert_fails_with(Config::default(), &wire, ProtocolError::FrameTooBig, 1009);
}

#[test]
fn oversized_fragmented_message_fails_with_1009() {
    let config = Config::default().max_message_size(100).max_frame_size(100);
    let mut wire = client_frame(false, op::BINARY, &[0; 60]);
    wire.extend(frame_header(true, op::CONTINUATION, 60, Some([1, 2, 3, 4])));
    assert_fails_with(config, &wire, ProtocolError::MessageTooBig, 1009);
}

#[test]
fn reserved_opcode_fails_with_1002() {
    let wire = client_frame(true, 0x3, b"");
    assert_fails_with(
        Config::default(),
        &wire,
        ProtocolError::ReservedOpCode(3),
        1002,
    );
    let wire = client_frame(true, 0xB, b"");
    assert_fails_with(
        Config::default(),
        &wire,
        ProtocolError::ReservedOpCode(0xB),
        1002,
    );
}

#[test]
fn bad_close_code_fails_with_1002() {
    for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_fails_with(
            Config::default(),
            &client_close(code, ""),
            ProtocolError::InvalidCloseCode(code),
            1002,
        );
    }
}

#[test]
fn other_framing_violations_fail_with_1002() {
    let mut rsv1 = client_frame(true, op::TEXT, b"x");
    rsv1[0] |= 0x40;
    let cases = [
        (rsv1, ProtocolError::ReservedBits),
        (
            client_frame(false, op::PING, b""),
            ProtocolError::FragmentedControl,
        ),
        (
            client_frame(true, op::PING, &[0; 126]),
            ProtocolError::ControlTooLong,
        ),
        (
            client_frame(true, op::CONTINUATION, b"x"),
            ProtocolError::UnexpectedContinuation,
        ),
        (
            [
                client_frame(false, op::TEXT, b"a"),
                client_frame(true, op::TEXT, b"b"),
            ]
            .concat(),
            ProtocolError::ExpectedContinuation,
        ),
        (
            client_frame(true, op::CLOSE, &[0x03]),
            ProtocolError::InvalidClosePayload,
        ),
    ];
    for (wire, expected) in cases {
        assert_fails_with(Config::default(), &wire, expected, 1002);
    }
}

/// A server that runs `f` on an accepted connection.
fn with_connection<T, F>(f: F) -> Server<Result<T, Error>>
where
    T: Send + 'static,
    F: Fn(&mut Connection<TcpStream>) -> Result<T, Error> + Send + Sync + 'static,
{
    Server::spawn(1, move |stream| {
        let mut connection = boardcast::accept(stream, &Config::default())?;
        f(&mut connection)
    })
}

fn assert_unexpected_eof<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
}

#[test]
fn end_of_stream_without_close_is_unexpected_eof() {
    let server = with_connection(|connection| connection.recv());
    let stream = raw_upgrade(server.addr(), "/");
    stream.shutdown(Shutdown::Write).unwrap();
    assert_unexpected_eof(server.result());
}

#[test]
fn end_of_stream_inside_a_frame_is_unexpected_eof() {
    let server = with_connection(|connection| connection.recv());
    let mut stream = raw_upgrade(server.addr(), "/");
    let frame = client_frame(true, op::TEXT, b"cut short");
    stream.write_all(&frame[..frame.len() - 3]).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert_unexpected_eof(server.result());
}

#[test]
fn send_after_close_is_refused_and_nothing_follows_the_close_frame() {
    let server = with_connection(|connection| {
        connection.close(CloseCode::NORMAL, "done")?;
        let refused = [
            connection.send_text("late"),
            connection.send_binary(b"late"),
            connection.ping(b"late"),
            connection.send(Message::Pong(Vec::new())),
            connection.close(CloseCode::NORMAL, "again"),
        ];
        for result in refused {
            assert!(matches!(result, Err(Error::Closed)), "{result:?}");
        }
        Ok((connection.recv()?, connection.recv()?))
    });
    let mut stream = raw_upgrade(server.addr(), "/");
    let close = read_frame(&mut stream).expect("a frame");
    assert_eq!(close.close_code(), Some(1000));
    assert_eq!(&close.payload[2..], b"done");
    stream.write_all(&client_close(1000, "")).unwrap();
    // Nothing after the close frame: the refused sends wrote nothing.
    support::expect_eof(&mut stream);
    let (reply, end) = server.result().unwrap();
    assert!(matches!(reply, Some(Message::Close(Some(_)))), "{reply:?}");
    assert_eq!(end, None);
}

#[test]
fn control_payload_over_125_bytes_is_refused_before_writing() {
    let server = with_connection(|connection| {
        assert!(matches!(
            connection.ping(&[0; 126]),
            Err(Error::ControlTooLong)
        ));
        assert!(matches!(
            connection.send(Message::Pong(vec![0; 126])),
            Err(Error::ControlTooLong)
        ));
        // A close reason of 124 bytes makes a 126-byte payload.
        assert!(matches!(
            connection.close(CloseCode::NORMAL, &"r".repeat(124)),
            Err(Error::ControlTooLong)
        ));
        assert!(!connection.is_closing());
        // The connection is still fine: 125 bytes is the limit.
        connection.ping(&[1; 125])?;
        connection.close(CloseCode::NORMAL, &"r".repeat(123))?;
        connection.recv()
    });
    let mut stream = raw_upgrade(server.addr(), "/");
    let ping = read_frame(&mut stream).expect("a frame");
    assert_eq!((ping.opcode, ping.payload), (op::PING, vec![1; 125]));
    let close = read_frame(&mut stream).expect("a frame");
    assert_eq!((close.close_code(), close.payload.len()), (Some(1000), 125));
    stream.write_all(&client_close(1000, "")).unwrap();
    assert!(matches!(server.result(), Ok(Some(Message::Close(Some(_))))));
}

#[test]
fn data_sent_before_the_close_reply_is_still_received() {
    // §7.1.2: after sending a close frame an endpoint keeps reading; the
    // peer's messages in flight are delivered before its close.
    let server = Server::spawn(1, |stream| -> Result<Vec<Message>, Error> {
        let mut connection = boardcast::accept(stream, &Config::default())?;
        connection.close(CloseCode::NORMAL, "")?;
        let mut received = Vec::new();
        while let Some(message) = connection.recv()? {
            received.push(message);
        }
        Ok(received)
    });
    let mut stream = raw_upgrade(server.addr(), "/");
    let mut wire = client_frame(true, op::TEXT, b"in flight");
    wire.extend(client_frame(true, op::PING, b"no pong after close"));
    wire.extend(client_close(1000, ""));
    stream.write_all(&wire).unwrap();
    assert_eq!(
        read_frame(&mut stream).expect("a frame").close_code(),
        Some(1000)
    );
    // No pong goes out after our close frame.
    support::expect_eof(&mut stream);
    let received = server.result().unwrap();
    assert_eq!(received.len(), 3, "{received:?}");
    assert_eq!(received[0], Message::Text("in flight".into()));
}

#[test]
fn a_server_handler_that_returns_without_closing_closes_with_1000() {
    // Dropping the client starts the closing handshake (RFC 6455 §7.1.2):
    // the peer gets a close 1000 and, once it answers, the end of the TCP
    // connection; the handler saw its message first.
    let (tx, returned) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let running = support::Running::start(support::server(Config::default()), move |mut client| {
        let first = client.recv();
        let _ = tx.lock().unwrap().send(format!("{first:?}"));
        // Returns without close: the drop closes.
    });
    let mut stream = raw_upgrade(running.addr, "/");
    stream
        .write_all(&client_frame(true, op::TEXT, b"one"))
        .unwrap();
    let close = read_frame(&mut stream).expect("a close frame");
    assert_eq!(close.close_code(), Some(1000), "{close:?}");
    assert_eq!(close.payload.len(), 2, "no reason: {close:?}");
    assert_eq!(
        returned.recv_timeout(support::TIMEOUT).unwrap(),
        format!("{:?}", Ok::<_, Error>(Some(Message::Text("one".into()))))
    );
    stream.write_all(&client_close(1000, "")).unwrap();
    support::expect_eof(&mut stream);
    support::wait_until(support::TIMEOUT, "the client counted out", || {
        running.stats().clients == 0
    });
}
