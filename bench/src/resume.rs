//! Resume: one `boardcast.v1` client (`docs/protocol.md`) that loses its
//! link again and again, and how long it takes to come back.
//!
//! The client subscribes to the broadcast server's topic (`s bench`) and
//! reads for `--read` seconds; then, `--reconnects` times, it drops its TCP
//! connection (a reset: no close handshake, as a lost link looks to the
//! client), waits `--outage` seconds (the server publishes what it misses:
//! the wait sets how much is replayed), reconnects, and resumes with
//! `s bench <epoch> <last seq>`. From the start of each TCP connect it
//! measures the time to:
//!
//! - the `101` (the handshake's response head read);
//! - the `r` line answering the resume;
//! - the first replayed `m` frame (a sequence number up to the `r` line's
//!   `last`);
//! - the last replayed one;
//! - being caught up: the first message whose send time (the payload's
//!   first 8 bytes, ns since the UNIX epoch) is after the reconnect
//!   started (it may be a replayed one, published during the handshake).
//!
//! Every message of every connection is checked against the one before it,
//! across reconnects: a sequence number more than one ahead is a gap (the
//! missing ones are counted), one not ahead a duplicate; either means the
//! resume lost its guarantee. So does an `r` with `recovered` 0 after the
//! first subscribe, or an epoch that changed. The payload's own sequence
//! number (bytes 8..16, counted from 0 by the broadcast example) must be
//! the envelope's minus one. Gaps after an `r … 1 …` (the server said
//! every message follows) are reported apart from those after an
//! `r … 0 …` (the server said some were no longer kept).
//!
//! `--listeners N` keeps N more `boardcast.v1` clients subscribed all
//! along, so that every publish makes the envelope (which the history
//! keeps with the message, and counts against the retention's bytes).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::args::Args;
use crate::wire::{self, opcode};
use crate::{procfs, round3, unix_nanos};

/// The subprotocol spoken.
const PROTOCOL: &str = "boardcast.v1";

/// The longest a blocking read waits before the deadlines are looked at.
const READ_SLICE: Duration = Duration::from_millis(50);

/// A `boardcast.v1` connection: its socket and what was read of it.
struct Link {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes read into `buf`, and how many of them were handled.
    filled: usize,
    used: usize,
}

/// A frame from the server, as the protocol sees it.
enum Incoming {
    /// A text line (`w`, `r`, `e`, ...), without its payload.
    Line(String),
    /// A published message: its sequence number and payload.
    Message {
        topic: String,
        seq: u64,
        payload: Vec<u8>,
    },
}

impl Link {
    fn new(stream: TcpStream, early: Vec<u8>) -> Link {
        let mut buf = vec![0u8; (64 << 10).max(early.len())];
        buf[..early.len()].copy_from_slice(&early);
        Link {
            stream,
            buf,
            filled: early.len(),
            used: 0,
        }
    }

    fn send_text(&mut self, text: &str) -> io::Result<()> {
        let frame = wire::masked_frame(opcode::TEXT, text.as_bytes(), [7, 3, 1, 9]);
        self.stream.write_all(&frame)
    }

    /// The next protocol frame, or `None` once `deadline` passed. Pings
    /// are answered; a close frame or an end of stream is an error.
    fn next(&mut self, deadline: Instant) -> io::Result<Option<Incoming>> {
        loop {
            if let Some(header) = wire::parse_header(&self.buf[self.used..self.filled])? {
                let total = header.len + header.payload;
                if self.filled - self.used >= total {
                    let start = self.used + header.len;
                    let payload = self.buf[start..self.used + total].to_vec();
                    self.used += total;
                    if let Some(incoming) = self.frame(header, payload)? {
                        return Ok(Some(incoming));
                    }
                    continue;
                }
                if total > self.buf.len() {
                    self.buf.resize(total, 0);
                }
            }
            // Need more bytes: make room at the front, then read.
            self.buf.copy_within(self.used..self.filled, 0);
            self.filled -= self.used;
            self.used = 0;
            if self.filled == self.buf.len() {
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left.min(READ_SLICE)))?;
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.filled += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn frame(&mut self, header: wire::Header, payload: Vec<u8>) -> io::Result<Option<Incoming>> {
        if !header.fin {
            return Err(wire::invalid(
                "a fragmented frame: not what the server sends",
            ));
        }
        match header.opcode {
            opcode::TEXT | opcode::BINARY => parse(payload).map(Some),
            opcode::PING => {
                let pong = wire::masked_frame(opcode::PONG, &payload, [1, 2, 3, 4]);
                self.stream.write_all(&pong)?;
                Ok(None)
            }
            opcode::PONG => Ok(None),
            opcode::CLOSE => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("the server closed the connection (code {code:?})"),
                ))
            }
            _ => Err(wire::invalid("an unknown opcode")),
        }
    }
}

