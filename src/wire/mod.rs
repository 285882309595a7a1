//! The wire formats boardcast adds on top of RFC 6455 for hub messages,
//! specified in `docs/protocol.md` and `docs/transports.md`: the
//! `boardcast.v1` subprotocol ([`v1`]), which carries each message's topic
//! and sequence number and lets a client subscribe and resume by itself;
//! the same over Server-Sent Events ([`sse`]) and long polling ([`json`],
//! which also answers `GET /latest`), with positions in several topics as
//! one [`cursor`]; and their browser client, `boardcast.js`
//! ([`BOARDCAST_JS`], served by [`script`]; `docs/boardcast-js.md`).
//!
//! What a session's client is told besides published messages is a
//! [`Notice`]; each format writes it its own way.
//!
//! Like the core, these are plain functions over bytes and strings; each
//! published message is written in a transport's format once (a hub
//! message [form](crate::hub::Encoded)), whatever the number of its
//! subscribers.

use std::time::Duration;

use crate::handshake::Response;

pub mod cursor;
pub mod json;
pub mod sse;
pub mod v1;

/// An epoch as the protocols write it: exactly 16 lowercase hex digits.
pub(crate) fn parse_epoch(field: &str) -> Option<u64> {
    let digits = field.len() == 16
        && field
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    digits.then(|| u64::from_str_radix(field, 16).ok())?
}

/// A sequence number: decimal digits only (no sign, no spaces), at most a
/// u64.
pub(crate) fn parse_seq(field: &str) -> Option<u64> {
    let digits = !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| field.parse().ok())?
}

/// `data` in standard base64 (RFC 4648 §4), with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let mut buf = vec![0; base64::encoded_len(data.len(), true).unwrap_or(0)];
    let len = STANDARD.encode_slice(data, &mut buf).unwrap_or(0);
    buf.truncate(len);
    String::from_utf8(buf).unwrap_or_default()
}

/// What a client of the protocol is told besides published messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// The first: the hub's epoch, and the session's id (for SSE and long
    /// polling, where the client's requests must name it).
    Welcome {
        /// The hub's epoch.
        epoch: u64,
        /// The session's id, if the transport has sessions.
        session: Option<&'a str>,
        /// How often the client hears from the server at least
        /// ([`Config::heartbeat_interval`](crate::Config#structfield.heartbeat_interval)).
        heartbeat: Option<Duration>,
    },
    /// The answer to a subscribe (`r`).
    Subscribed {
        /// The topic.
        topic: &'a str,
        /// Whether every message after the client's position follows.
        recovered: bool,
        /// The topic's last sequence number.
        last: u64,
    },
    /// The answer to an unsubscribe (`u`).
    Unsubscribed {
        /// The topic.
        topic: &'a str,
    },
    /// A refused command (`e`).
    Refused {
        /// Why.
        reason: &'a str,
    },
    /// A message the application sent to this client alone (`d`).
    Direct {
        /// Whether it is text (else binary).
        text: bool,
        /// The message.
        payload: &'a [u8],
    },
}

/// `boardcast.js`, the browser (and Node) client of `boardcast.v1`: one
/// file, no dependencies, built into the crate. It reconnects by itself
/// with backoff and resumes every topic where it left off.
pub const BOARDCAST_JS: &str = include_str!("../boardcast.js");

/// `boardcast.js` as a response, for a route of your
/// [`Server::on_http`](crate::Server::on_http):
///
/// ```no_run
/// # use boardcast::{Config, Response, Server};
/// # let server = Server::bind("0.0.0.0:8080", Config::default()).unwrap();
/// let server = server.on_http(|request| match request.path() {
///     "/boardcast.js" => boardcast::wire::script(),
///     _ => Response::text(404, "not found"),
/// });
/// ```
pub fn script() -> Response {
    Response::new(200)
        .header("Content-Type", "text/javascript; charset=utf-8")
        .header("Cache-Control", "no-cache")
        .body(BOARDCAST_JS)
}
