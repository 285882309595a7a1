//! Transports: N clients of one of the broadcast example's transports
//! (`docs/transports.md`), each subscribed to its topic, and what every
//! delivered message costs on the wire and on the server.
//!
//! - `ws`: WebSocket speaking `boardcast.v1` (`s bench` after the `w`);
//! - `sse`: `GET /sse?topics=bench`, a Server-Sent Events stream;
//! - `poll`: long polling, `GET /poll?topics=bench`, then
//!   `GET /poll?session=ID&after=CURSOR` again as soon as each answer is
//!   read, on one kept-alive connection;
//! - `latest`: polling, `GET /latest?topics=bench` every `--interval`
//!   seconds with `If-None-Match`, on one kept-alive connection; the
//!   clients' phases are spread over the interval.
//!
//! All clients share one `epoll` loop (`mio`). After the clients connect
//! and each has its first message, a warm-up, then a window of
//! `--duration` seconds is measured:
//!
//! - deliveries: messages read during the window (for `latest`, answers
//!   that brought a reading newer than the client had);
//! - latency: receive time minus the payload's send time, for each
//!   message read during the window; for `latest`, staleness too: the age
//!   of the newest reading a client holds when each answer (`200` or
//!   `304`) arrives, and the readings published between two it got
//!   (missed: what polling skips by design);
//! - bytes read and written on every socket during the window, HTTP heads
//!   and WebSocket frame headers included (TCP/IP headers are not visible
//!   here: the kernel's count of TCP segments sent over the window is
//!   reported beside, machine-wide);
//! - lost: sequence numbers a streaming client skipped (`ws`, `sse`,
//!   `poll`), plus, for each still connected after the grace, those it
//!   never received up to the topic's last sequence number at the end of
//!   the window (asked of `/latest` on a connection of its own);
//! - failures: connections refused, answers other than the expected
//!   status (by status), requests not answered in time, connections the
//!   server closed;
//! - the server's CPU time over the window (`/proc/PID/stat`), its RSS and
//!   thread count before the clients connected and at the end of the
//!   window (`/proc/PID/status`), and its threads again `--settle`
//!   seconds after the clients closed.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Registry, Token};
use serde_json::{json, Value};

use crate::args::Args;
use crate::echo::{cpu, cpu_share};
use crate::http::{self, Head};
use crate::wire::{self, opcode};
use crate::{histogram, procfs, quantile_us, round3, unix_nanos};

/// The broadcast example's topic.
const TOPIC: &str = "bench";

/// How often every socket and timer is looked at, events or not.
const SWEEP: Duration = Duration::from_millis(100);

/// The longest a `/latest` answer, a `/poll` answer (past the server's
/// 25 s hold) or a connection's first answer may take before it counts as
/// timed out.
const LATEST_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_TIMEOUT: Duration = Duration::from_secs(35);
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed request is tried again after this long.
const RETRY: Duration = Duration::from_secs(1);

/// The transport a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket, `boardcast.v1`.
    Ws,
    /// Server-Sent Events.
    Sse,
    /// Long polling.
    Poll,
    /// `GET /latest` at an interval.
    Latest,
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Transport, String> {
        match s {
            "ws" => Ok(Transport::Ws),
            "sse" => Ok(Transport::Sse),
            "poll" => Ok(Transport::Poll),
            "latest" => Ok(Transport::Latest),
            _ => Err(format!("unknown transport {s:?} (ws, sse, poll or latest)")),
        }
    }
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Sse => "sse",
            Transport::Poll => "poll",
            Transport::Latest => "latest",
        }
    }
}

/// Where a client's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No connection (not yet, or between requests after a failure).
    Down,
    /// A request sent, its response head awaited.
    Head,
    /// A response head read; its body of `len` bytes awaited.
    Body {
        status: u16,
        len: usize,
        close: bool,
    },
    /// WebSocket frames.
    Frames,
    /// Server-Sent Events.
    Events,
    /// A polling client between requests, connected.
    Idle,
    /// Ended for good (the server closed a stream, or a refusal).
    Ended,
}

