//! permessage-deflate's memory after bursts, alone in its process (RSS is
//! process-wide): 100 connections each echo a compressed 16 KiB message,
//! all at once, four times over; after the first burst, the next three
//! leave little more resident (a few KiB per connection, not tens).
//!
//! Before the codecs were pooled with a limit, each message made and freed
//! a 42 KiB decompressor aligned to 64 bytes (and compressors when many
//! compressed at once), which glibc (before 2.38) hardly reuses: every
//! burst left about 22 KiB per connection more.
#![cfg(feature = "deflate")]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use boardcast::extension::deflate::{Deflater, RSV1};
use boardcast::extension::negotiate::negotiate;
use boardcast::extension::Encoder;
use boardcast::frame::{Frame, OpCode};
use boardcast::{Config, ContextTakeover};
use support::{read_head, rss_kib, server, tcp, upgrade_request, HttpResponse, Running, MASK};

const CONNECTIONS: usize = 100;
const BURSTS: usize = 4;
/// What the three bursts after the first may add, per connection, in all.
/// Measured: 10 to 14 KiB (plain messages: 1 to 3 KiB), levelling off
/// after a few more bursts; about 66 KiB before the codecs were pooled.
const GROWTH_KIB: usize = 30;

#[test]
fn bursts_of_compressed_messages_leave_no_memory_behind() {
    let config = Config::default().max_connections(CONNECTIONS + 10);
    let running = Running::start(server(config), support::echo);
    let offer = "permessage-deflate; client_max_window_bits";
    let mut streams: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| {
            let mut stream = tcp(running.addr);
            let request = upgrade_request("/", &format!("Sec-WebSocket-Extensions: {offer}\r\n"));
            stream.write_all(request.as_bytes()).unwrap();
            let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
            assert_eq!(response.status, 101, "{response:?}");
            assert!(response.header("Sec-WebSocket-Extensions").is_some());
            stream
        })
        .collect();

    // One compressed message, made once: the bursts cost the server alone.
    let params = negotiate([offer], &Config::default(), ContextTakeover::Off).unwrap();
    let deflater = Deflater::new(&params, &Config::default().deflate_threshold(0));
    let text: String = (0..)
        .map(|i| {
            format!(
                "{{\"topic\":\"sensors/cpu\",\"celsius\":4{}.2,\"seq\":{i}}}",
                i % 10
            )
        })
        .take_while({
            let mut len = 0;
            move |s: &String| {
                len += s.len();
                len <= 16 << 10
            }
        })
        .collect();
    let (rsv, wire) = deflater.encode(text.as_bytes()).unwrap();
    assert_eq!(rsv, RSV1);
    let frame = Frame::with_header(true, rsv, OpCode::Text, &wire, Some(MASK)).to_vec();

    let mut after = Vec::new();
    for _ in 0..BURSTS {
        for stream in &mut streams {
            stream.write_all(&frame).unwrap();
        }
        for stream in &mut streams {
            // The echo, compressed: RSV1 and a text frame.
            let (first, len) = read_frame_header(stream);
            assert_eq!(first, 0x80 | RSV1 << 4 | 0x1);
            let mut payload = vec![0; len];
            stream.read_exact(&mut payload).unwrap();
        }
        after.push(rss_kib());
    }
    let growth = after[BURSTS - 1].saturating_sub(after[0]);
    assert!(
        growth <= GROWTH_KIB * CONNECTIONS,
        "RSS after each burst {after:?} KiB: {growth} KiB more after the first, \
         over {GROWTH_KIB} KiB per connection"
    );
    let _ = std::io::stderr().write_all(
        format!("RSS after each burst of {CONNECTIONS} compressed echoes: {after:?} KiB\n")
            .as_bytes(),
    );
}

/// An unmasked server frame's first byte and payload length.
fn read_frame_header(stream: &mut TcpStream) -> (u8, usize) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0; 2];
            stream.read_exact(&mut b).unwrap();
            usize::from(u16::from_be_bytes(b))
        }
        127 => panic!("a frame over 64 KiB"),
        n => usize::from(n),
    };
    (head[0], len)
}
