//! Echo: lock-step round trips.
//!
//! Every connection has exactly one request in flight: it sends a message,
//! waits for the whole echo, checks it byte for byte, and sends the next.
//! A round trip's latency runs from the first byte written to the last byte
//! read. Counted are the round trips completed inside the measurement
//! window (after a warm-up); those in flight at its end are dropped.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use serde_json::{json, Value};

use crate::args::Args;
use crate::wire::{self, Proto};
use crate::{histogram, procfs, quantile_us, round3};

/// When the workers start, measure and stop.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    start: Instant,
    window_start: Instant,
    window_end: Instant,
    /// The most round trips one worker completes, window or not.
    max_round_trips: u64,
}

/// What one worker measured.
struct Tally {
    round_trips: u64,
    histogram: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            round_trips: 0,
            histogram: histogram(),
            errors: 0,
            first_error: None,
        }
    }

    fn record(&mut self, timeline: &Timeline, sent: Instant, done: Instant) {
        if done >= timeline.window_start && done <= timeline.window_end {
            self.round_trips += 1;
            let _ = self
                .histogram
                .record((done - sent).as_nanos().max(1) as u64);
        }
    }

    fn error(&mut self, e: &io::Error) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }
}

/// Runs one echo measurement; see `wsload --help`.
pub fn run(args: &Args) -> Result<Value, String> {
    let addr: SocketAddr = args.required("addr")?;
    let proto: Proto = args.get("proto", Proto::Ws)?;
    let conns: usize = args.get("conns", 1)?;
    let size: usize = args.get("size", 32)?;
    let warmup = args.seconds("warmup", 0.5)?;
    let duration = args.seconds("duration", 3.0)?;
    let threads: usize = args.get("threads", 1)?;
    let max_round_trips: u64 = args.get("max-round-trips", 50_000_000)?;
    let server_pid: u32 = args.get("server-pid", 0)?;
    if conns == 0 || threads == 0 || size == 0 || duration.is_zero() {
        return Err("--conns, --threads, --size and --duration must be positive".into());
    }

    // The request, built and masked once; and the exact echo expected.
    let payload: Vec<u8> = (0..size).map(|i| (i * 7 + 1) as u8).collect();
    let (request, expected): (Arc<[u8]>, Arc<[u8]>) = match proto {
        Proto::Ws => {
            let mut expected = wire::server_header(wire::opcode::BINARY, size);
            expected.extend_from_slice(&payload);
            let request =
                wire::masked_frame(wire::opcode::BINARY, &payload, [0x5a, 0xc3, 0x17, 0x9e]);
            (request.into(), expected.into())
        }
        Proto::Tcp => (payload.clone().into(), payload.into()),
    };

    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (stream, early) = wire::connect(addr, proto, Duration::from_secs(5))
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        if !early.is_empty() {
            return Err("the echo server sent data before being asked".into());
        }
        wire::set_reset_on_close(&stream);
        streams.push(stream);
    }

    let threads = threads.min(conns);
    let start = Instant::now() + Duration::from_millis(50);
    let timeline = Timeline {
        start,
        window_start: start + warmup,
        window_end: start + warmup + duration,
        max_round_trips,
    };
    let mut groups: Vec<Vec<TcpStream>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, stream) in streams.into_iter().enumerate() {
        groups[i % threads].push(stream);
    }
    let workers: Vec<_> = groups
        .into_iter()
        .map(|group| {
            let (request, expected) = (Arc::clone(&request), Arc::clone(&expected));
            thread::Builder::new()
                .name("wsload-echo".into())
                .spawn(move || {
                    if group.len() == 1 {
                        let stream = group.into_iter().next().expect("one stream");
                        blocking_worker(stream, &request, &expected, timeline)
                    } else {
                        poll_worker(group, &request, &expected, timeline)
                    }
                })
                .expect("spawn a worker")
        })
        .collect();

    sleep_until(timeline.window_start);
    let cpu_before = (cpu(server_pid), cpu(0), procfs::steal_ticks().ok());
    sleep_until(timeline.window_end);
    let cpu_after = (cpu(server_pid), cpu(0), procfs::steal_ticks().ok());

    let mut total = Tally::new();
    for worker in workers {
        let tally = worker.join().map_err(|_| "a worker panicked")?;
        total.round_trips += tally.round_trips;
        total.errors += tally.errors;
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
        total
            .histogram
            .add(&tally.histogram)
            .map_err(|e| e.to_string())?;
    }
    let secs = duration.as_secs_f64();
    let rt_per_s = total.round_trips as f64 / secs;
    let h = &total.histogram;
    Ok(json!({
        "kind": "echo",
        "proto": match proto { Proto::Ws => "ws", Proto::Tcp => "tcp" },
        "conns": conns,
        "size": size,
        "threads": threads,
        "window_s": secs,
        "round_trips": total.round_trips,
        "rt_per_s": round3(rt_per_s),
        // Payload bytes echoed per second, one way.
        "mb_per_s": round3(rt_per_s * size as f64 / 1e6),
        "p50_us": quantile_us(h, 0.50),
        "p99_us": quantile_us(h, 0.99),
        "p999_us": quantile_us(h, 0.999),
        "max_us": h.max() as f64 / 1000.0,
        "errors": total.errors,
        "first_error": total.first_error,
        "server_cpu": cpu_share(cpu_before.0, cpu_after.0, secs),
        "client_cpu": cpu_share(cpu_before.1, cpu_after.1, secs),
        "steal": procfs::steal_share(cpu_before.2, cpu_after.2),
    }))
}