/// One client's counts.
#[derive(Debug, Default)]
struct Stats {
    /// When its first message arrived (UNIX ns).
    first_ns: Option<u64>,
    /// The last sequence number it has, and its payload's send time.
    last_seq: Option<u64>,
    newest_sent: Option<u64>,
    /// During the window: messages delivered, bytes read and written,
    /// requests sent, `304` answers, sequence numbers skipped (streams:
    /// lost; `latest`: missed), duplicates, answers in all.
    delivered: u64,
    bytes_in: u64,
    bytes_out: u64,
    requests: u64,
    not_modified: u64,
    skipped: u64,
    duplicates: u64,
    answers: u64,
    /// Failures, any time: statuses other than the expected one, timed out
    /// requests, connection errors (by kind), long-poll sessions opened
    /// again after a `404`.
    statuses: BTreeMap<u16, u64>,
    timeouts: u64,
    errors: BTreeMap<String, u64>,
    reopened: u64,
    /// Whether the server ended it (a stream closed, a refusal).
    ended: bool,
}

/// What is measured, shared by all clients.
struct Ctx {
    addr: SocketAddr,
    transport: Transport,
    interval: Duration,
    /// The receive-time window, UNIX ns; `None` before it is set.
    window: Option<(u64, u64)>,
    latency: Histogram<u64>,
    staleness: Histogram<u64>,
}

impl Ctx {
    fn in_window(&self, now: u64) -> bool {
        self.window.is_some_and(|(a, b)| now >= a && now <= b)
    }
}

struct Client {
    index: usize,
    stream: Option<mio::net::TcpStream>,
    phase: Phase,
    buf: Vec<u8>,
    filled: usize,
    /// Bytes still to write.
    out: Vec<u8>,
    /// Long polling: the session and the cursor to go on from.
    session: String,
    cursor: String,
    /// Polling: the last `ETag`.
    etag: String,
    /// When the request in flight was sent, and when the next is due.
    sent_at: Option<Instant>,
    next_at: Option<Instant>,
    /// Polling: when the request in flight (or the last) was due.
    slot: Option<Instant>,
    stats: Stats,
}

impl Client {
    fn new(index: usize) -> Client {
        Client {
            index,
            stream: None,
            phase: Phase::Down,
            buf: vec![0u8; 16 << 10],
            filled: 0,
            out: Vec::new(),
            session: String::new(),
            cursor: String::new(),
            etag: String::new(),
            sent_at: None,
            next_at: None,
            slot: None,
            stats: Stats::default(),
        }
    }

    fn error(&mut self, what: &str) {
        *self.stats.errors.entry(what.to_string()).or_default() += 1;
    }

    /// Opens its connection and sends its first request.
    fn open(&mut self, ctx: &Ctx, registry: &Registry) {
        self.drop_connection(registry);
        let stream = match TcpStream::connect_timeout(&ctx.addr, Duration::from_secs(2)) {
            Ok(s) => s,
            Err(e) => {
                let kind = format!("connect: {:?}", e.kind());
                self.error(&kind);
                self.retry_or_end(ctx);
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        wire::set_reset_on_close(&stream);
        if stream.set_nonblocking(true).is_err() {
            self.error("connect: nonblocking");
            self.retry_or_end(ctx);
            return;
        }
        let mut stream = mio::net::TcpStream::from_std(stream);
        if registry
            .register(
                &mut stream,
                Token(self.index),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.error("register");
            self.retry_or_end(ctx);
            return;
        }
        self.stream = Some(stream);
        self.filled = 0;
        self.out.clear();
        let request = match ctx.transport {
            Transport::Ws => format!(
                "GET /bench HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Protocol: boardcast.v1\r\n\r\n",
                ctx.addr,
                wire::KEY
            ),
            Transport::Sse => format!(
                "GET /sse?topics={TOPIC} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
                ctx.addr
            ),
            Transport::Poll => self.poll_request(ctx),
            Transport::Latest => self.latest_request(ctx),
        };
        self.send(ctx, request.as_bytes());
    }

    /// A polling client tries again after [`RETRY`]; a stream has ended.
    fn retry_or_end(&mut self, ctx: &Ctx) {
        match ctx.transport {
            Transport::Ws | Transport::Sse => {
                self.phase = Phase::Ended;
                self.stats.ended = true;
            }
            Transport::Poll | Transport::Latest => {
                self.phase = Phase::Down;
                self.sent_at = None;
                self.next_at = Some(Instant::now() + RETRY);
            }
        }
    }

    fn drop_connection(&mut self, registry: &Registry) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
        }
        self.filled = 0;
        self.out.clear();
    }

