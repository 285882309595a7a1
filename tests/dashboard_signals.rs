//! The dashboard example stops gracefully on SIGTERM (`systemctl stop`)
//! and SIGINT (Ctrl-C): its WebSocket clients get close 1001, its
//! Server-Sent-Events streams and held long polls end, it says so and
//! exits with status 0. (`tests/shutdown.rs` and `tests/transports.rs`
//! check the library's shutdown; this checks the example wires its signals
//! to it.)

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use support::{example_binary, Dashboard, Events, TIMEOUT};

/// Sends `signal` (`TERM`, `INT`) to the dashboard with kill(1).
fn send_signal(dashboard: &Dashboard, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(dashboard.process.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
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
    let mut dashboard = Dashboard::start(&example_binary(), 0);
    let addr = dashboard.addr;

    // A plain WebSocket client: its handler subscribes it to the info, so
    // the info's arrival says the handler runs.
    let mut ws = support::connect(addr, "/ws");
    let info: Value = serde_json::from_str(&support::next_text(&mut ws)).unwrap();
    assert_eq!(info["type"], "info", "{info}");
    let mut sse = Events::open(addr, "/sse?topics=sensors/info", "");
    sse.welcome();
    let mut poll = hold_poll(addr);

    let sent = Instant::now();
    send_signal(&dashboard, signal);
    assert_eq!(support::read_close(&mut ws), Some(1001));
    support::finish_close(&mut ws);
    read_until_closed("the SSE stream", &mut sse.reader);
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
