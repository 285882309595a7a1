//! A soak run (ignored by default; `scripts/soak.sh DURATION CLIENTS`):
//! clients connect, subscribe, send, unsubscribe and leave at random for a
//! given time while the hub publishes sequence-numbered messages. At the
//! end it reports, and asserts: no message lost by any client while it was
//! subscribed (and every message up to the last for the clients that
//! stayed throughout), every echo right, no client cut for being slow, the
//! thread count back to its baseline, and resident memory before and
//! after.
//!
//! ```text
//! SOAK_SECS=300 SOAK_CLIENTS=200 SOAK_RATE=100 \
//!     cargo test --release --test soak -- --ignored --nocapture
//! ```

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use boardcast::{Client, Config, Message};
use support::{Running, Ws};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::Message as Tm;

const TOPIC: &str = "soak";
/// The published payload: the sequence number and a time stamp, padded.
const SIZE: usize = 64;
/// How often a client's read gives up waiting, to do something else.
const TICK: Duration = Duration::from_millis(50);
/// The longest a stayer waits for the last messages after the publisher
/// stopped.
const DRAIN: Duration = Duration::from_secs(30);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: random enough to vary the clients, and
/// reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Subscribes on "sub", unsubscribes on "unsub" (each acknowledged), and
/// echoes everything else.
fn handler(mut client: Client) {
    while let Ok(Some(message)) = client.recv() {
        let sent = match message {
            Message::Text(text) if text == "sub" => {
                client.subscribe(TOPIC);
                client.send_text("subscribed")
            }
            Message::Text(text) if text == "unsub" => {
                client.unsubscribe(TOPIC);
                client.send_text("unsubscribed")
            }
            Message::Text(text) => client.send_text(&text),
            Message::Binary(data) => client.send_binary(&data),
            _ => Ok(()),
        };
        if sent.is_err() {
            break;
        }
    }
}

/// What every client thread adds up.
#[derive(Debug, Default)]
struct Totals {
    sessions: AtomicU64,
    received: AtomicU64,
    lost: AtomicU64,
    echoes: AtomicU64,
    bad_echoes: AtomicU64,
    after_unsubscribe: AtomicU64,
    stayers_complete: AtomicU64,
    failures: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The published messages one session has seen.
#[derive(Debug, Default)]
struct Seen {
    first: Option<u64>,
    last: Option<u64>,
    received: u64,
    lost: u64,
}

impl Seen {
    fn record(&mut self, seq: u64) {
        if let Some(last) = self.last {
            if seq != last + 1 {
                eprintln!("gap: {seq} after {last}");
                self.lost += seq.saturating_sub(last + 1).max(1);
            }
        }
        self.first.get_or_insert(seq);
        self.last = Some(seq);
        self.received += 1;
    }
}

/// One connection of one client, from connect to its end.
struct Session<'a> {
    ws: Ws,
    rng: &'a mut Rng,
    seen: Seen,
    echo_sent: u64,
    echo_back: u64,
    id: String,
    unsubscribed: bool,
    totals: &'a Totals,
}

impl Session<'_> {
    /// Reads one message, or nothing within [`TICK`]; false once the
    /// connection failed.
    fn poll(&mut self) -> bool {
        match self.ws.read() {
            Ok(Tm::Binary(data)) => {
                let (seq, _) = support::unstamp(&data);
                if self.unsubscribed {
                    add(&self.totals.after_unsubscribe, 1);
                }
                self.seen.record(seq);
            }
            Ok(Tm::Text(text)) => match text.as_str() {
                "subscribed" => {}
                // Published frames queued before it came first; nothing
                // published may follow.
                "unsubscribed" => self.unsubscribed = true,
                text => {
                    let expected = format!("{}-{}", self.id, self.echo_back);
                    if text != expected {
                        eprintln!("echo {text:?}, expected {expected:?}");
                        add(&self.totals.bad_echoes, 1);
                    }
                    self.echo_back += 1;
                }
            },
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                eprintln!("client {} failed: {e}", self.id);
                add(&self.totals.failures, 1);
                return false;
            }
        }
        true
    }

    fn send(&mut self, text: &str) -> bool {
        match self.ws.send(Tm::text(text)) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("client {} send failed: {e}", self.id);
                add(&self.totals.failures, 1);
                false
            }
        }
    }

    /// Reads and sends at random until `until`, or until `stop` says so.
    fn live(&mut self, until: Instant, stop: impl Fn(&Self) -> bool) -> bool {
        while Instant::now() < until && !stop(self) {
            if !self.poll() {
                return false;
            }
            if self.rng.below(20) == 0 && self.echo_sent - self.echo_back < 8 {
                let text = format!("{}-{}", self.id, self.echo_sent);
                if !self.send(&text) {
                    return false;
                }
                self.echo_sent += 1;
            }
        }
        true
    }

    /// Closes cleanly: sends our close frame and reads (what was already
    /// on its way, then the close reply) until the server ends the
    /// connection.
    fn close(&mut self) {
        let _ = self.ws.close(None);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            match self.ws.read() {
                Ok(Tm::Binary(data)) => self.seen.record(support::unstamp(&data).0),
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return
                }
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    eprintln!("client {} failed while closing: {e}", self.id);
                    add(&self.totals.failures, 1);
                    return;
                }
            }
        }
        eprintln!("client {}: the server did not end the connection", self.id);
        add(&self.totals.failures, 1);
    }

    fn finish(self) {
        add(&self.totals.sessions, 1);
        add(&self.totals.received, self.seen.received);
        add(&self.totals.lost, self.seen.lost);
        add(&self.totals.echoes, self.echo_back);
    }
}

