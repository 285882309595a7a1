//! Errors, and the one place that maps each failure to its close code or HTTP
//! status.

use std::fmt;
use std::io;

use crate::message::CloseCode;

/// Everything that can go wrong on a connection.
///
/// A clean close is not an error: [`Connection::recv`](crate::Connection::recv)
/// returns `Ok(None)` once the close handshake is over.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The underlying stream failed, timed out, or ended without a close
    /// frame (`UnexpectedEof`; `ConnectionReset` if the peer reset it, even
    /// when another thread's write met the reset first).
    Io(io::Error),
    /// The opening handshake was refused; the HTTP error reply has been sent.
    Handshake(HandshakeError),
    /// The application refused the opening handshake with this HTTP status;
    /// its reply has been sent.
    Rejected(u16),
    /// The peer broke RFC 6455; a close frame with
    /// [`ProtocolError::close_code`] has been sent.
    Protocol(ProtocolError),
    /// The connection is closing or closed: our close frame was sent, so no
    /// other frame may follow it (RFC 6455 §5.5.1).
    Closed,
    /// A ping, pong or close payload would exceed 125 bytes (RFC 6455 §5.5).
    ControlTooLong,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Handshake(e) => write!(f, "handshake refused: {e}"),
            Error::Rejected(status) => write!(f, "handshake rejected with status {status}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Closed => f.write_str("connection closed"),
            Error::ControlTooLong => f.write_str("control frame payload longer than 125 bytes"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

/// A peer's violation of RFC 6455 framing or message rules, or of the
/// configured limits on what it sends.
///
/// Each one fails the connection (RFC 6455 §7.1.7) with the close code
/// [`close_code`](Self::close_code) gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client frame was not masked (§5.1: the server MUST close).
    UnmaskedFrame,
    /// A server frame was masked (§5.1: the client MUST close).
    MaskedFrame,
    /// An RSV bit was set but no extension was negotiated (§5.2).
    ReservedBits,
    /// The opcode is one of the reserved values 0x3–0x7 or 0xB–0xF (§5.2).
    ReservedOpCode(u8),
    /// A 64-bit payload length had its most significant bit set (§5.2).
    InvalidLength,
    /// A control frame had FIN clear (§5.5).
    FragmentedControl,
    /// A control frame carried more than 125 bytes (§5.5).
    ControlTooLong,
    /// A continuation frame arrived with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame arrived while a fragmented message was in
    /// progress (§5.4).
    ExpectedContinuation,
    /// A text message or close reason was not valid UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame carried a code that may not be sent on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A close frame had a one-byte payload, too short for a code (§5.5.1).
    InvalidClosePayload,
    /// A frame's payload was larger than the configured frame limit.
    FrameTooBig,
    /// A message's payload was larger than the configured message limit.
    MessageTooBig,
    /// A message (or a frame) did not arrive whole within the configured
    /// [`message_timeout`](crate::Config#structfield.message_timeout): the
    /// peer trickles it.
    MessageTooSlow,
    /// The messages in progress on all connections hold their whole
    /// budget: this one may not grow (close code 1013, try again later).
    Overloaded,
    /// A message compressed by a negotiated extension (permessage-deflate,
    /// RFC 7692 §7.2.2) did not decompress: close code 1007, its data is
    /// not what its type says.
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code this violation is answered with: 1007 for bad UTF-8
    /// or compressed data that does not decompress,
    /// 1009 for a size limit, 1008 (policy violation) for a message too
    /// slow to arrive (it is not too big: 1009 would tell the peer to send
    /// less, when it must send faster), 1013 for an exhausted server
    /// budget, 1002 for everything else.
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_DATA
            }
            ProtocolError::FrameTooBig | ProtocolError::MessageTooBig => CloseCode::TOO_BIG,
            ProtocolError::MessageTooSlow => CloseCode::POLICY,
            ProtocolError::Overloaded => CloseCode::TRY_AGAIN_LATER,
            _ => CloseCode::PROTOCOL,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnmaskedFrame => f.write_str("client frame is not masked"),
            ProtocolError::MaskedFrame => f.write_str("server frame is masked"),
            ProtocolError::ReservedBits => f.write_str("reserved bits set without an extension"),
            ProtocolError::ReservedOpCode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidLength => {
                f.write_str("64-bit payload length has its top bit set")
            }
            ProtocolError::FragmentedControl => f.write_str("fragmented control frame"),
            ProtocolError::ControlTooLong => f.write_str("control frame longer than 125 bytes"),
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new message while a fragmented one is in progress")
            }
            ProtocolError::InvalidUtf8 => f.write_str("invalid utf-8 in text"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::InvalidClosePayload => f.write_str("close payload of one byte"),
            ProtocolError::FrameTooBig => f.write_str("frame larger than the limit"),
            ProtocolError::MessageTooBig => f.write_str("message larger than the limit"),
            ProtocolError::MessageTooSlow => f.write_str("message slower than the time limit"),
            ProtocolError::Overloaded => {
                f.write_str("messages in progress hold the server's whole budget")
            }
            ProtocolError::InvalidCompressedData => f.write_str("invalid compressed data"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why an opening handshake request was refused.
///
/// Each one is answered with a real HTTP response: [`status`](Self::status)
/// and a short plain-text body, [`reason`](Self::reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request head was larger than the configured limit.
    RequestTooLarge,
    /// The request had more header fields than the configured limit.
    TooManyHeaders,
    /// The request line was not `METHOD SP target SP HTTP/1.x`.
    InvalidRequestLine,
    /// The request target was not an origin-form or absolute-form URI.
    InvalidTarget,
    /// The request target carried a `#fragment` (RFC 6455 §3).
    FragmentInTarget,
    /// A header line was malformed (bad name, bad value, or a folded line).
    InvalidHeader,
    /// A header that must appear once appeared twice.
    DuplicateHeader,
    /// The request was not HTTP/1.1 or later (RFC 6455 §4.1).
    UnsupportedHttpVersion,
    /// The method was not `GET` (RFC 6455 §4.1).
    MethodNotAllowed,
    /// There was no `Host` header (RFC 6455 §4.1).
    MissingHost,
    /// `Upgrade: websocket` or `Connection: upgrade` was missing.
    NotUpgrade,
    /// There was no `Sec-WebSocket-Key` header.
    MissingKey,
    /// `Sec-WebSocket-Key` was not the base64 encoding of 16 bytes.
    InvalidKey,
    /// There was no `Sec-WebSocket-Version` header.
    MissingVersion,
    /// `Sec-WebSocket-Version` was not 13 (RFC 6455 §4.4).
    UnsupportedVersion,
    /// The `Origin` header named another site than the request's `Host`,
    /// and was not allowed by `Config::allowed_origins` (cross-site
    /// WebSocket hijacking).
    OriginRefused,
    /// A line of the request head ended in LF without CR (RFC 9112 §2.2).
    BareLineFeed,
    /// The `Host` header was not `host[:port]` (RFC 9112 §3.2).
    InvalidHost,
    /// An absolute-form target named another host or port than the `Host`
    /// header (RFC 9112 §3.2.2).
    HostMismatch,
    /// The `Host` header named none of this server's names, nor one allowed
    /// by `Config::allowed_hosts` (DNS rebinding).
    HostRefused,
    /// An upgrade request announced a body (`Content-Length` other than 0,
    /// or `Transfer-Encoding`).
    UnexpectedBody,
    /// An upgrade request carried an `Expect` header (`100-continue`): an
    /// upgrade has no content to continue with.
    ExpectationFailed,
}

impl HandshakeError {
    /// The HTTP status this refusal is answered with.
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::RequestTooLarge | HandshakeError::TooManyHeaders => 431,
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::NotUpgrade | HandshakeError::UnsupportedVersion => 426,
            HandshakeError::OriginRefused => 403,
            HandshakeError::ExpectationFailed => 417,
            HandshakeError::HostRefused => 421,
            _ => 400,
        }
    }

    /// A short, lowercase, plain-text reason, sent as the response body.
    pub fn reason(self) -> &'static str {
        match self {
            HandshakeError::RequestTooLarge => "request header too large",
            HandshakeError::TooManyHeaders => "too many header fields",
            HandshakeError::InvalidRequestLine => "malformed request line",
            HandshakeError::InvalidTarget => "malformed request target",
            HandshakeError::FragmentInTarget => "request target has a fragment",
            HandshakeError::InvalidHeader => "malformed header field",
            HandshakeError::DuplicateHeader => "duplicate header field",
            HandshakeError::UnsupportedHttpVersion => "http/1.1 or later required",
            HandshakeError::MethodNotAllowed => "websocket upgrade requires GET",
            HandshakeError::MissingHost => "missing host header",
            HandshakeError::NotUpgrade => "not a websocket upgrade request",
            HandshakeError::MissingKey => "missing sec-websocket-key header",
            HandshakeError::InvalidKey => "sec-websocket-key is not base64 of 16 bytes",
            HandshakeError::MissingVersion => "missing sec-websocket-version header",
            HandshakeError::UnsupportedVersion => "unsupported websocket version, 13 required",
            HandshakeError::OriginRefused => "origin not allowed",
            HandshakeError::BareLineFeed => "line ends in lf without cr",
            HandshakeError::InvalidHost => "malformed host header",
            HandshakeError::HostMismatch => "request target and host header differ",
            HandshakeError::HostRefused => "host not served here",
            HandshakeError::UnexpectedBody => "upgrade request has a body",
            HandshakeError::ExpectationFailed => "expectation not supported on an upgrade",
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for HandshakeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_by_class() {
        assert_eq!(
            ProtocolError::InvalidUtf8.close_code(),
            CloseCode::INVALID_DATA
        );
        assert_eq!(ProtocolError::FrameTooBig.close_code(), CloseCode::TOO_BIG);
        assert_eq!(
            ProtocolError::MessageTooSlow.close_code(),
            CloseCode::POLICY
        );
        assert_eq!(
            ProtocolError::MessageTooBig.close_code(),
            CloseCode::TOO_BIG
        );
        for e in [
            ProtocolError::UnmaskedFrame,
            ProtocolError::MaskedFrame,
            ProtocolError::ReservedBits,
            ProtocolError::ReservedOpCode(3),
            ProtocolError::InvalidLength,
            ProtocolError::FragmentedControl,
            ProtocolError::ControlTooLong,
            ProtocolError::UnexpectedContinuation,
            ProtocolError::ExpectedContinuation,
            ProtocolError::InvalidCloseCode(1005),
            ProtocolError::InvalidClosePayload,
        ] {
            assert_eq!(e.close_code(), CloseCode::PROTOCOL, "{e}");
        }
    }

    #[test]
    fn handshake_statuses() {
        assert_eq!(HandshakeError::RequestTooLarge.status(), 431);
        assert_eq!(HandshakeError::TooManyHeaders.status(), 431);
        assert_eq!(HandshakeError::MethodNotAllowed.status(), 405);
        assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
        assert_eq!(HandshakeError::OriginRefused.status(), 403);
        assert_eq!(HandshakeError::InvalidKey.status(), 400);
        assert_eq!(HandshakeError::MissingHost.status(), 400);
        assert_eq!(HandshakeError::BareLineFeed.status(), 400);
        assert_eq!(HandshakeError::InvalidHost.status(), 400);
        assert_eq!(HandshakeError::HostMismatch.status(), 400);
        assert_eq!(HandshakeError::HostRefused.status(), 421);
        assert_eq!(HandshakeError::UnexpectedBody.status(), 400);
        assert_eq!(HandshakeError::ExpectationFailed.status(), 417);
    }
}
