//! Answering the HTTP transports' requests (`docs/transports.md`): with
//! the connection kept alive or not, refusals, `POST /send` and
//! `GET /latest`. Server-Sent Events streams are in `sse.rs`, long polls in
//! `poll.rs`; `route.rs` sends each request to its endpoint.

use crate::config::Config;
use crate::connection::Handshake;
use crate::error::Error;
use crate::handshake::{Request, Response};
use crate::hub::Hub;
use crate::message::Message;
use crate::server::client::Client;
use crate::server::session::Refused;
use crate::server::task::Task;
use crate::socket::{Io, Socket};
use crate::wire::{json, v1};

/// What answering one request left: the connection closes, serves the
/// next request (with the bytes read past this one), or is now an SSE
/// stream, whose client goes to the handler.
pub(super) enum Next {
    Close,
    KeepAlive(Vec<u8>),
    Stream(Client),
}

/// Sends `response`, keeping the connection if `keep_alive`.
pub(super) fn answer(
    handshake: Handshake<'_, Io<'_, dyn Socket>>,
    response: &Response,
    keep_alive: bool,
) -> Result<Next, Error> {
    if keep_alive {
        let (_, rest) = handshake.respond_and_keep(response)?;
        Ok(Next::KeepAlive(rest))
    } else {
        handshake.respond(response)?;
        Ok(Next::Close)
    }
}

/// Whether the client will send another request on this connection: an
/// HTTP/1.1 request without `Connection: close`.
pub(super) fn wants_keep_alive(request: &Request<'_>) -> bool {
    request.minor_version() == 1
        && !request
            .header("Connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
}

pub(super) fn not_allowed(allow: &str) -> Response {
    Response::text(405, "method not allowed\n").header("Allow", allow)
}

/// The refusal of a request from another site's page, checked as an
/// upgrade's `Origin` is (`Config::allowed_origins`).
pub(super) fn check_origin(request: &Request<'_>, config: &Config) -> Option<Response> {
    match request.check_origin(config) {
        Ok(()) => None,
        Err(e) => Some(Response::refusal(e)),
    }
}

/// `POST /send?session=ID`: a message of a session's page, handed to its
/// handler.
pub(super) fn send(
    task: &Task,
    mut handshake: Handshake<'_, Io<'_, dyn Socket>>,
    keep_alive: bool,
) -> Result<Next, Error> {
    let request = handshake.request();
    if request.method() != "POST" {
        return answer(handshake, &not_allowed("POST"), keep_alive);
    }
    if let Some(refusal) = check_origin(&request, &task.config) {
        return answer(handshake, &refusal, false);
    }
    let Some(length) = request
        .header("Content-Length")
        .map(|v| v.trim().parse::<usize>())
    else {
        // A chunked body is not read: the client must say how long it is.
        return answer(
            handshake,
            &Response::text(411, "Content-Length required\n"),
            false,
        );
    };
    let Ok(length) = length else {
        return answer(
            handshake,
            &Response::text(400, "bad Content-Length\n"),
            false,
        );
    };
    if length > task.config.max_message_size {
        return answer(
            handshake,
            &Response::text(413, "message too large\n"),
            false,
        );
    }
    let session = request
        .query_param("session")
        .and_then(|id: String| task.shared.sessions.get(&id));
    let binary = request
        .header("Content-Type")
        .is_some_and(|t| t.trim().starts_with("application/octet-stream"));
    let body = handshake.read_body(length)?;
    let Some(session) = session else {
        return answer(
            handshake,
            &Response::text(404, "no such session\n"),
            keep_alive,
        );
    };
    let message = match (binary, String::from_utf8(body)) {
        (true, Err(e)) => Message::Binary(e.into_bytes()),
        (true, Ok(text)) => Message::Binary(text.into_bytes()),
        (false, Ok(text)) => Message::Text(text),
        (false, Err(_)) => {
            return answer(
                handshake,
                &Response::text(400, "the body is not UTF-8\n"),
                keep_alive,
            )
        }
    };
    // `c`: the page ends its session (a long-poll page that goes away).
    if message == Message::Text("c".into()) {
        session.close();
        return answer(handshake, &Response::new(204), keep_alive);
    }
    let response = match session.deliver(message) {
        Ok(()) => Response::new(204),
        Err(Refused::Full) => {
            Response::text(429, "the session's inbox is full\n").header("Retry-After", "1")
        }
        Err(Refused::Closed) => Response::text(404, "no such session\n"),
    };
    answer(handshake, &response, keep_alive)
}

/// `GET /latest`: the JSON of [`json::latest`], with an `ETag` (the epoch
/// and each listed topic's last sequence number) that a poller sends back
/// in `If-None-Match` to get `304` while nothing changed.
pub(super) fn latest(hub: &Hub, request: &Request<'_>) -> Response {
    if !matches!(request.method(), "GET" | "HEAD") {
        return not_allowed("GET, HEAD");
    }
    let topics = request.query_param("topics");
    let names: Vec<String> = match &topics {
        Some(list) => list
            .split(',')
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect(),
        None => hub.topics().iter().map(|t| t.to_string()).collect(),
    };
    if !names.iter().all(|n| v1::is_topic(n)) {
        return Response::text(400, "bad topic name\n");
    }
    let mut tag = format!("\"{:016x}", hub.epoch());
    for name in &names {
        tag.push_str(&format!("-{}", hub.last_seq(name)));
    }
    tag.push('"');
    let cached = request
        .header("If-None-Match")
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if cached {
        return Response::new(304)
            .header("ETag", tag)
            .header("Cache-Control", "no-cache");
    }
    match json::latest(hub, topics.as_deref()) {
        Ok(body) => Response::new(200)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-cache")
            .header("ETag", tag)
            .body(body),
        Err(e) => Response::text(400, format!("{e}\n")),
    }
}

/// The refusal of a bad request, as a plain-text 400.
pub(super) fn bad_request(why: &str) -> Response {
    Response::text(400, format!("{why}\n"))
}
