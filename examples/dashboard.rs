//! A live sensor dashboard: the board's temperature, CPU, memory, network
//! and uptime, pushed to every browser that opens the page.
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
//! last two minutes of readings in the hub's history (about 1 MiB in all at
//! ten readings a second), so a page back within that window gets the
//! readings it missed. `GET /latest` answers every
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

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boardcast::hub::Retention;
use boardcast::{
    Accept, Client, Config, HandshakeError, Hub, Message, Policy, Response, Server, ShutdownHandle,
    Transports,
};
use serde_json::{json, Map, Value};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[path = "common/args.rs"]
mod args;

use args::Args;

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
    // dropped for less than that gets every reading it missed. At ten
    // 150-byte readings a second, with the boardcast.v1 envelope, about
    // 1 MiB for all rates together; the budget leaves room for larger
    // readings.
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
    let fastest = topic(rate);
    let served = server.run(move |client| {
        clients.fetch_add(1, Ordering::SeqCst);
        serve(client, &fastest);
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
const HISTORY_BUDGET: usize = 4 << 20;

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
/// readings. Either may send text, which is logged.
fn serve(mut client: Client, fastest: &str) {
    let (id, peer) = (client.id(), client.peer_addr());
    log::info!("client {id} connected from {peer}");
    if !client.speaks_v1() {
        client.resume(INFO, None);
        client.subscribe(fastest);
    }
    let end = loop {
        match client.recv() {
            Ok(Some(Message::Text(text))) => log::info!("client {id}: {text}"),
            Ok(Some(_)) => {}
            Ok(None) => break "closed".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    log::info!("client {id} ({peer}) gone: {end}");
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

// ---------------------------------------------------------------------------
// The board's sensors

/// A reading the page charts.
struct Sensor {
    id: String,
    label: String,
    unit: &'static str,
    /// The chart's fixed range, where there is a natural one.
    min: Option<f64>,
    max: Option<f64>,
}

impl Sensor {
    fn new(id: impl Into<String>, label: impl Into<String>, unit: &'static str) -> Sensor {
        Sensor {
            id: id.into(),
            label: label.into(),
            unit,
            min: None,
            max: None,
        }
    }

    fn range(mut self, min: f64, max: Option<f64>) -> Sensor {
        self.min = Some(min);
        self.max = max;
        self
    }
}

/// A source this board does not have.
struct Missing {
    label: &'static str,
    source: &'static str,
}

const THERMAL_SOURCE: &str =
    "/sys/class/thermal/thermal_zone*/temp, /sys/class/hwmon/*/temp*_input";

/// The board's sources: which it has (found at start, told to each
/// client), and what is needed to turn counters into rates.
struct Board {
    sensors: Vec<Sensor>,
    missing: Vec<Missing>,
    /// No source at all could be read: a clearly labelled fake one instead.
    simulated: bool,
    thermal: Option<PathBuf>,
    cpu: Window<Vec<(String, CpuTimes)>>,
    net: Window<(u64, u64)>,
    started: Instant,
}

impl Board {
    /// Tries each source once: those that can be read are charted, the
    /// others are reported as missing.
    fn probe() -> Board {
        let mut board = Board {
            sensors: Vec::new(),
            missing: Vec::new(),
            simulated: false,
            thermal: find_thermal(),
            cpu: Window::default(),
            net: Window::default(),
            started: Instant::now(),
        };
        let cpus = read("/proc/stat").map(|text| parse_stat(&text));
        let load = read("/proc/loadavg").and_then(|text| parse_loadavg(&text));
        let memory = read("/proc/meminfo").and_then(|text| parse_meminfo(&text));
        let net = read("/proc/net/dev").and_then(|text| parse_net_dev(&text));
        let uptime = read("/proc/uptime").and_then(|text| parse_uptime(&text));

        if board.thermal.is_some() {
            board.found(Sensor::new("temp", "CPU temperature", "°C"));
        } else {
            board.lacks("CPU temperature", THERMAL_SOURCE);
        }
        match cpus {
            Some(cpus) if !cpus.is_empty() => {
                for (name, _) in cpus {
                    let label = match &name[3..] {
                        "" => "CPU usage, all cores".to_string(),
                        core => format!("CPU usage, core {core}"),
                    };
                    board.found(Sensor::new(name, label, "%").range(0.0, Some(100.0)));
                }
            }
            _ => board.lacks("CPU usage", "/proc/stat"),
        }
        if load.is_some() {
            board.found(Sensor::new("load", "Load average, 1 min", "").range(0.0, None));
        } else {
            board.lacks("Load average", "/proc/loadavg");
        }
        if let Some(memory) = memory {
            let total_mib = (memory.total_kib / 1024) as f64;
            board.found(Sensor::new("mem", "Memory used", "MiB").range(0.0, Some(total_mib)));
        } else {
            board.lacks("Memory", "/proc/meminfo (MemTotal, MemAvailable)");
        }
        if net.is_some() {
            board.found(Sensor::new("rx", "Network in", "KiB/s").range(0.0, None));
            board.found(Sensor::new("tx", "Network out", "KiB/s").range(0.0, None));
        } else {
            board.lacks("Network throughput", "/proc/net/dev");
        }
        if uptime.is_some() {
            board.found(Sensor::new("uptime", "Uptime", "s"));
        } else {
            board.lacks("Uptime", "/proc/uptime");
        }
        if board.sensors.is_empty() {
            board.simulated = true;
            board.found(Sensor::new("sim", "SIMULATED: no real sensor found", ""));
        }
        board
    }

    fn found(&mut self, sensor: Sensor) {
        self.sensors.push(sensor);
    }

    fn lacks(&mut self, label: &'static str, source: &'static str) {
        self.missing.push(Missing { label, source });
    }

    /// The first message to each client: what the readings will contain.
    fn info(&self, rate: u32, rates: &[u32]) -> Value {
        let sensors: Vec<Value> = self
            .sensors
            .iter()
            .map(|s| json!({ "id": s.id, "label": s.label, "unit": s.unit, "min": s.min, "max": s.max }))
            .collect();
        let missing: Vec<Value> = self
            .missing
            .iter()
            .map(|m| json!({ "label": m.label, "source": m.source }))
            .collect();
        json!({
            "type": "info",
            "host": hostname(),
            "rate": rate,
            "rates": rates,
            "hz": rate,
            "sensors": sensors,
            "missing": missing,
            "simulated": self.simulated,
        })
    }

    /// One sample of every source. A source that cannot be read now is
    /// left out of this sample (and one missing at start, whose id the
    /// page was not told, is ignored there); rates need a second sample.
    fn read(&mut self, now: Instant) -> Map<String, Value> {
        let mut values = Map::new();
        let mut put = |id: &str, value: f64, decimals: i32| {
            let value = match decimals {
                0 => json!(value.round() as i64),
                _ => json!((value * 10f64.powi(decimals)).round() / 10f64.powi(decimals)),
            };
            values.insert(id.into(), value);
        };
        if self.simulated {
            let seconds = now.duration_since(self.started).as_secs_f64();
            put("sim", 50.0 + 40.0 * (seconds / 10.0).sin(), 1);
        }
        if let Some(celsius) = self.thermal.as_deref().and_then(read_celsius) {
            put("temp", celsius, 1);
        }
        if let Some(cpus) = read("/proc/stat").map(|text| parse_stat(&text)) {
            if let Some((_, before, after)) = self.cpu.push(now, cpus) {
                for (name, times) in after {
                    let earlier = before.iter().find(|(n, _)| n == name);
                    if let Some(percent) = earlier.and_then(|(_, b)| usage_percent(*b, *times)) {
                        put(name, percent, 1);
                    }
                }
            }
        }
        if let Some(load) = read("/proc/loadavg").and_then(|text| parse_loadavg(&text)) {
            put("load", load, 2);
        }
        if let Some(memory) = read("/proc/meminfo").and_then(|text| parse_meminfo(&text)) {
            put("mem", memory.used_kib() as f64 / 1024.0, 0);
        }
        if let Some(totals) = read("/proc/net/dev").and_then(|text| parse_net_dev(&text)) {
            if let Some((seconds, before, after)) = self.net.push(now, totals) {
                let kib_per_second = |b: u64, a: u64| a.saturating_sub(b) as f64 / seconds / 1024.0;
                put("rx", kib_per_second(before.0, after.0), 1);
                put("tx", kib_per_second(before.1, after.1), 1);
            }
        }
        if let Some(seconds) = read("/proc/uptime").and_then(|text| parse_uptime(&text)) {
            put("uptime", seconds, 0);
        }
        values
    }
}

/// Snapshots of counters over the last second or so, so that CPU usage
/// and throughput are averaged over a second whatever the sample rate (at
/// 10 Hz, one sample's worth of `/proc/stat` is a mere 10 ticks per core).
struct Window<T> {
    samples: VecDeque<(Instant, T)>,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            samples: VecDeque::new(),
        }
    }
}

impl<T> Window<T> {
    /// Adds a snapshot; returns the seconds since the one of about a second
    /// ago, that one and the new one (`None` for the very first).
    fn push(&mut self, now: Instant, value: T) -> Option<(f64, &T, &T)> {
        self.samples.push_back((now, value));
        while self.samples.len() > 2
            && now.duration_since(self.samples[1].0) >= Duration::from_secs(1)
        {
            self.samples.pop_front();
        }
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let seconds = last.0.duration_since(first.0).as_secs_f64();
        (seconds > 0.0).then_some((seconds, &first.1, &last.1))
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

fn read_celsius(path: &Path) -> Option<f64> {
    parse_millidegrees(&read(path)?)
}

/// The file that holds the CPU temperature: a thermal zone (preferring one
/// whose type names the CPU or SoC), else a hwmon sensor.
fn find_thermal() -> Option<PathBuf> {
    let zones = sorted_dir("/sys/class/thermal")
        .into_iter()
        .filter(|dir| dir.to_string_lossy().contains("thermal_zone"))
        .map(|dir| (read(dir.join("type")).unwrap_or_default(), dir.join("temp")));
    let hwmons = sorted_dir("/sys/class/hwmon").into_iter().map(|dir| {
        (
            read(dir.join("name")).unwrap_or_default(),
            dir.join("temp1_input"),
        )
    });
    let readable: Vec<(String, PathBuf)> = zones
        .chain(hwmons)
        .filter(|(_, path)| read_celsius(path).is_some())
        .collect();
    let is_cpu = |kind: &str| {
        ["cpu", "soc", "pkg", "coretemp", "k10temp"]
            .iter()
            .any(|k| kind.contains(k))
    };
    readable
        .iter()
        .find(|(kind, _)| is_cpu(kind))
        .or(readable.first())
        .map(|(_, path)| path.clone())
}

fn sorted_dir(dir: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    paths.sort();
    paths
}

// ---------------------------------------------------------------------------
// Parsing, one small function per file format

/// `/sys/class/thermal/thermal_zone0/temp` holds millidegrees Celsius:
/// "48312\n" is 48.312 °C.
fn parse_millidegrees(text: &str) -> Option<f64> {
    Some(text.trim().parse::<i64>().ok()? as f64 / 1000.0)
}

/// The time one CPU (or all of them) spent busy, and in total, in clock
/// ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTimes {
    busy: u64,
    total: u64,
}

/// The `cpu` lines of `/proc/stat`: all cores ("cpu"), then each ("cpu0",
/// ...). Fields: user nice system idle iowait irq softirq steal (guest time
/// is already in user); idle and iowait count as not busy.
fn parse_stat(text: &str) -> Vec<(String, CpuTimes)> {
    text.lines()
        .filter(|line| line.starts_with("cpu"))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?.to_string();
            let ticks: Vec<u64> = fields
                .take(8)
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            let total: u64 = ticks.iter().sum();
            let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0);
            Some((
                name,
                CpuTimes {
                    busy: total - idle,
                    total,
                },
            ))
        })
        .collect()
}

/// How busy a CPU was between two snapshots, in percent.
fn usage_percent(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total).filter(|&t| t > 0)?;
    let busy = after.busy.saturating_sub(before.busy);
    Some((busy as f64 * 100.0 / total as f64).min(100.0))
}

