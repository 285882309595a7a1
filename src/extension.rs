//! The seam for per-message extensions (RFC 6455 §9), where
//! permessage-deflate (RFC 7692) plugs in.
//!
//! An extension gives meaning to some RSV bits. On receive, the
//! [`Inbound`](crate::protocol::Inbound) half accepts those bits on the
//! first frame of a text or binary message (on no other frame), assembles
//! the message as it came, and hands it to [`Extension::decode`] before the
//! UTF-8 check. On send, [`Frame::with_header`](crate::frame::Frame::with_header)
//! sets the bits on the frame that carries the transformed payload; a
//! published message is transformed once by the hub and shared by every
//! subscriber, like its frame.

use std::fmt;

use crate::error::ProtocolError;

/// A negotiated per-message extension of one connection.
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
