//! The opening handshake (RFC 6455 §4): parsing the HTTP/1.1 upgrade
//! request, and the responses to it. Pure code, no I/O.
//!
//! [`Request::parse`] works on whatever bytes have arrived so far and says
//! [`Status::Partial`] until the request head is complete; it is bounded by
//! [`Config::max_request_size`] and [`Config::max_headers`] and allocates
//! nothing: the parsed request points into the caller's buffer.
//!
//! [`Request::check_host`] checks the `Host` of any request, page or
//! upgrade (RFC 9112 §3.2, and that it names this server: DNS rebinding);
//! [`Request::validate`] checks an upgrade (RFC 6455 §4.2.1, and that a
//! browser's `Origin` is the request's own: cross-site WebSocket
//! hijacking). The blocking layer runs both.
//!
//! ```
//! use boardcast::handshake::{Request, Status};
//! use boardcast::Config;
//!
//! let wire = b"GET /chat?room=1 HTTP/1.1\r\n\
//!     Host: server.example.com\r\n\
//!     Upgrade: websocket\r\n\
//!     Connection: Upgrade\r\n\
//!     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n";
//! let config = Config::default();
//! assert_eq!(Request::parse(&wire[..20], &config), Ok(Status::Partial));
//!
//! let Status::Complete(request) = Request::parse(wire, &config).unwrap() else { panic!() };
//! assert_eq!((request.path(), request.query()), ("/chat", Some("room=1")));
//! // `Host` must name this server (DNS rebinding); here, by being the
//! // machine's hostname (a server reads it from /proc).
//! request.check_host(&config, Some("server.example.com")).unwrap();
//! assert!(request.check_host(&config, Some("board")).is_err());
//! let accept = request.validate(&config).unwrap();
//! assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! ```
//!
//! [`Config::max_request_size`]: crate::Config#structfield.max_request_size
//! [`Config::max_headers`]: crate::Config#structfield.max_headers

mod authority;
mod request;
mod response;

pub(crate) use request::Parts;
pub use request::{Headers, Request};
pub use response::{Accept, AcceptKey, Response};

/// The result of parsing bytes that may not be complete yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The whole item was there.
    Complete(T),
    /// More bytes are needed; call again with the same bytes and more.
    Partial,
}