/// `/proc/loadavg`: "0.52 0.58 0.59 2/345 12345"; the 1-minute average.
fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The two lines of `/proc/meminfo` that tell how much memory is in use.
#[derive(Debug, PartialEq)]
struct Memory {
    total_kib: u64,
    available_kib: u64,
}

impl Memory {
    /// What programs hold: total less what could be had without swapping.
    fn used_kib(&self) -> u64 {
        self.total_kib.saturating_sub(self.available_kib)
    }
}

/// `/proc/meminfo`: "MemTotal:  3884396 kB" and "MemAvailable: ..." lines.
fn parse_meminfo(text: &str) -> Option<Memory> {
    let field = |key: &str| -> Option<u64> {
        let line = text.lines().find(|line| line.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        total_kib: field("MemTotal:")?,
        available_kib: field("MemAvailable:")?,
    })
}

/// `/proc/net/dev`: bytes received and sent since boot, summed over every
/// interface but loopback. After two header lines, each line is
/// "  eth0: rx_bytes rx_packets ... (8 receive fields) tx_bytes ...".
fn parse_net_dev(text: &str) -> Option<(u64, u64)> {
    let mut totals = None;
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<&str> = counters.split_whitespace().collect();
        let (Some(rx), Some(tx)) = (fields.first(), fields.get(8)) else {
            continue;
        };
        let (rx, tx): (u64, u64) = (rx.parse().ok()?, tx.parse().ok()?);
        let (sum_rx, sum_tx) = totals.unwrap_or((0, 0));
        totals = Some((sum_rx + rx, sum_tx + tx));
    }
    totals
}

