//! Tests of `inbound.rs`.

use super::*;

/// A masked client frame, as a browser sends it; reserved opcodes are
/// patched into the first byte.
pub(crate) fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let op = OpCode::from_u8(opcode).unwrap_or(OpCode::Binary);
    let mut wire =
        frame::Frame::with_header(fin, 0, op, payload, Some([0x12, 0x34, 0x56, 0x78])).to_vec();
    wire[0] = (wire[0] & 0xF0) | opcode;
    wire
}

fn text(fin: bool, payload: &[u8]) -> Vec<u8> {
    client_frame(fin, 0x1, payload)
}

fn cont(fin: bool, payload: &[u8]) -> Vec<u8> {
    client_frame(fin, 0x0, payload)
}

fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    client_frame(true, 0x8, &payload)
}

/// Feeds `wire` in pieces of `chunk` bytes and collects everything the
/// protocol returns, stopping at the first error.
fn feed_in(config: &Config, wire: &[u8], chunk: usize) -> Vec<Result<Message, ProtocolError>> {
    let mut protocol = Inbound::new(Role::Server, config);
    let mut out = Vec::new();
    for piece in wire.chunks(chunk) {
        let buf = protocol.buffer();
        assert!(buf.len() >= piece.len().min(config.read_buffer_size));
        buf[..piece.len()].copy_from_slice(piece);
        protocol.commit(piece.len());
        loop {
            match protocol.next_message() {
                Ok(Some(message)) => out.push(Ok(message)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

fn feed(wire: &[u8]) -> Vec<Result<Message, ProtocolError>> {
    let whole = feed_in(&Config::default(), wire, 4096);
    // Decoding must not depend on how the bytes are split.
    assert_eq!(feed_in(&Config::default(), wire, 1), whole, "byte by byte");
    assert_eq!(feed_in(&Config::default(), wire, 7), whole, "7 at a time");
    whole
}

fn assert_fails_with(wire: &[u8], code: u16) -> ProtocolError {
    let results = feed(wire);
    match results.last() {
        Some(Err(e)) => {
            assert_eq!(e.close_code(), CloseCode(code), "{e}");
            *e
        }
        other => panic!("expected failure with {code}, got {other:?}"),
    }
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

#[test]
fn single_frame_messages() {
    let wire = concat(&[text(true, b"Hello"), client_frame(true, 0x2, &[0, 1, 2])]);
    assert_eq!(
        feed(&wire),
        [
            Ok(Message::Text("Hello".into())),
            Ok(Message::Binary(vec![0, 1, 2]))
        ]
    );
}

#[test]
fn empty_messages() {
    let wire = concat(&[text(true, b""), client_frame(true, 0x2, b"")]);
    assert_eq!(
        feed(&wire),
        [
            Ok(Message::Text(String::new())),
            Ok(Message::Binary(vec![]))
        ]
    );
}

#[test]
fn every_length_class() {
    for len in [125, 126, 0xFFFF, 0x1_0000, 200_000] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let wire = client_frame(true, 0x2, &payload);
        assert_eq!(
            feed_in(&Config::default(), &wire, 4096),
            [Ok(Message::Binary(payload))]
        );
    }
}

#[test]
fn fragments_with_control_frames_between() {
    let wire = concat(&[
        text(false, b"Hel"),
        client_frame(true, 0x9, b"ping"),
        cont(false, b""),
        client_frame(true, 0xA, b"pong"),
        cont(true, b"lo"),
    ]);
    assert_eq!(
        feed(&wire),
        [
            Ok(Message::Ping(b"ping".to_vec())),
            Ok(Message::Pong(b"pong".to_vec())),
            Ok(Message::Text("Hello".into())),
        ]
    );
}

#[test]
fn utf8_split_at_every_byte_position_across_fragments() {
    let text_bytes = "κόσμε · 𝄞 · ñ · 日本語 · 🎉".as_bytes();
    for cut in 0..=text_bytes.len() {
        let wire = concat(&[
            text(false, &text_bytes[..cut]),
            cont(true, &text_bytes[cut..]),
        ]);
        assert_eq!(
            feed(&wire),
            [Ok(Message::Text(
                String::from_utf8(text_bytes.to_vec()).unwrap()
            ))],
            "cut at {cut}"
        );
    }
    // And into three fragments.
    for a in 0..=text_bytes.len() {
        for b in a..=text_bytes.len() {
            let wire = concat(&[
                text(false, &text_bytes[..a]),
                cont(false, &text_bytes[a..b]),
                cont(true, &text_bytes[b..]),
            ]);
            assert_eq!(
                feed_in(&Config::default(), &wire, 4096),
                [Ok(Message::Text(
                    String::from_utf8(text_bytes.to_vec()).unwrap()
                ))],
                "cuts at {a}, {b}"
            );
        }
    }
}

#[test]
fn invalid_utf8_fails_before_the_message_ends() {
    // An invalid byte in the first fragment: the error comes before the
    // rest of the message (fin = 0, so no end in sight).
    let wire = text(false, b"hello \xff world");
    assert_eq!(feed(&wire), [Err(ProtocolError::InvalidUtf8)]);
    // Even before the frame's payload is complete.
    let frame = text(true, b"abc\xc0\xafdefghij");
    let prefix = &frame[..frame.len() - 5];
    assert_eq!(feed(prefix), [Err(ProtocolError::InvalidUtf8)]);
    // A truncated sequence inside a frame is not yet an error...
    assert_eq!(feed(&text(false, b"ab\xe2\x82")), []);
    // ...but it is at the end of the message.
    assert_eq!(
        feed(&text(true, b"ab\xe2\x82")),
        [Err(ProtocolError::InvalidUtf8)]
    );
    assert_fails_with(&text(true, b"\xed\xa0\x80"), 1007); // a surrogate
    assert_fails_with(&text(true, b"\xf4\x90\x80\x80"), 1007); // > U+10FFFF
}

#[test]
fn invalid_utf8_at_every_position() {
    let good = b"0123456789abcdef";
    for at in 0..good.len() {
        let mut payload = good.to_vec();
        payload[at] = 0xFF;
        let wire = concat(&[
            text(false, &payload[..at / 2]),
            cont(true, &payload[at / 2..]),
        ]);
        assert_eq!(feed(&wire), [Err(ProtocolError::InvalidUtf8)], "at {at}");
    }
}

#[test]
fn binary_is_not_utf8_checked() {
    let wire = client_frame(true, 0x2, b"\xff\xfe");
    assert_eq!(feed(&wire), [Ok(Message::Binary(vec![0xFF, 0xFE]))]);
}

#[test]
fn protocol_violations_close_with_1002() {
    let unmasked = [0x81, 0x02, b'h', b'i'];
    assert_eq!(
        assert_fails_with(&unmasked, 1002),
        ProtocolError::UnmaskedFrame
    );
    let mut rsv = text(true, b"x");
    rsv[0] |= 0x40;
    assert_eq!(assert_fails_with(&rsv, 1002), ProtocolError::ReservedBits);
    for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let frame = client_frame(true, op, b"");
        assert_eq!(
            assert_fails_with(&frame, 1002),
            ProtocolError::ReservedOpCode(op)
        );
    }
    let fragmented_ping = client_frame(false, 0x9, b"x");
    assert_eq!(
        assert_fails_with(&fragmented_ping, 1002),
        ProtocolError::FragmentedControl
    );
    let long_ping = client_frame(true, 0x9, &[0; 126]);
    assert_eq!(
        assert_fails_with(&long_ping, 1002),
        ProtocolError::ControlTooLong
    );
    let lone_continuation = cont(true, b"x");
    assert_eq!(
        assert_fails_with(&lone_continuation, 1002),
        ProtocolError::UnexpectedContinuation
    );
    let interleaved = concat(&[text(false, b"a"), text(true, b"b")]);
    assert_eq!(
        assert_fails_with(&interleaved, 1002),
        ProtocolError::ExpectedContinuation
    );
    let huge = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(assert_fails_with(&huge, 1002), ProtocolError::InvalidLength);
}

#[test]
fn close_frames() {
    assert_eq!(
        feed(&close(1000, b"bye")),
        [Ok(Message::Close(Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: "bye".into()
        })))]
    );
    assert_eq!(
        feed(&client_frame(true, 0x8, b"")),
        [Ok(Message::Close(None))]
    );
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        assert_eq!(
            feed(&close(code, b"")),
            [Ok(Message::Close(Some(CloseFrame {
                code: CloseCode(code),
                reason: String::new()
            })))],
            "{code}"
        );
    }
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000] {
        assert_eq!(
            assert_fails_with(&close(code, b""), 1002),
            ProtocolError::InvalidCloseCode(code)
        );
    }
    let one_byte = client_frame(true, 0x8, &[3]);
    assert_eq!(
        assert_fails_with(&one_byte, 1002),
        ProtocolError::InvalidClosePayload
    );
    assert_eq!(
        assert_fails_with(&close(1000, b"\xce\xba\xff"), 1007),
        ProtocolError::InvalidUtf8
    );
}

