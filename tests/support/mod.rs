//! What the integration tests share, in one module: servers on
//! `127.0.0.1:0` (a `boardcast::Server` on its own thread, or a plain
//! accept loop for `boardcast::accept`), tungstenite clients, raw sockets
//! with HTTP and frame helpers for a strict client, bounded waits, thread
//! and memory counts from `/proc`, sequence-stamped payloads for checking
//! order and measuring delay, and an in-memory stream.
//!
//! Every socket a test reads has a read timeout of [`TIMEOUT`] and every
//! wait has a deadline, so a bug fails a test instead of hanging it.

#![allow(dead_code)]

mod browser;
mod client;
mod dashboard;
mod frames;
mod http;
mod proxy;
mod server;
mod sse;
mod v1;

// Flat, as `support::name`; a test binary that uses none of a
// submodule's items would otherwise warn about its re-export.
#[allow(unused_imports)]
pub use {
    browser::*, client::*, dashboard::*, frames::*, http::*, proxy::*, server::*, sse::*, v1::*,
};

use std::io::{self, Cursor, Read, Write};
use std::sync::{mpsc, Condvar, Mutex, MutexGuard, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long any test waits for a socket, a thread or a condition before
/// failing.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Starts `env_logger` once per test binary (`RUST_LOG=debug` shows the
/// library's logs).
pub fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = env_logger::builder().is_test(true).try_init();
    });
}

/// Runs `f` on a thread and waits at most [`TIMEOUT`] for it, so that a
/// thread that hangs fails the test.
pub fn bounded<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Waiter<T> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    Waiter {
        name: name.into(),
        rx,
    }
}

/// The result of a thread started by [`bounded`].
pub struct Waiter<T> {
    name: String,
    rx: mpsc::Receiver<T>,
}

impl<T> Waiter<T> {
    /// Waits at most [`TIMEOUT`] for the thread's result.
    pub fn join(self) -> T {
        match self.rx.recv_timeout(TIMEOUT) {
            Ok(value) => value,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("thread {} hangs", self.name),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("thread {} panicked", self.name),
        }
    }
}

/// Polls `cond` until it holds; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// Serialises the tests of one binary that count threads, so that no other
/// test's server threads come and go meanwhile.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The threads of this process (`Threads:` in `/proc/self/status`).
pub fn threads() -> usize {
    proc_status_field("Threads:")
}

/// The resident memory of this process in KiB (`VmRSS:`).
pub fn rss_kib() -> usize {
    proc_status_field("VmRSS:")
}

fn proc_status_field(name: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    parse_status_field(&status, name)
}

/// A number field of a `/proc/PID/status` text.
pub fn parse_status_field(status: &str, name: &str) -> usize {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc status"))
}

/// The threads of this process named `boardcast-*`: the server's
/// connection and writer threads, and the hub's flusher once it publishes.
pub fn server_threads() -> usize {
    threads_named("boardcast-")
}

/// The connection and writer threads of the server's clients.
pub fn client_threads() -> usize {
    threads_named("boardcast-conn") + threads_named("boardcast-write")
}

fn threads_named(prefix: &str) -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// Whether this process has a socket listening on `addr` (an IPv4
/// address): its socket inodes (`/proc/self/fd`) matched against the
/// listening sockets of `/proc/net/tcp`. Unlike connecting, the answer does
/// not change if another program binds the port once it is free.
pub fn listens(addr: std::net::SocketAddr) -> bool {
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("{addr}: only IPv4 addresses are looked up");
    };
    // /proc/net/tcp writes the address as the hex of its bytes in memory
    // order (little-endian here), and the port in hex.
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    );
    let fds = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    let mine: std::collections::HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 9 && fields[1] == local && fields[3] == "0A" && mine.contains(fields[9])
    })
}

