//! A live sensor dashboard: the board's CPU, memory, network, disk and
//! uptime, and the temperatures, fans, voltages and IIO sensors (a BME280's
//! temperature, humidity and pressure, light, motion) it exposes in `/sys`,
//! pushed to every browser that opens the page. `docs/dashboard.md` lists
//! them, and shows how to add your own.
//!
//! ```text
//! cargo run --release --example dashboard -- --addr 0.0.0.0:8080 --rate 10
//! ```
//!
//! One port serves the page (`GET /`, embedded in the binary) and the
//! WebSocket (`GET /ws`); anything else gets a 404. `RUST_LOG=info` logs
//! clients and their commands.
//!
//! With `Config::default()`, other sites cannot use it: a WebSocket opened
//! by a page of another origin gets 403, and a request for a host name that
//! is not the board's (DNS rebinding) gets 421. The board's names need no
//! flag: its addresses, `localhost`, `<name>.local` and its hostname. Add
//! the names a reverse proxy or the LAN's DNS gives it with
//! `--allow-host board.lan,dash.example.com` (see `Config::allowed_hosts`).
//!
//! A sampler thread reads `/proc` and `/sys` `--rate` times a second and
//! publishes each sample, as compact JSON, to one hub topic per rate a
//! client may choose ("sensors/10hz", "sensors/5hz", ... "sensors/1hz"),
//! each with [`Policy::KeepLatest`]: a browser that falls behind gets the
//! newest reading, not a backlog. The board's sensors (ids, labels, units,
//! ranges), the rates on offer and the sources this board lacks are
//! published once, to "sensors/info".
//!
//! The page uses `boardcast.js` (served at `/boardcast.js`) and the
//! `boardcast.v1` protocol (`docs/protocol.md`) over WebSocket, or, where a
//! proxy refuses the upgrade, over Server-Sent Events or long polling
//! (`docs/transports.md`, all served on the same port): it subscribes to
//! "sensors/info" and to the topic of the rate it shows; pausing
//! unsubscribes it, and changing the rate moves it to another topic. When
//! its link drops (Wi-Fi, a sleeping phone), it reconnects by itself and
//! resumes each topic after the last reading it got: each topic keeps its
//! last two minutes of readings in the hub's history, so a page back within
//! that window gets the readings it missed, and a page that opens asks for
//! them (`past=120`) to draw its charts at once. Every transport carries a
//! heartbeat (5 s), so the page can say when its data is stale
//! (`docs/dashboard.md`). `GET /latest` answers every
//! topic's latest message as JSON, for scripts. Readings look like:
//!
//! ```text
//! {"seq":42,"t":1718000000000,"type":"reading","values":{"cpu":12.5,"cpu0":9.1,"load":0.42,...}}
//! ```
//!
//! A plain WebSocket client (no subprotocol: `websocat ws://board:8080/ws`)
//! gets the info, then the fastest readings.
//!
//! SIGTERM (`systemctl stop`) and SIGINT (Ctrl-C) stop it gracefully: every
//! client gets close 1001 (SSE streams and long polls end), their threads
//! and the sampler's are joined, and it exits with status 0. A second
//! signal while it waits for them exits at once, with status 1.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boardcast::hub::Retention;
use boardcast::{
    Accept, Client, Config, HandshakeError, Hub, Message, Policy, Response, Server, ShutdownHandle,
    Transports,
};
use serde_json::{json, Value};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[path = "common/args.rs"]
mod args;
#[path = "dashboard/board.rs"]
mod board;

use args::Args;
use board::Board;

/// The page, built into the binary: no files to install next to it.
const PAGE: &str = include_str!("dashboard/index.html");

