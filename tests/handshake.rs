//! The opening handshake over real sockets: refusals with the right status
//! and a plain-text reason, pages on the WebSocket port, and upgrades by
//! tungstenite and by hand.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use boardcast::handshake::Accept;
use boardcast::{Config, Error, Handshake, HandshakeError, Message, Response};
use support::{
    client_frame, op, read_frame, read_head, read_response, request, tcp, upgrade_request,
    HttpResponse, Server, ACCEPT,
};
use tungstenite::client::IntoClientRequest;

/// Sends `wire` to a server that runs `boardcast::accept` with `config`,
/// and returns the HTTP response and the error the server got.
fn refused(config: Config, wire: &[u8]) -> (HttpResponse, HandshakeError) {
    let server = Server::spawn(1, move |stream| {
        boardcast::accept(stream, &config).map(drop)
    });
    let response = request(server.addr(), wire);
    match server.result() {
        Err(Error::Handshake(e)) => (response, e),
        other => panic!("server got {other:?}, response {response:?}"),
    }
}

/// Checks a refusal: status, plain-text reason as the body, and the error.
fn assert_refusal(response: &HttpResponse, error: HandshakeError, expected: HandshakeError) {
    assert_eq!(error, expected);
    assert_eq!(response.status, expected.status(), "{response:?}");
    assert!(
        response
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{response:?}"
    );
    assert_eq!(response.body_text(), expected.reason());
    assert_eq!(response.header("Connection"), Some("close"));
}

fn with_line(replace: &str, with: &str) -> Vec<u8> {
    let request = upgrade_request("/", "");
    let mut lines: Vec<&str> = request.trim_end().split("\r\n").collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(replace))
        .expect("line to replace");
    if with.is_empty() {
        lines.remove(i);
    } else {
        lines[i] = with;
    }
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}

#[test]
fn malformed_request_line_gets_400() {
    let (response, error) = refused(Config::default(), &with_line("GET", "GET  / HTTP/1.1"));
    assert_eq!(response.status_line, "HTTP/1.1 400 Bad Request");
    assert_refusal(&response, error, HandshakeError::InvalidRequestLine);
}

#[test]
fn missing_host_gets_400() {
    let (response, error) = refused(Config::default(), &with_line("Host:", ""));
    assert_refusal(&response, error, HandshakeError::MissingHost);
}

#[test]
fn bad_key_gets_400() {
    // Base64 of 15 bytes, not 16.
    let wire = with_line(
        "Sec-WebSocket-Key:",
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA",
    );
    let (response, error) = refused(Config::default(), &wire);
    assert_refusal(&response, error, HandshakeError::InvalidKey);
}

#[test]
fn fragment_in_target_gets_400() {
    let wire = with_line("GET", "GET /ws#section HTTP/1.1");
    let (response, error) = refused(Config::default(), &wire);
    assert_refusal(&response, error, HandshakeError::FragmentInTarget);
}

#[test]
fn missing_version_gets_400() {
    let wire = with_line("Sec-WebSocket-Version:", "");
    let (response, error) = refused(Config::default(), &wire);
    assert_refusal(&response, error, HandshakeError::MissingVersion);
}

#[test]
fn post_gets_405_with_allow() {
    let wire = with_line("GET", "POST / HTTP/1.1");
    let (response, error) = refused(Config::default(), &wire);
    assert_eq!(response.status_line, "HTTP/1.1 405 Method Not Allowed");
    assert_refusal(&response, error, HandshakeError::MethodNotAllowed);
    assert_eq!(response.header("Allow"), Some("GET"));
}

#[test]
fn version_8_gets_426_with_version_13() {
    let wire = with_line("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8");
    let (response, error) = refused(Config::default(), &wire);
    assert_eq!(response.status_line, "HTTP/1.1 426 Upgrade Required");
    assert_refusal(&response, error, HandshakeError::UnsupportedVersion);
    assert_eq!(response.header("Sec-WebSocket-Version"), Some("13"));
}

#[test]
fn origin_not_allowed_gets_403() {
    let config = Config::default().allowed_origins(["http://board.local:8080"]);
    let wire = upgrade_request("/", "Origin: http://evil.example\r\n");
    let (response, error) = refused(config, wire.as_bytes());
    assert_eq!(response.status_line, "HTTP/1.1 403 Forbidden");
    assert_refusal(&response, error, HandshakeError::OriginRefused);
}

#[test]
fn allowed_origin_is_accepted() {
    let config = Config::default().allowed_origins(["http://board.local:8080"]);
    let server = Server::spawn(1, move |stream| {
        boardcast::accept(stream, &config).map(drop)
    });
    let mut stream = tcp(server.addr());
    let wire = upgrade_request("/", "Origin: HTTP://Board.Local:8080\r\n");
    stream.write_all(wire.as_bytes()).unwrap();
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    server.result().expect("accepted");
}

