//! The dashboard example stops gracefully on SIGTERM (`systemctl stop`)
//! and SIGINT (Ctrl-C): its WebSocket clients get close 1001, its
//! Server-Sent-Events streams and held long polls end, it says so and
//! exits with status 0. (`tests/shutdown.rs` and `tests/transports.rs`
//! check the library's shutdown; this checks the example wires its signals
//! to it.)

mod support;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Process, TIMEOUT};

/// The example's binary, built as `tests/browser.rs` builds it (with this
/// test's features and profile); up to date after `cargo test`, so the
/// build costs a fraction of a second.
fn example_binary() -> PathBuf {
    // This test runs as target/<profile>/deps/dashboard_signals-<hash>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from(env!("CARGO")));
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", "dashboard"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if cfg!(feature = "deflate") {
        build.args(["--features", "deflate"]);
    }
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(profile) => {
            build.args(["--profile", profile]);
        }
    }
    let mut child = Process::spawn("cargo build --example dashboard", &mut build);
    let status = child
        .wait(Duration::from_secs(300))
        .expect("cargo build --example dashboard did not finish in 300 s");
    assert!(status.success(), "cargo build --example dashboard failed");
    profile_dir.join("examples").join("dashboard")
}

/// The running example and the lines it prints, as they come.
struct Dashboard {
    process: Process,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Dashboard {
    /// Starts the dashboard on `127.0.0.1:0` and waits for its address.
    fn start() -> Dashboard {
        support::init_logging();
        let mut process = Process::spawn(
            "the dashboard example",
            Command::new(example_binary())
                .args(["--addr", "127.0.0.1:0"])
                .stdout(Stdio::piped()),
        );
        let stdout = process.child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        // Reads to the end: the dashboard's last line comes as it exits,
        // and a closed pipe would fail its print.
        thread::Builder::new()
            .name("test-dashboard-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            })
            .unwrap();
        let mut dashboard = Dashboard {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
        };
        // "dashboard: open http://127.0.0.1:PORT/", after any notes on
        // missing sensors.
        let line = dashboard.line_starting("dashboard: open http://");
        dashboard.addr = line["dashboard: open http://".len()..]
            .trim_end_matches('/')
            .parse()
            .expect("the address the dashboard printed");
        dashboard
    }

    /// The next line printed that starts with `prefix`, within [`TIMEOUT`].
    fn line_starting(&self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line {prefix:?} from the dashboard: {e}"),
            }
        }
    }

    /// Sends `signal` (`TERM`, `INT`) with kill(1).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.process.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

/// An SSE stream, its response head and welcome read.
fn open_sse(addr: SocketAddr) -> BufReader<TcpStream> {
    let mut stream = support::tcp(addr);
    write!(
        stream,
        "GET /sse?topics=sensors/info HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).expect("the SSE status line");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("the SSE stream");
        assert!(n > 0, "the SSE stream ended before its welcome");
        if line.trim_end() == "event: welcome" {
            return reader;
        }
    }
}

/// A long poll the server holds (no new message on `sensors/info`): its
/// socket, the request sent.
fn hold_poll(addr: SocketAddr) -> TcpStream {
    let first = support::http(
        addr,
        &format!(
            "GET /poll?topics=sensors/info HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let body: Value = serde_json::from_str(first.split("\r\n\r\n").nth(1).unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {first}"));
    let (session, cursor) = (body["session"].as_str(), body["cursor"].as_str());
    let (session, cursor) = (session.expect("a session"), cursor.expect("a cursor"));
    let mut stream = support::tcp(addr);
    write!(
        stream,
        "GET /poll?session={session}&after={cursor} HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    stream
}

/// Reads until the peer ends the connection; fails on the read timeout
/// ([`TIMEOUT`]: a stream the shutdown left open).
fn read_until_closed(what: &str, stream: &mut impl Read) {
    let mut sink = Vec::new();
    if let Err(e) = stream.read_to_end(&mut sink) {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{what} still open {TIMEOUT:?} after the signal"
        );
    }
}

fn stops_gracefully_on(signal: &str) {
    let mut dashboard = Dashboard::start();
    let addr = dashboard.addr;

    // A plain WebSocket client: its handler subscribes it to the info, so
    // the info's arrival says the handler runs.
    let mut ws = support::connect(addr, "/ws");
    let info: Value = serde_json::from_str(&support::next_text(&mut ws)).unwrap();
    assert_eq!(info["type"], "info", "{info}");
    let mut sse = open_sse(addr);
    let mut poll = hold_poll(addr);

    let sent = Instant::now();
    dashboard.signal(signal);
    assert_eq!(support::read_close(&mut ws), Some(1001));
    support::finish_close(&mut ws);
    read_until_closed("the SSE stream", &mut sse);
    read_until_closed("the held long poll", &mut poll);
    let status = dashboard
        .process
        .wait(TIMEOUT)
        .unwrap_or_else(|| panic!("still running {TIMEOUT:?} after SIG{signal}"));
    eprintln!("SIG{signal}: exited {status} after {:?}", sent.elapsed());
    assert!(status.success(), "SIG{signal}: {status}");
    // Two clients or three: the SSE and poll sessions' handlers may not
    // have started yet when the signal came.
    let last = dashboard.line_starting("dashboard: stopped");
    let closed = ["1 client closed", "2 clients closed", "3 clients closed"]
        .map(|n| format!("dashboard: stopped (SIG{signal}), {n}"));
    assert!(closed.contains(&last), "{last}");
}

#[test]
fn sigterm_closes_every_client_and_exits_0() {
    stops_gracefully_on("TERM");
}

#[test]
fn sigint_closes_every_client_and_exits_0() {
    stops_gracefully_on("INT");
}