fn main() -> std::io::Result<()> {
    env_logger::init();
    let (addr, rate, hosts) = parse_args();
    let rates = offered_rates(rate);

    // WebSocket at /ws, and beside it every HTTP transport (SSE at /sse,
    // long polling at /poll, POST /send, /latest, /boardcast.js), for
    // networks whose proxies refuse the upgrade: boardcast.js falls back.
    let server = match Server::bind(&addr, Config::default().allowed_hosts(hosts)) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("dashboard: cannot listen on {addr}: {}", bind_error(&e));
            std::process::exit(1);
        }
    };
    let server = server
        .transports(Transports::default())
        .on_http(move |request| match (request.path(), request.method()) {
            ("/", "GET" | "HEAD") => Response::html(PAGE).header("Cache-Control", "no-cache"),
            ("/", _) => Response::text(405, "method not allowed\n").header("Allow", "GET, HEAD"),
            // A plain GET of the WebSocket URL, without the upgrade headers.
            ("/ws", _) => Response::refusal(HandshakeError::NotUpgrade),
            _ => Response::text(404, "not found\n"),
        })
        .on_upgrade(|request| match request.path() {
            "/ws" => Ok(Accept::new()),
            _ => Err(Response::text(404, "not found\n")),
        });

    let board = Board::probe();
    for missing in &board.missing {
        println!("not available here: {} ({})", missing.label, missing.source);
    }
    if board.simulated {
        println!("no sensor could be read: showing a simulated one");
    }
    let hub = server.hub();
    let info = board.info(rate, &rates).to_string();
    hub.set_policy(INFO, Policy::KeepLatest);
    hub.set_retention(INFO, Retention::none());
    hub.publish_text(INFO, &info);
    // Each rate's topic keeps its last two minutes: a page whose link
    // dropped for less than that gets every reading it missed, and a page
    // that opens draws them at once. A reading is 150 bytes here with CPU,
    // memory and network, up to a kilobyte with thirty sensors; with the
    // boardcast.v1 envelope (and its compressed form with `deflate`) the
    // rates' two minutes take 1 to 6 MiB together: the budget bounds them.
    hub.set_history_budget(HISTORY_BUDGET);
    for &hz in &rates {
        hub.set_policy(&topic(hz), Policy::KeepLatest);
        hub.set_retention(&topic(hz), history());
    }
    let sampler_rates = rates.clone();
    let (stop_sampler, stopped) = mpsc::channel::<()>();
    let sampler = std::thread::Builder::new()
        .name("sampler".into())
        .spawn(move || sample_until(board, &hub, rate, &sampler_rates, &stopped))?;
    // Clients being served (WebSocket, SSE, long polling), for the last line.
    let clients = Arc::new(AtomicUsize::new(0));
    let signals = Stopper::on_signals(server.shutdown_handle(), Arc::clone(&clients))?;

    let port = server.local_addr().port();
    match server.local_addr().ip() {
        ip if ip.is_unspecified() => {
            println!("dashboard: open http://localhost:{port}/ here");
            for ip in board_addresses() {
                println!(
                    "  or http://{}/ from another device",
                    std::net::SocketAddr::new(ip, port)
                );
            }
            if let Some(name) = hostname() {
                println!("  or http://{name}.local:{port}/ where the LAN resolves it (mDNS)");
            }
        }
        ip => println!(
            "dashboard: open http://{}/",
            std::net::SocketAddr::new(ip, port)
        ),
    }
    let served = server.run(move |client| {
        clients.fetch_add(1, Ordering::SeqCst);
        serve(client, &rates);
        clients.fetch_sub(1, Ordering::SeqCst);
    });
    // Every client's thread has ended: stop the sampler and the signal
    // thread, and say why.
    drop(stop_sampler);
    let _ = sampler.join();
    if let Some((signal, closed)) = signals.finish() {
        let s = if closed == 1 { "" } else { "s" };
        println!("dashboard: stopped ({signal}), {closed} client{s} closed");
    }
    served
}

/// The thread that turns SIGTERM or SIGINT into a graceful shutdown.
struct Stopper {
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
    caught: mpsc::Receiver<(&'static str, usize)>,
}

impl Stopper {
    /// Catches SIGTERM and SIGINT from now on: the first shuts `server`
    /// down (and is reported with the count of `clients` then), a second
    /// exits at once.
    fn on_signals(stop: ShutdownHandle, clients: Arc<AtomicUsize>) -> std::io::Result<Stopper> {
        let mut signals = Signals::new([SIGTERM, SIGINT])?;
        let handle = signals.handle();
        let (tx, caught) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let name = |signal| {
                    if signal == SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    }
                };
                let mut forever = signals.forever();
                if let Some(signal) = forever.next() {
                    let _ = tx.send((name(signal), clients.load(Ordering::SeqCst)));
                    log::info!("{}: shutting down", name(signal));
                    stop.shutdown();
                }
                if let Some(signal) = forever.next() {
                    eprintln!("dashboard: {} again: exiting now", name(signal));
                    std::process::exit(1);
                }
            })?;
        Ok(Stopper {
            handle,
            thread,
            caught,
        })
    }

    /// Ends the thread; the signal that stopped the server, if one did,
    /// and how many clients it closed.
    fn finish(self) -> Option<(&'static str, usize)> {
        self.handle.close();
        let _ = self.thread.join();
        self.caught.try_recv().ok()
    }
}

