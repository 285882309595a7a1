//! The HTTP side by hand: raw sockets, the upgrade request, response
//! heads and whole responses as a strict client reads them.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::{expect_eof, TIMEOUT};

/// A `Sec-WebSocket-Key` (the RFC 6455 §1.3 sample) and its answer.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A socket to `addr` with read and write timeouts of [`TIMEOUT`], sending
/// each write at once (no Nagle delay between the pieces a test sends).
pub fn tcp(addr: SocketAddr) -> TcpStream {
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

/// A raw socket that completed the opening handshake for `path`, the 101
/// and its `Sec-WebSocket-Accept` checked; nothing past the response head
/// has been read from it.
pub fn raw_upgrade(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = tcp(addr);
    stream
        .write_all(upgrade_request(path, "").as_bytes())
        .expect("send the upgrade request");
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(response.header("Sec-WebSocket-Accept"), Some(ACCEPT));
    stream
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

/// The largest body [`read_response`] accepts.
pub const MAX_BODY: usize = 1 << 20;

/// Reads a whole plain HTTP response: its head, a body of exactly
/// `Content-Length` bytes, and then the end of the stream.
pub fn read_response(stream: &mut TcpStream) -> HttpResponse {
    let response = read_kept_response(stream);
    expect_eof(stream);
    response
}

/// Reads one response of a connection kept alive: its head and a body of
/// exactly `Content-Length` bytes (none for a 304).
pub fn read_kept_response(stream: &mut TcpStream) -> HttpResponse {
    let head = read_head(stream);
    let mut response = HttpResponse::parse(&head, Vec::new());
    let len: usize = match response.status {
        304 => 0,
        _ => response
            .header("Content-Length")
            .expect("Content-Length")
            .parse()
            .expect("numeric Content-Length"),
    };
    // What a test server sends is small: a larger claim fails before
    // anything of its size is allocated.
    assert!(
        len <= MAX_BODY,
        "Content-Length {len} (at most {MAX_BODY} read)"
    );
    response.body = vec![0; len];
    stream.read_exact(&mut response.body).expect("read body");
    response
}

/// Sends `request` on a new connection and reads the whole response
/// strictly, as [`read_response`] does.
pub fn request(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = tcp(addr);
    stream.write_all(request).expect("send request");
    read_response(&mut stream)
}

/// Sends a raw HTTP request and reads whatever comes back, up to the
/// server's end of the connection (a reset after some of it is accepted),
/// unparsed.
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

/// `GET target` on a connection of its own: the status, and the body as
/// JSON (`Null` if it is not).
pub fn get_json(addr: SocketAddr, target: &str) -> (u16, serde_json::Value) {
    let response = http(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    );
    let status = response[9..12].parse().expect("a status code");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}
