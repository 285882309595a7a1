//! The receive state machine on arbitrary byte streams split at arbitrary
//! points: the result does not depend on the split, a violation always
//! carries the RFC's close code, and no allocation exceeds what the limits
//! allow, whatever lengths the frames claim.
#![no_main]

use boardcast::protocol::{Inbound, Role};
use boardcast::{CloseCode, Config, Message, ProtocolError};
use libfuzzer_sys::fuzz_target;

#[path = "alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

const READ_BUFFER: usize = 64;
const MAX_FRAME: usize = 1024;
const MAX_MESSAGE: usize = 3000;

fn config() -> Config {
    Config::default()
        .read_buffer_size(READ_BUFFER)
        .max_frame_size(MAX_FRAME)
        .max_message_size(MAX_MESSAGE)
}

/// Feeds `stream` in pieces whose sizes cycle through `splits`.
fn run(role: Role, stream: &[u8], splits: &[u8], mut messages: Vec<Message>) -> (Vec<Message>, Option<ProtocolError>) {
    let mut protocol = Inbound::new(role, &config());
    let mut rest = stream;
    let mut sizes = splits.iter().cycle();
    while !rest.is_empty() {
        let buffer = protocol.buffer();
        assert!(!buffer.is_empty());
        let size = usize::from(*sizes.next().unwrap_or(&255)).clamp(1, buffer.len()).min(rest.len());
        buffer[..size].copy_from_slice(&rest[..size]);
        protocol.commit(size);
        rest = &rest[size..];
        loop {
            match protocol.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let (splits, stream) = rest.split_at(usize::from(n % 16).min(rest.len()));
    // The top bit picks the role: a server expects masked frames, a client
    // unmasked ones.
    let role = if n & 0x80 == 0 { Role::Server } else { Role::Client };
    let splits = if splits.is_empty() { &[255u8][..] } else { splits };

    // Room for every message up front, so only the protocol's own
    // allocations are measured.
    let results = Vec::with_capacity(stream.len());
    alloc::reset();
    let (messages, error) = run(role, stream, splits, results);
    // The read buffer, a message growing by doubling up to its limit, and the
    // String it becomes: never the length a header claims.
    assert!(alloc::largest() <= READ_BUFFER.max(2 * MAX_MESSAGE), "allocated {}", alloc::largest());

    if let Some(e) = error {
        let expected = match e {
            ProtocolError::InvalidUtf8 => CloseCode::INVALID_DATA,
            ProtocolError::FrameTooBig | ProtocolError::MessageTooBig => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL,
        };
        assert_eq!(e.close_code(), expected);
    }
    for message in &messages {
        match message {
            Message::Text(t) => assert!(t.len() <= MAX_MESSAGE),
            Message::Binary(b) => assert!(b.len() <= MAX_MESSAGE),
            Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
            Message::Close(Some(frame)) => assert!(frame.code.is_sendable()),
            Message::Close(None) => {}
        }
    }
    // Any split gives the same result as one byte at a time.
    assert_eq!(run(role, stream, &[1], Vec::new()), (messages, error));
});