/// The topic of the board's sensors, units and rates.
const INFO: &str = "sensors/info";

/// What the topics of readings keep, together at most.
const HISTORY_BUDGET: usize = 8 << 20;

/// What each topic of readings keeps: two minutes.
fn history() -> Retention {
    Retention::default()
        .max_age(Some(Duration::from_secs(120)))
        .messages(usize::MAX)
        .bytes(HISTORY_BUDGET / 2)
}

/// The hub topic that carries readings at `hz` samples per second.
fn topic(hz: u32) -> String {
    format!("sensors/{hz}hz")
}

/// The rates a client may choose: the usual steps below the sample rate,
/// and the sample rate itself.
fn offered_rates(rate: u32) -> Vec<u32> {
    let mut rates: Vec<u32> = [1, 2, 5, 10, 20, 50]
        .into_iter()
        .filter(|&hz| hz < rate)
        .collect();
    rates.push(rate);
    rates
}

/// Whether sample number `seq` of a `rate` Hz stream also belongs to the
/// `hz` Hz stream: `hz` of every `rate` samples, evenly spread.
fn is_due(seq: u64, hz: u32, rate: u32) -> bool {
    seq * u64::from(hz) % u64::from(rate) < u64::from(hz)
}

/// One client, on its own thread. A page (`boardcast.v1`) subscribes by
/// itself; a plain WebSocket client gets the info and the fastest
/// readings, and may send commands (docs/dashboard.md, "Commands").
fn serve(mut client: Client, rates: &[u32]) {
    let (id, peer) = (client.id(), client.peer_addr());
    log::info!("client {id} connected from {peer}");
    let mut reading = Reading {
        hz: rates[rates.len() - 1],
        paused: false,
    };
    if !client.speaks_v1() {
        client.resume(INFO, None);
        client.subscribe(&topic(reading.hz));
    }
    let end = loop {
        match client.recv() {
            Ok(Some(Message::Text(text))) => {
                log::info!("client {id} ({peer}): {text}");
                let answer = match client.speaks_v1() {
                    true => Err("a page subscribes to a rate's topic (sensors/<hz>hz) \
                                 instead of sending commands"
                        .to_string()),
                    false => reading.command(&client, rates, &text),
                };
                let answer =
                    answer.unwrap_or_else(|error| json!({"type": "error", "error": error}));
                if client.send_text(&answer.to_string()).is_err() {
                    break "could not answer".to_string();
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break "closed".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    log::info!("client {id} ({peer}) gone: {end}");
}

/// What a plain WebSocket client gets: readings at `hz` a second, unless
/// paused.
struct Reading {
    hz: u32,
    paused: bool,
}

impl Reading {
    /// Carries out one command, `{"cmd":"pause"}`, `{"cmd":"resume"}` or
    /// `{"cmd":"rate","hz":N}`; the acknowledgement, or why not.
    fn command(&mut self, client: &Client, rates: &[u32], text: &str) -> Result<Value, String> {
        let command: Value =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let name = command
            .get("cmd")
            .and_then(Value::as_str)
            .ok_or("a command is a JSON object with a \"cmd\" string")?;
        let (hz, paused) = match name {
            "pause" => (self.hz, true),
            "resume" => (self.hz, false),
            "rate" => match command.get("hz").and_then(Value::as_u64) {
                Some(hz) if rates.iter().any(|&r| u64::from(r) == hz) => (hz as u32, self.paused),
                _ => {
                    return Err(format!(
                        "\"hz\" must be one of the rates offered: {rates:?}"
                    ))
                }
            },
            other => {
                return Err(format!(
                    "unknown command {other:?}: the commands are pause, resume and rate"
                ))
            }
        };
        if !self.paused {
            client.unsubscribe(&topic(self.hz));
        }
        if !paused {
            client.subscribe(&topic(hz));
        }
        (self.hz, self.paused) = (hz, paused);
        Ok(json!({"type": "ack", "cmd": name, "hz": hz, "paused": paused}))
    }
}

/// Reads the board `rate` times a second and publishes each sample to the
/// topics of the rates it belongs to, until `stop`'s sender hangs up.
/// Publishing never blocks: a slow client only loses readings, under
/// `KeepLatest`.
fn sample_until(mut board: Board, hub: &Hub, rate: u32, rates: &[u32], stop: &mpsc::Receiver<()>) {
    let period = Duration::from_secs(1) / rate;
    let mut next = Instant::now();
    for seq in 0u64.. {
        let reading = json!({
            "type": "reading",
            "seq": seq,
            "t": unix_millis(),
            "values": board.read(Instant::now()),
        })
        .to_string();
        for &hz in rates {
            if is_due(seq, hz, rate) {
                hub.publish_text(&topic(hz), &reading);
            }
        }
        next += period;
        let wait = next
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| {
                // Fell behind (a busy board): carry on from now, without a burst.
                next = Instant::now();
                Duration::ZERO
            });
        // Until the next sample, or until `stop` hangs up.
        if stop.recv_timeout(wait) != Err(mpsc::RecvTimeoutError::Timeout) {
            return;
        }
    }
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// Why binding failed, for a person.
fn bind_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the port is in use (another dashboard? pick one with --addr 0.0.0.0:PORT)".into()
        }
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)".into()
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "this machine has no such address (use 0.0.0.0 for all of them)".into()
        }
        _ if e.to_string().contains("lookup") => {
            "not an address: write it as HOST:PORT, e.g. 0.0.0.0:8080".into()
        }
        _ => e.to_string(),
    }
}

