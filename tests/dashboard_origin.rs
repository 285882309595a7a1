//! The dashboard example, run as shipped (no flag but its address), keeps
//! other sites out: a WebSocket from another origin gets 403, a page or
//! WebSocket for a rebound host name gets 421, and the page's own origin
//! is served. (`tests/browser.rs` runs it in Chromium; this checks the
//! refusals, which a browser would not show.)

mod support;

use std::io::Write;

use boardcast::HandshakeError;
use support::{read_head, request, tcp, upgrade_request, Dashboard, HttpResponse};

/// An upgrade to `/ws` with these `Host` and `Origin` headers.
fn upgrade(host: &str, origin: &str) -> Vec<u8> {
    upgrade_request("/ws", &format!("Origin: {origin}\r\n"))
        .replacen("Host: 127.0.0.1\r\n", &format!("Host: {host}\r\n"), 1)
        .into_bytes()
}

#[test]
fn the_dashboard_refuses_other_sites_with_no_flag() {
    let dashboard = Dashboard::start(&support::example_binary(), 0);
    let addr = dashboard.addr;
    let port = addr.port();

    // Its own page and WebSocket, as a browser on http://127.0.0.1:PORT/ asks.
    let page = request(
        addr,
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    );
    assert_eq!(page.status, 200);
    let mut stream = tcp(addr);
    stream
        .write_all(&upgrade(&addr.to_string(), &format!("http://{addr}")))
        .unwrap();
    let response = HttpResponse::parse(&read_head(&mut stream), Vec::new());
    assert_eq!(response.status, 101, "{response:?}");
    drop(stream);

    // Another site's page opening the board's WebSocket.
    let hijack = request(addr, &upgrade(&addr.to_string(), "http://evil.example"));
    assert_eq!(hijack.status_line, "HTTP/1.1 403 Forbidden");
    assert_eq!(hijack.body_text(), HandshakeError::OriginRefused.reason());

    // A page on the attacker's name, rebound to the board: same-origin in
    // the browser's eyes.
    let evil = format!("rebind.evil.example:{port}");
    let rebound = request(addr, &upgrade(&evil, &format!("http://{evil}")));
    assert_eq!(rebound.status_line, "HTTP/1.1 421 Misdirected Request");
    let page = request(
        addr,
        format!("GET / HTTP/1.1\r\nHost: {evil}\r\n\r\n").as_bytes(),
    );
    assert_eq!(page.status, 421);
    assert_eq!(page.body_text(), HandshakeError::HostRefused.reason());
}
