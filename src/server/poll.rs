//! Long polling (`docs/transports.md`): the first poll opens a session
//! (its handler runs on a thread of its own, as a WebSocket client's runs
//! on its connection's); each next poll is held until the session's outbox
//! has events, then answers them as JSON with the cursor to poll from.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::connection::Handshake;
use crate::error::Error;
use crate::handshake::Response;
use crate::hub::Encoded;
use crate::server::client::{Client, Via};
use crate::server::framing::Framing;
use crate::server::http::{self, check_origin, not_allowed, Next};
use crate::server::outbox::{Outbox, Wake};
use crate::server::session::{Kind, Session, State};
use crate::server::shared::IpKey;
use crate::server::sse;
use crate::server::task::Task;
use crate::socket::{Io, Socket};
use crate::wire::cursor::Cursor;

/// The most events in one answer; the client polls again at once for the
/// rest.
pub(crate) const MAX_EVENTS: usize = 1000;

/// Answers `GET /poll`: opens a session, or holds a poll of one.
///
/// # Errors
///
/// If the connection fails.
pub(super) fn serve(
    task: &Task,
    handshake: Handshake<'_, Io<'_, dyn Socket>>,
    keep_alive: bool,
) -> Result<Next, Error> {
    let request = handshake.request();
    let refusal = match request.method() {
        "GET" => check_origin(&request, &task.config),
        _ => Some(not_allowed("GET")),
    };
    if let Some(refusal) = refusal {
        return http::answer(handshake, &refusal, keep_alive);
    }
    let after = match request.query_param("after") {
        None => None,
        Some(text) => match Cursor::parse(text.as_str()) {
            Ok(cursor) => Some(cursor.to_string()),
            Err(_) => return http::answer(handshake, &http::bad_request("bad cursor"), keep_alive),
        },
    };
    let (session, hold) = match request.query_param("session") {
        Some(id) => match task.shared.sessions.get(&id) {
            Some(session) if session.kind == Kind::Poll && !session.is_closed() => (session, true),
            _ => {
                let gone = Response::text(404, "no such session\n");
                return http::answer(handshake, &gone, keep_alive);
            }
        },
        None => match open(task, &request) {
            Ok(session) => (session, false),
            Err(refusal) => return http::answer(handshake, &refusal, keep_alive),
        },
    };
    let response = match take(task, &session, after, hold) {
        Some(body) => Response::new(200)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store")
            .body(body),
        None => Response::text(404, "no such session\n"),
    };
    http::answer(handshake, &response, keep_alive)
}

/// Opens a session for a first poll: subscribes its topics, resumed from
/// `after`, and starts its handler.
fn open(task: &Task, request: &crate::handshake::Request<'_>) -> Result<Arc<Session>, Response> {
    let (topics, cursor, past) = sse::wanted(request)?;
    let shared = &task.shared;
    let config = &task.config;
    // Each session costs a thread (its handler's): the cap on connections,
    // and on connections from one address, counts them.
    let ip = task.peer.ip();
    let limited = config.limit_loopback || !ip.to_canonical().is_loopback();
    let (polling, from_ip) = shared.sessions.polling(limited.then_some(ip));
    let (open, open_from_ip) = {
        let connections = shared.connections();
        (connections.len(), connections.count_of(IpKey::of(ip)))
    };
    let full = open + polling >= config.max_connections;
    if full || (limited && open_from_ip + from_ip >= config.max_connections_per_ip) {
        bump_refused(task);
        return Err(Response::text(503, "too many clients\n").header("Retry-After", "1"));
    }
    let outbox = Outbox::new(
        config.queue_messages.max(MAX_EVENTS),
        config.queue_bytes,
        None,
        None,
        Arc::clone(&shared.counters),
    );
    outbox.set_framing(Framing::Poll);
    let mut start = Cursor::new(shared.hub.epoch());
    if cursor.epoch == shared.hub.epoch() {
        start.positions = cursor.positions.clone();
    }
    let session = Session::new(Kind::Poll, ip, request, Arc::clone(&outbox), start);
    shared.sessions.insert(&session);
    shared.counters.clients.fetch_add(1, Ordering::Relaxed);
    log::debug!("long-poll session {} for {}", session.id, task.peer);
    let client = Client {
        id: shared.next_id.fetch_add(1, Ordering::Relaxed),
        peer: task.peer,
        outbox,
        via: Via::Poll {
            session: Arc::clone(&session),
        },
        done: false,
        config: Arc::clone(config),
        shared: Arc::clone(shared),
        subscriptions: Cell::new(0),
    };
    for topic in &topics {
        client.resume(topic, sse::since(&cursor, topic, past));
    }
    let handler = Arc::clone(&task.handler);
    let spawned = shared
        .threads
        .spawn("boardcast-session", config.stack_size, move || {
            handler(client)
        });
    if let Err(e) = spawned {
        log::warn!("cannot spawn a session thread: {e}");
        session.close();
        shared.sessions.remove(&session.id);
        return Err(Response::text(503, "too many clients\n").header("Retry-After", "1"));
    }
    Ok(session)
}