fn open<'a>(
    addr: std::net::SocketAddr,
    id: String,
    rng: &'a mut Rng,
    totals: &'a Totals,
) -> Option<Session<'a>> {
    // A 4 KiB read buffer (tungstenite's default is 128 KiB), so the
    // clients' memory stays small beside the server's.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 << 10)
        .write_buffer_size(0);
    let stream = support::tcp(addr);
    let ws = match tungstenite::client::client_with_config(
        format!("ws://{addr}/"),
        stream,
        Some(config),
    ) {
        Ok((ws, _)) => ws,
        Err(e) => {
            eprintln!("client {id} could not connect: {e}");
            add(&totals.failures, 1);
            return None;
        }
    };
    ws.get_ref().set_read_timeout(Some(TICK)).unwrap();
    let mut session = Session {
        ws,
        rng,
        seen: Seen::default(),
        echo_sent: 0,
        echo_back: 0,
        id,
        unsubscribed: false,
        totals,
    };
    session.send("sub").then_some(session)
}

/// A client that stays from start to end, and must get every message from
/// its first to the publisher's last.
fn stayer(
    addr: std::net::SocketAddr,
    n: usize,
    deadline: Instant,
    last: &AtomicU64,
    done: &AtomicBool,
    totals: &Totals,
) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1));
    let Some(mut session) = open(addr, format!("stayer{n}"), &mut rng, totals) else {
        return;
    };
    if !session.live(deadline, |_| false) {
        return session.finish();
    }
    // The publisher stops at the deadline; read up to its last message.
    let drain = Instant::now() + DRAIN;
    let complete = session.live(drain, |s| {
        done.load(Ordering::Acquire) && s.seen.last == Some(last.load(Ordering::Acquire))
    });
    if complete
        && session.seen.last == Some(last.load(Ordering::Acquire))
        && session.seen.first.is_some()
    {
        add(&totals.stayers_complete, 1);
    } else {
        eprintln!(
            "stayer {n} ended at {:?} of {}",
            session.seen.last,
            last.load(Ordering::Acquire)
        );
    }
    session.close();
    session.finish();
}

/// A client that comes and goes: sessions of random length, each ended in
/// one of several ways.
fn churner(addr: std::net::SocketAddr, n: usize, deadline: Instant, totals: &Totals) {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (n as u64 + 1));
    let mut round = 0;
    while Instant::now() < deadline {
        let id = format!("churner{n}.{round}");
        round += 1;
        let Some(mut session) = open(addr, id, &mut rng, totals) else {
            return;
        };
        let until = (Instant::now() + Duration::from_millis(session.rng.below(3000))).min(deadline);
        if !session.live(until, |_| false) {
            return session.finish();
        }
        match session.rng.below(3) {
            // A clean close.
            0 => session.close(),
            // Unsubscribe; once it is acknowledged nothing more may be
            // published to us; then hang up.
            1 => {
                if session.send("unsub") {
                    let until = Instant::now() + Duration::from_secs(5);
                    if session.live(until, |s| s.unsubscribed) {
                        let until = Instant::now() + Duration::from_millis(200);
                        let _ = session.live(until, |_| false);
                    }
                }
                if !session.unsubscribed {
                    eprintln!("client {}: no unsubscribe acknowledgement", session.id);
                    add(&totals.failures, 1);
                }
            }
            // Gone without a word.
            _ => {}
        }
        session.finish();
    }
}