/// A stream that counts the bytes read from it.
struct Counted {
    stream: TcpStream,
    read: Arc<AtomicUsize>,
}

/// Its timeouts are its socket's.
impl boardcast::Timeouts for Counted {
    fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.stream.set_write_timeout(timeout)
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.read.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Sends `wire` from a thread of its own (the server stops reading it, so
/// the write may block and then fail) while reading the response, to a
/// server that counts what it reads. Returns the response, the error, and
/// the number of bytes the server read.
fn refused_while_sending(config: Config, wire: Vec<u8>) -> (HttpResponse, HandshakeError, usize) {
    let server = Server::spawn(1, move |stream| {
        let read = Arc::new(AtomicUsize::new(0));
        let counted = Counted {
            stream,
            read: read.clone(),
        };
        let result = boardcast::accept(counted, &config).map(drop);
        (result, read.load(Ordering::Relaxed))
    });
    let mut stream = tcp(server.addr());
    let mut sender = stream.try_clone().unwrap();
    let sending = support::bounded("sender", move || {
        // Fails once the server has hung up: that is expected.
        let _ = sender.write_all(&wire);
    });
    let response = read_response(&mut stream);
    drop(stream);
    sending.join();
    match server.result() {
        (Err(Error::Handshake(e)), read) => (response, e, read),
        other => panic!("server got {other:?}"),
    }
}

#[test]
fn oversized_header_gets_431_without_reading_it_all() {
    let config = Config::default();
    let limit = config.max_request_size;
    // A 1 MiB header line that never ends: a server waiting for the end of
    // the head would never answer.
    let mut wire = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    wire.resize(wire.len() + (1 << 20), b'a');
    let (response, error, read) = refused_while_sending(config, wire);
    assert_eq!(
        response.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert_refusal(&response, error, HandshakeError::RequestTooLarge);
    assert!(read <= limit, "server read {read} bytes, limit {limit}");
}

fn many_headers(count: usize) -> Vec<u8> {
    let mut wire = upgrade_request("/", "").into_bytes();
    wire.truncate(wire.len() - 2);
    for i in 0..count {
        wire.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    wire
}

#[test]
fn ten_thousand_headers_get_431() {
    // With the default limits the head's size gives out first...
    let config = Config::default();
    let limit = config.max_request_size;
    let (response, error, read) = refused_while_sending(config, many_headers(10_000));
    assert_eq!(response.status, 431);
    assert_refusal(&response, error, HandshakeError::RequestTooLarge);
    assert!(read <= limit, "server read {read} bytes, limit {limit}");

    // ...and with room for them all, their count does.
    let config = Config::default().max_request_size(1 << 20);
    let (response, error, _) = refused_while_sending(config, many_headers(10_000));
    assert_refusal(&response, error, HandshakeError::TooManyHeaders);
}

#[test]
fn headers_up_to_the_limit_are_accepted() {
    let config = Config::default();
    // The upgrade request has 5 headers of its own.
    let wire = many_headers(config.max_headers - 5);
    let server = Server::spawn(1, move |stream| {
        boardcast::accept(stream, &config).map(drop)
    });
    let mut stream = tcp(server.addr());
    stream.write_all(&wire).unwrap();
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    server.result().expect("accepted");
}

const PAGE: &str = "<!doctype html><h1>board</h1>";

/// A server that answers plain requests with [`PAGE`], as a dashboard
/// serving its own page on the WebSocket port does.
fn page_server() -> Server<Result<(String, bool), Error>> {
    let config = Config::default();
    Server::spawn(1, move |stream| {
        let handshake = Handshake::read(stream, &config)?;
        let request = handshake.request();
        let seen = (request.method().to_string(), request.is_upgrade());
        handshake.respond(&Response::html(PAGE))?;
        Ok(seen)
    })
}

#[test]
fn plain_get_is_answered_with_a_page() {
    let server = page_server();
    let response = request(
        server.addr(),
        b"GET / HTTP/1.1\r\nHost: board.local\r\nAccept: text/html\r\n\r\n",
    );
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        response.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(response.body_text(), PAGE);
    assert_eq!(server.result().unwrap(), ("GET".to_string(), false));
}

#[test]
fn head_gets_no_body() {
    let server = page_server();
    let mut stream = tcp(server.addr());
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: board.local\r\n\r\n")
        .unwrap();
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 200);
    // The length of the body a GET would get, and no body.
    assert_eq!(
        response.header("Content-Length"),
        Some(PAGE.len().to_string().as_str())
    );
    support::expect_eof(&mut stream);
    assert_eq!(server.result().unwrap(), ("HEAD".to_string(), false));
}

/// A server that accepts with `accept`, echoes one message and ends.
fn echo_once(config: Config, accept: Accept) -> Server<Result<Option<Message>, Error>> {
    Server::spawn(1, move |stream| {
        let mut connection = Handshake::read(stream, &config)?.accept(accept.clone())?;
        let message = connection.recv()?;
        if let Some(message) = &message {
            connection.send(message.clone())?;
        }
        Ok(message)
    })
}

/// Sends `text` through a tungstenite client and checks the echo.
fn round_trip(ws: &mut tungstenite::WebSocket<TcpStream>, text: &str) {
    ws.send(tungstenite::Message::text(text)).unwrap();
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text(text));
}

#[test]
fn keep_alive_upgrade_connection_header_works_with_tungstenite() {
    let server = echo_once(Config::default(), Accept::new());
    let mut request = server.url("/").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Connection", "keep-alive, Upgrade".parse().unwrap());
    let (mut ws, response) = tungstenite::client(request, tcp(server.addr())).unwrap();
    assert_eq!(response.status(), 101);
    round_trip(&mut ws, "over keep-alive, Upgrade");
    assert_eq!(
        server.result().unwrap(),
        Some(Message::Text("over keep-alive, Upgrade".into()))
    );
}

#[test]
fn subprotocol_selection_follows_server_preference() {
    let config = Config::default().protocols(["sensors.v2", "sensors.v1"]);
    let server = echo_once(config, Accept::new());
    let mut request = server.url("/").into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "chat, sensors.v1, sensors.v2".parse().unwrap(),
    );
    let (mut ws, response) = tungstenite::client(request, tcp(server.addr())).unwrap();
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "sensors.v2"
    );
    round_trip(&mut ws, "v2");
    server.result().unwrap();
}