    fn poll_request(&self, ctx: &Ctx) -> String {
        if self.session.is_empty() {
            let after = if self.cursor.is_empty() {
                String::new()
            } else {
                format!("&after={}", self.cursor)
            };
            format!(
                "GET /poll?topics={TOPIC}{after} HTTP/1.1\r\nHost: {}\r\n\r\n",
                ctx.addr
            )
        } else {
            format!(
                "GET /poll?session={}&after={} HTTP/1.1\r\nHost: {}\r\n\r\n",
                self.session, self.cursor, ctx.addr
            )
        }
    }

    fn latest_request(&self, ctx: &Ctx) -> String {
        let tag = if self.etag.is_empty() {
            String::new()
        } else {
            format!("If-None-Match: {}\r\n", self.etag)
        };
        format!(
            "GET /latest?topics={TOPIC} HTTP/1.1\r\nHost: {}\r\n{tag}\r\n",
            ctx.addr
        )
    }

    /// Sends an HTTP request on the connection (opening one if there is
    /// none) and awaits its head.
    fn request(&mut self, ctx: &Ctx, registry: &Registry) {
        if self.stream.is_none() {
            self.open(ctx, registry);
            return;
        }
        let request = match ctx.transport {
            Transport::Poll => self.poll_request(ctx),
            _ => self.latest_request(ctx),
        };
        self.send(ctx, request.as_bytes());
    }

    fn send(&mut self, ctx: &Ctx, bytes: &[u8]) {
        if ctx.transport != Transport::Ws || self.phase != Phase::Frames {
            self.phase = Phase::Head;
            self.sent_at = Some(Instant::now());
            self.next_at = None;
            if ctx.in_window(unix_nanos()) {
                self.stats.requests += 1;
            }
        }
        self.out.extend_from_slice(bytes);
        self.flush(ctx);
    }