/// Splits a data frame into its verb line and payload.
fn parse(payload: Vec<u8>) -> io::Result<Incoming> {
    let end = payload.iter().position(|&b| b == b'\n');
    let line = std::str::from_utf8(&payload[..end.unwrap_or(payload.len())])
        .map_err(|_| wire::invalid("a first line that is not UTF-8"))?;
    if let Some(rest) = line.strip_prefix("m ") {
        let (topic, seq) = rest
            .split_once(' ')
            .ok_or_else(|| wire::invalid("an m line without a seq"))?;
        let seq = seq
            .parse()
            .map_err(|_| wire::invalid("an m line with a bad seq"))?;
        let body = payload[end.map_or(payload.len(), |e| e + 1)..].to_vec();
        return Ok(Incoming::Message {
            topic: topic.to_string(),
            seq,
            payload: body,
        });
    }
    Ok(Incoming::Line(line.to_string()))
}

/// What every message is checked for, across connections.
#[derive(Debug, Default)]
struct Checks {
    /// The last sequence number received (of the current epoch).
    last: Option<u64>,
    /// Sequence numbers skipped (summed), and how many jumps skipped them.
    gaps: u64,
    gap_events: u64,
    /// Messages whose sequence number was not above the last one.
    duplicates: u64,
    /// Messages whose payload's own sequence number is not the envelope's
    /// minus one.
    payload_mismatch: u64,
    /// Messages in all, and the first and last (seq, receive time) seen,
    /// for the publish rate.
    messages: u64,
    first: Option<(u64, Instant)>,
    newest: Option<(u64, Instant)>,
}

impl Checks {
    /// Checks one message; returns whether it was new (not a duplicate).
    fn message(&mut self, seq: u64, payload: &[u8]) -> bool {
        self.messages += 1;
        if let Some(last) = self.last {
            if seq <= last {
                self.duplicates += 1;
                return false;
            }
            if seq > last + 1 {
                self.gaps += seq - last - 1;
                self.gap_events += 1;
            }
        }
        self.last = Some(seq);
        if payload.len() >= 16 {
            let own = u64::from_be_bytes(payload[8..16].try_into().expect("8 bytes"));
            if own + 1 != seq {
                self.payload_mismatch += 1;
            }
        }
        let now = Instant::now();
        self.first.get_or_insert((seq, now));
        self.newest = Some((seq, now));
        true
    }
}

/// One reconnect's times from the start of its TCP connect, in ns.
#[derive(Debug, Default)]
struct Times {
    upgraded: Vec<u64>,
    answered: Vec<u64>,
    first_replayed: Vec<u64>,
    replay_done: Vec<u64>,
    caught_up: Vec<u64>,
    /// Messages replayed per reconnect.
    replayed: Vec<u64>,
}

/// How one connection went, beyond the checks.
#[derive(Debug, Default)]
struct Session {
    /// The `r` line said the replay was not complete.
    not_recovered: bool,
    /// The deadline passed before it caught up.
    timed_out: bool,
    /// Sequence numbers skipped during this connection.
    gaps: u64,
}

