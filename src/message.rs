//! Messages as the application sees them.

use std::fmt;

use crate::frame::CloseCode;

/// A complete WebSocket message, or a control frame.
///
/// Shaped like tungstenite's `Message`, so code moves over easily; payloads
/// are plain `String` and `Vec<u8>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A UTF-8 text message, validated.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping; the pong reply is sent for you.
    Ping(Vec<u8>),
    /// A pong, in answer to a ping or as a heartbeat.
    Pong(Vec<u8>),
    /// The peer's close frame; the close reply is sent for you.
    Close(Option<CloseFrame>),
}

impl Message {
    /// The payload as bytes (empty for a close).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) | Message::Ping(data) | Message::Pong(data) => data,
            Message::Close(_) => &[],
        }
    }

    /// Whether this is a text or binary message (not a control frame).
    pub fn is_data(&self) -> bool {
        matches!(self, Message::Text(_) | Message::Binary(_))
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::Binary(data)
    }
}

/// The code and reason of a close frame (RFC 6455 §5.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// Why the connection closes.
    pub code: CloseCode,
    /// A UTF-8 reason for humans; at most 123 bytes on the wire.
    pub reason: String,
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} ({})", self.code, self.reason)
        }
    }
}
