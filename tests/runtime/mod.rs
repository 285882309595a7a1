//! What the server-runtime tests share: a [`Server`] running on its own
//! thread on `127.0.0.1:0`, tungstenite clients and raw sockets with read
//! timeouts, a bounded `wait_until`, thread counts from `/proc`, and
//! sequence-stamped payloads for checking order and measuring delay.
//!
//! Every socket a test reads has a read timeout and every wait has a
//! deadline, so a bug fails a test instead of hanging it.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard, Once, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use boardcast::{Client, Config, Error, Hub, Message, Server, ShutdownHandle, Stats};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response as WsResponse;
use tungstenite::protocol::WebSocketConfig;

/// How long a test waits for a socket or a condition before failing.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A tungstenite client over a blocking socket.
pub type Ws = tungstenite::WebSocket<TcpStream>;

/// Starts `env_logger` once per test binary (`RUST_LOG=debug` shows the
/// library's logs).
pub fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = env_logger::builder().is_test(true).try_init();
    });
}

/// Serialises the tests of one binary that count threads, so that no other
/// test's server threads come and go meanwhile.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
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

/// A server on `127.0.0.1:0`.
pub fn server(config: Config) -> Server {
    init_logging();
    Server::bind("127.0.0.1:0", config).expect("bind 127.0.0.1:0")
}

/// A [`Server::run`] on a thread of its own.
pub struct Running {
    pub addr: SocketAddr,
    pub hub: Hub,
    stop: ShutdownHandle,
    returned: mpsc::Receiver<io::Result<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Runs `server` with `handler` on a thread named `test-server`.
    pub fn start<F>(server: Server, handler: F) -> Running
    where
        F: Fn(Client) + Send + Sync + 'static,
    {
        let addr = server.local_addr();
        let hub = server.hub();
        let stop = server.shutdown_handle();
        let (tx, returned) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let _ = tx.send(server.run(handler));
            })
            .expect("spawn the server thread");
        Running {
            addr,
            hub,
            stop,
            returned,
            thread: Some(thread),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.hub.stats()
    }

    /// A handle to shut the server down.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Shuts the server down and waits for `run` to return (at most
    /// `within`); returns how long that took.
    pub fn shutdown(mut self, within: Duration) -> Duration {
        let start = Instant::now();
        self.stop.shutdown();
        self.join(within);
        start.elapsed()
    }

    /// Waits for `run` to return (after a shutdown started elsewhere).
    pub fn join(&mut self, within: Duration) {
        let result = self
            .returned
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("Server::run did not return within {within:?}"));
        result.expect("Server::run failed");
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread panicked");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test still stops its server, within bounds.
        if self.thread.is_some() {
            self.stop.shutdown();
            let _ = self.returned.recv_timeout(TIMEOUT);
        }
    }
}

/// A socket to `addr` with read and write timeouts of [`TIMEOUT`].
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// Whether connecting to `addr` is refused: nothing listens there.
pub fn tcp_refused(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, TIMEOUT),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
    )
}

/// A tungstenite client connected to `path`.
pub fn connect(addr: SocketAddr, path: &str) -> Ws {
    try_connect(addr, format!("ws://{addr}{path}")).expect("websocket handshake")
}

/// A tungstenite client with a 4 KiB read buffer (its default is 128 KiB),
/// for tests that open many.
pub fn connect_small(addr: SocketAddr, path: &str) -> Ws {
    let config = WebSocketConfig::default()
        .read_buffer_size(4 << 10)
        .write_buffer_size(0);
    let (ws, _) = tungstenite::client::client_with_config(
        format!("ws://{addr}{path}"),
        tcp(addr),
        Some(config),
    )
    .expect("websocket handshake");
    ws
}

/// A tungstenite handshake for `request`; the error if it is refused.
pub fn try_connect(
    addr: SocketAddr,
    request: impl IntoClientRequest,
) -> Result<Ws, tungstenite::Error> {
    try_connect_response(addr, request).map(|(ws, _)| ws)
}

/// As [`try_connect`], also returning the 101 response.
pub fn try_connect_response(
    addr: SocketAddr,
    request: impl IntoClientRequest,
) -> Result<(Ws, WsResponse), tungstenite::Error> {
    match tungstenite::client(request, tcp(addr)) {
        Ok(connected) => Ok(connected),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            panic!("the handshake timed out")
        }
    }
}

/// The next data or close message, skipping pings and pongs.
pub fn next_message(ws: &mut Ws) -> tungstenite::Message {
    for _ in 0..1000 {
        match ws.read() {
            Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_)) => {}
            Ok(message) => return message,
            Err(e) => panic!("client read failed: {e}"),
        }
    }
    panic!("a thousand pings and no message");
}

/// The next message, which must be text.
pub fn next_text(ws: &mut Ws) -> String {
    match next_message(ws) {
        tungstenite::Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Sends a text message.
pub fn send_text(ws: &mut Ws, text: &str) {
    ws.send(tungstenite::Message::text(text))
        .expect("client send");
}

/// Reads until the close frame; returns its code (None if it had none).
pub fn read_close(ws: &mut Ws) -> Option<u16> {
    for _ in 0..10_000 {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| f.code.into()),
            Ok(_) => {}
            Err(e) => panic!("connection failed before its close frame: {e}"),
        }
    }
    panic!("ten thousand messages and no close frame");
}

/// Sends the close reply tungstenite queued, then reads until the server
/// ends the connection.
pub fn finish_close(ws: &mut Ws) {
    let _ = ws.flush();
    for _ in 0..10_000 {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return,
            Err(tungstenite::Error::Io(e)) if !is_timeout(&e) => return,
            Err(e) => panic!("the server did not end the connection: {e}"),
        }
    }
    panic!("ten thousand messages after the close");
}

