//! permessage-deflate (RFC 7692) over a socket, with the `deflate` feature:
//! the response header, compressed messages both ways through `accept` and
//! the `Server`, and the limits on what a compressed message may expand to.
#![cfg(feature = "deflate")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use boardcast::extension::deflate::{Deflater, Inflater, RSV1};
use boardcast::extension::negotiate::{negotiate, Params};
use boardcast::extension::{Encoder, Extension};
use boardcast::frame::{Frame, OpCode};
use boardcast::{Config, ContextTakeover, Message};
use support::{
    client_frame, op, read_head, server, tcp, upgrade_request, HttpResponse, Running, Server, MASK,
};

/// What a browser offers.
const CHROMIUM_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// An echo server for one connection over `accept`.
fn echo_server(config: Config) -> Server<Vec<Message>> {
    Server::spawn(1, move |stream| {
        let mut received = Vec::new();
        if let Ok(mut connection) = boardcast::accept(stream, &config) {
            while let Ok(Some(message)) = connection.recv() {
                if message.is_data() && connection.send(message.clone()).is_err() {
                    break;
                }
                received.push(message);
            }
        }
        received
    })
}

/// Upgrades with `offer` (no header when `None`); returns the stream and
/// the response's `Sec-WebSocket-Extensions`.
fn upgrade(addr: SocketAddr, offer: Option<&str>) -> (TcpStream, Option<String>) {
    let mut stream = tcp(addr);
    let extra = offer.map_or(String::new(), |o| {
        format!("Sec-WebSocket-Extensions: {o}\r\n")
    });
    stream
        .write_all(upgrade_request("/", &extra).as_bytes())
        .unwrap();
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    let agreed = response
        .header("Sec-WebSocket-Extensions")
        .map(str::to_owned);
    (stream, agreed)
}

/// The client's side of `agreed`: what it compresses with, and what it
/// restores the server's messages with. (The crate's codec serves both
/// ends here: the windows agreed are the same both ways.)
fn client_codec(agreed: &str) -> (Deflater, Inflater) {
    // The response read as an offer: a client compressor without context
    // takeover, and a decompressor that keeps it, are right whatever was
    // agreed.
    let params: Params = negotiate(
        [agreed],
        &Config::default().deflate(true).deflate_threshold(0),
        ContextTakeover::Both,
    )
    .expect("the response parses as an offer");
    let config = Config::default().deflate_threshold(0);
    (Deflater::new(&params, &config), Inflater::new(&params))
}

/// A masked client frame with RSV bits.
fn frame(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    Frame::with_header(fin, rsv, opcode, payload, Some(MASK)).to_vec()
}

/// Reads one unmasked server frame: its first byte and its payload.
fn read_server_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).expect("a frame header");
    assert_eq!(head[1] & 0x80, 0, "a masked server frame");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0; 2];
            stream.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0; 8];
            stream.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    assert!(len < 16 << 20, "a frame of {len} bytes");
    let mut payload = vec![0; len as usize];
    stream.read_exact(&mut payload).expect("the payload");
    (head[0], payload)
}

/// JSON readings as the dashboard sends them, `n` bytes.
fn readings(n: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.len() < n {
        out += &format!(
            "{{\"topic\":\"cpu\",\"celsius\":{}.{}}}",
            40 + i % 9,
            i % 10
        );
        i += 1;
    }
    out.truncate(n);
    out
}

#[test]
fn accept_answers_a_browsers_offer() {
    let server = echo_server(Config::default());
    let (_stream, agreed) = upgrade(server.addr(), Some(CHROMIUM_OFFER));
    assert_eq!(
        agreed.as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=12"
        )
    );
}

#[test]
fn no_offer_or_none_honoured_means_no_header() {
    for offer in [
        None,
        Some("x-webkit-deflate-frame"),
        Some("permessage-deflate; server_max_window_bits=16"),
    ] {
        let server = echo_server(Config::default());
        let (_stream, agreed) = upgrade(server.addr(), offer);
        assert_eq!(agreed, None, "{offer:?}");
    }
    let server = echo_server(Config::default().deflate(false));
    assert_eq!(upgrade(server.addr(), Some(CHROMIUM_OFFER)).1, None);
}

#[test]
fn compressed_messages_echo_compressed() {
    let server = echo_server(Config::default().deflate_takeover(ContextTakeover::Both));
    let (mut stream, agreed) = upgrade(server.addr(), Some("permessage-deflate"));
    let agreed = agreed.expect("agreed");
    assert_eq!(agreed, "permessage-deflate; server_max_window_bits=12");
    let (deflater, mut inflater) = client_codec(&agreed);
    let text = readings(1000);
    for _ in 0..3 {
        let (rsv, wire) = deflater.encode(text.as_bytes()).unwrap();
        stream
            .write_all(&frame(true, rsv, OpCode::Text, &wire))
            .unwrap();
        let (first, payload) = read_server_frame(&mut stream);
        assert_eq!(first, 0x80 | RSV1 << 4 | 0x1, "FIN, RSV1, text");
        assert!(payload.len() < 200, "{} bytes", payload.len());
        let restored = inflater.decode(RSV1, payload, 1 << 20).unwrap();
        assert_eq!(restored, text.as_bytes());
    }
    // Under the threshold (64 bytes), the echo goes as it is.
    stream
        .write_all(&client_frame(true, op::TEXT, b"short"))
        .unwrap();
    assert_eq!(read_server_frame(&mut stream), (0x81, b"short".to_vec()));
}

