//! Fan-out: subscribers of a broadcast server.
//!
//! Every payload starts with the server's send time (ns since the UNIX
//! epoch) and a sequence number, both 8-byte big-endian. All subscribers
//! connect first; after a warm-up, a window of `--duration` seconds is
//! measured:
//!
//! - deliveries: messages read by each subscriber during the window (by
//!   receive time), giving each subscriber's rate and the total;
//! - latency: receive time minus send time, for messages sent during the
//!   window (read until `--grace` seconds after it);
//! - lost: of the sequence numbers sent during the window (the lowest to
//!   the highest any subscriber saw), those a subscriber still connected at
//!   the end never received; out of order: a sequence number not above the
//!   highest one that subscriber had seen;
//! - disconnected: subscribers the server closed (a slow consumer under
//!   `Policy::Disconnect`) or that failed.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use serde_json::{json, Value};

use crate::args::Args;
use crate::echo::{cpu, cpu_share, sleep_until};
use crate::wire::{self, opcode, Proto};
use crate::{histogram, procfs, quantile_us, round3, unix_nanos};

/// How often every socket is read, events or not.
const SWEEP: Duration = Duration::from_millis(100);

/// How often connected subscribers are read while others connect.
const CONNECT_READ: Duration = Duration::from_millis(5);

/// The window, in both clocks.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Receive-time window, UNIX ns.
    start_ns: u64,
    end_ns: u64,
    /// When the workers stop.
    stop: Instant,
}

/// One subscriber's counts.
#[derive(Debug, Default, Clone)]
pub struct SubStats {
    /// When its handshake completed, and when its first message was read
    /// (UNIX ns).
    pub connected_ns: u64,
    /// See `connected_ns`.
    pub first_ns: Option<u64>,
    /// Messages read during the window.
    pub delivered: u64,
    /// Messages sent during the window and received (at any time).
    pub in_window: u64,
    /// Lowest and highest in-window sequence numbers received.
    pub lo: u64,
    /// See `lo`.
    pub hi: u64,
    /// Highest sequence number seen so far.
    pub last_seq: Option<u64>,
    /// In-window messages whose sequence number was not above `last_seq`.
    pub out_of_order: u64,
    /// Frames that are not the expected binary payload.
    pub unexpected: u64,
    /// When the subscriber stopped receiving before the end (UNIX ns), and
    /// the close code the server sent, if any.
    pub ended_ns: Option<u64>,
    /// The close code of the server's close frame.
    pub close_code: Option<u16>,
    /// Why it ended, if not by a close frame.
    pub error: Option<String>,
}

/// A subscriber's socket and buffer.
pub(crate) struct Sub {
    pub(crate) stream: mio::net::TcpStream,
    buf: Vec<u8>,
    filled: usize,
    pub(crate) open: bool,
    pub(crate) stats: SubStats,
}

impl Sub {
    fn new(stream: TcpStream, early: Vec<u8>) -> io::Result<Sub> {
        stream.set_nonblocking(true)?;
        let mut buf = vec![0u8; (64 << 10).max(early.len())];
        buf[..early.len()].copy_from_slice(&early);
        Ok(Sub {
            stream: mio::net::TcpStream::from_std(stream),
            buf,
            filled: early.len(),
            open: true,
            stats: SubStats::default(),
        })
    }

