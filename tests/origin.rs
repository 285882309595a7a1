//! Cross-site WebSocket hijacking and DNS rebinding, over real sockets, on
//! both paths (`Server` and `boardcast::accept`): a browser's upgrade from
//! another origin gets 403, a request for a host name that is not the
//! server's gets 421 (pages too), and clients without `Origin`, same-origin
//! pages and the configured exceptions are served.

mod support;

use std::io::Write;
use std::net::SocketAddr;

use boardcast::{Config, Error, HandshakeError, Response};
use support::{read_head, request, tcp, upgrade_request, HttpResponse, Running, Server};

/// An upgrade request for `/` with these `Host` and `Origin` headers (none
/// if empty).
fn upgrade(host: &str, origin: &str) -> Vec<u8> {
    let origin = match origin {
        "" => String::new(),
        origin => format!("Origin: {origin}\r\n"),
    };
    upgrade_request("/", &origin)
        .replacen("Host: 127.0.0.1\r\n", &format!("Host: {host}\r\n"), 1)
        .into_bytes()
}

/// Checks a whole refusal: status, reason as the body.
fn assert_refused(response: &HttpResponse, expected: HandshakeError) {
    assert_eq!(response.status, expected.status(), "{response:?}");
    assert_eq!(response.body_text(), expected.reason(), "{response:?}");
}

/// The status of the answer to `wire` (the head only: a 101 is not
/// followed by the end of the stream).
fn status(addr: SocketAddr, wire: &[u8]) -> u16 {
    let mut stream = tcp(addr);
    stream.write_all(wire).unwrap();
    HttpResponse::parse(&read_head(&mut stream), Vec::new()).status
}

/// A `Server` with a page on `/` and the echo handler.
fn dashboard_like(config: Config) -> Running {
    let server = support::server(config).on_http(|_| Response::html("<h1>board</h1>"));
    Running::start(server, support::echo)
}

/// What `boardcast::accept` with `config` answers to `wire`, and the
/// error it returned.
fn accept_answer(config: Config, wire: &[u8]) -> (HttpResponse, Result<(), Error>) {
    let server = Server::spawn(1, move |stream| {
        boardcast::accept(stream, &config).map(drop)
    });
    let response = request(server.addr(), wire);
    (response, server.result())
}

#[test]
fn cross_origin_upgrades_get_403_from_a_server() {
    let running = dashboard_like(Config::default());
    let host = running.addr.to_string();
    let port = running.addr.port();
    for origin in [
        "http://evil.example".to_string(),
        "null".to_string(),
        // Look-alikes of the board's own origin.
        format!("http://127.0.0.1.evil.example:{port}"),
        format!("http://127.0.0.1:{}", port + 1),
        format!("https://127.0.0.1:{port}.evil.example"),
        format!("http://evil.example/127.0.0.1:{port}"),
    ] {
        let response = request(running.addr, &upgrade(&host, &origin));
        assert_refused(&response, HandshakeError::OriginRefused);
        assert_eq!(response.status_line, "HTTP/1.1 403 Forbidden", "{origin}");
    }
    assert_eq!(running.stats().clients, 0);
    assert_eq!(running.stats().handshake_failed, 6);
}

#[test]
fn cross_origin_upgrade_gets_403_from_accept() {
    let wire = upgrade("127.0.0.1:8080", "http://evil.example");
    let (response, result) = accept_answer(Config::default(), &wire);
    assert_refused(&response, HandshakeError::OriginRefused);
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::OriginRefused))),
        "{result:?}"
    );
}

#[test]
fn same_origin_and_origin_less_upgrades_are_served() {
    let running = dashboard_like(Config::default());
    let addr = running.addr;
    let port = addr.port();
    // The page's own origin, as a browser sends it, by address and by name.
    assert_eq!(
        status(addr, &upgrade(&addr.to_string(), &format!("http://{addr}"))),
        101
    );
    assert_eq!(
        status(
            addr,
            &upgrade(
                &format!("localhost:{port}"),
                &format!("http://LocalHost:{port}")
            )
        ),
        101
    );
    // No Origin: not a browser (tungstenite, curl, a script).
    let mut ws = support::connect(addr, "/");
    support::send_text(&mut ws, "no origin");
    assert_eq!(support::next_text(&mut ws), "no origin");
}