/// `/proc/uptime`: "12345.67 23456.78", seconds since boot first.
fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
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
    fn thermal_zone_millidegrees() {
        assert_eq!(parse_millidegrees("48312\n"), Some(48.312));
        assert_eq!(parse_millidegrees("-5000\n"), Some(-5.0));
        assert_eq!(parse_millidegrees(""), None);
    }

    const STAT: &str = "\
cpu  100 0 50 800 50 0 0 0 0 0
cpu0 60 0 20 400 20 0 0 0 0 0
cpu1 40 0 30 400 30 0 0 0 0 0
intr 1488369 0 0
ctxt 4917341
";

    #[test]
    fn stat_has_all_cores_then_each() {
        let cpus = parse_stat(STAT);
        let names: Vec<&str> = cpus.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["cpu", "cpu0", "cpu1"]);
        assert_eq!(
            cpus[0].1,
            CpuTimes {
                busy: 150,
                total: 1000
            }
        );
        assert_eq!(
            cpus[1].1,
            CpuTimes {
                busy: 80,
                total: 500
            }
        );
    }

    #[test]
    fn stat_of_an_old_kernel_with_four_fields() {
        let cpus = parse_stat("cpu 10 0 10 80\n");
        assert_eq!(
            cpus[0].1,
            CpuTimes {
                busy: 20,
                total: 100
            }
        );
    }

    #[test]
    fn usage_between_snapshots() {
        let before = CpuTimes {
            busy: 150,
            total: 1000,
        };
        let after = CpuTimes {
            busy: 175,
            total: 1100,
        };
        assert_eq!(usage_percent(before, after), Some(25.0));
        assert_eq!(usage_percent(after, after), None, "no time passed");
    }

    #[test]
    fn loadavg_first_field() {
        assert_eq!(parse_loadavg("0.51 0.65 0.39 5/111 25844\n"), Some(0.51));
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn meminfo_used_is_total_less_available() {
        let text = "MemTotal:        3884396 kB\nMemFree:          123456 kB\nMemAvailable:    2860332 kB\n";
        let memory = parse_meminfo(text).unwrap();
        assert_eq!(
            memory,
            Memory {
                total_kib: 3884396,
                available_kib: 2860332
            }
        );
        assert_eq!(memory.used_kib(), 1024064);
        assert_eq!(
            parse_meminfo("MemTotal: 100 kB\n"),
            None,
            "kernel older than 3.14"
        );
    }

    #[test]
    fn net_dev_sums_interfaces_but_loopback() {
        let text = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9999 10 0 0 0 0 0 0 9999 10 0 0 0 0 0 0
  eth0: 1000 20 0 0 0 0 0 0 300 5 0 0 0 0 0 0
 wlan0:500 7 0 0 0 0 0 0 200 3 0 0 0 0 0 0
";
        assert_eq!(parse_net_dev(text), Some((1500, 500)));
        assert_eq!(parse_net_dev(&text[..text.find("    lo").unwrap()]), None);
    }

    #[test]
    fn uptime_seconds() {
        assert_eq!(parse_uptime("1532.04 2639.55\n"), Some(1532.04));
    }

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

    #[test]
    fn window_compares_with_about_a_second_ago() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut window = Window::default();
        assert_eq!(window.push(at(0), 0), None);
        assert_eq!(window.push(at(500), 5), Some((0.5, &0, &5)));
        assert_eq!(window.push(at(1000), 10), Some((1.0, &0, &10)));
        assert_eq!(window.push(at(1600), 16), Some((1.1, &5, &16)));
    }
}
