//! The frame codec of RFC 6455 §5: opcodes, close codes, frame headers and
//! masking, as pure functions over byte slices.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```
//!
//! ```
//! use boardcast::frame::{FrameHeader, OpCode};
//!
//! // A masked client frame: FIN + text, MASK + length 5, the key, "Hello".
//! let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let (header, used) = FrameHeader::decode(&wire).unwrap().unwrap();
//! assert_eq!((header.opcode, header.len, used), (OpCode::Text, 5, 6));
//!
//! let mut payload = wire[used..].to_vec();
//! boardcast::frame::apply_mask(&mut payload, header.mask.unwrap(), 0);
//! assert_eq!(payload, b"Hello");
//! ```

use std::borrow::Cow;

use crate::error::ProtocolError;

/// The largest frame header: 2 bytes, a 64-bit length and a masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a ping, pong or close frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// What a frame carries (RFC 6455 §5.2). Reserved opcodes are not
/// representable: decoding them fails with
/// [`ProtocolError::ReservedOpCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: the next fragment of a text or binary message.
    Continuation,
    /// 0x1: the first (or only) frame of a UTF-8 text message.
    Text,
    /// 0x2: the first (or only) frame of a binary message.
    Binary,
    /// 0x8: begins or answers the closing handshake.
    Close,
    /// 0x9: asks the peer for a pong.
    Ping,
    /// 0xA: answers a ping, or serves as a unidirectional heartbeat.
    Pong,
}

impl OpCode {
    /// The opcode for a 4-bit value, or `None` if it is reserved.
    pub fn from_u8(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Whether this is a control opcode (close, ping, pong).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// A decoded frame header: everything before the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Whether this is the final fragment of its message.
    pub fin: bool,
    /// The three RSV bits, in the low bits (RSV1 = 0b100).
    pub rsv: u8,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key; client frames always have one, server frames never.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold the whole header (more
    /// bytes are needed: that is not an error), or the header and the number
    /// of bytes it took.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::ReservedOpCode`] and [`ProtocolError::InvalidLength`]
    /// (a 64-bit length with its top bit set), as soon as the bytes that
    /// carry them have arrived. Other rules (masking, RSV, control frame
    /// limits) depend on the connection and are checked by the protocol.
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let opcode =
            OpCode::from_u8(first & 0x0F).ok_or(ProtocolError::ReservedOpCode(first & 0x0F))?;
        let Some(&second) = buf.get(1) else {
            return Ok(None);
        };
        let masked = second & 0x80 != 0;
        let (len, mut used) = match second & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                    if len >> 63 != 0 {
                        return Err(ProtocolError::InvalidLength);
                    }
                    (len, 10)
                }
                None => {
                    // Fail on the top bit as soon as its byte is here.
                    if buf.get(2).is_some_and(|b| b & 0x80 != 0) {
                        return Err(ProtocolError::InvalidLength);
                    }
                    return Ok(None);
                }
            },
            short => (u64::from(short), 2),
        };
        let mask = if masked {
            match buf.get(used..used + 4) {
                Some(key) => {
                    used += 4;
                    Some(key.try_into().expect("4 bytes"))
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        let header = FrameHeader {
            fin: first & 0x80 != 0,
            rsv: (first >> 4) & 0x7,
            opcode,
            mask,
            len,
        };
        Ok(Some((header, used)))
    }

    /// Encodes the header into `out` and returns the number of bytes
    /// written (2 to 14), using the shortest length encoding.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut used = match self.len {
            0..=125 => {
                out[1] = mask_bit | self.len as u8;
                2
            }
            126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(self.len as u16).to_be_bytes());
                4
            }
            _ => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&self.len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[used..used + 4].copy_from_slice(&key);
            used += 4;
        }
        used
    }
}

/// A whole frame ready for the wire: its header, and its payload (masked
/// when the header has a key). Every frame boardcast sends is made here,
/// whoever sends it.
///
/// An unmasked frame borrows its payload, so a large message goes out in
/// one vectored write of header and payload, without a copy; a masked one
/// (a client's) owns its masked copy.
///
/// ```
/// use boardcast::frame::{Frame, OpCode};
///
/// // RFC 6455 §5.7: a single-frame unmasked text message, "Hello".
/// let frame = Frame::new(OpCode::Text, b"Hello", None);
/// assert_eq!(frame.to_vec(), [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
///
/// // The same, masked as a client sends it.
/// let masked = Frame::new(OpCode::Text, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
/// assert_eq!(
///     masked.to_vec(),
///     [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    opcode: OpCode,
    payload: Cow<'a, [u8]>,
}

