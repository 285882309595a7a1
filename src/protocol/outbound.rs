//! The sending half: messages in, frames out, and the one flag that says
//! our close frame went out.

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::error::{Error, ProtocolError};
use crate::extension::Encoder;
use crate::frame::{Frame, OpCode, MAX_CONTROL_PAYLOAD};
use crate::message::{CloseCode, CloseFrame, Message};
use crate::protocol::Role;

/// The sending half of one connection's protocol, for either role.
///
/// Its methods take `&self`, so one `Outbound` serves every thread that
/// sends on the connection: the closing state is an atomic flag, and a
/// frame made after our close is refused whichever thread asks.
///
/// ```
/// use boardcast::protocol::{Outbound, Role};
/// use boardcast::{CloseCode, Error, Message};
///
/// let outbound = Outbound::new(Role::Server);
/// let hi = Message::text("hi");
/// let frame = outbound.message(&hi).unwrap();
/// assert_eq!((frame.header(), frame.payload()), (&[0x81, 0x02][..], &b"hi"[..]));
///
/// let close = outbound.close(Some(CloseCode::NORMAL), "bye").unwrap();
/// assert_eq!(close.to_vec(), [0x88, 0x05, 0x03, 0xE8, b'b', b'y', b'e']);
/// assert!(matches!(outbound.message(&Message::text("late")), Err(Error::Closed)));
/// ```
#[derive(Debug)]
pub struct Outbound {
    role: Role,
    closing: AtomicBool,
    /// The state of the client role's masking keys (§5.3: "unpredictable").
    masks: AtomicU64,
    /// The negotiated extension's sending side, if any: set once, after
    /// the opening handshake.
    encoder: OnceLock<Box<dyn Encoder>>,
}

impl Outbound {
    /// The sending half for `role`.
    pub fn new(role: Role) -> Self {
        let seed = match role {
            Role::Server => 0,
            Role::Client => RandomState::new().hash_one(0u8),
        };
        Outbound {
            role,
            closing: AtomicBool::new(false),
            masks: AtomicU64::new(seed),
            encoder: OnceLock::new(),
        }
    }

    /// Gives the text and binary messages made from now on to `encoder`
    /// (permessage-deflate's compressor), which decides their payload and
    /// RSV bits. Only the first call counts: a connection negotiates its
    /// extensions once. Frames made with [`encode`](Self::encode), and
    /// control frames, are never given to it.
    pub fn set_encoder(&self, encoder: Box<dyn Encoder>) {
        if self.encoder.set(encoder).is_err() {
            log::warn!("a connection's extension encoder was set twice; the first stays");
        }
    }

    /// Whether an extension encodes this half's messages.
    pub fn has_encoder(&self) -> bool {
        self.encoder.get().is_some()
    }

