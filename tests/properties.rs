//! Properties of the sans-I/O core, checked on generated inputs: frame
//! headers and masking round-trip for every shape and length class; a
//! message cut into any fragments, with control frames between them, comes
//! out whole however the bytes are chunked; text with a bad byte anywhere
//! fails with 1007; and the accept key matches an independent computation
//! (tungstenite's, over the `sha1` and `data-encoding` crates).
//!
//! Case counts are kept small enough for the whole file to run in a few
//! seconds in a debug build; `PROPTEST_CASES` raises them for a longer run.

use boardcast::frame::{self, Frame, FrameHeader, OpCode, MAX_HEADER_LEN};
use boardcast::handshake::{AcceptKey, Request, Status};
use boardcast::protocol::{Inbound, Outbound, Reply, Role};
use boardcast::{CloseCode, CloseFrame, Config, Message, ProtocolError};
use proptest::prelude::*;

/// Cases per property, unless `PROPTEST_CASES` says otherwise.
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

/// A payload length from each encoding class, with its edges weighted in.
fn length() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=125u64,
        126..=0xFFFFu64,
        0x1_0000..=i64::MAX as u64,
        prop::sample::select(vec![0, 125, 126, 0xFFFF, 0x1_0000, i64::MAX as u64]),
    ]
}

fn header() -> impl Strategy<Value = FrameHeader> {
    (
        any::<bool>(),
        0..8u8,
        opcode(),
        any::<Option<[u8; 4]>>(),
        length(),
    )
        .prop_map(|(fin, rsv, opcode, mask, len)| FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            len,
        })
}

/// The header length RFC 6455 §5.2 prescribes: 2 bytes, the shortest
/// extended length, and the key.
fn expected_header_len(header: &FrameHeader) -> usize {
    let extended = match header.len {
        0..=125 => 0,
        126..=0xFFFF => 2,
        _ => 8,
    };
    2 + extended + if header.mask.is_some() { 4 } else { 0 }
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn header_encode_decode_round_trips(header in header()) {
        let mut out = [0; MAX_HEADER_LEN];
        let used = header.encode(&mut out);
        prop_assert_eq!(used, expected_header_len(&header));
        prop_assert_eq!(FrameHeader::decode(&out[..used]), Ok(Some((header, used))));
        // Bytes after the header are not the header's business.
        let mut longer = out[..used].to_vec();
        longer.extend_from_slice(&[0xFF; 20]);
        prop_assert_eq!(FrameHeader::decode(&longer), Ok(Some((header, used))));
        // Every strict prefix asks for more.
        for cut in 0..used {
            prop_assert_eq!(FrameHeader::decode(&out[..cut]), Ok(None), "cut at {}", cut);
        }
    }

    #[test]
    fn decoded_headers_re_encode_to_the_same_header(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
        // Whatever decodes (even a non-minimal length) re-encodes into
        // bytes that decode to the same header.
        if let Ok(Some((header, used))) = FrameHeader::decode(&bytes) {
            prop_assert!(used <= bytes.len() && used <= MAX_HEADER_LEN);
            let mut out = [0; MAX_HEADER_LEN];
            let n = header.encode(&mut out);
            prop_assert!(n <= used);
            prop_assert_eq!(FrameHeader::decode(&out[..n]), Ok(Some((header, n))));
        }
    }

    #[test]
    fn a_frame_is_the_shortest_fin_header_and_its_payload(
        opcode in opcode(),
        len in prop_oneof![0..=125usize, 126..=0xFFFFusize, 0x1_0000..=0x1_0100usize],
        mask in any::<Option<[u8; 4]>>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let wire = Frame::new(opcode, &payload, mask).to_vec();
        let (header, n) = FrameHeader::decode(&wire).unwrap().unwrap();
        prop_assert_eq!(header, FrameHeader { fin: true, rsv: 0, opcode, mask, len: len as u64 });
        prop_assert_eq!(n, expected_header_len(&header));
        let mut body = wire[n..].to_vec();
        if let Some(key) = mask {
            frame::apply_mask(&mut body, key, 0);
        }
        prop_assert_eq!(body, payload);
    }

    #[test]
    fn masking_is_an_involution_and_matches_the_rfc_formula(
        data in prop::collection::vec(any::<u8>(), 0..300),
        key in any::<[u8; 4]>(),
        offset in 0..16usize,
    ) {
        let mut masked = data.clone();
        let next = frame::apply_mask(&mut masked, key, offset);
        prop_assert_eq!(next, (offset + data.len()) % 4);
        // §5.3: transformed-octet-i = original-octet-i XOR masking-key-octet-(i MOD 4).
        let expected: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(offset + i) % 4])
            .collect();
        prop_assert_eq!(&masked, &expected);
        frame::apply_mask(&mut masked, key, offset);
        prop_assert_eq!(masked, data);
    }

    #[test]
    fn masking_in_pieces_equals_masking_at_once(
        data in prop::collection::vec(any::<u8>(), 0..300),
        key in any::<[u8; 4]>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut whole = data.clone();
        frame::apply_mask(&mut whole, key, 0);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = data.clone();
        let (mut at, mut offset) = (0, 0);
        for cut in cuts.into_iter().chain([data.len()]) {
            offset = frame::apply_mask(&mut pieces[at..cut], key, offset);
            at = cut;
        }
        prop_assert_eq!(pieces, whole);
    }
}