impl<'a> Frame<'a> {
    /// A final frame (FIN set, no RSV bits) carrying `payload`.
    pub fn new(opcode: OpCode, payload: &'a [u8], mask: Option<[u8; 4]>) -> Self {
        Frame::with_header(true, 0, opcode, payload, mask)
    }

    /// A frame with every header field given: `fin` clear for all but the
    /// last fragment of a message, `rsv` for the bits an extension gives
    /// meaning to (RSV1 = `0b100`, as permessage-deflate uses).
    pub fn with_header(
        fin: bool,
        rsv: u8,
        opcode: OpCode,
        payload: &'a [u8],
        mask: Option<[u8; 4]>,
    ) -> Self {
        Frame::with_payload(fin, rsv, opcode, Cow::Borrowed(payload), mask)
    }

    /// As [`with_header`](Self::with_header), for a payload borrowed or
    /// owned (one an extension made, a compressed message): an owned one
    /// is masked in place, without a copy.
    pub fn with_payload(
        fin: bool,
        rsv: u8,
        opcode: OpCode,
        payload: Cow<'a, [u8]>,
        mask: Option<[u8; 4]>,
    ) -> Self {
        let mut header = [0; MAX_HEADER_LEN];
        let header_len = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            len: payload.len() as u64,
        }
        .encode(&mut header);
        let payload = match mask {
            None => payload,
            Some(key) => {
                let mut masked = payload.into_owned();
                apply_mask(&mut masked, key, 0);
                Cow::Owned(masked)
            }
        };
        Frame {
            header,
            header_len: header_len as u8,
            opcode,
            payload,
        }
    }

    /// What the frame carries.
    pub fn opcode(&self) -> OpCode {
        self.opcode
    }

    /// The encoded header, 2 to 14 bytes.
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len)]
    }

    /// The payload as it goes on the wire (masked, for a masked frame).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The frame's length on the wire.
    pub fn len(&self) -> usize {
        usize::from(self.header_len) + self.payload.len()
    }

    /// Always false: a frame has at least a two-byte header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the whole frame to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len());
        out.extend_from_slice(self.header());
        out.extend_from_slice(self.payload());
    }

    /// The whole frame in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.write_to(&mut out);
        out
    }

    /// The same frame, owning its payload (an unmasked frame's is copied).
    pub fn into_owned(self) -> Frame<'static> {
        Frame {
            header: self.header,
            header_len: self.header_len,
            opcode: self.opcode,
            payload: Cow::Owned(self.payload.into_owned()),
        }
    }
}

