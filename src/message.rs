//! Messages as the application sees them.

use std::fmt;
use std::str::Utf8Error;
use std::string::FromUtf8Error;

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

    /// A text message.
    ///
    /// ```
    /// # use boardcast::Message;
    /// assert_eq!(Message::text("on"), Message::Text("on".to_owned()));
    /// ```
    pub fn text(text: impl Into<String>) -> Message {
        Message::Text(text.into())
    }

    /// A binary message.
    ///
    /// ```
    /// # use boardcast::Message;
    /// assert_eq!(Message::binary([1, 2]), Message::Binary(vec![1, 2]));
    /// ```
    pub fn binary(data: impl Into<Vec<u8>>) -> Message {
        Message::Binary(data.into())
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }

    /// Whether this is a ping.
    pub fn is_ping(&self) -> bool {
        matches!(self, Message::Ping(_))
    }

    /// Whether this is a pong.
    pub fn is_pong(&self) -> bool {
        matches!(self, Message::Pong(_))
    }

    /// Whether this is a close.
    pub fn is_close(&self) -> bool {
        matches!(self, Message::Close(_))
    }

    /// The payload's length in bytes, as [`as_bytes`](Self::as_bytes) sees
    /// it: 0 for a close.
    ///
    /// tungstenite counts a close's reason here; boardcast keeps the code
    /// and reason in the [`CloseFrame`] only, so `len`, `as_bytes`,
    /// [`into_data`](Self::into_data) and [`to_text`](Self::to_text) always
    /// agree.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty (always true for a close; see
    /// [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as bytes, without copying: a text message gives its
    /// UTF-8 bytes, a close gives nothing (its code and reason are in the
    /// [`CloseFrame`]).
    pub fn into_data(self) -> Vec<u8> {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(data) | Message::Ping(data) | Message::Pong(data) => data,
            Message::Close(_) => Vec::new(),
        }
    }

    /// The payload as a `String`, without copying: a text message as it is,
    /// any other payload if it is valid UTF-8, a close as `""` (see
    /// [`len`](Self::len)).
    ///
    /// # Errors
    ///
    /// If a binary, ping or pong payload is not valid UTF-8. The error is
    /// std's own rather than [`Error`](crate::Error), which is for the
    /// connection: the message is fine, only its reading as text is not,
    /// and [`FromUtf8Error::into_bytes`] gives the payload back.
    ///
    /// ```
    /// # use boardcast::Message;
    /// assert_eq!(Message::binary(*b"21.5").into_text().unwrap(), "21.5");
    /// let error = Message::binary([0xff, 0x00]).into_text().unwrap_err();
    /// assert_eq!(error.into_bytes(), [0xff, 0x00]);
    /// ```
    pub fn into_text(self) -> Result<String, FromUtf8Error> {
        match self {
            Message::Text(text) => Ok(text),
            other => String::from_utf8(other.into_data()),
        }
    }

    /// The payload as a `&str`: a text message as it is, any other payload
    /// if it is valid UTF-8, a close as `""` (see [`len`](Self::len)).
    ///
    /// # Errors
    ///
    /// If a binary, ping or pong payload is not valid UTF-8.
    pub fn to_text(&self) -> Result<&str, Utf8Error> {
        match self {
            Message::Text(text) => Ok(text),
            other => std::str::from_utf8(other.as_bytes()),
        }
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

/// A close status code (RFC 6455 §7.4).
///
/// Any `u16` converts into one; [`is_sendable`](Self::is_sendable) tells
/// whether it may appear in a close frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page left).
    pub const AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1005: no code was present. Never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection dropped without a close frame. Never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data was inconsistent with its type (bad UTF-8).
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// 1008: a message broke the endpoint's policy.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message was too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not agree to.
    pub const EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// 1012: the server is restarting (IANA registry).
    pub const RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later, e.g. the server is overloaded (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// Whether the code may be carried by a close frame: 1000–1003,
    /// 1007–1014 and the application ranges 3000–4999. The others are
    /// reserved, or (1005, 1006, 1015) stand for conditions that are never
    /// sent.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<&[u8]> for Message {
    /// A binary message, copying the bytes.
    fn from(data: &[u8]) -> Self {
        Message::Binary(data.to_vec())
    }
}

impl From<Message> for Vec<u8> {
    /// The payload, as [`Message::into_data`] gives it.
    fn from(message: Message) -> Self {
        message.into_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_close_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(CloseCode(code).is_sendable(), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(code).is_sendable(), "{code}");
        }
    }

    fn close() -> Message {
        Message::Close(Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: "bye".to_owned(),
        }))
    }

    #[test]
    fn constructors() {
        assert_eq!(Message::text("on"), Message::Text("on".to_owned()));
        assert_eq!(
            Message::text(String::from("on")),
            Message::Text("on".to_owned())
        );
        assert_eq!(Message::binary(vec![1, 2]), Message::Binary(vec![1, 2]));
        assert_eq!(Message::binary(&[1, 2][..]), Message::Binary(vec![1, 2]));
        assert_eq!(Message::binary([1, 2]), Message::Binary(vec![1, 2]));
    }

    #[test]
    fn kinds() {
        let all = [
            Message::text("t"),
            Message::binary([1]),
            Message::Ping(vec![]),
            Message::Pong(vec![]),
            Message::Close(None),
        ];
        let kinds: Vec<[bool; 6]> = all
            .iter()
            .map(|m| {
                [
                    m.is_text(),
                    m.is_binary(),
                    m.is_ping(),
                    m.is_pong(),
                    m.is_close(),
                    m.is_data(),
                ]
            })
            .collect();
        assert_eq!(
            kinds,
            [
                [true, false, false, false, false, true],
                [false, true, false, false, false, true],
                [false, false, true, false, false, false],
                [false, false, false, true, false, false],
                [false, false, false, false, true, false],
            ]
        );
    }

    #[test]
    fn len_and_is_empty() {
        assert_eq!(Message::text("héllo").len(), 6);
        assert_eq!(Message::binary([0; 3]).len(), 3);
        assert_eq!(Message::Ping(vec![9]).len(), 1);
        assert_eq!(Message::Pong(vec![]).len(), 0);
        assert!(Message::text("").is_empty());
        assert!(!Message::binary([0]).is_empty());
        // A close's reason is not its payload here (unlike tungstenite).
        assert_eq!(close().len(), 0);
        assert!(close().is_empty());
        assert!(Message::Close(None).is_empty());
    }

    #[test]
    fn into_data_matches_as_bytes() {
        for message in [
            Message::text("héllo"),
            Message::binary([0xff, 0]),
            Message::Ping(vec![1]),
            Message::Pong(vec![2]),
            close(),
            Message::Close(None),
        ] {
            let bytes = message.as_bytes().to_vec();
            assert_eq!(message.len(), bytes.len());
            assert_eq!(message.clone().into_data(), bytes);
            assert_eq!(Vec::<u8>::from(message), bytes);
        }
    }

    #[test]
    fn into_text() {
        assert_eq!(Message::text("21.5").into_text().unwrap(), "21.5");
        assert_eq!(Message::binary(*b"21.5").into_text().unwrap(), "21.5");
        assert_eq!(Message::Ping(b"hi".to_vec()).into_text().unwrap(), "hi");
        assert_eq!(Message::Pong(vec![]).into_text().unwrap(), "");
        assert_eq!(close().into_text().unwrap(), "");
        let error = Message::binary([b'a', 0xc3]).into_text().unwrap_err();
        assert_eq!(error.utf8_error().valid_up_to(), 1);
        assert_eq!(error.into_bytes(), [b'a', 0xc3]);
    }

    #[test]
    fn to_text() {
        assert_eq!(Message::text("héllo").to_text(), Ok("héllo"));
        assert_eq!(Message::binary(*b"ok").to_text(), Ok("ok"));
        assert_eq!(Message::Pong(b"p".to_vec()).to_text(), Ok("p"));
        assert_eq!(close().to_text(), Ok(""));
        assert_eq!(Message::Close(None).to_text(), Ok(""));
        let error = Message::Ping(vec![b'x', 0xff]).to_text().unwrap_err();
        assert_eq!(error.valid_up_to(), 1);
    }

    #[test]
    fn conversions() {
        assert_eq!(Message::from("a"), Message::text("a"));
        assert_eq!(Message::from(String::from("a")), Message::text("a"));
        assert_eq!(Message::from(vec![1u8]), Message::binary([1]));
        assert_eq!(Message::from(&[1u8, 2][..]), Message::binary([1, 2]));
        let slice: &[u8] = b"raw";
        let message: Message = slice.into();
        assert!(message.is_binary());
        assert_eq!(Vec::from(Message::text("é")), "é".as_bytes());
        assert_eq!(Vec::from(Message::Close(None)), Vec::<u8>::new());
    }
}