    fn flush(&mut self, ctx: &Ctx) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        while !self.out.is_empty() {
            match stream.write(&self.out) {
                Ok(n) => {
                    if ctx.in_window(unix_nanos()) {
                        self.stats.bytes_out += n as u64;
                    }
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kind = format!("write: {:?}", e.kind());
                    self.error(&kind);
                    self.out.clear();
                    break;
                }
            }
        }
    }

    /// Reads what has arrived and handles it.
    fn pump(&mut self, ctx: &mut Ctx, registry: &Registry) {
        self.flush(ctx);
        for _ in 0..16 {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            if self.filled == self.buf.len() {
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
            let space = self.buf.len() - self.filled;
            match stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.closed(ctx, registry, "closed by the server");
                    return;
                }
                Ok(n) => {
                    if ctx.in_window(unix_nanos()) {
                        self.stats.bytes_in += n as u64;
                    }
                    self.filled += n;
                    if let Err(e) = self.handle(ctx, registry) {
                        self.error(&e);
                        self.drop_connection(registry);
                        self.retry_or_end(ctx);
                        return;
                    }
                    if n < space {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let what = format!("read: {:?}", e.kind());
                    self.closed(ctx, registry, &what);
                    return;
                }
            }
        }
    }

    /// The connection ended: a stream is over; a kept-alive polling
    /// connection closed between requests is opened again when the next
    /// is due, one closed during a request is an error and tried again.
    fn closed(&mut self, ctx: &Ctx, registry: &Registry, what: &str) {
        let idle = matches!(self.phase, Phase::Idle | Phase::Down);
        self.drop_connection(registry);
        match ctx.transport {
            Transport::Ws | Transport::Sse => {
                if self.phase != Phase::Ended {
                    self.error(what);
                    self.phase = Phase::Ended;
                    self.stats.ended = true;
                }
            }
            Transport::Poll | Transport::Latest => {
                if idle {
                    self.phase = Phase::Down;
                } else {
                    self.error(what);
                    self.retry_or_end(ctx);
                }
            }
        }
    }

    /// Handles every complete unit in the buffer.
    fn handle(&mut self, ctx: &mut Ctx, registry: &Registry) -> Result<(), String> {
        let mut at = 0;
        loop {
            let rest = &self.buf[at..self.filled];
            match self.phase {
                Phase::Head => {
                    let Some(end) = http::head_end(rest) else {
                        break;
                    };
                    let head = http::parse_head(&rest[..end])?;
                    at += end;
                    self.head(ctx, &head)?;
                }
                Phase::Body { status, len, close } => {
                    if rest.len() < len {
                        break;
                    }
                    let body = rest[..len].to_vec();
                    at += len;
                    self.answer(ctx, registry, status, &body, close)?;
                    if self.stream.is_none() {
                        break;
                    }
                }
                Phase::Frames => {
                    let Some(header) = wire::parse_header(rest).map_err(|e| e.to_string())? else {
                        break;
                    };
                    let total = header.len + header.payload;
                    if rest.len() < total {
                        break;
                    }
                    let payload = rest[header.len..total].to_vec();
                    at += total;
                    self.frame(ctx, header, &payload)?;
                    if self.phase == Phase::Ended {
                        break;
                    }
                }
                Phase::Events => {
                    let Some(end) = http::event_end(rest) else {
                        break;
                    };
                    let event = http::parse_event(&rest[..end]);
                    at += end;
                    if let Some(event) = event {
                        self.event(ctx, &event)?;
                    }
                }
                Phase::Idle | Phase::Down | Phase::Ended => {
                    if !rest.is_empty() {
                        return Err("bytes while no request was in flight".into());
                    }
                    break;
                }
            }
        }
        self.buf.copy_within(at..self.filled, 0);
        self.filled -= at;
        Ok(())
    }

    fn head(&mut self, ctx: &Ctx, head: &Head) -> Result<(), String> {
        match ctx.transport {
            Transport::Ws => {
                if head.status != 101 {
                    return self.refused(head.status);
                }
                if head.protocol.as_deref() != Some("boardcast.v1") {
                    return Err("boardcast.v1 not selected".into());
                }
                self.phase = Phase::Frames;
                self.sent_at = None;
            }
            Transport::Sse => {
                if head.status != 200 {
                    return self.refused(head.status);
                }
                self.phase = Phase::Events;
                self.sent_at = None;
            }
            Transport::Poll | Transport::Latest => {
                self.phase = Phase::Body {
                    status: head.status,
                    len: head.content_length.unwrap_or(0),
                    close: head.close,
                };
                if let Some(tag) = &head.etag {
                    if head.status == 200 || head.status == 304 {
                        self.etag = tag.clone();
                    }
                }
            }
        }
        Ok(())
    }

    /// A stream refused: counted, and the client ends.
    fn refused(&mut self, status: u16) -> Result<(), String> {
        *self.stats.statuses.entry(status).or_default() += 1;
        self.phase = Phase::Ended;
        self.stats.ended = true;
        Err(format!("refused with {status}"))
    }

    fn frame(&mut self, ctx: &mut Ctx, header: wire::Header, payload: &[u8]) -> Result<(), String> {
        match header.opcode {
            opcode::TEXT | opcode::BINARY => {
                let end = payload
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(payload.len());
                let line = std::str::from_utf8(&payload[..end]).map_err(|e| e.to_string())?;
                if line.starts_with("w ") {
                    let s = wire::masked_frame(
                        opcode::TEXT,
                        format!("s {TOPIC}").as_bytes(),
                        [7, 3, 1, 9],
                    );
                    self.send(ctx, &s);
                } else if let Some(rest) = line.strip_prefix("m ") {
                    let seq = rest
                        .rsplit(' ')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .ok_or("an m line without a seq")?;
                    let body = payload.get(end + 1..).unwrap_or_default();
                    let sent = http::sent_ns(body, header.opcode == opcode::BINARY)
                        .ok_or("a message without a send time")?;
                    self.deliver(ctx, seq, sent);
                } else if line.starts_with("e ") {
                    self.error(line);
                }
            }
            opcode::PING => {
                let pong = wire::masked_frame(opcode::PONG, payload, [1, 2, 3, 4]);
                self.send(ctx, &pong);
            }
            opcode::CLOSE => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                self.error(&format!("close {}", code.unwrap_or(1005)));
                self.phase = Phase::Ended;
                self.stats.ended = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn event(&mut self, ctx: &mut Ctx, event: &http::Event) -> Result<(), String> {
        let binary = match event.kind.as_str() {
            "" | "message" => false,
            "binary" => true,
            "welcome" | "subscribed" | "h" => return Ok(()),
            other => {
                self.error(&format!("event {other}"));
                return Ok(());
            }
        };
        let seq = event
            .id
            .rsplit('~')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or("an event without a seq in its id")?;
        let payload = if binary {
            http::base64(&event.data).ok_or("bad base64")?
        } else {
            event.data.as_bytes().to_vec()
        };
        let sent = http::sent_ns(&payload, binary).ok_or("a message without a send time")?;
        self.deliver(ctx, seq, sent);
        Ok(())
    }

    /// A complete polling answer.
    fn answer(
        &mut self,
        ctx: &mut Ctx,
        registry: &Registry,
        status: u16,
        body: &[u8],
        close: bool,
    ) -> Result<(), String> {
        let now = unix_nanos();
        self.sent_at = None;
        if ctx.in_window(now) {
            self.stats.answers += 1;
        }
        let mut again = None;
        match (ctx.transport, status) {
            (Transport::Poll, 200) => {
                let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                self.session = v["session"].as_str().unwrap_or_default().to_string();
                self.cursor = v["cursor"].as_str().unwrap_or_default().to_string();
                for event in v["events"].as_array().into_iter().flatten() {
                    if event["type"] != "m" {
                        continue;
                    }
                    let seq = event["seq"].as_u64().ok_or("an event without a seq")?;
                    let binary = event["binary"].as_bool().unwrap_or(false);
                    let data = event["data"].as_str().unwrap_or_default();
                    let payload = if binary {
                        http::base64(data).ok_or("bad base64")?
                    } else {
                        data.as_bytes().to_vec()
                    };
                    let sent =
                        http::sent_ns(&payload, binary).ok_or("a message without a send time")?;
                    self.deliver(ctx, seq, sent);
                }
                again = Some(Instant::now());
            }
            (Transport::Poll, 404) => {
                // The session is gone: open another, resumed from the cursor.
                self.stats.reopened += 1;
                self.session.clear();
                again = Some(Instant::now());
            }
            (Transport::Latest, 200 | 304) => {
                if status == 200 {
                    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                    let reading = &v[TOPIC];
                    if let Some(seq) = reading["seq"].as_u64() {
                        let binary = reading["binary"].as_bool().unwrap_or(false);
                        let data = reading["data"].as_str().unwrap_or_default();
                        let payload = if binary {
                            http::base64(data).ok_or("bad base64")?
                        } else {
                            data.as_bytes().to_vec()
                        };
                        let sent = http::sent_ns(&payload, binary)
                            .ok_or("a reading without a send time")?;
                        self.deliver(ctx, seq, sent);
                    }
                } else if ctx.in_window(now) {
                    self.stats.not_modified += 1;
                }
                if let Some(sent) = self.stats.newest_sent {
                    if ctx.in_window(now) {
                        let _ = ctx.staleness.record(now.saturating_sub(sent).max(1));
                    }
                }
                self.stats.first_ns.get_or_insert(now);
            }
            (_, status) => {
                *self.stats.statuses.entry(status).or_default() += 1;
                again = Some(Instant::now() + RETRY);
            }
        }
        if ctx.transport == Transport::Latest {
            // The next poll at this client's phase of the interval.
            let mut next = self.next_due(ctx);
            if status != 200 && status != 304 {
                next = next.max(Instant::now() + RETRY);
            }
            again = Some(next);
        }
        if close {
            self.drop_connection(registry);
            self.phase = Phase::Down;
        } else {
            self.phase = Phase::Idle;
        }
        match again {
            Some(at) if at <= Instant::now() => self.request(ctx, registry),
            other => self.next_at = other,
        }
        Ok(())
    }

    /// A polling client's next due time: its slot in the next interval.
    fn next_due(&self, ctx: &Ctx) -> Instant {
        let now = Instant::now();
        let mut next = self.slot.unwrap_or(now) + ctx.interval;
        while next <= now {
            next += ctx.interval;
        }
        next
    }

    fn deliver(&mut self, ctx: &mut Ctx, seq: u64, sent: u64) {
        let now = unix_nanos();
        let s = &mut self.stats;
        s.first_ns.get_or_insert(now);
        let in_window = ctx.in_window(now);
        if let Some(last) = s.last_seq {
            if seq <= last {
                if in_window {
                    s.duplicates += 1;
                }
                return;
            }
            if seq > last + 1 && in_window {
                s.skipped += seq - last - 1;
            }
        }
        s.last_seq = Some(seq);
        s.newest_sent = Some(sent);
        if in_window {
            s.delivered += 1;
            let _ = ctx.latency.record(now.saturating_sub(sent).max(1));
        }
    }

    /// Timers: a polling request that is due, or one that took too long.
    fn tick(&mut self, ctx: &Ctx, registry: &Registry, now: Instant) {
        if let Some(sent) = self.sent_at {
            let limit = match (ctx.transport, self.phase) {
                (_, Phase::Frames | Phase::Events) => None,
                (Transport::Latest, _) => Some(LATEST_TIMEOUT),
                (Transport::Poll, _) if !self.session.is_empty() => Some(POLL_TIMEOUT),
                _ => Some(OPEN_TIMEOUT),
            };
            if limit.is_some_and(|limit| now - sent > limit) {
                self.stats.timeouts += 1;
                self.drop_connection(registry);
                self.sent_at = None;
                match ctx.transport {
                    Transport::Ws | Transport::Sse => {
                        self.phase = Phase::Ended;
                        self.stats.ended = true;
                    }
                    _ => {
                        self.phase = Phase::Down;
                        self.next_at = Some(now);
                    }
                }
            }
        }
        if self.next_at.is_some_and(|at| at <= now)
            && matches!(self.phase, Phase::Idle | Phase::Down)
        {
            // Polling keeps its phase: the next is due an interval after
            // this one was.
            self.slot = self.next_at;
            self.request(ctx, registry);
        }
    }
}

/// Waits for events (at most `timeout`) and handles them; returns the
/// earliest timer of the clients that had some.
fn turn(
    poll: &mut Poll,
    events: &mut Events,
    clients: &mut [Client],
    ctx: &mut Ctx,
    timeout: Duration,
) -> Result<Option<Instant>, String> {
    match poll.poll(events, Some(timeout)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
        Err(e) => return Err(format!("epoll: {e}")),
    }
    let mut next: Option<Instant> = None;
    for event in events.iter() {
        let client = &mut clients[event.token().0];
        client.pump(ctx, poll.registry());
        if let Some(at) = client.next_at {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    Ok(next)
}

/// Runs every client until `stop`: events as they come, timers and a
/// sweep of every socket every [`SWEEP`] (a missed edge cannot starve a
/// client).
fn run_until(
    poll: &mut Poll,
    events: &mut Events,
    clients: &mut [Client],
    ctx: &mut Ctx,
    stop: Instant,
) -> Result<(), String> {
    let timers = matches!(ctx.transport, Transport::Poll | Transport::Latest);
    let mut swept = Instant::now() - SWEEP;
    let mut next_timer: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= stop {
            return Ok(());
        }
        let sweep = now - swept >= SWEEP;
        if sweep || (timers && next_timer.is_some_and(|t| t <= now)) {
            next_timer = None;
            for client in clients.iter_mut() {
                client.tick(ctx, poll.registry(), now);
                if sweep {
                    client.pump(ctx, poll.registry());
                }
                if let Some(at) = client.next_at {
                    next_timer = Some(next_timer.map_or(at, |n| n.min(at)));
                }
            }
            if sweep {
                swept = now;
            }
        }
        let mut timeout = (stop - now).min(SWEEP.saturating_sub(now - swept));
        if let Some(t) = next_timer.filter(|_| timers) {
            timeout = timeout.min(t.saturating_duration_since(now));
        }
        if let Some(at) = turn(poll, events, clients, ctx, timeout)? {
            next_timer = Some(next_timer.map_or(at, |n| n.min(at)));
        }
    }
}

/// The topic's last sequence number, from the `ETag` of `/latest` asked
/// on a connection of its own.
fn topic_seq(addr: SocketAddr) -> Option<u64> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "HEAD /latest?topics={TOPIC} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while http::head_end(&response).is_none() {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        response.extend_from_slice(&buf[..n]);
    }
    let head = http::parse_head(&response).ok()?;
    let tag = head.etag?;
    tag.trim_matches('"').rsplit('-').next()?.parse().ok()
}