/// XORs `buf` with the masking key (RFC 6455 §5.3), which both masks and
/// unmasks. `offset` is the position of `buf[0]` within the frame's
/// payload, so a payload can be unmasked piece by piece; the offset of the
/// byte after `buf` is returned.
///
/// Works a machine word at a time; this is the hottest loop on receive.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let rotated: [u8; 4] = std::array::from_fn(|i| key[(offset + i) % 4]);
    let word = u64::from_ne_bytes([
        rotated[0], rotated[1], rotated[2], rotated[3], rotated[0], rotated[1], rotated[2],
        rotated[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let value = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i % 4];
    }
    (offset + buf.len()) % 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        // Every strict prefix must ask for more, never fail differently.
        let whole = FrameHeader::decode(bytes);
        if let Ok(Some((_, used))) = whole {
            for cut in 0..used {
                assert_eq!(FrameHeader::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
            }
        }
        whole
    }

    #[test]
    fn rfc_examples() {
        // RFC 6455 §5.7: single-frame unmasked text "Hello".
        let (h, used) = decode_all(&[0x81, 0x05, 0x48, 0x65]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.len, used),
            (true, OpCode::Text, None, 5, 2)
        );
        // Fragmented unmasked text: "Hel" then "lo".
        let (h, _) = decode_all(&[0x01, 0x03]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (false, OpCode::Text));
        let (h, _) = decode_all(&[0x80, 0x02]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (true, OpCode::Continuation));
        // 256 bytes binary, 16-bit length.
        let (h, used) = decode_all(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.opcode, h.len, used), (OpCode::Binary, 256, 4));
        // 64 KiB binary, 64-bit length.
        let wire = [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
        let (h, used) = decode_all(&wire).unwrap().unwrap();
        assert_eq!((h.len, used), (65536, 10));
    }

    #[test]
    fn masked_text_unmasks() {
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, used) = decode_all(&wire).unwrap().unwrap();
        assert_eq!(used, 6);
        let mut payload = wire[6..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn reserved_opcodes_fail_on_first_byte() {
        for op in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(
                FrameHeader::decode(&[0x80 | op]),
                Err(ProtocolError::ReservedOpCode(op))
            );
        }
    }

    #[test]
    fn rsv_bits_are_reported() {
        let (h, _) = decode_all(&[0xF1, 0x80, 1, 2, 3, 4]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b111);
        let (h, _) = decode_all(&[0xC1, 0x80, 1, 2, 3, 4]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b100);
    }

    #[test]
    fn top_bit_of_64_bit_length_fails_early() {
        assert_eq!(
            FrameHeader::decode(&[0x82, 0xFF, 0x80]),
            Err(ProtocolError::InvalidLength)
        );
        let wire = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert_eq!(
            FrameHeader::decode(&wire),
            Err(ProtocolError::InvalidLength)
        );
        // 2^63 - 1 itself is structurally valid; limits reject it later.
        let wire = [
            0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
        ];
        let (h, used) = decode_all(&wire).unwrap().unwrap();
        assert_eq!((h.len, used), (i64::MAX as u64, 14));
    }

    #[test]
    fn encode_decode_round_trip_every_length_class() {
        for len in [0u64, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 1 << 40] {
            for mask in [None, Some([9, 8, 7, 6])] {
                for opcode in [
                    OpCode::Text,
                    OpCode::Binary,
                    OpCode::Continuation,
                    OpCode::Ping,
                ] {
                    let header = FrameHeader {
                        fin: len % 2 == 0,
                        rsv: 0,
                        opcode,
                        mask,
                        len,
                    };
                    let mut out = [0; MAX_HEADER_LEN];
                    let used = header.encode(&mut out);
                    assert_eq!(decode_all(&out[..used]), Ok(Some((header, used))));
                }
            }
        }
    }

    #[test]
    fn shortest_length_encoding() {
        let header_len = |len: usize| Frame::new(OpCode::Text, &vec![0; len], None).header().len();
        assert_eq!(header_len(125), 2);
        assert_eq!(header_len(126), 4);
        assert_eq!(header_len(65535), 4);
        assert_eq!(header_len(65536), 10);
        assert_eq!(
            Frame::new(OpCode::Close, &[3, 232], None).to_vec(),
            [0x88, 0x02, 3, 232]
        );
    }

    #[test]
    fn frames_decode_to_what_was_encoded() {
        let payload: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        for mask in [None, Some([1, 2, 3, 4])] {
            let wire = Frame::with_header(false, 0b100, OpCode::Binary, &payload, mask).to_vec();
            let (header, used) = FrameHeader::decode(&wire).unwrap().unwrap();
            assert_eq!(
                (
                    header.fin,
                    header.rsv,
                    header.opcode,
                    header.mask,
                    header.len
                ),
                (false, 0b100, OpCode::Binary, mask, 300)
            );
            let mut body = wire[used..].to_vec();
            if let Some(key) = mask {
                apply_mask(&mut body, key, 0);
            }
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn mask_matches_bytewise_at_every_offset_and_length() {
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        let data: Vec<u8> = (0..67u8).collect();
        for offset in 0..8 {
            for len in 0..data.len() {
                let mut fast = data[..len].to_vec();
                let next = apply_mask(&mut fast, key, offset);
                let slow: Vec<u8> = data[..len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ key[(offset + i) % 4])
                    .collect();
                assert_eq!(fast, slow);
                assert_eq!(next, (offset + len) % 4);
            }
        }
    }

    #[test]
    fn mask_in_pieces_equals_mask_at_once() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for cut in 0..data.len() {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            let offset = apply_mask(a, key, 0);
            apply_mask(b, key, offset);
            assert_eq!(pieces, whole, "cut at {cut}");
        }
    }
}