#[test]
fn nothing_after_close() {
    let wire = concat(&[
        close(1000, b""),
        text(true, b"late"),
        vec![0xFF, 0xFF, 0xFF],
    ]);
    assert_eq!(
        feed(&wire),
        [Ok(Message::Close(Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: String::new()
        })))]
    );
}

#[test]
fn nothing_after_an_error() {
    let mut protocol = Inbound::new(Role::Server, &Config::default());
    let wire = concat(&[cont(true, b"x"), text(true, b"fine")]);
    protocol.buffer()[..wire.len()].copy_from_slice(&wire);
    protocol.commit(wire.len());
    assert_eq!(
        protocol.next_message(),
        Err(ProtocolError::UnexpectedContinuation)
    );
    assert!(protocol.is_closed());
    assert_eq!(protocol.next_message(), Ok(None));
}

#[test]
fn frame_limit_closes_with_1009_from_the_header() {
    let config = Config::default().max_frame_size(100).max_message_size(1000);
    let header_only = &client_frame(true, 0x2, &[0; 101])[..8];
    assert_eq!(
        feed_in(&config, header_only, 4096),
        [Err(ProtocolError::FrameTooBig)]
    );
    let ok = client_frame(true, 0x2, &[0; 100]);
    assert_eq!(
        feed_in(&config, &ok, 4096),
        [Ok(Message::Binary(vec![0; 100]))]
    );
    // A header claiming 2^63 - 1 bytes: refused without allocating it.
    let claim = [
        0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
    ];
    assert_eq!(assert_fails_with(&claim, 1009), ProtocolError::FrameTooBig);
}

