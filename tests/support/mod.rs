//! What the socket tests share: a server thread on `127.0.0.1:0`, logging
//! set up once, raw HTTP and frame helpers for a strict client, and an
//! in-memory stream.
//!
//! Every socket the tests read from has a read timeout, and every wait on
//! another thread is bounded, so a bug fails a test instead of hanging it.

#![allow(dead_code)]

use std::io::{self, Cursor, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::Once;
use std::thread;
use std::time::Duration;

/// How long any test waits for a socket or another thread before failing.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A `Sec-WebSocket-Key` (the RFC 6455 §1.3 sample) and its answer.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Starts `env_logger` once per test binary (`RUST_LOG=debug` to see the
/// library's logs).
pub fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = env_logger::builder().is_test(true).try_init();
    });
}

/// A server thread on an ephemeral loopback port that accepts a known
/// number of connections and runs a handler for each on its own thread.
pub struct Server<T> {
    addr: SocketAddr,
    results: mpsc::Receiver<T>,
}

impl<T: Send + 'static> Server<T> {
    /// Accepts `connections` connections and runs `handler` on each, on a
    /// thread of its own, with read and write timeouts of [`TIMEOUT`] set
    /// on the stream (clear them in the handler if the test needs to).
    /// What each handler returns is collected by [`result`](Self::result).
    pub fn spawn<F>(connections: usize, handler: F) -> Server<T>
    where
        F: Fn(TcpStream) -> T + Send + Sync + 'static,
    {
        init_logging();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let (tx, results) = mpsc::channel();
        let handler = std::sync::Arc::new(handler);
        thread::Builder::new()
            .name("test-accept".into())
            .spawn(move || {
                for _ in 0..connections {
                    let Ok((stream, _)) = listener.accept() else {
                        return;
                    };
                    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
                    let (tx, handler) = (tx.clone(), handler.clone());
                    thread::Builder::new()
                        .name("test-connection".into())
                        .spawn(move || {
                            let _ = tx.send(handler(stream));
                        })
                        .unwrap();
                }
            })
            .unwrap();
        Server { addr, results }
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `ws://` URL of the server.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// What the next handler to finish returned; fails the test if none
    /// finishes within [`TIMEOUT`] (or a handler panicked).
    pub fn result(&self) -> T {
        self.results
            .recv_timeout(TIMEOUT)
            .expect("the server handler did not finish in time (or panicked)")
    }
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

/// A client socket with read and write timeouts of [`TIMEOUT`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A valid upgrade request for `path`, with `extra` header lines (each
/// ending in CRLF) before the blank line.
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// An HTTP response as a strict client reads it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name`, without regard to ASCII case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    /// Parses a response head (ending with the blank line) and a body.
    pub fn parse(head: &[u8], body: Vec<u8>) -> HttpResponse {
        let head = std::str::from_utf8(head).expect("utf-8 head");
        let head = head
            .strip_suffix("\r\n\r\n")
            .expect("head ends with CRLF CRLF");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        let mut fields = status_line.splitn(3, ' ');
        assert_eq!(fields.next(), Some("HTTP/1.1"), "{status_line}");
        let status = fields.next().unwrap().parse().expect("status code");
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("header has a colon");
                assert!(!name.contains(' '), "header name {name:?}");
                (name.to_string(), value.trim().to_string())
            })
            .collect();
        HttpResponse {
            status_line,
            status,
            headers,
            body,
        }
    }
}

/// Reads a response head byte by byte, so no byte after it is consumed.
pub fn read_head(stream: &mut impl Read) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 << 10, "response head too long");
        match stream.read(&mut byte) {
            Ok(0) => panic!(
                "stream ended in the response head: {:?}",
                String::from_utf8_lossy(&head)
            ),
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the response head: {e}"),
        }
    }
    head
}

/// Reads a whole plain HTTP response: its head, a body of exactly
/// `Content-Length` bytes, and then the end of the stream.
pub fn read_response(stream: &mut TcpStream) -> HttpResponse {
    let head = read_head(stream);
    let mut response = HttpResponse::parse(&head, Vec::new());
    let len: usize = response
        .header("Content-Length")
        .expect("Content-Length")
        .parse()
        .expect("numeric Content-Length");
    response.body = vec![0; len];
    stream.read_exact(&mut response.body).expect("read body");
    expect_eof(stream);
    response
}

/// Sends `request` on a new connection and reads the whole response.
pub fn request(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = connect(addr);
    stream.write_all(request).expect("send request");
    read_response(&mut stream)
}

/// Connects and completes the opening handshake by hand, checking the 101.
pub fn raw_websocket(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr);
    stream
        .write_all(upgrade_request("/", "").as_bytes())
        .expect("send upgrade request");
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(response.header("Sec-WebSocket-Accept"), Some(ACCEPT));
    stream
}

/// A tungstenite client over a plain `TcpStream`, after its handshake.
pub fn tungstenite_client(
    addr: SocketAddr,
) -> (
    tungstenite::WebSocket<TcpStream>,
    tungstenite::handshake::client::Response,
) {
    let stream = connect(addr);
    tungstenite::client(format!("ws://{addr}/"), stream).expect("tungstenite handshake")
}

/// Opcodes as numbers, for frames built and checked by hand.
pub mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A masked client frame, as a browser sends it.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(fin, opcode, payload.len() as u64, Some(MASK));
    let at = out.len();
    out.extend_from_slice(payload);
    for (i, byte) in out[at..].iter_mut().enumerate() {
        *byte ^= MASK[i % 4];
    }
    out
}

/// A masked close frame with a code and reason.
pub fn client_close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    client_frame(true, op::CLOSE, &payload)
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame header with the shortest length encoding.
pub fn frame_header(fin: bool, opcode: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
    out
}

/// A frame as a strict client reads it from the server.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, op::CLOSE, "{self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Reads one server frame, failing on anything a server must not send:
/// RSV bits, a mask, a reserved opcode, a non-minimal length, a control
/// frame that is fragmented or longer than 125 bytes.
pub fn read_frame(stream: &mut impl Read) -> Frame {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).expect("read frame header");
    let fin = head[0] & 0x80 != 0;
    assert_eq!(head[0] & 0x70, 0, "RSV bits set: {head:02x?}");
    let opcode = head[0] & 0x0F;
    assert!(
        matches!(opcode, 0x0..=0x2 | 0x8..=0xA),
        "reserved opcode {opcode:#x}"
    );
    assert_eq!(head[1] & 0x80, 0, "server frame is masked");
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).expect("read 16-bit length");
            let len = u64::from(u16::from_be_bytes(b));
            assert!(len >= 126, "16-bit length {len} should be 7-bit");
            len
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).expect("read 64-bit length");
            let len = u64::from_be_bytes(b);
            assert!(len > 0xFFFF && len >> 63 == 0, "bad 64-bit length {len}");
            len
        }
        short => u64::from(short),
    };
    if opcode >= 0x8 {
        assert!(fin, "fragmented control frame");
        assert!(len <= 125, "control frame of {len} bytes");
    }
    assert!(len <= 64 << 20, "frame of {len} bytes");
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).expect("read payload");
    Frame {
        fin,
        opcode,
        payload,
    }
}

/// Reads until the server ends the stream; fails if any byte arrives.
pub fn expect_eof(stream: &mut impl Read) {
    let mut rest = Vec::new();
    match stream.take(64 << 10).read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "bytes after the end: {rest:02x?}"),
        // The server may reset a connection it has failed.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("waiting for the end of the stream: {e}"),
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
