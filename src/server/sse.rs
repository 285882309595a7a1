//! A Server-Sent Events stream (`docs/transports.md`): the answer's head
//! and welcome, the session's subscriptions resumed from `Last-Event-ID`,
//! then the client is the handler's, like a WebSocket one; its writer
//! thread writes the events.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::connection::Handshake;
use crate::error::Error;
use crate::handshake::Request;
use crate::hub::Since;
use crate::server::client::{Client, Link, Via};
use crate::server::framing::Framing;
use crate::server::http::{self, check_origin, not_allowed};
use crate::server::session::{Kind, Session};
use crate::server::task::Task;
use crate::socket::{Io, Socket};
use crate::wire::cursor::Cursor;
use crate::wire::{sse, v1, Notice};

/// The head of every stream: never cached, never buffered by a proxy
/// (nginx reads `X-Accel-Buffering`), and no length: it ends when the
/// connection does.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n";

/// Starts the stream of `GET /sse?topics=a,b`; returns its client, or
/// `None` when the request was refused (its answer sent).
///
/// # Errors
///
/// If the connection fails.
pub(super) fn start(
    task: &Task,
    handshake: Handshake<'_, Io<'_, dyn Socket>>,
) -> Result<Option<Client>, Error> {
    let request = handshake.request();
    let refusal = match request.method() {
        "GET" => check_origin(&request, &task.config),
        _ => Some(not_allowed("GET")),
    };
    let wanted = refusal.map_or_else(|| wanted(&request), Err);
    let (topics, cursor, past) = match wanted {
        Ok(wanted) => wanted,
        Err(refusal) => {
            http::answer(handshake, &refusal, false)?;
            return Ok(None);
        }
    };
    let shared = &task.shared;
    let outbox = Arc::clone(&task.outbox);
    outbox.set_framing(Framing::EventStream);
    let session = Session::new(
        Kind::Stream,
        task.peer.ip(),
        &request,
        Arc::clone(&outbox),
        cursor.clone(),
    );
    let mut head = HEAD.to_vec();
    head.extend_from_slice(sse::RETRY);
    head.extend_from_slice(&sse::notice(&Notice::Welcome {
        epoch: shared.hub.epoch(),
        session: Some(&session.id),
        heartbeat: task.config.heartbeat_interval,
    }));
    // Listed before the welcome names it: the page may POST to it at once.
    shared.sessions.insert(&session);
    let started = handshake.respond_streaming(&head).and_then(|_| {
        // The client sends nothing more: its writer's reads only look for
        // the end of the stream, and must not wait.
        Ok(task
            .stream
            .set_read_timeout(Some(Duration::from_millis(1)))?)
    });
    if let Err(e) = started {
        session.close();
        shared.sessions.remove(&session.id);
        return Err(e);
    }

    let link = Arc::new(Link {
        id: task.id,
        shared: Arc::clone(shared),
        stream: Arc::clone(&task.stream),
        outbox: Arc::clone(&outbox),
        last_received: AtomicU64::new(shared.millis()),
        cold: AtomicBool::new(true),
        cut: OnceLock::new(),
        session: Some(Arc::clone(&session)),
    });
    if let Some(live) = shared.connections().get_mut(&task.id) {
        live.outbox = Some(Arc::clone(&outbox));
    }
    shared.counters.clients.fetch_add(1, Ordering::Relaxed);
    log::debug!("SSE session {} for {}", session.id, task.peer);
    let client = Client {
        id: task.id,
        peer: task.peer,
        outbox,
        via: Via::Stream { link, session },
        done: false,
        config: Arc::clone(&task.config),
        shared: Arc::clone(shared),
        subscriptions: Cell::new(0),
    };
    for topic in &topics {
        client.resume(topic, since(&cursor, topic, past));
    }
    Ok(Some(client))
}

/// Where a stream or a first poll starts `topic`: after its position in
/// `cursor`, or else with the messages of the last `past`, if asked.
pub(super) fn since(cursor: &Cursor, topic: &str, past: Option<Duration>) -> Since {
    Since {
        after: cursor.position(topic),
        past,
    }
}

/// The topics of a stream or a first poll (`topics=a,b`), where to resume
/// them from (the `Last-Event-ID` header, else the `lastEventID` (SSE) or
/// `after` (long polling) parameter), and how much of the recent past to
/// send of those not recovered (`past=<seconds>`).
pub(super) fn wanted(
    request: &Request<'_>,
) -> Result<(Vec<String>, Cursor, Option<Duration>), crate::handshake::Response> {
    let list = request.query_param("topics").unwrap_or_default();
    let mut topics: Vec<String> = Vec::new();
    for topic in list.split(',').filter(|t| !t.is_empty()) {
        if !v1::is_topic(topic) {
            return Err(http::bad_request("bad topic name"));
        }
        if !topics.iter().any(|t| t == topic) {
            topics.push(topic.to_string());
        }
    }
    if topics.len() > v1::MAX_SUBSCRIPTIONS {
        return Err(http::bad_request("too many topics"));
    }
    let from = request
        .header("Last-Event-ID")
        .map(str::to_string)
        .or_else(|| request.query_param("lastEventID"))
        .or_else(|| request.query_param("after"));
    let cursor = match from.as_deref().map(str::trim) {
        None | Some("") => Cursor::default(),
        Some(text) => Cursor::parse(text).map_err(|_| http::bad_request("bad cursor"))?,
    };
    let past = match request.query_param("past") {
        None => None,
        Some(seconds) => {
            Some(v1::parse_past(&seconds).ok_or_else(|| http::bad_request("bad past"))?)
        }
    };
    Ok((topics, cursor, past))
}