#[test]
fn message_limit_counts_all_fragments() {
    let config = Config::default().max_frame_size(100).max_message_size(150);
    let wire = concat(&[
        client_frame(false, 0x2, &[1; 100]),
        cont(false, &[2; 50]),
        cont(true, &[3; 1]),
    ]);
    assert_eq!(
        feed_in(&config, &wire, 4096),
        [Err(ProtocolError::MessageTooBig)]
    );
    let wire = concat(&[client_frame(false, 0x2, &[1; 100]), cont(true, &[2; 50])]);
    assert_eq!(
        feed_in(&config, &wire, 3),
        [Ok(Message::Binary(
            [[1; 100].as_slice(), &[2; 50]].concat()
        ))]
    );
}

#[test]
fn many_tiny_fragments() {
    let mut frames = vec![text(false, b"")];
    for _ in 0..1000 {
        frames.push(cont(false, b"a"));
    }
    frames.push(cont(true, b""));
    assert_eq!(
        feed_in(&Config::default(), &concat(&frames), 4096),
        [Ok(Message::Text("a".repeat(1000)))]
    );
}

#[test]
fn large_payloads_are_read_straight_into_the_message() {
    let config = Config::default()
        .read_buffer_size(1024)
        .max_frame_size(1 << 20)
        .max_message_size(1 << 20);
    let payload: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    let wire = client_frame(true, 0x2, &payload);
    let mut protocol = Inbound::new(Role::Server, &config);
    let mut rest = &wire[..];
    let mut offered = Vec::new();
    let mut received = None;
    while !rest.is_empty() {
        let held = protocol.message.as_ref().map_or(0, |m| m.data.len());
        let offer = protocol.buffer().len();
        offered.push(offer);
        // The message's storage grows with what arrived: an offer is at
        // most what the message already holds, or a read buffer.
        assert!(offer <= held.max(1024), "{offer} after {held}");
        assert!(protocol.partial_bytes() <= 2 * held + 1024);
        let buf = protocol.buffer();
        // A sender that fills every read it is offered.
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        protocol.commit(n);
        rest = &rest[n..];
        if let Some(message) = protocol.next_message().unwrap() {
            received = Some(message);
        }
    }
    assert_eq!(received, Some(Message::Binary(payload)));
    // The read buffer once, then the message, doubling: 1024 bytes, then
    // what the message holds each time.
    assert_eq!(offered[..4], [1024, 1024, 2034, 4068], "{offered:?}");
    // Doubling from 1 KiB to 300 KB: about log2(300) reads, not one per KiB.
    assert!(offered.len() <= 11, "{offered:?}");
    assert_eq!(protocol.partial_bytes(), 0);
}

