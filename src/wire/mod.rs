//! The wire formats boardcast adds on top of RFC 6455 for hub messages,
//! specified in `docs/protocol.md`: the `boardcast.v1` subprotocol
//! ([`v1`]), which carries each message's topic and sequence number and
//! lets a client subscribe and resume by itself, and the JSON of
//! `GET /latest` ([`json`]); and their browser client, `boardcast.js`
//! ([`BOARDCAST_JS`], served by [`script`]; `docs/boardcast-js.md`).
//!
//! Like the core, these are plain functions over bytes and strings; each
//! published message is written in a transport's format once (a hub
//! message [form](crate::hub::Encoded)), whatever the number of its
//! subscribers.

use crate::handshake::Response;

pub mod json;
pub mod v1;

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
