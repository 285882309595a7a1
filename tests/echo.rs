//! Messages both ways between a third-party client (tungstenite) and a
//! server running `boardcast::accept` and a recv/send loop: every length
//! class, fragmentation, pings.

mod support;

use std::net::TcpStream;

use boardcast::{CloseCode, Config, Error, Message};
use support::{client_close, client_frame, op, raw_upgrade, read_frame, Server};
use tungstenite::Message as Tm;

/// Everything the echo server received, and how its loop ended.
type Echoed = (Vec<Message>, Result<(), Error>);

/// An echo server for one connection: data messages go back as they came.
fn echo_server(config: Config) -> Server<Echoed> {
    Server::spawn(1, move |stream| {
        let mut received = Vec::new();
        let result = (|| {
            let mut connection = boardcast::accept(stream, &config)?;
            while let Some(message) = connection.recv()? {
                if message.is_data() {
                    connection.send(message.clone())?;
                }
                received.push(message);
            }
            Ok(())
        })();
        (received, result)
    })
}

/// Limits raised for the 1 MiB messages.
fn big_config() -> Config {
    Config::default()
        .max_message_size(2 << 20)
        .max_frame_size(2 << 20)
}

/// Closes a tungstenite client cleanly: its close, the echo, the end.
fn close(mut ws: tungstenite::WebSocket<TcpStream>) {
    ws.close(None).unwrap();
    for _ in 0..10 {
        match ws.read() {
            Ok(Tm::Close(frame)) => assert_eq!(frame, None),
            Ok(other) => panic!("after close: {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(e) => panic!("closing: {e}"),
        }
    }
    panic!("no end after close");
}

/// Checks the server's log of a clean run: the data, then the close.
fn assert_echoed(server: &Server<Echoed>, data: &[Message]) {
    let (received, result) = server.result();
    result.expect("server loop");
    let (last, rest) = received.split_last().expect("a close");
    assert_eq!(last, &Message::Close(None));
    assert_eq!(rest.len(), data.len());
    for (got, sent) in rest.iter().zip(data) {
        assert!(
            got == sent,
            "message of {} bytes differs",
            sent.as_bytes().len()
        );
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

#[test]
fn text_binary_and_empty_messages() {
    let server = echo_server(Config::default());
    let mut ws = support::connect(server.addr(), "/");
    let messages = [
        Tm::text("hello, board"),
        Tm::text("ünïcödé ✓ 🌡"),
        Tm::binary(vec![0u8, 1, 2, 0xFF]),
        Tm::text(""),
        Tm::binary(Vec::new()),
    ];
    for message in &messages {
        ws.send(message.clone()).unwrap();
        assert_eq!(&ws.read().unwrap(), message);
    }
    close(ws);
    assert_echoed(
        &server,
        &[
            Message::Text("hello, board".into()),
            Message::Text("ünïcödé ✓ 🌡".into()),
            Message::Binary(vec![0, 1, 2, 0xFF]),
            Message::Text(String::new()),
            Message::Binary(Vec::new()),
        ],
    );
}

#[test]
fn every_length_class_up_to_one_mebibyte() {
    // 7-bit lengths end at 125, 16-bit ones at 65535; then 64-bit.
    let sizes = [125, 126, 127, 65535, 65536, 1 << 20];
    let server = echo_server(big_config());
    let mut ws = support::connect(server.addr(), "/");
    let mut sent = Vec::new();
    for &len in &sizes {
        let data = pattern(len);
        ws.send(Tm::binary(data.clone())).unwrap();
        match ws.read().unwrap() {
            Tm::Binary(echo) => assert!(echo[..] == data[..], "binary of {len} bytes differs"),
            other => panic!("{len}: {other:?}"),
        }
        let text = "é".repeat(len / 2) + &"x".repeat(len % 2);
        ws.send(Tm::text(text.clone())).unwrap();
        match ws.read().unwrap() {
            Tm::Text(echo) => assert!(echo.as_str() == text, "text of {len} bytes differs"),
            other => panic!("{len}: {other:?}"),
        }
        sent.push(Message::Binary(data));
        sent.push(Message::Text(text));
    }
    close(ws);
    assert_echoed(&server, &sent);
}

#[test]
fn ping_is_answered_with_pong() {
    let server = echo_server(Config::default());
    let mut ws = support::connect(server.addr(), "/");
    ws.send(Tm::Ping(b"are you there".to_vec().into())).unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Tm::Pong(b"are you there".to_vec().into())
    );
    // A full-size control payload, and an empty one.
    ws.send(Tm::Ping(vec![7u8; 125].into())).unwrap();
    assert_eq!(ws.read().unwrap(), Tm::Pong(vec![7u8; 125].into()));
    ws.send(Tm::Ping(Vec::new().into())).unwrap();
    assert_eq!(ws.read().unwrap(), Tm::Pong(Vec::new().into()));
    close(ws);
    let (received, result) = server.result();
    result.unwrap();
    assert_eq!(
        received,
        [
            Message::Ping(b"are you there".to_vec()),
            Message::Ping(vec![7; 125]),
            Message::Ping(Vec::new()),
            Message::Close(None),
        ]
    );
}

#[test]
fn pong_from_the_client_is_received_and_not_answered() {
    let server = echo_server(Config::default());
    let mut ws = support::connect(server.addr(), "/");
    ws.send(Tm::Pong(b"heartbeat".to_vec().into())).unwrap();
    // The next frame the client sees is the echo, not a reply to the pong.
    ws.send(Tm::text("after")).unwrap();
    assert_eq!(ws.read().unwrap(), Tm::text("after"));
    close(ws);
    let (received, result) = server.result();
    result.unwrap();
    assert_eq!(received[0], Message::Pong(b"heartbeat".to_vec()));
}

#[test]
fn fragmented_messages_are_reassembled() {
    // Tungstenite's sync API sends whole messages: fragments go by hand.
    let server = echo_server(Config::default());
    let mut stream = raw_upgrade(server.addr(), "/");

    // Text in three fragments, a two-byte character split between the
    // first two, and a ping between the second and third: the pong comes
    // back before the message is complete.
    let text = "fragmé".as_bytes();
    let mut wire = client_frame(false, op::TEXT, &text[..6]);
    wire.extend(client_frame(false, op::CONTINUATION, &text[6..]));
    wire.extend(client_frame(true, op::PING, b"mid-message"));
    wire.extend(client_frame(true, op::CONTINUATION, b"nted"));
    // Binary with empty fragments, sent in pieces of one byte.
    wire.extend(client_frame(false, op::BINARY, &[]));
    wire.extend(client_frame(false, op::CONTINUATION, &[1, 2]));
    wire.extend(client_frame(false, op::CONTINUATION, &[]));
    wire.extend(client_frame(true, op::CONTINUATION, &[3]));
    use std::io::Write;
    let (first, second) = wire.split_at(wire.len() / 2);
    stream.write_all(first).unwrap();
    for byte in second {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
    }

    let pong = read_frame(&mut stream).expect("a frame");
    assert_eq!(
        (pong.opcode, &pong.payload[..]),
        (op::PONG, &b"mid-message"[..])
    );
    let echo = read_frame(&mut stream).expect("a frame");
    assert!(echo.fin);
    assert_eq!(
        (echo.opcode, &echo.payload[..]),
        (op::TEXT, "fragménted".as_bytes())
    );
    let echo = read_frame(&mut stream).expect("a frame");
    assert_eq!(
        (echo.opcode, &echo.payload[..]),
        (op::BINARY, &[1, 2, 3][..])
    );

    stream.write_all(&client_close(1000, "")).unwrap();
    assert_eq!(
        read_frame(&mut stream).expect("a frame").close_code(),
        Some(1000)
    );
    support::expect_eof(&mut stream);

    let (received, result) = server.result();
    result.unwrap();
    assert_eq!(
        received,
        [
            Message::Ping(b"mid-message".to_vec()),
            Message::Text("fragménted".into()),
            Message::Binary(vec![1, 2, 3]),
            Message::Close(Some(boardcast::CloseFrame {
                code: CloseCode::NORMAL,
                reason: String::new()
            })),
        ]
    );
}

#[test]
fn many_small_messages_in_one_write() {
    // Frames crossing the read buffer's edges: a small buffer, 1000 frames.
    let server = echo_server(Config::default().read_buffer_size(61));
    let mut stream = raw_upgrade(server.addr(), "/");
    let mut wire = Vec::new();
    for i in 0..1000 {
        wire.extend(client_frame(
            true,
            op::TEXT,
            format!("message {i}").as_bytes(),
        ));
    }
    use std::io::Write;
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        support::bounded("writer", move || {
            stream.write_all(&wire).map_err(|e| e.to_string())
        })
    };
    for i in 0..1000 {
        let echo = read_frame(&mut stream).expect("a frame");
        assert_eq!(echo.payload, format!("message {i}").as_bytes());
    }
    writer.join().unwrap();
    stream.write_all(&client_close(1000, "")).unwrap();
    assert_eq!(
        read_frame(&mut stream).expect("a frame").close_code(),
        Some(1000)
    );
    let (received, result) = server.result();
    result.unwrap();
    assert_eq!(received.len(), 1001);
}
