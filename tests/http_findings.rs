//! The HTTP findings of issue 17 (item 4), each with its exact status on
//! both paths, a `Server` (with and without a page handler) and
//! `boardcast::accept`: an upgrade with a body (400) or an `Expect` (417),
//! an absolute-form target for another host (400), `POST` with the
//! upgrade headers (405 from both), refusals to `HEAD` (no body), bare-LF
//! requests (400 at once, not a hang), and HTTP/1.1 without `Host` (400).

mod support;

use std::io::Write;
use std::time::Duration;

use boardcast::{Config, Error, Handshake, HandshakeError, Response};
use support::{
    client_frame, expect_eof, op, read_head, request, tcp, upgrade_request, HttpResponse, Running,
    Server,
};

/// A `Server` with a page handler that answers everything with 200, so a
/// refusal cannot come from the page; handshakes may take a minute, so a
/// request left hanging fails the test (its reads time out first) rather
/// than being cut.
fn with_pages() -> Running {
    let config = Config::default().handshake_timeout(Duration::from_secs(60));
    let server = support::server(config).on_http(|_| Response::html("<h1>board</h1>"));
    Running::start(server, support::echo)
}

/// A `Server` without a page handler.
fn without_pages() -> Running {
    let config = Config::default().handshake_timeout(Duration::from_secs(60));
    Running::start(support::server(config), support::echo)
}

/// What `boardcast::accept` answers to `wire` (the whole response, up to
/// the end of the stream), and the error it returned.
fn from_accept(wire: &[u8]) -> (HttpResponse, Result<(), Error>) {
    let server = Server::spawn(1, move |stream| {
        boardcast::accept(stream, &Config::default()).map(drop)
    });
    let response = request(server.addr(), wire);
    (response, server.result())
}

/// Checks `wire` gets `expected` (status and reason) from `accept`, a
/// `Server` with pages and one without, and that no client was served.
fn assert_refused_everywhere(wire: &[u8], expected: HandshakeError) {
    let (response, result) = from_accept(wire);
    assert_eq!(response.status, expected.status(), "accept: {response:?}");
    assert_eq!(response.body_text(), expected.reason(), "accept");
    assert!(
        matches!(result, Err(Error::Handshake(e)) if e == expected),
        "accept returned {result:?}"
    );
    for (what, running) in [("with pages", with_pages()), ("without", without_pages())] {
        let response = request(running.addr, wire);
        assert_eq!(response.status, expected.status(), "{what}: {response:?}");
        assert_eq!(response.body_text(), expected.reason(), "{what}");
        assert_eq!(running.stats().clients, 0, "{what}");
    }
}

/// The upgrade request with `extra` header lines.
fn upgrade(extra: &str) -> Vec<u8> {
    upgrade_request("/", extra).into_bytes()
}

#[test]
fn upgrade_with_a_content_length_body_gets_400_and_its_body_is_not_read_as_frames() {
    // The "body" is a valid masked text frame: accepted as one before.
    let frame = client_frame(true, op::TEXT, b"smuggled");
    let mut wire = upgrade(&format!("Content-Length: {}\r\n", frame.len()));
    wire.extend_from_slice(&frame);
    assert_refused_everywhere(&wire, HandshakeError::UnexpectedBody);
    let (response, _) = from_accept(&wire);
    assert_eq!(response.status_line, "HTTP/1.1 400 Bad Request");
}

#[test]
fn upgrade_with_transfer_encoding_gets_400() {
    let mut wire = upgrade("Transfer-Encoding: chunked\r\n");
    wire.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n");
    assert_refused_everywhere(&wire, HandshakeError::UnexpectedBody);
}

#[test]
fn upgrade_expecting_100_continue_gets_417() {
    let wire = upgrade("Expect: 100-continue\r\nContent-Length: 5\r\n");
    assert_refused_everywhere(&wire, HandshakeError::ExpectationFailed);
    let (response, _) = from_accept(&wire);
    assert_eq!(response.status_line, "HTTP/1.1 417 Expectation Failed");
}