/// The board's IPv4 addresses other devices can reach: those of its
/// interfaces but the loopback, from `/proc/net/fib_trie` (the kernel's
/// local routes), with no dependency.
fn board_addresses() -> Vec<std::net::IpAddr> {
    let trie = read("/proc/net/fib_trie").unwrap_or_default();
    let mut found: Vec<std::net::IpAddr> = Vec::new();
    let lines: Vec<&str> = trie.lines().collect();
    for pair in lines.windows(2) {
        // "|-- 192.168.1.20" then "/32 host LOCAL": an address of this host.
        let (Some(addr), true) = (
            pair[0].trim().strip_prefix("|-- "),
            pair[1].contains("/32 host LOCAL"),
        ) else {
            continue;
        };
        if let Ok(ip) = addr.parse::<std::net::Ipv4Addr>() {
            if !ip.is_loopback() && !found.contains(&ip.into()) {
                found.push(ip.into());
            }
        }
    }
    found
}

fn hostname() -> Option<String> {
    read("/proc/sys/kernel/hostname").map(|name| name.trim().to_string())
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ---------------------------------------------------------------------------

fn parse_args() -> (String, u32, Vec<String>) {
    let mut args = Args::new(
        "dashboard",
        "[--addr HOST:PORT (0.0.0.0:8080)] [--rate SAMPLES_PER_SEC (10)] \
         [--allow-host NAME,... (none: the board's own names only)]",
    );
    let addr = args.option("--addr", "0.0.0.0:8080".to_string());
    let rate: u32 = args.option("--rate", 10);
    if !(1..=100).contains(&rate) {
        args.fail("--rate must be 1 to 100 samples per second");
    }
    let hosts: String = args.option("--allow-host", String::new());
    let hosts = hosts
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(String::from)
        .collect();
    args.finish();
    (addr, rate, hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_on_offer() {
        assert_eq!(offered_rates(10), [1, 2, 5, 10]);
        assert_eq!(offered_rates(1), [1]);
        assert_eq!(offered_rates(7), [1, 2, 5, 7]);
    }

    #[test]
    fn slower_topics_get_evenly_spread_samples() {
        let due = |hz| {
            (0..20)
                .filter(|&seq| is_due(seq, hz, 10))
                .collect::<Vec<_>>()
        };
        assert_eq!(due(10).len(), 20);
        assert_eq!(due(5), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
        assert_eq!(due(2), [0, 5, 10, 15]);
        assert_eq!(due(1), [0, 10]);
    }
}