/// The process-wide origin of [`stamp`] times.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A `size`-byte payload (at least 16) carrying `seq` and the time now.
pub fn stamp(seq: u64, size: usize) -> Vec<u8> {
    let mut payload = vec![0u8; size.max(16)];
    payload[..8].copy_from_slice(&seq.to_be_bytes());
    let nanos = epoch().elapsed().as_nanos() as u64;
    payload[8..16].copy_from_slice(&nanos.to_be_bytes());
    payload
}

/// The sequence number of a [`stamp`]ed payload and how long ago it was
/// stamped.
pub fn unstamp(payload: &[u8]) -> (u64, Duration) {
    assert!(payload.len() >= 16, "payload of {} bytes", payload.len());
    let seq = u64::from_be_bytes(payload[..8].try_into().unwrap());
    let sent = Duration::from_nanos(u64::from_be_bytes(payload[8..16].try_into().unwrap()));
    (seq, epoch().elapsed().saturating_sub(sent))
}

/// p50, p99 and max of some delays, for printing.
pub fn summary(delays: &mut [Duration]) -> String {
    if delays.is_empty() {
        return "no samples".into();
    }
    delays.sort();
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];
    format!(
        "n={} p50={:?} p99={:?} max={:?}",
        delays.len(),
        at(0.5),
        at(0.99),
        delays[delays.len() - 1]
    )
}

/// How many messages each of several readers has received, for a
/// publisher that must not run ahead of them by more than a window.
#[derive(Debug)]
pub struct Progress {
    counts: Mutex<Vec<u64>>,
    changed: Condvar,
}

impl Progress {
    pub fn new(readers: usize) -> Progress {
        Progress {
            counts: Mutex::new(vec![0; readers]),
            changed: Condvar::new(),
        }
    }

    /// Reader `i` has received `count` messages.
    pub fn set(&self, i: usize, count: u64) {
        self.counts.lock().unwrap()[i] = count;
        self.changed.notify_all();
    }

    /// Waits until every reader has received at least `count`.
    pub fn wait_all(&self, count: u64) {
        let counts = self.counts.lock().unwrap();
        let (counts, timeout) = self
            .changed
            .wait_timeout_while(counts, TIMEOUT, |c| c.iter().any(|&n| n < count))
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "readers stuck at {:?}, waiting for {count}",
            *counts
        );
    }
}

/// An in-memory stream: reads come from `input`, writes go to `output`.
#[derive(Debug)]
pub struct Pipe {
    pub input: Cursor<Vec<u8>>,
    pub output: Vec<u8>,
}

impl Pipe {
    /// A pipe that will read `input`, with room for `capacity` bytes of
    /// output reserved up front (so writes need not allocate).
    pub fn new(input: impl Into<Vec<u8>>, capacity: usize) -> Pipe {
        Pipe {
            input: Cursor::new(input.into()),
            output: Vec::with_capacity(capacity),
        }
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An in-memory stream takes no timeouts: a connection over it keeps no
/// time limits.
impl boardcast::Timeouts for Pipe {}

/// The release build of `examples/broadcast` (or `BROADCAST_BIN`), run as
/// its own process at 1 message/s on a port of its choosing; killed however
/// the test ends. For the measurements (`footprint`, `burst`).
pub struct BroadcastExample {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl BroadcastExample {
    pub fn start() -> BroadcastExample {
        use std::io::BufRead;
        let bin = std::env::var("BROADCAST_BIN").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/release/examples/broadcast"
            )
            .into()
        });
        let mut child = std::process::Command::new(&bin)
            .args(["127.0.0.1:0", "--rate", "1"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{bin}: {e}; run cargo build --release --example broadcast")
            });
        let stdout = child.stdout.take().expect("piped");
        let mut example = BroadcastExample {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
        };
        let mut banner = String::new();
        io::BufReader::new(stdout).read_line(&mut banner).unwrap();
        // "broadcast on ws://127.0.0.1:PORT : ..."
        example.addr = banner
            .split("ws://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {banner:?}"));
        example
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// A field of the process's `/proc/PID/status`, in its unit.
    pub fn status(&self, name: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        parse_status_field(&status, name)
    }
}

impl Drop for BroadcastExample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
