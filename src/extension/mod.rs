//! Per-message extensions (RFC 6455 §9): the seam, and permessage-deflate
//! (RFC 7692) with the `deflate` feature.
//!
//! An extension gives meaning to some RSV bits. On receive, the
//! [`Inbound`](crate::protocol::Inbound) half accepts those bits on the
//! first frame of a text or binary message (on no other frame), assembles
//! the message as it came, and hands it to [`Extension::decode`] before the
//! UTF-8 check. On send, [`Outbound`](crate::protocol::Outbound) gives a
//! text or binary message's payload to its [`Encoder`], and sets the bits
//! it returns on the frame with
//! [`Frame::with_header`](crate::frame::Frame::with_header); a published
//! message is transformed once by the hub and shared by every subscriber,
//! like its frame.
//!
//! [`header`] parses the `Sec-WebSocket-Extensions` request header;
//! [`agree`] picks what the opening handshake agrees to.

use std::fmt;

use crate::error::ProtocolError;

mod agree;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod header;
#[cfg(feature = "deflate")]
pub mod negotiate;
#[cfg(feature = "deflate")]
mod pool;

pub use agree::{agree, Agreed};

/// A negotiated per-message extension of one connection: its receiving
/// side.
pub trait Extension: fmt::Debug + Send {
    /// The RSV bits this extension defines, in the low three bits as in
    /// [`FrameHeader::rsv`](crate::frame::FrameHeader::rsv) (RSV1 = `0b100`).
    fn rsv(&self) -> u8;

    /// Restores a received message whose first frame carried `rsv` (a
    /// non-zero subset of [`rsv`](Self::rsv)).
    ///
    /// # Errors
    ///
    /// The violation to fail the connection with: a payload that does not
    /// decode, or [`ProtocolError::MessageTooBig`] when the restored message
    /// would exceed `max_size` bytes (stop decoding there: a small payload
    /// may expand without bound).
    fn decode(
        &mut self,
        rsv: u8,
        payload: Vec<u8>,
        max_size: usize,
    ) -> Result<Vec<u8>, ProtocolError>;
}

/// A negotiated per-message extension of one connection: its sending side.
///
/// Shared by every thread that sends on the connection. One that keeps
/// state from one message to the next (deflate's context takeover) relies
/// on its frames going out in the order it made them: a connection's
/// writer makes and writes each frame under one lock.
pub trait Encoder: fmt::Debug + Send + Sync {
    /// The payload of a text or binary message as it goes on the wire, and
    /// the RSV bits for its first frame; `None` to send it as it is.
    fn encode(&self, payload: &[u8]) -> Option<(u8, Vec<u8>)>;
}