/// Server figures at one moment.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    server_cpu: Option<f64>,
    own_cpu: Option<f64>,
    steal: Option<(u64, u64)>,
    segments: Option<u64>,
    seq: Option<u64>,
}

fn snapshot(pid: u32, addr: SocketAddr) -> Snapshot {
    Snapshot {
        server_cpu: cpu(pid),
        own_cpu: cpu(0),
        steal: procfs::steal_ticks().ok(),
        segments: procfs::tcp_out_segments().ok(),
        seq: topic_seq(addr),
    }
}

/// Runs one measurement; see `wsload --help`.
pub fn run(args: &Args) -> Result<Value, String> {
    let addr: SocketAddr = args.required("addr")?;
    let transport: Transport = args.required("transport")?;
    let count: usize = args.get("clients", 100)?;
    let interval = args.seconds("interval", 1.0)?;
    let warmup = args.seconds("warmup", 2.0)?;
    let duration = args.seconds("duration", 10.0)?;
    let grace = args.seconds("grace", 1.0)?;
    let first_timeout = args.seconds("first-timeout", 30.0)?;
    let settle = args.seconds("settle", 1.0)?;
    let server_pid: u32 = args.get("server-pid", 0)?;
    if duration.is_zero() || interval.is_zero() {
        return Err("--duration and --interval must be positive".into());
    }
    if count > 20_000 {
        return Err("--clients: at most 20000".into());
    }
    let before = procfs::status(server_pid).ok();
    let mut ctx = Ctx {
        addr,
        transport,
        interval,
        window: None,
        latency: histogram(),
        staleness: histogram(),
    };
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut clients: Vec<Client> = (0..count).map(Client::new).collect();

    // Connect, serving those connected meanwhile. Pollers start at their
    // phase of the interval: spread evenly (the golden ratio's multiples,
    // modulo 1), yet not in step with the publisher's period, as
    // independent pages would be.
    let started = Instant::now();
    for i in 0..count {
        if transport == Transport::Latest {
            let phase = interval.mul_f64((i as f64 * 0.618_033_988_749_895).fract());
            clients[i].next_at = Some(started + phase);
        } else {
            clients[i].open(&ctx, poll.registry());
        }
        if i % 10 == 9 {
            turn(
                &mut poll,
                &mut events,
                &mut clients,
                &mut ctx,
                Duration::ZERO,
            )?;
        }
    }
    let connect_s = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + first_timeout;
    while Instant::now() < deadline
        && clients
            .iter()
            .any(|c| c.stats.first_ns.is_none() && c.phase != Phase::Ended)
    {
        let stop = Instant::now() + Duration::from_millis(50);
        run_until(&mut poll, &mut events, &mut clients, &mut ctx, stop)?;
    }
    let waited_s = started.elapsed().as_secs_f64() - connect_s;

    let window_start = Instant::now() + warmup;
    let start_ns = unix_nanos() + warmup.as_nanos() as u64;
    ctx.window = Some((start_ns, start_ns + duration.as_nanos() as u64));
    run_until(&mut poll, &mut events, &mut clients, &mut ctx, window_start)?;
    let first = snapshot(server_pid, addr);
    let window_end = window_start + duration;
    run_until(&mut poll, &mut events, &mut clients, &mut ctx, window_end)?;
    let last = snapshot(server_pid, addr);
    let during = procfs::status(server_pid).ok();
    run_until(
        &mut poll,
        &mut events,
        &mut clients,
        &mut ctx,
        window_end + grace,
    )?;
    let stats: Vec<Stats> = clients
        .into_iter()
        .map(|mut c| {
            c.drop_connection(poll.registry());
            c.stats
        })
        .collect();
    std::thread::sleep(settle);
    let after = procfs::status(server_pid).ok();

    let secs = duration.as_secs_f64();
    let mut value = summarise(&ctx, &stats, secs, first, last);
    value["connect_s"] = json!(round3(connect_s));
    value["first_wait_s"] = json!(round3(waited_s));
    value["rate"] = json!(args.get::<f64>("rate", 0.0)?);
    value["payload"] = json!(args.string("payload", ""));
    if transport == Transport::Latest {
        value["interval_s"] = json!(interval.as_secs_f64());
    }
    if server_pid != 0 {
        let per = |f: fn(&procfs::Status) -> u64| match (before, during) {
            (Some(b), Some(d)) if count > 0 => {
                json!(round3((f(&d) as f64 - f(&b) as f64) / count as f64))
            }
            _ => Value::Null,
        };
        value["server_rss_kib_before"] = json!(before.map(|s| s.rss_kib));
        value["server_rss_kib"] = json!(during.map(|s| s.rss_kib));
        value["rss_per_client_kib"] = per(|s| s.rss_kib);
        value["server_threads_before"] = json!(before.map(|s| s.threads));
        value["server_threads"] = json!(during.map(|s| s.threads));
        value["threads_per_client"] = per(|s| s.threads);
        value["server_threads_after_close"] = json!(after.map(|s| s.threads));
    }
    Ok(value)
}