pub(crate) fn cpu(pid: u32) -> Option<f64> {
    procfs::cpu_seconds(pid).ok()
}

/// The share of one core used over `secs`.
pub(crate) fn cpu_share(before: Option<f64>, after: Option<f64>, secs: f64) -> Option<f64> {
    Some(round3((after? - before?) / secs))
}

pub(crate) fn sleep_until(at: Instant) {
    if let Some(wait) = at.checked_duration_since(Instant::now()) {
        thread::sleep(wait);
    }
}

/// One connection, plain blocking calls: no poll between write and read.
fn blocking_worker(
    mut stream: TcpStream,
    request: &[u8],
    expected: &[u8],
    timeline: Timeline,
) -> Tally {
    let mut tally = Tally::new();
    let mut buf = vec![0u8; expected.len() + 64];
    // A stuck server ends the run instead of hanging it.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    sleep_until(timeline.start);
    let mut done = 0;
    while done < timeline.max_round_trips {
        let sent = Instant::now();
        if sent >= timeline.window_end {
            break;
        }
        let result = stream.write_all(request).and_then(|()| {
            let mut filled = 0;
            while filled < expected.len() {
                match stream.read(&mut buf[filled..]) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            check(&buf[..filled], expected, done)
        });
        if let Err(e) = result {
            tally.error(&e);
            break;
        }
        tally.record(&timeline, sent, Instant::now());
        done += 1;
    }
    tally
}

/// Checks an echo: its length, its first and last 64 bytes (the frame
/// header among them), and every byte of one round trip in 64, so that
/// comparing 64 KiB messages does not make the generator the bottleneck.
fn check(received: &[u8], expected: &[u8], round_trip: u64) -> io::Result<()> {
    let edge = expected.len().min(64);
    let same = received.len() == expected.len()
        && received[..edge] == expected[..edge]
        && received[received.len() - edge..] == expected[expected.len() - edge..]
        && (!round_trip.is_multiple_of(64) || received == expected);
    if same {
        Ok(())
    } else if received.len() != expected.len() {
        Err(wire::invalid(&format!(
            "echo of {} bytes instead of {}",
            received.len(),
            expected.len()
        )))
    } else {
        Err(wire::invalid("echo differs from the request"))
    }
}

struct Conn {
    stream: mio::net::TcpStream,
    buf: Vec<u8>,
    filled: usize,
    written: usize,
    sent: Instant,
    alive: bool,
}

impl Conn {
    /// Writes what the socket takes of the rest of the request.
    fn write_more(&mut self, request: &[u8]) -> io::Result<()> {
        while self.written < request.len() {
            match self.stream.write(&request[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what has arrived; true once the whole echo is in.
    fn read_more(&mut self, expected: usize) -> io::Result<bool> {
        loop {
            let space = self.buf.len() - self.filled;
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.filled += n;
                    // A short read emptied the socket: the next bytes come
                    // with a new readiness edge (the poll timeout is a
                    // safety net).
                    if n < space {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if self.filled > expected {
                break;
            }
        }
        Ok(self.filled >= expected)
    }

    fn start(&mut self, request: &[u8]) -> io::Result<()> {
        self.filled = 0;
        self.written = 0;
        self.sent = Instant::now();
        self.write_more(request)
    }
}

/// Many connections on one `epoll` loop, non-blocking sockets.
fn poll_worker(
    streams: Vec<TcpStream>,
    request: &[u8],
    expected: &[u8],
    timeline: Timeline,
) -> Tally {
    let mut tally = Tally::new();
    let setup = || -> io::Result<(Poll, Vec<Conn>)> {
        let poll = Poll::new()?;
        let mut conns = Vec::with_capacity(streams.len());
        for (i, stream) in streams.into_iter().enumerate() {
            stream.set_nonblocking(true)?;
            let mut stream = mio::net::TcpStream::from_std(stream);
            poll.registry().register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            conns.push(Conn {
                stream,
                buf: vec![0u8; expected.len() + 64],
                filled: 0,
                written: 0,
                sent: Instant::now(),
                alive: true,
            });
        }
        Ok((poll, conns))
    };
    let (mut poll, mut conns) = match setup() {
        Ok(setup) => setup,
        Err(e) => {
            tally.error(&e);
            return tally;
        }
    };
    let mut events = Events::with_capacity(1024);
    sleep_until(timeline.start);
    let mut alive = conns.len();
    for conn in &mut conns {
        if let Err(e) = conn.start(request) {
            conn.alive = false;
            alive -= 1;
            tally.error(&e);
        }
    }
    let mut done = 0u64;
    // Advances one connection; returns false if it failed.
    let progress = |conn: &mut Conn, readable: bool, tally: &mut Tally, done: &mut u64| -> bool {
        let result = (|| -> io::Result<()> {
            conn.write_more(request)?;
            if readable && conn.read_more(expected.len())? {
                check(&conn.buf[..conn.filled], expected, *done)?;
                let now = Instant::now();
                tally.record(&timeline, conn.sent, now);
                *done += 1;
                if now < timeline.window_end && *done < timeline.max_round_trips {
                    conn.start(request)?;
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => true,
            Err(e) => {
                tally.error(&e);
                conn.alive = false;
                false
            }
        }
    };
    let sweep = Duration::from_millis(100);
    let mut swept = Instant::now();
    while alive > 0 && done < timeline.max_round_trips {
        let now = Instant::now();
        if now >= timeline.window_end {
            break;
        }
        if now - swept >= sweep {
            // Every 100 ms, look at every connection: a missed readiness
            // edge would otherwise stall one for the rest of the run.
            swept = now;
            for conn in conns.iter_mut().filter(|c| c.alive) {
                if !progress(conn, true, &mut tally, &mut done) {
                    alive -= 1;
                }
            }
        }
        let timeout = (timeline.window_end - now).min(sweep);
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tally.error(&e);
            break;
        }
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            if !conn.alive {
                continue;
            }
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            if !progress(conn, readable, &mut tally, &mut done) {
                alive -= 1;
            }
        }
    }
    tally
}