#[test]
fn allowed_origins_open_the_door_explicitly() {
    let config = Config::default().allowed_origins(["http://dashboard.example"]);
    let running = dashboard_like(config);
    let host = running.addr.to_string();
    assert_eq!(
        status(running.addr, &upgrade(&host, "http://dashboard.example")),
        101
    );
    let refused = request(running.addr, &upgrade(&host, "http://evil.example"));
    assert_refused(&refused, HandshakeError::OriginRefused);

    let any = dashboard_like(Config::default().allowed_origins(["*"]));
    let host = any.addr.to_string();
    assert_eq!(
        status(any.addr, &upgrade(&host, "http://evil.example")),
        101
    );
    assert_eq!(status(any.addr, &upgrade(&host, "null")), 101);
}

#[test]
fn a_rebound_host_gets_421_for_pages_and_upgrades() {
    let running = dashboard_like(Config::default());
    let port = running.addr.port();
    let evil = format!("rebind.evil.example:{port}");
    // The attacker's page, on their name, now pointing at the board: its
    // requests are same-origin as far as the browser knows.
    let page = request(
        running.addr,
        format!("GET / HTTP/1.1\r\nHost: {evil}\r\n\r\n").as_bytes(),
    );
    assert_eq!(page.status_line, "HTTP/1.1 421 Misdirected Request");
    assert_refused(&page, HandshakeError::HostRefused);
    let socket = request(running.addr, &upgrade(&evil, &format!("http://{evil}")));
    assert_refused(&socket, HandshakeError::HostRefused);
    // A program without Origin is held to the same names.
    let socket = request(running.addr, &upgrade(&evil, ""));
    assert_refused(&socket, HandshakeError::HostRefused);
    assert_eq!(running.stats().clients, 0);

    // The board's own names are served.
    for host in [
        running.addr.to_string(),
        format!("localhost:{port}"),
        format!("raspberrypi.local:{port}"),
        format!("raspberrypi:{port}"),
    ] {
        let page = request(
            running.addr,
            format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        );
        assert_eq!(page.status, 200, "{host}: {page:?}");
    }
}

#[test]
fn the_machines_own_hostname_is_served_and_no_name_under_it() {
    // (Where the hostname has no dot, the first request is also served as
    // a single-label name; the read itself is tested in the library.)
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let hostname = hostname.trim();
    let running = dashboard_like(Config::default());
    let page = request(
        running.addr,
        format!("GET / HTTP/1.1\r\nHost: {hostname}\r\n\r\n").as_bytes(),
    );
    assert_eq!(page.status, 200, "{hostname}: {page:?}");
    // A name under it is not the machine's.
    let page = request(
        running.addr,
        format!("GET / HTTP/1.1\r\nHost: {hostname}.evil.example\r\n\r\n").as_bytes(),
    );
    assert_refused(&page, HandshakeError::HostRefused);
}

#[test]
fn allowed_hosts_serve_a_proxys_names() {
    let config = Config::default().allowed_hosts(["dash.example.com", ".board.lan"]);
    let running = dashboard_like(config);
    for (host, expected) in [
        ("dash.example.com", 200),
        ("DASH.example.com:443", 200),
        ("board.lan", 200),
        ("pi.board.lan", 200),
        ("evil.example", 421),
        ("dash.example.com.evil.example", 421),
    ] {
        let page = request(
            running.addr,
            format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        );
        assert_eq!(page.status, expected, "{host}: {page:?}");
    }
    // Behind a proxy that ends TLS: the page's https origin, the proxy's
    // Host without a port.
    let wire = upgrade("dash.example.com", "https://dash.example.com");
    assert_eq!(status(running.addr, &wire), 101);
}

#[test]
fn a_rebound_host_gets_421_from_accept() {
    let wire = upgrade(
        "rebind.evil.example:8080",
        "http://rebind.evil.example:8080",
    );
    let (response, result) = accept_answer(Config::default(), &wire);
    assert_eq!(response.status_line, "HTTP/1.1 421 Misdirected Request");
    assert_refused(&response, HandshakeError::HostRefused);
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::HostRefused))),
        "{result:?}"
    );
}