#[test]
fn absolute_form_target_for_another_host_gets_400() {
    let wire = upgrade_request("/", "")
        .replacen("GET / ", "GET ws://evil.example/ ", 1)
        .into_bytes();
    assert_refused_everywhere(&wire, HandshakeError::HostMismatch);
    // Pages too.
    let running = with_pages();
    let page = request(
        running.addr,
        b"GET http://evil.example/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert_eq!(page.status, 400, "{page:?}");
    assert_eq!(page.body_text(), HandshakeError::HostMismatch.reason());
    // The same host in both is served.
    let page = request(
        running.addr,
        b"GET http://127.0.0.1:80/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert_eq!(page.status, 200, "{page:?}");
}

#[test]
fn post_with_upgrade_headers_gets_405_from_accept_and_from_a_server() {
    let wire = upgrade_request("/", "")
        .replacen("GET ", "POST ", 1)
        .into_bytes();
    assert_refused_everywhere(&wire, HandshakeError::MethodNotAllowed);
    let (response, _) = from_accept(&wire);
    assert_eq!(response.header("Allow"), Some("GET"));
    let running = with_pages();
    let response = request(running.addr, &wire);
    assert_eq!(response.status_line, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(response.header("Allow"), Some("GET"));
    assert_eq!(running.stats().handshake_failed, 1);
}

/// Sends `wire` and reads a response head that must be followed by the end
/// of the stream, no body.
fn head_only(addr: std::net::SocketAddr, wire: &[u8]) -> HttpResponse {
    let mut stream = tcp(addr);
    stream.write_all(wire).unwrap();
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    expect_eof(&mut stream);
    response
}

#[test]
fn refusals_to_head_have_no_body() {
    let upgrade_head = upgrade_request("/", "")
        .replacen("GET ", "HEAD ", 1)
        .into_bytes();
    let rebound = b"HEAD / HTTP/1.1\r\nHost: rebind.evil.example\r\n\r\n".to_vec();
    let no_host = b"HEAD / HTTP/1.1\r\n\r\n".to_vec();
    let cases = [
        (&upgrade_head, HandshakeError::MethodNotAllowed),
        (&rebound, HandshakeError::HostRefused),
        (&no_host, HandshakeError::MissingHost),
    ];
    for (wire, expected) in cases {
        let what = String::from_utf8_lossy(wire).into_owned();
        // accept: the refusal's head, its Content-Length, and no body.
        let config = Config::default();
        let server = Server::spawn(1, move |stream| {
            boardcast::accept(stream, &config).map(drop)
        });
        let response = head_only(server.addr(), wire);
        assert_eq!(response.status, expected.status(), "{what}");
        assert_eq!(
            response.header("Content-Length"),
            Some(expected.reason().len().to_string().as_str()),
            "{what}"
        );
        assert!(matches!(server.result(), Err(Error::Handshake(e)) if e == expected));
        // A server, with and without pages.
        for running in [with_pages(), without_pages()] {
            let response = head_only(running.addr, wire);
            assert_eq!(response.status, expected.status(), "{what}");
        }
    }
    // A HEAD refused for not being an upgrade, by a server without pages.
    let running = without_pages();
    let response = head_only(running.addr, b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(response.status, 405);
}

#[test]
fn bare_lf_requests_get_400_at_once_from_accept_and_from_a_server() {
    // Each would otherwise wait for a CRLF that never comes: `accept`
    // forever, a server until its handshake timeout (a minute here, past
    // this test's read timeout), and neither would answer.
    for wire in [
        &b"GET / HTTP/1.1\nHost: 127.0.0.1\n\n"[..],
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\nUpgrade: websocket\r\n\r\n",
    ] {
        assert_refused_everywhere(wire, HandshakeError::BareLineFeed);
    }
    let (response, _) = from_accept(b"GET / HTTP/1.1\n");
    assert_eq!(response.status_line, "HTTP/1.1 400 Bad Request");
}

#[test]
fn http_1_1_page_requests_without_host_get_400() {
    let running = with_pages();
    let page = request(running.addr, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(page.status_line, "HTTP/1.1 400 Bad Request");
    assert_eq!(page.body_text(), HandshakeError::MissingHost.reason());
    // HTTP/1.0 had no Host: its page is served.
    let page = request(running.addr, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(page.status, 200, "{page:?}");

    // The same through a `Handshake` serving pages itself.
    let config = Config::default();
    let server = Server::spawn(1, move |stream| {
        let handshake = Handshake::read(stream, &config)?;
        handshake.respond(&Response::html("page"))
    });
    let page = request(server.addr(), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(page.status, 400, "{page:?}");
    assert!(matches!(
        server.result(),
        Err(Error::Handshake(HandshakeError::MissingHost))
    ));
}