    /// Reads what has arrived and handles every complete frame.
    fn pump(&mut self, window: Option<&Window>, histogram: &mut Histogram<u64>) {
        let result = (|| -> io::Result<()> {
            // Frames left over from the handshake's read.
            self.frames(window, histogram)?;
            // At most 16 reads, so that one subscriber with a deep backlog
            // cannot hold up the others (and the end of the run); the rest
            // waits for the next event or sweep.
            for _ in 0..16 {
                if !self.open {
                    break;
                }
                let space = self.buf.len() - self.filled;
                match self.stream.read(&mut self.buf[self.filled..]) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => {
                        self.filled += n;
                        self.frames(window, histogram)?;
                        if n < space {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.end(Some(e.to_string()));
        }
    }

    fn end(&mut self, error: Option<String>) {
        if self.open {
            self.open = false;
            self.stats.ended_ns = Some(unix_nanos());
            self.stats.error = error;
        }
    }

    fn frames(
        &mut self,
        window: Option<&Window>,
        histogram: &mut Histogram<u64>,
    ) -> io::Result<()> {
        let now = unix_nanos();
        let mut at = 0;
        while self.open {
            let Some(header) = wire::parse_header(&self.buf[at..self.filled])? else {
                break;
            };
            let total = header.len + header.payload;
            if self.filled - at < total {
                if total > self.buf.len() {
                    self.buf.resize(total, 0);
                }
                break;
            }
            let payload = at + header.len..at + total;
            at += total;
            match header.opcode {
                opcode::BINARY if header.fin && header.payload >= 16 => {
                    let p = &self.buf[payload];
                    let sent = u64::from_be_bytes(p[..8].try_into().expect("8 bytes"));
                    let seq = u64::from_be_bytes(p[8..16].try_into().expect("8 bytes"));
                    self.delivery(window, histogram, now, sent, seq);
                }
                opcode::PING => {
                    // Keepalive: answer, or the server closes us.
                    let pong = wire::masked_frame(opcode::PONG, &self.buf[payload], [1, 2, 3, 4]);
                    if self.stream.write(&pong)? != pong.len() {
                        return Err(wire::invalid("pong did not fit the socket"));
                    }
                }
                opcode::CLOSE => {
                    let p = &self.buf[payload];
                    self.stats.close_code =
                        (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    self.end(None);
                }
                opcode::PONG => {}
                // Continuations, fragments, unknown opcodes: not what the
                // broadcast servers send.
                _ => self.stats.unexpected += 1,
            }
        }
        self.buf.copy_within(at..self.filled, 0);
        self.filled -= at;
        Ok(())
    }

    fn delivery(
        &mut self,
        window: Option<&Window>,
        histogram: &mut Histogram<u64>,
        now: u64,
        sent: u64,
        seq: u64,
    ) {
        let s = &mut self.stats;
        s.first_ns.get_or_insert(now);
        let Some(w) = window else {
            s.last_seq = Some(seq);
            return;
        };
        if now >= w.start_ns && now <= w.end_ns {
            s.delivered += 1;
        }
        if sent >= w.start_ns && sent <= w.end_ns {
            if s.last_seq.is_some_and(|last| seq <= last) {
                s.out_of_order += 1;
            } else {
                if s.in_window == 0 {
                    s.lo = seq;
                }
                s.in_window += 1;
                s.lo = s.lo.min(seq);
                s.hi = s.hi.max(seq);
            }
            let _ = histogram.record(now.saturating_sub(sent).max(1));
        }
        s.last_seq = Some(s.last_seq.map_or(seq, |last| last.max(seq)));
    }
}

/// Connects `count` WebSocket clients one after the other; returns them
/// and the handshakes per second.
///
/// With `read`, subscribers already connected are read every few
/// milliseconds meanwhile, as a browser would: one left unread while a
/// thousand others connect is a slow consumer, and the server may rightly
/// drop it.
pub(crate) fn connect_all(
    addr: SocketAddr,
    count: usize,
    read: bool,
) -> Result<(Vec<Sub>, f64), String> {
    let started = Instant::now();
    let mut subs: Vec<Sub> = Vec::with_capacity(count);
    let mut histogram = histogram();
    let mut read_at = Instant::now();
    for i in 0..count {
        if read && read_at.elapsed() >= CONNECT_READ {
            for sub in subs.iter_mut().filter(|s| s.open) {
                sub.pump(None, &mut histogram);
            }
            read_at = Instant::now();
        }
        let (stream, early) = wire::connect(addr, Proto::Ws, Duration::from_secs(5))
            .map_err(|e| format!("connection {} of {count} to {addr}: {e}", i + 1))?;
        wire::set_reset_on_close(&stream);
        let mut sub = Sub::new(stream, early).map_err(|e| e.to_string())?;
        sub.stats.connected_ns = unix_nanos();
        subs.push(sub);
    }
    Ok((subs, count as f64 / started.elapsed().as_secs_f64()))
}

/// Polls `subs` until `stop`, handling every frame.
fn pump_until(
    subs: &mut [Sub],
    window: Option<&Window>,
    stop: Instant,
    histogram: &mut Histogram<u64>,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    for (i, sub) in subs.iter_mut().enumerate() {
        poll.registry()
            .register(&mut sub.stream, Token(i), Interest::READABLE)?;
    }
    for sub in subs.iter_mut() {
        sub.pump(window, histogram);
    }
    let mut events = Events::with_capacity(1024);
    let mut swept = Instant::now();
    loop {
        let now = Instant::now();
        if now >= stop {
            break;
        }
        if now - swept >= SWEEP {
            // Every 100 ms, look at everyone: a missed readiness edge could
            // otherwise starve a subscriber for the rest of the run.
            swept = now;
            for sub in subs.iter_mut().filter(|s| s.open) {
                sub.pump(window, histogram);
            }
        }
        let timeout = (stop - now).min(SWEEP);
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            let sub = &mut subs[event.token().0];
            if sub.open {
                sub.pump(window, histogram);
            }
        }
    }
    for sub in subs.iter_mut() {
        let _ = poll.registry().deregister(&mut sub.stream);
    }
    Ok(())
}

/// Drains `subs` until `stop` without measuring (idle connections).
pub(crate) fn drain_until(subs: &mut [Sub], stop: Instant) -> io::Result<()> {
    let mut histogram = histogram();
    pump_until(subs, None, stop, &mut histogram)
}

/// Runs one fan-out measurement; see `wsload --help`.
pub fn run(args: &Args) -> Result<Value, String> {
    let addr: SocketAddr = args.required("addr")?;
    let count: usize = args.get("subs", 1)?;
    let warmup = args.seconds("warmup", 2.0)?;
    let duration = args.seconds("duration", 5.0)?;
    let grace = args.seconds("grace", 1.0)?;
    let threads: usize = args.get("threads", 1)?;
    let server_pid: u32 = args.get("server-pid", 0)?;
    if count == 0 || threads == 0 || duration.is_zero() {
        return Err("--subs, --threads and --duration must be positive".into());
    }
    let first_timeout = args.seconds("first-timeout", 30.0)?;
    let (mut subs, handshakes_per_s) = connect_all(addr, count, true)?;

    // Steady state: the window starts once every subscriber has received
    // a message (at most --first-timeout); how long that took after each
    // handshake is reported on its own.
    let deadline = Instant::now() + first_timeout;
    while Instant::now() < deadline && subs.iter().any(|s| s.open && s.stats.first_ns.is_none()) {
        drain_until(&mut subs, Instant::now() + Duration::from_millis(100))
            .map_err(|e| e.to_string())?;
    }
    let mut first: Vec<u64> = subs
        .iter()
        .filter_map(|s| Some(s.stats.first_ns?.saturating_sub(s.stats.connected_ns)))
        .collect();
    first.sort_unstable();
    let waiting = subs.iter().filter(|s| s.stats.first_ns.is_none()).count();
    let first_ms = |q: f64| {
        first
            .get(((first.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |&ns| round3(ns as f64 / 1e6))
    };
    let first_message = json!({
        "p50_ms": first_ms(0.5),
        "max_ms": first_ms(1.0),
        "never": waiting,
    });

    let start_ns = unix_nanos() + warmup.as_nanos() as u64;
    let window_start = Instant::now() + warmup;
    let window = Window {
        start_ns,
        end_ns: start_ns + duration.as_nanos() as u64,
        stop: window_start + duration + grace,
    };
    let threads = threads.min(count);
    let mut groups: Vec<Vec<Sub>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, sub) in subs.into_iter().enumerate() {
        groups[i % threads].push(sub);
    }
    let workers: Vec<_> = groups
        .into_iter()
        .map(|mut group| {
            thread::Builder::new()
                .name("wsload-fanout".into())
                .spawn(move || {
                    let mut histogram = histogram();
                    let result = pump_until(&mut group, Some(&window), window.stop, &mut histogram);
                    (group, histogram, result)
                })
                .expect("spawn a worker")
        })
        .collect();
    sleep_until(window_start);
    let cpu_before = (cpu(server_pid), cpu(0), procfs::steal_ticks().ok());
    sleep_until(window_start + duration);
    let cpu_after = (cpu(server_pid), cpu(0), procfs::steal_ticks().ok());
    let server_rss_kib = procfs::status(server_pid).ok().map(|s| s.rss_kib);

    let mut subs = Vec::with_capacity(count);
    let mut latency = histogram();
    for worker in workers {
        let (group, histogram, result) = worker.join().map_err(|_| "a worker panicked")?;
        result.map_err(|e| format!("polling: {e}"))?;
        latency.add(&histogram).map_err(|e| e.to_string())?;
        subs.extend(group.into_iter().map(|s| s.stats));
    }
    if std::env::var_os("WSLOAD_DEBUG").is_some() {
        // Which subscribers (in connection order) never received anything.
        let never: Vec<usize> = subs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.last_seq.is_none())
            .map(|(i, _)| i)
            .collect();
        eprintln!("wsload: never received: {never:?}");
    }
    let secs = duration.as_secs_f64();
    let mut summary = summarise(&subs, &latency, &window, secs, handshakes_per_s);
    summary["first_message"] = first_message;
    summary["server_cpu"] = json!(cpu_share(cpu_before.0, cpu_after.0, secs));
    summary["client_cpu"] = json!(cpu_share(cpu_before.1, cpu_after.1, secs));
    summary["steal"] = json!(procfs::steal_share(cpu_before.2, cpu_after.2));
    if server_pid != 0 {
        // The server's resident memory at the end of the window.
        summary["server_rss_kib"] = json!(server_rss_kib);
    }
    Ok(summary)
}

fn summarise(
    subs: &[SubStats],
    latency: &Histogram<u64>,
    window: &Window,
    secs: f64,
    handshakes_per_s: f64,
) -> Value {
    let seen: Vec<&SubStats> = subs.iter().filter(|s| s.in_window > 0).collect();
    let lo = seen.iter().map(|s| s.lo).min();
    let hi = seen.iter().map(|s| s.hi).max();
    let sent = match (lo, hi) {
        (Some(lo), Some(hi)) => hi - lo + 1,
        _ => 0,
    };
    // Kept up: still connected when the window's messages were all due.
    let ended_early = |s: &SubStats| s.ended_ns.is_some_and(|t| t <= window.end_ns);
    let kept_up: Vec<&SubStats> = subs.iter().filter(|s| !ended_early(s)).collect();
    let lost: u64 = kept_up
        .iter()
        .map(|s| sent.saturating_sub(s.in_window))
        .sum();
    let complete = kept_up.iter().filter(|s| s.in_window == sent).count();
    let rates: Vec<f64> = subs.iter().map(|s| s.delivered as f64 / secs).collect();
    let delivered: u64 = subs.iter().map(|s| s.delivered).sum();
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rates.iter().copied().fold(0.0, f64::max);
    let mut codes: Vec<String> = subs
        .iter()
        .filter(|s| ended_early(s))
        .map(|s| match (&s.close_code, &s.error) {
            (Some(code), _) => format!("close {code}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "close".into(),
        })
        .collect();
    codes.sort();
    codes.dedup();
    json!({
        "kind": "fanout",
        "subs": subs.len(),
        "window_s": secs,
        "handshakes_per_s": round3(handshakes_per_s),
        "published_in_window": sent,
        "publish_rate": round3(sent as f64 / secs),
        "deliveries": delivered,
        "deliveries_per_s": round3(delivered as f64 / secs),
        // The same, counting messages sent during the window instead of
        // read during it: far apart when a backlog from before the window
        // was being drained.
        "deliveries_by_send_time_per_s": round3(subs.iter().map(|s| s.in_window).sum::<u64>() as f64 / secs),
        "sub_rate_min": round3(min),
        "sub_rate_mean": round3(mean),
        "sub_rate_max": round3(max),
        "within_2x": min >= mean / 2.0 && max <= mean * 2.0,
        // Connected to the end, yet nothing read during the window.
        "starved": subs.iter().filter(|s| s.delivered == 0 && !ended_early(s)).count(),
        // Of those, how many never received a single message.
        "never_received": subs.iter().filter(|s| s.last_seq.is_none() && !ended_early(s)).count(),
        "p50_us": quantile_us(latency, 0.50),
        "p99_us": quantile_us(latency, 0.99),
        "p999_us": quantile_us(latency, 0.999),
        "max_us": latency.max() as f64 / 1000.0,
        "latency_samples": latency.len(),
        "kept_up": kept_up.len(),
        "complete": complete,
        "lost": lost,
        "out_of_order": subs.iter().map(|s| s.out_of_order).sum::<u64>(),
        "unexpected_frames": subs.iter().map(|s| s.unexpected).sum::<u64>(),
        "disconnected": subs.len() - kept_up.len(),
        "disconnect_reasons": codes,
    })
}