/// Runs one resume measurement; see `wsload --help`.
pub fn run(args: &Args) -> Result<Value, String> {
    let addr: SocketAddr = args.required("addr")?;
    let topic = args.string("topic", "bench");
    let reconnects: usize = args.get("reconnects", 10)?;
    let outage = args.seconds("outage", 0.5)?;
    let read = args.seconds("read", 1.0)?;
    let timeout = args.seconds("timeout", 10.0)?;
    let server_pid: u32 = args.get("server-pid", 0)?;
    let listeners: usize = args.get("listeners", 0)?;
    let listeners_count = listeners;
    if listeners > 64 {
        return Err("--listeners must be 0..=64".into());
    }
    if reconnects == 0 || timeout.is_zero() || reconnects > 10_000 {
        return Err("--reconnects must be 1..=10000 and --timeout positive".into());
    }

    let mut checks = Checks::default();
    let mut times = Times::default();
    let mut epoch: Option<String> = None;
    let (mut recovered, mut not_recovered, mut timeouts, mut epoch_changes) = (0, 0, 0, 0);
    let mut errors: Vec<String> = Vec::new();
    let mut others = 0u64;
    // Skipped messages after an `r … 1 …` (a broken guarantee: a bug) and
    // after an `r … 0 …` (the server said so: lost to the retention).
    let (mut gaps_recovered, mut gaps_not_recovered) = (0u64, 0u64);
    let stop = Arc::new(AtomicBool::new(false));
    let listeners: Vec<_> = (0..listeners)
        .map(|_| listen(addr, &topic, Arc::clone(&stop)))
        .collect::<Result<_, _>>()?;

    // The first connection: a plain subscribe, then read.
    let mut link = Some(
        connect(
            addr,
            &topic,
            timeout,
            read,
            &mut epoch,
            &mut checks,
            &mut times,
            &mut others,
        )
        .map_err(|e| format!("first connection: {e}"))?
        .0,
    );
    let started = Instant::now();
    for i in 0..=reconnects {
        // Drop the link: a reset, no close frame.
        if let Some(link) = link.take() {
            wire::set_reset_on_close(&link.stream);
        }
        if i == reconnects {
            break;
        }
        thread::sleep(outage);
        let before = epoch.clone();
        match connect(
            addr,
            &topic,
            timeout,
            read,
            &mut epoch,
            &mut checks,
            &mut times,
            &mut others,
        ) {
            Ok((next, session)) => {
                link = Some(next);
                if before != epoch {
                    epoch_changes += 1;
                }
                match session.not_recovered {
                    true => {
                        not_recovered += 1;
                        gaps_not_recovered += session.gaps;
                    }
                    false => {
                        recovered += 1;
                        gaps_recovered += session.gaps;
                    }
                }
                timeouts += u64::from(session.timed_out);
            }
            Err(e) => {
                // The next round tries again, from the same position.
                errors.push(format!("reconnect {}: {e}", i + 1));
                if errors.len() >= 3 {
                    return Err(errors.join("; "));
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut listened = 0u64;
    for listener in listeners {
        listened += listener
            .join()
            .map_err(|_| "a listener panicked")?
            .map_err(|e| format!("a listener: {e}"))?;
    }

    let rate = match (checks.first, checks.newest) {
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => (s1 - s0) as f64 / (t1 - t0).as_secs_f64(),
        _ => 0.0,
    };
    let mut out = Map::new();
    out.insert("kind".into(), "resume".into());
    out.insert("topic".into(), topic.into());
    out.insert("reconnects".into(), reconnects.into());
    out.insert("outage_s".into(), outage.as_secs_f64().into());
    out.insert("read_s".into(), read.as_secs_f64().into());
    out.insert("elapsed_s".into(), round3(elapsed).into());
    out.insert("publish_rate".into(), round3(rate).into());
    for (name, values) in [
        ("upgraded", &times.upgraded),
        ("answered", &times.answered),
        ("first_replayed", &times.first_replayed),
        ("replay_done", &times.replay_done),
        ("caught_up", &times.caught_up),
    ] {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for (q, label) in [(0.5, "p50"), (0.99, "p99"), (1.0, "max")] {
            out.insert(
                format!("{name}_{label}_ms"),
                quantile(&sorted, q).map_or(Value::Null, |ns| round3(ns as f64 / 1e6).into()),
            );
        }
        out.insert(format!("{name}_samples"), sorted.len().into());
    }
    let replayed = &times.replayed;
    let total: u64 = replayed.iter().sum();
    out.insert("replayed_total".into(), total.into());
    out.insert(
        "replayed_min".into(),
        replayed.iter().min().copied().unwrap_or(0).into(),
    );
    out.insert(
        "replayed_mean".into(),
        round3(total as f64 / replayed.len().max(1) as f64).into(),
    );
    out.insert(
        "replayed_max".into(),
        replayed.iter().max().copied().unwrap_or(0).into(),
    );
    out.insert("recovered".into(), recovered.into());
    out.insert("not_recovered".into(), not_recovered.into());
    out.insert("timeouts".into(), timeouts.into());
    out.insert("epoch_changes".into(), epoch_changes.into());
    out.insert("messages".into(), checks.messages.into());
    out.insert("listeners".into(), listeners_count.into());
    out.insert("listener_messages".into(), listened.into());
    out.insert("gaps".into(), checks.gaps.into());
    out.insert("gap_events".into(), checks.gap_events.into());
    out.insert("gaps_despite_recovered".into(), gaps_recovered.into());
    out.insert("gaps_not_recovered".into(), gaps_not_recovered.into());
    out.insert("duplicates".into(), checks.duplicates.into());
    out.insert("payload_mismatch".into(), checks.payload_mismatch.into());
    out.insert("other_frames".into(), others.into());
    out.insert("errors".into(), json!(errors));
    // A gap, a duplicate or an incomplete replay is a failure of what is
    // measured: the numbers are printed all the same, and flagged.
    let ok = checks.gaps == 0
        && checks.duplicates == 0
        && checks.payload_mismatch == 0
        && not_recovered == 0
        && timeouts == 0
        && epoch_changes == 0
        && errors.is_empty();
    out.insert("ok".into(), ok.into());
    if server_pid != 0 {
        if let Ok(status) = procfs::status(server_pid) {
            out.insert("server_rss_kib".into(), status.rss_kib.into());
        }
    }
    Ok(Value::Object(out))
}

/// Connects, subscribes (resuming after `checks.last` if there is one),
/// reads until caught up and the replay is complete (at most `timeout`),
/// then until `read` after the connect began;
/// records the times of a resume.
#[allow(clippy::too_many_arguments)]
fn connect(
    addr: SocketAddr,
    topic: &str,
    timeout: Duration,
    read: Duration,
    epoch: &mut Option<String>,
    checks: &mut Checks,
    times: &mut Times,
    others: &mut u64,
) -> io::Result<(Link, Session)> {
    let begun = Instant::now();
    let begun_ns = unix_nanos();
    let deadline = begun + timeout;
    let since = |at: Instant| at.duration_since(begun).as_nanos() as u64;
    let (stream, early) = wire::connect_subprotocol(addr, PROTOCOL, timeout)?;
    let upgraded = since(Instant::now());
    let mut link = Link::new(stream, early);
    let mut session = Session::default();

    // The welcome: `w <epoch> [<heartbeat>]`.
    let welcome = loop {
        match link.next(deadline)? {
            None => return Err(io::Error::new(io::ErrorKind::TimedOut, "no welcome")),
            Some(Incoming::Line(line)) => match line.strip_prefix("w ") {
                Some(fields) => break fields.split(' ').next().unwrap_or("").to_string(),
                None => *others += 1,
            },
            Some(Incoming::Message { .. }) => {
                return Err(wire::invalid("a message before the welcome"))
            }
        }
    };
    let resuming = match (&*epoch, checks.last) {
        (Some(e), Some(last)) => Some((e.clone(), last)),
        _ => None,
    };
    if epoch.as_deref() != Some(&welcome) && epoch.is_some() {
        // Another epoch: the old positions mean nothing now.
        checks.last = None;
    }
    *epoch = Some(welcome);
    let command = match &resuming {
        Some((e, last)) => format!("s {topic} {e} {last}"),
        None => format!("s {topic}"),
    };
    link.send_text(&command)?;

    // The answer: `r <topic> <recovered> <last>`.
    let last_seq = loop {
        match link.next(deadline)? {
            None => return Err(io::Error::new(io::ErrorKind::TimedOut, "no r line")),
            Some(Incoming::Line(line)) => {
                let fields: Vec<&str> = line.split(' ').collect();
                match fields[..] {
                    ["r", t, rec, last] if t == topic => {
                        session.not_recovered = rec != "1";
                        break last
                            .parse::<u64>()
                            .map_err(|_| wire::invalid("an r line with a bad last"))?;
                    }
                    ["e", ..] => {
                        return Err(wire::invalid(&format!("subscribe refused: {line}")));
                    }
                    _ => *others += 1,
                }
            }
            Some(Incoming::Message { .. }) => {
                return Err(wire::invalid("a message before the r line"))
            }
        }
    };
    let answered = since(Instant::now());
    let resumed_after = resuming.as_ref().map(|(_, last)| *last);

    // The replay (messages up to `last_seq`), then live ones, until caught
    // up and `read` after the connect began.
    let mut replayed = 0u64;
    let (mut first_replayed, mut replay_done, mut caught_up) = (None, None, None);
    let expected = resumed_after.map_or(0, |after| last_seq.saturating_sub(after));
    if expected == 0 {
        replay_done = Some(answered);
    }
    let until = begun + read;
    let gaps_before = checks.gaps;
    loop {
        let done = caught_up.is_some() && replay_done.is_some();
        let stop = if done { until } else { deadline };
        let Some(incoming) = link.next(stop)? else {
            if !done {
                session.timed_out = true;
            }
            break;
        };
        let Incoming::Message {
            topic: t,
            seq,
            payload,
        } = incoming
        else {
            *others += 1;
            continue;
        };
        if t != topic {
            *others += 1;
            continue;
        }
        let now = since(Instant::now());
        checks.message(seq, &payload);
        if resumed_after.is_some_and(|after| seq > after && seq <= last_seq) {
            replayed += 1;
            first_replayed.get_or_insert(now);
            if seq == last_seq {
                replay_done = Some(now);
            }
        }
        if caught_up.is_none() && payload.len() >= 8 {
            let sent = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
            if sent >= begun_ns {
                caught_up = Some(now);
            }
        }
    }
    session.gaps = checks.gaps - gaps_before;
    if resuming.is_some() {
        times.upgraded.push(upgraded);
        times.answered.push(answered);
        times.caught_up.extend(caught_up);
        // Not recovered, what follows the `r` is the latest kept message,
        // not a replay of what was missed: no replay times.
        if !session.not_recovered {
            times.first_replayed.extend(first_replayed);
            if expected > 0 {
                times.replay_done.extend(replay_done);
            }
            times.replayed.push(replayed);
        }
    }
    Ok((link, session))
}

/// A `boardcast.v1` client that subscribes to `topic` and reads until
/// `stop`: while it is connected, every message published has its
/// envelope made, as on a board with a dashboard open. Returns how many
/// messages it read.
fn listen(
    addr: SocketAddr,
    topic: &str,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<io::Result<u64>>, String> {
    let (stream, early) = wire::connect_subprotocol(addr, PROTOCOL, Duration::from_secs(5))
        .map_err(|e| format!("a listener's connection: {e}"))?;
    wire::set_reset_on_close(&stream);
    let mut link = Link::new(stream, early);
    link.send_text(&format!("s {topic}"))
        .map_err(|e| e.to_string())?;
    thread::Builder::new()
        .name("listener".into())
        .spawn(move || {
            let mut messages = 0;
            while !stop.load(Ordering::Relaxed) {
                let slice = Instant::now() + Duration::from_millis(100);
                if let Some(Incoming::Message { .. }) = link.next(slice)? {
                    messages += 1;
                }
            }
            Ok(messages)
        })
        .map_err(|e| e.to_string())
}

/// The value at quantile `q` of sorted values (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_count_gaps_and_duplicates() {
        let payload = |own: u64| {
            let mut p = vec![0u8; 16];
            p[8..].copy_from_slice(&own.to_be_bytes());
            p
        };
        let mut c = Checks::default();
        for seq in [5, 6, 9, 9, 8, 10] {
            c.message(seq, &payload(seq - 1));
        }
        assert_eq!((c.gaps, c.gap_events, c.duplicates), (2, 1, 2));
        assert_eq!(c.payload_mismatch, 0);
        c.message(11, &payload(3));
        assert_eq!(c.payload_mismatch, 1);
    }

    #[test]
    fn lines_and_messages_parse() {
        match parse(b"m bench 42\n\x01\x02".to_vec()).unwrap() {
            Incoming::Message {
                topic,
                seq,
                payload,
            } => assert_eq!((topic.as_str(), seq, payload), ("bench", 42, vec![1, 2])),
            Incoming::Line(_) => panic!("a message"),
        }
        assert!(
            matches!(parse(b"r bench 1 7".to_vec()).unwrap(), Incoming::Line(l) if l == "r bench 1 7")
        );
        assert!(parse(b"m bench x\n".to_vec()).is_err());
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(quantile(&v, 0.5), Some(5));
        assert_eq!(quantile(&v, 0.99), Some(10));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