/// A masked client frame with this key.
fn client_frame(fin: bool, opcode: OpCode, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    Frame::with_header(fin, 0, opcode, payload, Some(key)).to_vec()
}

/// A data message as the application sees it.
#[derive(Debug, Clone)]
enum Data {
    Text(String),
    Binary(Vec<u8>),
}

impl Data {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Text(text) => text.as_bytes(),
            Data::Binary(data) => data,
        }
    }

    fn message(&self) -> Message {
        match self {
            Data::Text(text) => Message::Text(text.clone()),
            Data::Binary(data) => Message::Binary(data.clone()),
        }
    }
}

fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        8 => ".{0,200}".prop_map(Data::Text),
        6 => prop::collection::vec(any::<u8>(), 0..400).prop_map(Data::Binary),
        // Multi-byte characters only, so fragment cuts land inside them.
        3 => "[κόσμε日本語🎉𝄞ñ]{0,60}".prop_map(Data::Text),
        // Past the default read buffer (4 KiB), as large payloads arrive.
        1 => (4 << 10..12 << 10usize, any::<u8>())
            .prop_map(|(len, seed)| Data::Binary((0..len).map(|i| (i as u8) ^ seed).collect())),
    ]
}

/// A ping or pong sent between two fragments.
#[derive(Debug, Clone)]
struct Control {
    ping: bool,
    payload: Vec<u8>,
}

impl Control {
    fn message(&self) -> Message {
        match self.ping {
            true => Message::Ping(self.payload.clone()),
            false => Message::Pong(self.payload.clone()),
        }
    }
}

fn control() -> impl Strategy<Value = Control> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 0..=125))
        .prop_map(|(ping, payload)| Control { ping, payload })
}

/// A message cut into fragments at `cuts`, each fragment with its own key
/// and possibly a control frame before it.
#[derive(Debug, Clone)]
struct Fragmented {
    data: Data,
    cuts: Vec<prop::sample::Index>,
    keys: Vec<[u8; 4]>,
    controls: Vec<Option<Control>>,
}