    /// Whether our close frame was made: no other frame may follow it.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// A final frame of `opcode` carrying `payload`. A close frame makes the
    /// half closing. A text or binary payload is first given to the
    /// [encoder](Self::set_encoder), if any: the frame then carries what it
    /// made, with its RSV bits.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once closing, [`Error::ControlTooLong`] for a
    /// control payload over 125 bytes (§5.5).
    pub fn frame<'a>(&self, opcode: OpCode, payload: &'a [u8]) -> Result<Frame<'a>, Error> {
        if opcode.is_control() && payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::ControlTooLong);
        }
        let closed = match opcode {
            OpCode::Close => self.closing.swap(true, Ordering::AcqRel),
            _ => self.is_closing(),
        };
        if closed {
            return Err(Error::Closed);
        }
        if let (Some(encoder), OpCode::Text | OpCode::Binary) = (self.encoder.get(), opcode) {
            if let Some((rsv, encoded)) = encoder.encode(payload) {
                let encoded = Cow::Owned(encoded);
                return Ok(Frame::with_payload(true, rsv, opcode, encoded, self.mask()));
            }
        }
        Ok(self.encode(opcode, payload))
    }

    /// The frame of a message: the one place a [`Message`] becomes a frame.
    ///
    /// # Errors
    ///
    /// As for [`frame`](Self::frame), and [`close`](Self::close) for a
    /// close message.
    pub fn message<'a>(&self, message: &'a Message) -> Result<Frame<'a>, Error> {
        match message {
            Message::Text(text) => self.frame(OpCode::Text, text.as_bytes()),
            Message::Binary(data) => self.frame(OpCode::Binary, data),
            Message::Ping(data) => self.frame(OpCode::Ping, data),
            Message::Pong(data) => self.frame(OpCode::Pong, data),
            Message::Close(None) => self.close(None, ""),
            Message::Close(Some(CloseFrame { code, reason })) => self.close(Some(*code), reason),
        }
    }

    /// Our close frame: empty without a code, else the code and a reason of
    /// at most 123 bytes (§5.5.1). The half is closing after it.
    ///
    /// # Errors
    ///
    /// [`Error::ControlTooLong`] for a longer reason, [`Error::Closed`] if
    /// our close frame was already made.
    pub fn close(&self, code: Option<CloseCode>, reason: &str) -> Result<Frame<'static>, Error> {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = match code {
            None => 0,
            Some(code) => {
                let len = 2 + reason.len();
                if len > MAX_CONTROL_PAYLOAD {
                    return Err(Error::ControlTooLong);
                }
                payload[..2].copy_from_slice(&code.0.to_be_bytes());
                payload[2..len].copy_from_slice(reason.as_bytes());
                len
            }
        };
        Ok(self.frame(OpCode::Close, &payload[..len])?.into_owned())
    }

    /// The frame that answers what [`Inbound`](super::Inbound) received, or
    /// `None` when nothing is to be sent: a pong after our close, or a close
    /// reply when our close already went out (the handshake is then over).
    pub fn reply<'a>(&self, reply: &Reply<'a>) -> Option<Frame<'a>> {
        match reply {
            Reply::Pong(payload) => self.frame(OpCode::Pong, payload).ok(),
            Reply::Close { code, reason } => self.close(*code, reason).ok(),
        }
    }

    /// A frame of `opcode` with no state checked: for a message published
    /// to many connections, whose own halves decide whether it may go out.
    pub fn encode<'a>(&self, opcode: OpCode, payload: &'a [u8]) -> Frame<'a> {
        Frame::new(opcode, payload, self.mask())
    }

    fn mask(&self) -> Option<[u8; 4]> {
        match self.role {
            Role::Server => None,
            Role::Client => {
                // splitmix64: a new key per frame, from a random seed.
                let mut z = self
                    .masks
                    .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                    .wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                Some(((z ^ (z >> 31)) as u32).to_ne_bytes())
            }
        }
    }
}

/// What a received frame is owed: decided here, once, for every driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A pong with the ping's payload (§5.5.2).
    Pong(&'a [u8]),
    /// Our close frame: the peer's code echoed (§5.5.1), or the code of the
    /// peer's violation with its description as the reason (§7.1.7).
    Close {
        /// The code; `None` for an empty close frame.
        code: Option<CloseCode>,
        /// The reason, at most 123 bytes.
        reason: Cow<'a, str>,
    },
}

impl<'a> Reply<'a> {
    /// What `message`, just received, is owed: a ping its pong, a close
    /// frame a close with the same code; data and pongs nothing.
    pub fn to(message: &'a Message) -> Option<Reply<'a>> {
        match message {
            Message::Ping(payload) => Some(Reply::Pong(payload)),
            Message::Close(frame) => Some(Reply::Close {
                code: frame.as_ref().map(|f| f.code),
                reason: Cow::Borrowed(""),
            }),
            _ => None,
        }
    }

    /// The close that fails the connection for `violation`: its close code
    /// (1002, 1007 or 1009), and what was wrong as the reason.
    pub fn to_violation(violation: ProtocolError) -> Reply<'static> {
        let mut reason = violation.to_string();
        reason.truncate(MAX_CONTROL_PAYLOAD - 2);
        Reply::Close {
            code: Some(violation.close_code()),
            reason: Cow::Owned(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{apply_mask, FrameHeader};

    #[test]
    fn nothing_follows_our_close() {
        let outbound = Outbound::new(Role::Server);
        assert!(!outbound.is_closing());
        let close = outbound.close(None, "").unwrap();
        assert_eq!(close.to_vec(), [0x88, 0x00]);
        assert!(outbound.is_closing());
        for message in [
            Message::Text("x".into()),
            Message::Ping(vec![]),
            Message::Close(None),
        ] {
            assert!(matches!(outbound.message(&message), Err(Error::Closed)));
        }
        assert!(outbound.reply(&Reply::Pong(b"p")).is_none());
        let echo = Message::Close(None);
        assert!(outbound.reply(&Reply::to(&echo).unwrap()).is_none());
    }

    #[test]
    fn control_payloads_are_bounded() {
        let outbound = Outbound::new(Role::Server);
        assert!(matches!(
            outbound.frame(OpCode::Ping, &[0; 126]),
            Err(Error::ControlTooLong)
        ));
        assert!(outbound.frame(OpCode::Ping, &[0; 125]).is_ok());
        let reason = "r".repeat(124);
        assert!(matches!(
            outbound.close(Some(CloseCode::NORMAL), &reason),
            Err(Error::ControlTooLong)
        ));
        // A refused close does not start closing.
        assert!(!outbound.is_closing());
        assert!(outbound
            .close(Some(CloseCode::NORMAL), &reason[1..])
            .is_ok());
    }

    #[test]
    fn replies() {
        let ping = Message::Ping(b"abc".to_vec());
        let outbound = Outbound::new(Role::Server);
        let pong = outbound.reply(&Reply::to(&ping).unwrap()).unwrap();
        assert_eq!(pong.to_vec(), [0x8A, 0x03, b'a', b'b', b'c']);
        assert_eq!(Reply::to(&Message::Text("data".into())), None);
        assert_eq!(Reply::to(&Message::Pong(vec![])), None);

        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::AWAY,
            reason: "gone".into(),
        }));
        let reply = outbound.reply(&Reply::to(&close).unwrap()).unwrap();
        assert_eq!(reply.to_vec(), [0x88, 0x02, 0x03, 0xE9]);

        let failed = Reply::to_violation(ProtocolError::InvalidUtf8);
        let frame = Outbound::new(Role::Server).reply(&failed).unwrap();
        assert_eq!(&frame.payload()[..2], &1007u16.to_be_bytes());
        assert_eq!(&frame.payload()[2..], b"invalid utf-8 in text");
    }