#[test]
fn a_64_kib_message_takes_five_reads_and_no_tail_through_the_buffer() {
    let payload = vec![5; 64 << 10];
    let wire = client_frame(true, 0x2, &payload);
    let mut protocol = Inbound::new(Role::Server, &Config::default());
    let mut rest = &wire[..];
    let mut offered = Vec::new();
    let mut received = None;
    while !rest.is_empty() {
        let buf = protocol.buffer();
        offered.push(buf.len());
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        protocol.commit(n);
        rest = &rest[n..];
        received = protocol.next_message().unwrap().or(received);
    }
    assert_eq!(received, Some(Message::Binary(payload)));
    // The read buffer (header and 4,082 bytes), then doubling with what
    // arrived; the last offer takes the 112-byte tail with it, so the
    // storage is not grown (copied) once more for it.
    assert_eq!(offered, [4096, 4096, 8178, 16356, 32824]);
}

#[test]
fn a_header_alone_commits_no_more_than_a_read_buffer() {
    // A frame of the largest size announced, and nothing of its payload:
    // the message's storage is one read buffer, not the frame's size.
    let config = Config::default();
    let header = &client_frame(true, 0x2, &[0; 256 << 10])[..14];
    let mut protocol = Inbound::new(Role::Server, &config);
    protocol.buffer()[..header.len()].copy_from_slice(header);
    protocol.commit(header.len());
    assert_eq!(protocol.next_message(), Ok(None));
    assert_eq!(protocol.buffer().len(), config.read_buffer_size);
    assert_eq!(protocol.partial_bytes(), config.read_buffer_size);
    // Four bytes arrive: the next offer is still a read buffer, and the
    // storage at most twice what arrived plus a read buffer.
    protocol.commit(4);
    assert_eq!(protocol.next_message(), Ok(None));
    assert_eq!(protocol.buffer().len(), config.read_buffer_size);
    assert_eq!(protocol.partial_bytes(), 2 * 4 + config.read_buffer_size);
}

#[test]
fn a_trickled_payload_costs_little_zeroing() {
    let config = Config::default().read_buffer_size(1024);
    let wire = client_frame(true, 0x2, &[7; 100_000]);
    let mut protocol = Inbound::new(Role::Server, &config);
    let mut largest_late_offer = 0;
    let mut received = Vec::new();
    for (i, byte) in wire.iter().enumerate() {
        let buf = protocol.buffer();
        if i > 100 {
            largest_late_offer = largest_late_offer.max(buf.len());
        }
        buf[0] = *byte;
        protocol.commit(1);
        received.extend(protocol.next_message().unwrap());
    }
    assert_eq!(received, [Message::Binary(vec![7; 100_000])]);
    // After the first direct read comes back short, each read is offered
    // (and zeroes) about a read buffer, not the rest of the payload.
    assert!(largest_late_offer <= 1024, "{largest_late_offer}");
}