fn fragmented() -> impl Strategy<Value = Fragmented> {
    (
        data(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        prop::collection::vec(any::<[u8; 4]>(), 9),
        prop::collection::vec(prop::option::weighted(0.3, control()), 9),
    )
        .prop_map(|(data, cuts, keys, controls)| Fragmented {
            data,
            cuts,
            keys,
            controls,
        })
}

impl Fragmented {
    /// The wire bytes, and what the protocol must return for them, in order.
    fn encode(&self, wire: &mut Vec<u8>, expected: &mut Vec<Message>) {
        let bytes = self.data.bytes();
        let mut cuts: Vec<usize> = self.cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        let first = match self.data {
            Data::Text(_) => OpCode::Text,
            Data::Binary(_) => OpCode::Binary,
        };
        let mut at = 0;
        for (i, &cut) in cuts.iter().enumerate() {
            if let Some(control) = &self.controls[i] {
                // A control frame may come before the first fragment too:
                // it is then simply the previous message's neighbour.
                let opcode = if control.ping {
                    OpCode::Ping
                } else {
                    OpCode::Pong
                };
                wire.extend(client_frame(true, opcode, &control.payload, self.keys[i]));
                expected.push(control.message());
            }
            let opcode = if i == 0 { first } else { OpCode::Continuation };
            let fin = i == cuts.len() - 1;
            wire.extend(client_frame(fin, opcode, &bytes[at..cut], self.keys[i]));
            at = cut;
        }
        expected.push(self.data.message());
    }
}

/// Feeds `wire` to a protocol in chunks of the given sizes (cycled) and
/// collects everything it returns, up to and including the first error.
fn feed(config: &Config, wire: &[u8], chunks: &[usize]) -> Vec<Result<Message, ProtocolError>> {
    let mut protocol = Inbound::new(Role::Server, config);
    let mut out = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().copied().cycle();
    // Every round moves at least one byte: bounded by the wire's length.
    while !rest.is_empty() {
        let chunk = sizes.next().unwrap_or(1).max(1);
        let buf = protocol.buffer();
        assert!(!buf.is_empty(), "no room to read into");
        let n = chunk.min(buf.len()).min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        protocol.commit(n);
        rest = &rest[n..];
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

fn read_buffer_size() -> impl Strategy<Value = usize> {
    prop_oneof![1..=32usize, Just(4096)]
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1..=16usize, 1..=5000usize], 1..6)
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn fragmented_messages_are_reassembled_however_the_bytes_arrive(
        messages in prop::collection::vec(fragmented(), 1..4),
        close in prop::option::of((prop::sample::select(vec![1000u16, 1001, 1011, 3000, 4999]), "[a-z ]{0,20}")),
        read_buffer_size in read_buffer_size(),
        chunks in chunks(),
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for message in &messages {
            message.encode(&mut wire, &mut expected);
        }
        if let Some((code, reason)) = &close {
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(reason.as_bytes());
            wire.extend(client_frame(true, OpCode::Close, &payload, [9, 8, 7, 6]));
            expected.push(Message::Close(Some(CloseFrame {
                code: CloseCode(*code),
                reason: reason.clone(),
            })));
            // Anything after the close frame is ignored (§5.5.1).
            wire.extend(client_frame(true, OpCode::Text, b"late", [1, 1, 1, 1]));
        }
        let config = Config::default().read_buffer_size(read_buffer_size);
        let got = feed(&config, &wire, &chunks);
        let expected: Vec<Result<Message, ProtocolError>> = expected.into_iter().map(Ok).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn a_bad_byte_anywhere_in_text_fails_with_1007(
        message in fragmented(),
        at in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec![0xFFu8, 0xFE, 0xC0, 0xC1, 0xF5]),
        read_buffer_size in read_buffer_size(),
        chunks in chunks(),
    ) {
        // Bytes that never occur in UTF-8, whatever surrounds them.
        let text = match &message.data {
            Data::Text(text) if !text.is_empty() => text.clone(),
            _ => "some text, long enough to cut".to_owned(),
        };
        let mut bytes = text.into_bytes();
        let at = at.index(bytes.len());
        bytes[at] = bad;
        // A binary message carries the bytes; flip its opcode to text.
        let message = Fragmented { data: Data::Binary(bytes), ..message };
        let mut wire = Vec::new();
        message.encode(&mut wire, &mut Vec::new());
        let first = wire_first_data_frame(&wire);
        wire[first] = (wire[first] & 0xF0) | OpCode::Text.as_u8();
        let config = Config::default().read_buffer_size(read_buffer_size);
        let got = feed(&config, &wire, &chunks);
        let last = got.last().cloned();
        // Answered with 1007: `invalid_utf8_is_answered_with_a_close_1007`.
        prop_assert_eq!(last, Some(Err(ProtocolError::InvalidUtf8)));
        // Only control frames came out before the failure.
        prop_assert!(got[..got.len() - 1]
            .iter()
            .all(|m| matches!(m, Ok(Message::Ping(_) | Message::Pong(_)))));
    }
}

#[test]
fn invalid_utf8_is_answered_with_a_close_1007() {
    // What the server writes for the violation the property above finds.
    let reply = Outbound::new(Role::Server)
        .reply(&Reply::to_violation(ProtocolError::InvalidUtf8))
        .expect("a close is owed for the violation")
        .to_vec();
    assert_eq!(reply[..2], [0x88, reply.len() as u8 - 2], "{reply:02x?}");
    assert_eq!(u16::from_be_bytes([reply[2], reply[3]]), 1007);
}

/// The offset of the first byte of the first data frame in `wire` (control
/// frames may come first).
fn wire_first_data_frame(wire: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let (header, used) = FrameHeader::decode(&wire[at..]).unwrap().unwrap();
        if !header.opcode.is_control() {
            return at;
        }
        at += used + header.len as usize;
    }
}