    /// An encoder that reverses payloads of at least 3 bytes, with RSV1.
    #[derive(Debug)]
    struct Reverse;

    impl Encoder for Reverse {
        fn encode(&self, payload: &[u8]) -> Option<(u8, Vec<u8>)> {
            (payload.len() >= 3).then(|| (0b100, payload.iter().rev().copied().collect()))
        }
    }

    #[test]
    fn the_encoder_makes_data_frames_only() {
        let outbound = Outbound::new(Role::Server);
        outbound.set_encoder(Box::new(Reverse));
        assert!(outbound.has_encoder());
        let text = outbound.frame(OpCode::Text, b"abc").unwrap();
        assert_eq!(text.to_vec(), [0xC1, 0x03, b'c', b'b', b'a']);
        let xyz = Message::Binary(b"xyz".to_vec());
        let binary = outbound.message(&xyz).unwrap();
        assert_eq!(binary.to_vec(), [0xC2, 0x03, b'z', b'y', b'x']);
        // Declined by the encoder: as it is, RSV clear.
        assert_eq!(
            outbound.frame(OpCode::Text, b"ab").unwrap().to_vec(),
            [0x81, 0x02, b'a', b'b']
        );
        // Control frames and `encode` never go through it.
        let ping = outbound.frame(OpCode::Ping, b"abc").unwrap();
        assert_eq!(ping.to_vec(), [0x89, 0x03, b'a', b'b', b'c']);
        assert_eq!(outbound.encode(OpCode::Text, b"abc").to_vec()[0], 0x81);
        // The client role masks what the encoder made.
        let client = Outbound::new(Role::Client);
        client.set_encoder(Box::new(Reverse));
        let wire = client.frame(OpCode::Binary, b"abc").unwrap().to_vec();
        let (header, used) = FrameHeader::decode(&wire).unwrap().unwrap();
        assert_eq!(header.rsv, 0b100);
        let mut payload = wire[used..].to_vec();
        apply_mask(&mut payload, header.mask.unwrap(), 0);
        assert_eq!(payload, b"cba");
    }

    #[test]
    fn a_client_masks_every_frame_with_a_new_key() {
        let outbound = Outbound::new(Role::Client);
        let mut keys = Vec::new();
        for _ in 0..4 {
            let wire = outbound.frame(OpCode::Binary, b"payload").unwrap().to_vec();
            let (header, used) = FrameHeader::decode(&wire).unwrap().unwrap();
            let key = header.mask.expect("client frames are masked");
            let mut payload = wire[used..].to_vec();
            apply_mask(&mut payload, key, 0);
            assert_eq!(payload, b"payload");
            keys.push(key);
        }
        keys.dedup();
        assert_eq!(keys.len(), 4, "{keys:?}");
    }
}