#[test]
#[ignore = "a soak run of minutes: scripts/soak.sh DURATION CLIENTS"]
fn soak() {
    let secs = env("SOAK_SECS", 60);
    let clients = env("SOAK_CLIENTS", 100) as usize;
    let rate = env("SOAK_RATE", 100).max(1);
    let stayers = (clients / 4).max(1);
    let baseline = support::threads();
    let config = Config::default()
        // Room for connections whose client has left but whose threads
        // are still ending: a slot is free only once both have.
        .max_connections(2 * clients + 16)
        .queue_messages(256)
        .ping_interval(Some(Duration::from_secs(2)))
        .pong_timeout(Duration::from_secs(5));
    let running = Running::start(support::server(config), handler);
    let addr = running.addr;
    let rss_start = support::rss_kib();
    eprintln!(
        "soak: {secs} s, {clients} clients ({stayers} stay throughout), {rate} messages/s; \
         threads {baseline}, VmRSS {rss_start} KiB"
    );

    let totals = Arc::new(Totals::default());
    let last = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);

    let publisher = {
        let (hub, last, done) = (running.hub.clone(), Arc::clone(&last), Arc::clone(&done));
        thread::Builder::new()
            .name("soak-publisher".into())
            .spawn(move || {
                let mut seq = 0;
                while Instant::now() < deadline {
                    hub.publish_binary(TOPIC, &support::stamp(seq, SIZE));
                    last.store(seq, Ordering::Release);
                    seq += 1;
                    // Pacing, not synchronisation.
                    let due = start + Duration::from_micros(seq * 1_000_000 / rate);
                    thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                done.store(true, Ordering::Release);
                seq
            })
            .unwrap()
    };
    let threads: Vec<_> = (0..clients)
        .map(|n| {
            let (totals, last, done) = (Arc::clone(&totals), Arc::clone(&last), Arc::clone(&done));
            thread::Builder::new()
                .name(format!("soak-client-{n}"))
                .stack_size(256 << 10)
                .spawn(move || match n < stayers {
                    true => stayer(addr, n, deadline, &last, &done, &totals),
                    false => churner(addr, n, deadline, &totals),
                })
                .unwrap()
        })
        .collect();

    // Sample while the clients run: the peak, the first sample once every
    // client thread has run a while (warm), and the last (a leak shows as
    // growth from warm to last).
    let (mut rss_peak, mut rss_warm, mut rss_last) = (rss_start, None, rss_start);
    let mut threads_peak = 0;
    while Instant::now() < deadline {
        rss_last = support::rss_kib();
        rss_peak = rss_peak.max(rss_last);
        if start.elapsed() >= Duration::from_secs(secs) / 10 {
            rss_warm.get_or_insert(rss_last);
        }
        threads_peak = threads_peak.max(support::threads());
        thread::sleep(Duration::from_millis(500));
    }
    let rss_warm = rss_warm.unwrap_or(rss_last);
    let published = publisher.join().expect("the publisher panicked");
    for client in threads {
        client.join().expect("a client panicked");
    }
    support::wait_until(
        support::TIMEOUT,
        "every client gone and its threads ended",
        || running.stats().clients == 0 && support::client_threads() == 0,
    );
    // Left running: the server's thread and the hub's flusher.
    support::wait_until(
        support::TIMEOUT,
        "the thread count back to its baseline",
        || support::threads() == baseline + 2,
    );
    let rss_end = support::rss_kib();
    let stats = running.stats();
    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "soak after {:?}: {published} published, {} delivered; {} sessions received {} \
         messages, lost {}; {} echoes ({} wrong); {} after unsubscribing; \
         {}/{stayers} stayers got everything; {} client failures",
        start.elapsed(),
        stats.delivered,
        t(&totals.sessions),
        t(&totals.received),
        t(&totals.lost),
        t(&totals.echoes),
        t(&totals.bad_echoes),
        t(&totals.after_unsubscribe),
        t(&totals.stayers_complete),
        t(&totals.failures),
    );
    eprintln!(
        "soak: slow {} unresponsive {} write {} rejected {} handshake_failed {}; \
         threads {baseline} (+1 accept) -> peak {threads_peak} -> {}; \
         VmRSS {rss_start} KiB at the start, {rss_warm} KiB warm, {rss_last} KiB at the end, \
         peak {rss_peak} KiB, {rss_end} KiB once the clients were gone",
        stats.disconnected_slow,
        stats.disconnected_unresponsive,
        stats.disconnected_write,
        stats.rejected_full,
        stats.handshake_failed,
        support::threads(),
    );
    running.shutdown(support::TIMEOUT);

    assert_eq!(t(&totals.lost), 0, "messages lost");
    assert_eq!(t(&totals.bad_echoes), 0, "wrong echoes");
    assert_eq!(
        t(&totals.after_unsubscribe),
        0,
        "published after unsubscribing"
    );
    assert_eq!(t(&totals.failures), 0, "client failures");
    assert_eq!(
        t(&totals.stayers_complete),
        stayers as u64,
        "stayers short of the end"
    );
    assert_eq!(stats.disconnected_slow, 0);
    assert_eq!(stats.rejected_full, 0);
    assert!(
        t(&totals.sessions) > clients as u64,
        "no client came and went"
    );
    assert!(
        rss_last.saturating_sub(rss_warm) < 16 << 10,
        "VmRSS grew from {rss_warm} KiB (warm) to {rss_last} KiB while running"
    );
    assert!(
        rss_end.saturating_sub(rss_start) < 32 << 10,
        "VmRSS grew from {rss_start} to {rss_end} KiB"
    );
    support::wait_until(
        support::TIMEOUT,
        "the thread count back after shutdown",
        || support::threads() == baseline,
    );
}