#[test]
fn a_fragment_with_a_64_bit_length_is_reassembled() {
    // Kept out of the generated cases: fed in small chunks, a payload this
    // large costs seconds in a debug build.
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
    let mut wire = client_frame(false, OpCode::Binary, &payload[..100], [1, 2, 3, 4]);
    wire.extend(client_frame(true, OpCode::Ping, b"between", [5, 6, 7, 8]));
    // 69,900 bytes: a 64-bit length.
    wire.extend(client_frame(
        true,
        OpCode::Continuation,
        &payload[100..],
        [9, 10, 11, 12],
    ));
    let expected = [
        Ok(Message::Ping(b"between".to_vec())),
        Ok(Message::Binary(payload.clone())),
    ];
    for chunks in [&[1 << 20][..], &[4096], &[1000, 3, 7000]] {
        assert_eq!(
            feed(&Config::default(), &wire, chunks),
            expected,
            "{chunks:?}"
        );
    }
}

#[test]
fn protocol_is_closed_after_the_failure() {
    // The property above stops at the error; the state must say so too.
    let mut protocol = Inbound::new(Role::Server, &Config::default());
    let wire = client_frame(true, OpCode::Text, b"a\xffb", [1, 2, 3, 4]);
    protocol.buffer()[..wire.len()].copy_from_slice(&wire);
    protocol.commit(wire.len());
    assert_eq!(protocol.next_message(), Err(ProtocolError::InvalidUtf8));
    assert!(protocol.is_closed());
}

/// An upgrade request carrying `key`.
fn upgrade_request(key: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: board\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

fn base64(bytes: &[u8]) -> String {
    // Standard alphabet with padding (RFC 4648 §4), written out here so the
    // key does not come from the library's own encoder.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_helper_matches_the_rfc_4648_vectors() {
    for (input, output) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), output);
    }
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn accept_key_matches_an_independent_computation(nonce in any::<[u8; 16]>()) {
        let key = base64(&nonce);
        let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let ours = AcceptKey::from_key(&key);
        prop_assert_eq!(ours.as_str(), expected.as_str());
        // And through the parser and validation, as a server computes it.
        let wire = upgrade_request(&key);
        let config = Config::default();
        let Ok(Status::Complete(request)) = Request::parse(&wire, &config) else {
            panic!("the request did not parse");
        };
        let accept = request.validate(&config).expect("a valid upgrade");
        prop_assert_eq!(accept.as_str(), expected.as_str());
        let mut response = Vec::new();
        boardcast::Accept::new().write_response(&accept, &mut response);
        let line = format!("\r\nSec-WebSocket-Accept: {expected}\r\n");
        prop_assert!(String::from_utf8(response).unwrap().contains(&line));
    }

    #[test]
    fn accept_key_of_any_string_matches(key in ".{0,64}") {
        let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let ours = AcceptKey::from_key(&key);
        prop_assert_eq!(ours.as_str(), expected.as_str());
    }
}