/// Closes from the client side and waits for the server to end it.
pub fn close(mut ws: Ws) {
    ws.close(None).expect("client close");
    finish_close(&mut ws);
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The request head of an upgrade to `path`.
pub fn upgrade_request(addr: SocketAddr, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A raw socket that completed the opening handshake; nothing past the
/// 101 response head has been read from it.
pub fn raw_upgrade(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = tcp(addr);
    stream
        .write_all(upgrade_request(addr, path).as_bytes())
        .expect("send the upgrade request");
    let head = read_head(&mut stream);
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "expected 101, got {head:?}"
    );
    stream
}

/// Reads an HTTP response head one byte at a time, so nothing after it is
/// consumed.
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 << 10, "response head too long");
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!("connection ended in the response head: {head:?}"),
            Err(e) => panic!("reading the response head: {e}"),
        }
    }
    String::from_utf8(head).expect("UTF-8 response head")
}

/// Sends a raw HTTP request and reads the whole response, up to the
/// server's end of the connection.
pub fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = tcp(addr);
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        // The server may reset after answering; what arrived counts.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !response.is_empty() => {}
        Err(e) => panic!("reading the response: {e}"),
    }
    String::from_utf8(response).expect("UTF-8 response")
}

/// A frame as a raw client sees it.
#[derive(Debug)]
pub struct RawFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Reads one unmasked, unfragmented server frame; `None` if the connection
/// ended (EOF or reset) before it began.
pub fn read_frame(stream: &mut TcpStream) -> Option<RawFrame> {
    let mut header = [0u8; 2];
    match stream.read(&mut header[..1]) {
        Ok(0) => return None,
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("reading a frame: {e}"),
    }
    stream.read_exact(&mut header[1..]).expect("frame header");
    assert_eq!(header[0] & 0x80, 0x80, "fragmented server frame");
    assert_eq!(header[1] & 0x80, 0, "masked server frame");
    let len = match header[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).expect("frame length");
            u16::from_be_bytes(ext) as usize
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).expect("frame length");
            u64::from_be_bytes(ext) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).expect("frame payload");
    Some(RawFrame {
        opcode: header[0] & 0x0f,
        payload,
    })
}

/// Sends one masked client frame.
pub fn write_frame(stream: &mut TcpStream, opcode: u8, payload: &[u8]) {
    assert!(payload.len() < 126, "raw client frames are small");
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).expect("send a frame");
}

/// Reads and discards until the server ends the connection (EOF or reset),
/// at most `limit` bytes; panics if it does not within [`TIMEOUT`].
pub fn expect_end(stream: &mut TcpStream, limit: usize) -> usize {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    while total <= limit {
        match stream.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return total,
            Err(e) => panic!("the server did not end the connection: {e} after {total} bytes"),
        }
    }
    panic!("more than {limit} bytes and the connection is still open");
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

/// An echo handler: data messages go back as they came.
pub fn echo(mut client: Client) {
    while let Ok(Some(message)) = client.recv() {
        if message.is_data() {
            let _ = client.send(message);
        }
    }
}

/// How a served client's connection ended: what its handler received, and
/// what its last `recv` returned (`Ok(())` for `Ok(None)`).
#[derive(Debug)]
pub struct Served {
    pub messages: Vec<Message>,
    pub end: Result<(), Error>,
}

/// An echo handler that reports each connection's [`Served`] when it ends.
pub fn echo_reporting() -> (
    impl Fn(Client) + Send + Sync + 'static,
    mpsc::Receiver<Served>,
) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let handler = move |mut client: Client| {
        let mut messages = Vec::new();
        let end = loop {
            match client.recv() {
                Ok(Some(message)) => {
                    if message.is_data() {
                        let _ = client.send(message.clone());
                    }
                    messages.push(message);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let served = Served { messages, end };
        let _ = tx.lock().unwrap_or_else(|p| p.into_inner()).send(served);
    };
    (handler, rx)
}

/// Checks that a connection ended with the peer's reset.
pub fn assert_reset(end: &Result<(), Error>, what: &str) {
    match end {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{what}: {e}"),
        other => panic!("{what}: expected a reset, the handler saw {other:?}"),
    }
}

/// The next connection's report; fails the test after [`TIMEOUT`].
pub fn next_served(reports: &mpsc::Receiver<Served>) -> Served {
    reports
        .recv_timeout(TIMEOUT)
        .expect("no handler finished in time (or one panicked)")
}

/// Checks that the server still serves: a new client's text is echoed, and
/// it closes cleanly.
pub fn assert_served(addr: SocketAddr) {
    let mut ws = connect(addr, "/");
    send_text(&mut ws, "still served");
    assert_eq!(next_text(&mut ws), "still served");
    close(ws);
}

/// The header of a masked client frame claiming `len` payload bytes, with
/// the shortest length encoding.
pub fn client_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&CLIENT_MASK);
    out
}

const CLIENT_MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A whole masked client frame of any length.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = client_header(fin, opcode, payload.len() as u64);
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ CLIENT_MASK[i % 4]),
    );
    out
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The peer's FIN.
    Eof,
    /// A reset.
    Reset,
}

/// Reads and discards until the stream ends, at most `limit` bytes, and
/// tells how it ended; panics if it does not within the read timeout.
pub fn read_to_end(stream: &mut TcpStream, limit: usize) -> (Ending, usize) {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    while total <= limit {
        match stream.read(&mut buf) {
            Ok(0) => return (Ending::Eof, total),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (Ending::Reset, total),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("the stream did not end: {e} after {total} bytes"),
        }
    }
    panic!("more than {limit} bytes and the stream is still open");
}