#[test]
fn received_bytes_larger_than_the_buffer() {
    let config = Config::default().read_buffer_size(8);
    let wire = concat(&[text(true, b"first"), text(true, b"second message")]);
    let mut protocol = Inbound::with_received(Role::Server, &config, &wire);
    assert_eq!(
        protocol.next_message(),
        Ok(Some(Message::Text("first".into())))
    );
    assert_eq!(
        protocol.next_message(),
        Ok(Some(Message::Text("second message".into())))
    );
    assert_eq!(protocol.next_message(), Ok(None));
    assert!(!protocol.buffer().is_empty());
}

#[test]
fn a_client_refuses_masked_frames_and_reads_unmasked_ones() {
    let mut inbound = Inbound::new(Role::Client, &Config::default());
    let wire = frame::Frame::new(OpCode::Text, b"hi", None).to_vec();
    inbound.buffer()[..wire.len()].copy_from_slice(&wire);
    inbound.commit(wire.len());
    assert_eq!(inbound.next_message(), Ok(Some(Message::Text("hi".into()))));

    let mut inbound = Inbound::new(Role::Client, &Config::default());
    let wire = text(true, b"hi");
    inbound.buffer()[..wire.len()].copy_from_slice(&wire);
    inbound.commit(wire.len());
    assert_eq!(inbound.next_message(), Err(ProtocolError::MaskedFrame));
    assert_eq!(ProtocolError::MaskedFrame.close_code(), CloseCode::PROTOCOL);
}

/// Marks messages with RSV1 and reverses their payload: enough to show
/// where a per-message extension plugs in.
#[derive(Debug)]
struct Reverse;

impl Extension for Reverse {
    fn rsv(&self) -> u8 {
        0b100
    }

    fn decode(
        &mut self,
        rsv: u8,
        mut payload: Vec<u8>,
        max_size: usize,
    ) -> Result<Vec<u8>, ProtocolError> {
        assert_eq!(rsv, 0b100);
        if payload.len() > max_size {
            return Err(ProtocolError::MessageTooBig);
        }
        payload.reverse();
        Ok(payload)
    }
}

fn with_rsv1(mut wire: Vec<u8>) -> Vec<u8> {
    wire[0] |= 0x40;
    wire
}

#[test]
fn an_extension_restores_the_messages_it_marked() {
    // "abé" reversed: not UTF-8 until the extension restores it.
    let wire = concat(&[
        with_rsv1(text(false, &[0xA9, 0xC3, b'b'])),
        cont(true, b"a"),
        text(true, b"plain"),
    ]);
    let mut inbound = Inbound::new(Role::Server, &Config::default());
    inbound.set_extension(Box::new(Reverse));
    inbound.buffer()[..wire.len()].copy_from_slice(&wire);
    inbound.commit(wire.len());
    assert_eq!(
        inbound.next_message(),
        Ok(Some(Message::Text("abé".into())))
    );
    assert_eq!(
        inbound.next_message(),
        Ok(Some(Message::Text("plain".into())))
    );

    // Its bit on a continuation or a control frame is still reserved.
    for wire in [
        concat(&[text(false, b"a"), with_rsv1(cont(true, b"b"))]),
        with_rsv1(client_frame(true, 0x9, b"")),
    ] {
        let mut inbound = Inbound::new(Role::Server, &Config::default());
        inbound.set_extension(Box::new(Reverse));
        inbound.buffer()[..wire.len()].copy_from_slice(&wire);
        inbound.commit(wire.len());
        assert_eq!(inbound.next_message(), Err(ProtocolError::ReservedBits));
    }
}

/// A budget shared by several halves, as the server's atomic counter is.
#[derive(Debug, Clone)]
struct Shared(std::sync::Arc<std::sync::Mutex<(usize, usize)>>);

impl Shared {
    fn new(limit: usize) -> Shared {
        Shared(std::sync::Arc::new(std::sync::Mutex::new((0, limit))))
    }

    fn used(&self) -> usize {
        self.0.lock().unwrap().0
    }
}