fn summarise(ctx: &Ctx, stats: &[Stats], secs: f64, first: Snapshot, last: Snapshot) -> Value {
    let sum = |f: fn(&Stats) -> u64| stats.iter().map(f).sum::<u64>();
    let deliveries = sum(|s| s.delivered);
    let per_delivery = |x: u64| {
        if deliveries == 0 {
            Value::Null
        } else {
            json!(round3(x as f64 / deliveries as f64))
        }
    };
    let streaming = ctx.transport != Transport::Latest;
    // Messages of the window a client still connected never got.
    let behind: u64 = match last.seq {
        Some(hi) if streaming => stats
            .iter()
            .filter(|s| !s.ended)
            .map(|s| hi.saturating_sub(s.last_seq.unwrap_or(0)))
            .sum(),
        _ => 0,
    };
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for s in stats {
        for (k, v) in &s.statuses {
            *statuses.entry(k.to_string()).or_default() += v;
        }
        for (k, v) in &s.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    let published = match (first.seq, last.seq) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let server_cpu_s = match (first.server_cpu, last.server_cpu) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let segments = match (first.segments, last.segments) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let n = stats.len().max(1) as f64;
    let bytes_in = sum(|s| s.bytes_in);
    let bytes_out = sum(|s| s.bytes_out);
    let answers_200 = sum(|s| s.answers) - sum(|s| s.not_modified);
    let mut value = json!({
        "kind": "transports",
        "transport": ctx.transport.name(),
        "clients": stats.len(),
        "window_s": secs,
        "published_in_window": published,
        "publish_rate": published.map(|p| round3(p as f64 / secs)),
        "deliveries": deliveries,
        "deliveries_per_s": round3(deliveries as f64 / secs),
        "received_any": stats.iter().filter(|s| s.first_ns.is_some()).count(),
        "starved": stats.iter().filter(|s| s.delivered == 0 && !s.ended).count(),
        "ended": stats.iter().filter(|s| s.ended).count(),
        "p50_us": quantile_us(&ctx.latency, 0.50),
        "p99_us": quantile_us(&ctx.latency, 0.99),
        "p999_us": quantile_us(&ctx.latency, 0.999),
        "max_us": ctx.latency.max() as f64 / 1000.0,
        "latency_samples": ctx.latency.len(),
        "staleness_p50_us": (!streaming).then(|| quantile_us(&ctx.staleness, 0.50)),
        "staleness_p99_us": (!streaming).then(|| quantile_us(&ctx.staleness, 0.99)),
        "staleness_max_us": (!streaming).then(|| ctx.staleness.max() as f64 / 1000.0),
        // Streams: sequence numbers skipped (lost). Polling: readings
        // published between two it got (missed by design), per answer.
        "lost": if streaming { sum(|s| s.skipped) } else { 0 },
        "behind_at_end": behind,
        "missed": if streaming { 0 } else { sum(|s| s.skipped) },
        "missed_per_answer": if streaming || answers_200 == 0 { Value::Null } else {
            json!(round3(sum(|s| s.skipped) as f64 / answers_200 as f64))
        },
        "duplicates": sum(|s| s.duplicates),
    });
    let wire = json!({
        "requests": sum(|s| s.requests),
        "answers": sum(|s| s.answers),
        "not_modified": sum(|s| s.not_modified),
        "requests_per_delivery": per_delivery(sum(|s| s.requests)),
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "bytes_in_per_delivery": per_delivery(bytes_in),
        "bytes_out_per_delivery": per_delivery(bytes_out),
        "bytes_in_per_s_per_client": round3(bytes_in as f64 / secs / n),
        "bytes_out_per_s_per_client": round3(bytes_out as f64 / secs / n),
        "tcp_segments_per_delivery": segments.map(per_delivery),
    });
    let server = json!({
        "statuses": statuses,
        "errors": errors,
        "timeouts": sum(|s| s.timeouts),
        "reopened": sum(|s| s.reopened),
        "server_cpu_s": server_cpu_s.map(round3),
        "server_cpu": cpu_share(first.server_cpu, last.server_cpu, secs),
        "cpu_us_per_delivery": match server_cpu_s {
            Some(c) if deliveries > 0 => json!(round3(c * 1e6 / deliveries as f64)),
            _ => Value::Null,
        },
        "client_cpu": cpu_share(first.own_cpu, last.own_cpu, secs),
        "steal": procfs::steal_share(first.steal, last.steal),
    });
    for part in [wire, server] {
        if let (Value::Object(all), Value::Object(part)) = (&mut value, part) {
            all.extend(part);
        }
    }
    value
}