fn bump_refused(task: &Task) {
    crate::hub::bump(&task.shared.counters.rejected_full);
}

/// The session's events as the answer's JSON: first those of the last
/// answer if the client polls from before it (it was lost), then what its
/// outbox holds, waiting for some up to the poll timeout if `hold`. `None`
/// when the session is over.
///
/// One poll of a session is served at a time: a new one (the client's
/// connection was cut, and it polled again) makes a held one give way
/// without taking anything, so nothing is taken for a client that is gone.
fn take(task: &Task, session: &Session, after: Option<String>, hold: bool) -> Option<String> {
    let outbox = &session.outbox;
    let deadline = Instant::now() + longest_hold(task);
    let ticket = {
        let mut state = session.state();
        state.polling += 1;
        state.ticket += 1;
        state.ticket
    };
    // An older poll still held gives way.
    Wake::wake(session);
    if hold {
        loop {
            let seen = session.generation();
            {
                let state = session.state();
                if state.ticket != ticket || lost(&state, &after) {
                    break;
                }
            }
            let stopping = task.shared.stopping.load(Ordering::Acquire);
            if !outbox.rx.is_empty() || outbox.is_closing() || session.is_closed() || stopping {
                break;
            }
            if !session.wait(seen, deadline) {
                break;
            }
        }
    }
    let mut state = session.state();
    state.polling -= 1;
    state.last_poll = Instant::now();
    if state.ticket != ticket {
        return Some(answer(task, session, &state.cursor.to_string(), &[]));
    }
    if outbox.is_closing() && !state.closed {
        // Cut as too slow, or closed by its handler: it is over.
        drop(state);
        session.close();
        return None;
    }
    let mut events = match lost(&state, &after) {
        true => std::mem::take(&mut state.sent),
        false => Vec::new(),
    };
    while events.len() < MAX_EVENTS {
        match outbox.try_take() {
            Some(event) => events.push(event),
            None => break,
        }
    }
    for event in &events {
        if let Some(topic) = event.topic() {
            state.cursor.set(topic, event.seq());
        }
    }
    let cursor = state.cursor.to_string();
    let body = answer(task, session, &cursor, &events);
    state.sent = events;
    state.sent_after = after;
    drop(state);
    outbox.notify_space();
    Some(body)
}

/// Whether the last answer was lost: it moved the cursor, and the client
/// polls from before it. (One that only carried messages for the session
/// alone leaves the cursor as it was: those are sent at most once, as to a
/// WebSocket.)
fn lost(state: &State, after: &Option<String>) -> bool {
    !state.sent.is_empty()
        && after.is_some()
        && *after == state.sent_after
        && *after != Some(state.cursor.to_string())
}

/// The longest a poll is held: `poll_timeout`, or less, so that a page
/// hears from the server every `heartbeat_interval` (an empty answer).
fn longest_hold(task: &Task) -> Duration {
    let timeout = task.shared.transports().poll_timeout;
    task.config
        .heartbeat_interval
        .map_or(timeout, |interval| interval.min(timeout))
}

/// The answer's JSON.
fn answer(task: &Task, session: &Session, cursor: &str, events: &[Encoded]) -> String {
    let mut body = String::with_capacity(128 + events.len() * 64);
    body.push_str("{\"session\":\"");
    body.push_str(&session.id);
    body.push_str(&format!(
        "\",\"epoch\":\"{:016x}\",\"heartbeat\":{},\"cursor\":\"{cursor}\",\"events\":[",
        task.shared.hub.epoch(),
        longest_hold(task).as_millis()
    ));
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(std::str::from_utf8(session.outbox.bytes(event)).unwrap_or("null"));
    }
    body.push_str("]}");
    body
}