#[test]
fn a_fragmented_compressed_message_has_rsv1_on_its_first_frame_only() {
    let server = echo_server(Config::default());
    let (mut stream, agreed) = upgrade(server.addr(), Some("permessage-deflate"));
    let (deflater, _) = client_codec(&agreed.unwrap());
    let text = readings(500);
    let (rsv, wire) = deflater.encode(text.as_bytes()).unwrap();
    let (a, b) = wire.split_at(wire.len() / 2);
    stream
        .write_all(&frame(false, rsv, OpCode::Text, a))
        .unwrap();
    stream
        .write_all(&client_frame(true, op::PING, b"between"))
        .unwrap();
    stream
        .write_all(&frame(true, 0, OpCode::Continuation, b))
        .unwrap();
    assert_eq!(read_server_frame(&mut stream), (0x8A, b"between".to_vec()));
    let (first, _) = read_server_frame(&mut stream);
    assert_eq!(first & 0x7f, RSV1 << 4 | 0x1);
    // RSV1 on a continuation frame fails the connection (§6.1).
    let (a, b) = wire.split_at(1);
    stream
        .write_all(&frame(false, rsv, OpCode::Text, a))
        .unwrap();
    stream
        .write_all(&frame(true, RSV1, OpCode::Continuation, b))
        .unwrap();
    let (first, payload) = read_server_frame(&mut stream);
    assert_eq!((first, &payload[..2]), (0x88, &1002u16.to_be_bytes()[..]));
    drop(stream);
    let received = server.result();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[1], Message::text(text));
}

#[test]
fn a_compression_bomb_gets_1009() {
    let server = echo_server(Config::default());
    let (mut stream, agreed) = upgrade(server.addr(), Some("permessage-deflate"));
    let (deflater, _) = client_codec(&agreed.unwrap());
    // 16 MiB of zeros compress to about 16 KiB: well within the frame
    // and message limits (256 KiB) as it arrives, 64 times them restored.
    let (rsv, bomb) = deflater.encode(&vec![0; 16 << 20]).unwrap();
    assert!(bomb.len() < 32 << 10, "{}", bomb.len());
    stream
        .write_all(&frame(true, rsv, OpCode::Binary, &bomb))
        .unwrap();
    let (first, payload) = read_server_frame(&mut stream);
    assert_eq!((first, &payload[..2]), (0x88, &1009u16.to_be_bytes()[..]));
    drop(stream);
    assert!(server.result().is_empty());
}

#[test]
fn the_server_compresses_its_clients_sends_without_its_own_context() {
    // Both asked, but a Server keeps no context of its own.
    let config = Config::default().deflate_takeover(ContextTakeover::Both);
    let running = Running::start(server(config), support::echo);
    let (mut stream, agreed) = upgrade(running.addr, Some(CHROMIUM_OFFER));
    let agreed = agreed.expect("agreed");
    assert_eq!(
        agreed,
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; \
         client_max_window_bits=12"
    );
    let (deflater, mut inflater) = client_codec(&agreed);
    let text = readings(2000);
    for _ in 0..2 {
        let (rsv, wire) = deflater.encode(text.as_bytes()).unwrap();
        stream
            .write_all(&frame(true, rsv, OpCode::Text, &wire))
            .unwrap();
        let (first, payload) = loop {
            let (first, payload) = read_server_frame(&mut stream);
            if first & 0x0f != 0x9 {
                break (first, payload);
            }
        };
        assert_eq!(
            first,
            0x80 | RSV1 << 4 | 0x1,
            "{:?}",
            String::from_utf8_lossy(&payload)
        );
        // The same size each time: no context carried over.
        assert!(payload.len() < 400, "{} bytes", payload.len());
        assert_eq!(
            inflater.decode(RSV1, payload, 1 << 20).unwrap(),
            text.as_bytes()
        );
    }
}

#[test]
fn a_publish_is_compressed_once_for_every_deflate_subscriber() {
    let running = Running::start(server(Config::default()), |mut client| {
        client.subscribe("sensors");
        while let Ok(Some(_)) = client.recv() {}
    });
    // Three clients with deflate (one limits the server's window to 10
    // bits: the 512-byte window form), one without.
    let offers = [
        Some(CHROMIUM_OFFER),
        Some("permessage-deflate"),
        Some("permessage-deflate; server_max_window_bits=10"),
        None,
    ];
    let mut clients: Vec<_> = offers
        .iter()
        .map(|offer| upgrade(running.addr, *offer))
        .collect();
    support::wait_until(support::TIMEOUT, "four subscribers", || {
        running.hub.subscribers("sensors") == 4
    });
    let before = running.stats().deflated;
    let reading = readings(600);
    for _ in 0..3 {
        running.hub.publish_text("sensors", &reading);
    }
    // Once per message and window: two windows, three messages.
    assert_eq!(running.stats().deflated - before, 6);
    let mut frames = Vec::new();
    for (stream, agreed) in &mut clients {
        let mut got = Vec::new();
        for _ in 0..3 {
            let (first, payload) = read_server_frame(stream);
            let restored = match agreed {
                Some(agreed) => {
                    assert_eq!(first, 0x80 | RSV1 << 4 | 0x1);
                    let (_, mut inflater) = client_codec(agreed);
                    inflater.decode(RSV1, payload.clone(), 1 << 20).unwrap()
                }
                None => {
                    assert_eq!(first, 0x81);
                    payload.clone()
                }
            };
            assert_eq!(restored, reading.as_bytes());
            got.push(payload);
        }
        frames.push(got);
    }
    // The first two share the 4 KiB window's form: the same bytes.
    assert_eq!(frames[0], frames[1]);
    assert!(frames[0][0].len() < 150, "{}", frames[0][0].len());
    assert_eq!(frames[3][0].len(), 600);
}