impl MessageBudget for Shared {
    fn take(&self, bytes: usize) -> bool {
        let mut state = self.0.lock().unwrap();
        if state.0 + bytes > state.1 {
            return false;
        }
        state.0 += bytes;
        true
    }

    fn give(&self, bytes: usize) {
        let mut state = self.0.lock().unwrap();
        state.0 = state
            .0
            .checked_sub(bytes)
            .expect("gave back more than taken");
    }
}

/// Feeds `wire` to `inbound` in reads of what it offers, until it is used
/// up or a message or error comes out.
fn feed_offered(inbound: &mut Inbound, mut wire: &[u8]) -> Result<Option<Message>, ProtocolError> {
    loop {
        match inbound.next_message() {
            Ok(None) if !wire.is_empty() => {}
            other => return other,
        }
        let buf = inbound.buffer();
        let n = buf.len().min(wire.len());
        buf[..n].copy_from_slice(&wire[..n]);
        inbound.commit(n);
        wire = &wire[n..];
    }
}

#[test]
fn messages_in_progress_take_from_a_shared_budget() {
    let budget = Shared::new(128 << 10);
    let mut a = Inbound::new(Role::Server, &Config::default());
    let mut b = Inbound::new(Role::Server, &Config::default());
    a.set_budget(Box::new(budget.clone()));
    b.set_budget(Box::new(budget.clone()));
    // A holds 50 KB of a 200 KB message, and room for its next read (as
    // much again): what its storage holds is taken.
    let big = client_frame(true, 0x2, &[1; 200_000]);
    assert_eq!(feed_offered(&mut a, &big[..50_000]), Ok(None));
    // Less a read buffer's worth: each connection's own.
    assert_eq!(budget.used(), a.partial_bytes() - 4096);
    assert!(
        a.partial_bytes() >= 2 * (50_000 - 14),
        "{}",
        a.partial_bytes()
    );
    assert!(
        a.partial_bytes() <= 2 * 50_000 + 4096,
        "{}",
        a.partial_bytes()
    );
    // B's 50 KB message does not fit beside it: B is refused with 1013,
    // and gives back what it took.
    let refused = feed_offered(&mut b, &client_frame(true, 0x2, &[2; 50_000]));
    assert_eq!(refused, Err(ProtocolError::Overloaded));
    assert_eq!(
        ProtocolError::Overloaded.close_code(),
        CloseCode::TRY_AGAIN_LATER
    );
    assert!(b.is_closed());
    assert_eq!(budget.used(), a.partial_bytes() - 4096);
    // Small messages take nothing once complete, and fit in what is left.
    let mut c = Inbound::new(Role::Server, &Config::default());
    c.set_budget(Box::new(budget.clone()));
    assert_eq!(
        feed_offered(&mut c, &text(true, b"small")),
        Ok(Some(Message::Text("small".into())))
    );
    assert_eq!(budget.used(), a.partial_bytes() - 4096);
    // Even with the budget spent, a message of up to a read buffer passes.
    let spent = Shared::new(0);
    let mut e = Inbound::new(Role::Server, &Config::default());
    e.set_budget(Box::new(spent.clone()));
    let command = client_frame(true, 0x2, &[4; 4096]);
    assert_eq!(
        feed_offered(&mut e, &command),
        Ok(Some(Message::Binary(vec![4; 4096])))
    );
    let larger = client_frame(true, 0x2, &[4; 4097]);
    assert_eq!(
        feed_offered(&mut e, &larger),
        Err(ProtocolError::Overloaded)
    );
    // A dropped half (a connection gone mid-message) gives back its share.
    drop(a);
    assert_eq!(budget.used(), 0);
    // A completed message gives back its share too.
    let mut d = Inbound::new(Role::Server, &Config::default());
    d.set_budget(Box::new(budget.clone()));
    let wire = client_frame(true, 0x2, &[3; 90_000]);
    assert_eq!(
        feed_offered(&mut d, &wire),
        Ok(Some(Message::Binary(vec![3; 90_000])))
    );
    assert_eq!(budget.used(), 0);
}