#[test]
fn no_subprotocol_when_none_is_shared() {
    // Raw, as tungstenite refuses a response without one of its offers
    // (RFC 6455 §4.1 allows it: the server "selects one or none").
    let config = Config::default().protocols(["sensors.v2"]);
    let server = echo_once(config, Accept::new());
    let mut stream = tcp(server.addr());
    let wire = upgrade_request("/", "Sec-WebSocket-Protocol: chat\r\n");
    stream.write_all(wire.as_bytes()).unwrap();
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
    stream
        .write_all(&client_frame(true, op::TEXT, b"none"))
        .unwrap();
    assert_eq!(read_frame(&mut stream).expect("a frame").payload, b"none");
    server.result().unwrap();
}

#[test]
fn accept_adds_extra_headers() {
    let accept = Accept::new()
        .header("X-Board", "pi-zero")
        .header("Set-Cookie", "session=42; HttpOnly");
    let server = echo_once(Config::default(), accept);
    let (mut ws, response) =
        support::try_connect_response(server.addr(), server.url("/")).expect("websocket handshake");
    let headers = response.headers();
    assert_eq!(headers.get("X-Board").unwrap(), "pi-zero");
    assert_eq!(headers.get("Set-Cookie").unwrap(), "session=42; HttpOnly");
    assert!(headers.contains_key("Sec-WebSocket-Accept"));
    round_trip(&mut ws, "with headers");
    server.result().unwrap();
}

#[test]
fn first_frame_in_the_same_write_as_the_request_is_decoded() {
    let server = echo_once(Config::default(), Accept::new());
    let mut stream = tcp(server.addr());
    let mut wire = upgrade_request("/", "").into_bytes();
    wire.extend_from_slice(&client_frame(true, op::TEXT, b"pipelined"));
    stream.write_all(&wire).unwrap();
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101);
    assert_eq!(response.header("Sec-WebSocket-Accept"), Some(ACCEPT));
    let echo = read_frame(&mut stream).expect("a frame");
    assert_eq!(
        (echo.opcode, &echo.payload[..]),
        (op::TEXT, &b"pipelined"[..])
    );
    assert_eq!(
        server.result().unwrap(),
        Some(Message::Text("pipelined".into()))
    );
}

#[test]
fn request_trickled_one_byte_per_write_is_accepted() {
    let server = echo_once(Config::default(), Accept::new());
    let mut stream = tcp(server.addr());
    let mut wire = upgrade_request("/", "").into_bytes();
    wire.extend_from_slice(&client_frame(true, op::BINARY, &[1, 2, 3]));
    for byte in &wire {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
    }
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101);
    let echo = read_frame(&mut stream).expect("a frame");
    assert_eq!(
        (echo.opcode, &echo.payload[..]),
        (op::BINARY, &[1, 2, 3][..])
    );
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        server.result().unwrap(),
        Some(Message::Binary(vec![1, 2, 3]))
    );
}

#[test]
fn stream_ending_in_the_request_is_an_io_error() {
    let config = Config::default();
    let server = Server::spawn(1, move |stream| {
        boardcast::accept(stream, &config).map(drop)
    });
    let mut stream = tcp(server.addr());
    stream.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    match server.result() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
    // Nothing is sent for a request that never ended.
    support::expect_eof(&mut stream);
}
