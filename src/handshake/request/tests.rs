//! Tests of `request.rs`.

use super::*;

/// The request of RFC 6455 §1.2, but same-origin: the RFC's page on
/// `http://example.com` opening a socket to `server.example.com` is a
/// cross-origin request, refused by default (see `cross_origin_refused`).
const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://server.example.com\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn parse(wire: &[u8]) -> Result<Request<'_>, HandshakeError> {
    parse_with(wire, &Config::default())
}

fn parse_with<'b>(wire: &'b [u8], config: &Config) -> Result<Request<'b>, HandshakeError> {
    match Request::parse(wire, config)? {
        Status::Complete(request) => Ok(request),
        Status::Partial => panic!("partial: {:?}", String::from_utf8_lossy(wire)),
    }
}

/// The RFC request with one header line replaced (or removed if `with`
/// is empty), or a line added if `replace` is not found.
fn request_with(replace: &str, with: &str) -> Vec<u8> {
    let text = std::str::from_utf8(RFC_REQUEST).unwrap();
    let mut lines: Vec<String> = text.trim_end().split("\r\n").map(String::from).collect();
    match lines.iter().position(|l| l.starts_with(replace)) {
        Some(i) if with.is_empty() => {
            lines.remove(i);
        }
        Some(i) => lines[i] = with.to_string(),
        None => lines.push(with.to_string()),
    }
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}

fn refusal(wire: &[u8]) -> HandshakeError {
    match parse(wire) {
        Err(e) => e,
        Ok(request) => request.validate(&Config::default()).unwrap_err(),
    }
}

#[test]
fn rfc_example_key_and_accept() {
    // RFC 6455 §1.3.
    let accept = AcceptKey::from_key("dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let request = parse(RFC_REQUEST).unwrap();
    assert_eq!(request.validate(&Config::default()), Ok(accept));
}

#[test]
fn parts_of_the_rfc_request() {
    let r = parse(RFC_REQUEST).unwrap();
    assert_eq!(r.len(), RFC_REQUEST.len());
    assert_eq!(
        (r.method(), r.target(), r.path(), r.query()),
        ("GET", "/chat", "/chat", None)
    );
    assert_eq!(r.minor_version(), 1);
    assert_eq!(r.host(), Some("server.example.com"));
    assert_eq!(r.origin(), Some("http://server.example.com"));
    assert_eq!(r.header("SEC-WEBSOCKET-VERSION"), Some("13"));
    assert_eq!(r.headers().count(), 7);
    assert!(r.is_upgrade());
    assert_eq!(r.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
}

#[test]
fn every_prefix_is_partial() {
    for cut in 0..RFC_REQUEST.len() {
        assert_eq!(
            Request::parse(&RFC_REQUEST[..cut], &Config::default()),
            Ok(Status::Partial)
        );
    }
}

#[test]
fn bytes_after_the_head_are_not_part_of_it() {
    let mut wire = RFC_REQUEST.to_vec();
    wire.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
    assert_eq!(parse(&wire).unwrap().len(), RFC_REQUEST.len());
}

#[test]
fn header_names_are_case_insensitive() {
    let wire = b"GET / HTTP/1.1\r\nhOsT: a\r\nUPGRADE: WebSocket\r\nconnection: UPGRADE\r\n\
        sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n";
    let request = parse(wire).unwrap();
    assert!(request.is_upgrade());
    assert!(request.validate(&Config::default()).is_ok());
}

#[test]
fn connection_token_lists() {
    let wire = request_with("Connection:", "Connection: keep-alive, Upgrade");
    assert!(parse(&wire).unwrap().validate(&Config::default()).is_ok());
    let wire = request_with("Connection:", "Connection:keep-alive,upgrade  ");
    assert!(parse(&wire).unwrap().validate(&Config::default()).is_ok());
    let wire = request_with("Upgrade:", "Upgrade: h2c, websocket");
    assert!(parse(&wire).unwrap().validate(&Config::default()).is_ok());
    // Split over two fields.
    let mut wire = request_with("Connection:", "Connection: keep-alive");
    wire = String::from_utf8(wire)
        .unwrap()
        .replace("\r\n\r\n", "\r\nConnection: upgrade\r\n\r\n")
        .into_bytes();
    assert!(parse(&wire).unwrap().validate(&Config::default()).is_ok());
    // A token is not a substring.
    let wire = request_with("Connection:", "Connection: upgraded");
    assert_eq!(refusal(&wire), HandshakeError::NotUpgrade);
}

#[test]
fn plain_requests_parse_but_are_not_upgrades() {
    let wire = b"GET /index.html?x=1 HTTP/1.1\r\nHost: board\r\nAccept: */*\r\n\r\n";
    let request = parse(wire).unwrap();
    assert!(!request.is_upgrade());
    assert_eq!(
        (request.path(), request.query()),
        ("/index.html", Some("x=1"))
    );
    assert_eq!(
        request.validate(&Config::default()),
        Err(HandshakeError::NotUpgrade)
    );
    let wire = b"POST /form HTTP/1.0\r\n\r\n";
    let request = parse(wire).unwrap();
    assert_eq!((request.method(), request.minor_version()), ("POST", 0));
}

#[test]
fn absolute_form_targets() {
    let wire = b"GET ws://board.local:8080/ws?a=b HTTP/1.1\r\nHost: board.local\r\n\r\n";
    let request = parse(wire).unwrap();
    assert_eq!((request.path(), request.query()), ("/ws", Some("a=b")));
    let wire = b"GET http://board.local HTTP/1.1\r\nHost: board.local\r\n\r\n";
    assert_eq!(parse(wire).unwrap().path(), "/");
    let wire = b"GET ftp://board.local/ HTTP/1.1\r\nHost: board.local\r\n\r\n";
    assert_eq!(parse(wire).unwrap_err(), HandshakeError::InvalidTarget);
}

#[test]
fn malformed_requests_get_400() {
    let cases: &[(&[u8], HandshakeError)] = &[
        (
            b"GET /chat#frag HTTP/1.1\r\nHost: a\r\n\r\n",
            HandshakeError::FragmentInTarget,
        ),
        (b"GET /#\r\n\r\n", HandshakeError::InvalidRequestLine),
        (
            b"GET  / HTTP/1.1\r\n\r\n",
            HandshakeError::InvalidRequestLine,
        ),
        (
            b"GET / HTTP/1.1 x\r\n\r\n",
            HandshakeError::InvalidRequestLine,
        ),
        (
            b"GET / HTTPS/1.1\r\n\r\n",
            HandshakeError::InvalidRequestLine,
        ),
        (
            b"G\x01T / HTTP/1.1\r\n\r\n",
            HandshakeError::InvalidRequestLine,
        ),
        (
            b"GET / HTTP/2.0\r\n\r\n",
            HandshakeError::UnsupportedHttpVersion,
        ),
        (b"GET * HTTP/1.1\r\n\r\n", HandshakeError::InvalidTarget),
        (
            b"GET /a\x7fb HTTP/1.1\r\n\r\n",
            HandshakeError::InvalidTarget,
        ),
        (
            b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
            HandshakeError::InvalidHeader,
        ),
        (
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            HandshakeError::InvalidHeader,
        ),
        (
            b"GET / HTTP/1.1\r\n: a\r\n\r\n",
            HandshakeError::InvalidHeader,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            HandshakeError::InvalidHeader,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
            HandshakeError::InvalidHeader,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            HandshakeError::InvalidHeader,
        ),
        (
            b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n",
            HandshakeError::InvalidHeader,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
            HandshakeError::BareLineFeed,
        ),
    ];
    for (wire, expected) in cases {
        let got = parse(wire).unwrap_err();
        assert_eq!(got, *expected, "{:?}", String::from_utf8_lossy(wire));
        assert_eq!(got.status(), 400);
    }
}

#[test]
fn duplicate_singleton_headers_get_400() {
    for line in [
        "Host: other",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Origin: http://example.com",
    ] {
        let wire = String::from_utf8(RFC_REQUEST.to_vec())
            .unwrap()
            .replace("\r\n\r\n", &format!("\r\n{line}\r\n\r\n"));
        assert_eq!(
            parse(wire.as_bytes()).unwrap_err(),
            HandshakeError::DuplicateHeader,
            "{line}"
        );
    }
}

#[test]
fn upgrade_checks_in_order() {
    let cases = [
        (
            request_with("GET", "POST /chat HTTP/1.1"),
            HandshakeError::MethodNotAllowed,
            405,
        ),
        (
            request_with("GET", "GET /chat HTTP/1.0"),
            HandshakeError::UnsupportedHttpVersion,
            400,
        ),
        (request_with("Host:", ""), HandshakeError::MissingHost, 400),
        (
            request_with("Upgrade:", ""),
            HandshakeError::NotUpgrade,
            426,
        ),
        (
            request_with("Upgrade:", "Upgrade: h2c"),
            HandshakeError::NotUpgrade,
            426,
        ),
        (
            request_with("Connection:", ""),
            HandshakeError::NotUpgrade,
            426,
        ),
        (
            request_with("Connection:", "Connection: keep-alive"),
            HandshakeError::NotUpgrade,
            426,
        ),
        (
            request_with("Sec-WebSocket-Version:", ""),
            HandshakeError::MissingVersion,
            400,
        ),
        (
            request_with("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8"),
            HandshakeError::UnsupportedVersion,
            426,
        ),
        (
            request_with("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 13, 8"),
            HandshakeError::UnsupportedVersion,
            426,
        ),
        (
            request_with("Sec-WebSocket-Key:", ""),
            HandshakeError::MissingKey,
            400,
        ),
        // 15 bytes, 17 bytes, not base64, bad padding, empty.
        (
            request_with(
                "Sec-WebSocket-Key:",
                "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA",
            ),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            request_with(
                "Sec-WebSocket-Key:",
                "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=",
            ),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            request_with(
                "Sec-WebSocket-Key:",
                "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==",
            ),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            request_with(
                "Sec-WebSocket-Key:",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=",
            ),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            request_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key:"),
            HandshakeError::InvalidKey,
            400,
        ),
    ];
    for (wire, expected, status) in cases {
        let got = refusal(&wire);
        assert_eq!(got, expected, "{}", String::from_utf8_lossy(&wire));
        assert_eq!(got.status(), status);
    }
}

/// The validation of `wire`, sent as an upgrade with `Origin: origin`
/// (none if empty), under `config`.
fn with_origin(origin: &str, config: &Config) -> Result<AcceptKey, HandshakeError> {
    let line = if origin.is_empty() {
        String::new()
    } else {
        format!("Origin: {origin}")
    };
    let wire = request_with("Origin:", &line);
    parse(&wire).unwrap().validate(config)
}

#[test]
fn same_origin_is_accepted_by_default() {
    let config = Config::default();
    for origin in [
        "http://server.example.com",
        "HTTP://Server.Example.Com",
        "http://server.example.com:80",
        // Behind a proxy that ends TLS, the Host has no port either.
        "https://server.example.com",
    ] {
        assert!(with_origin(origin, &config).is_ok(), "{origin}");
    }
    // No Origin header: not a browser, not checked.
    assert!(with_origin("", &config).is_ok());
}

#[test]
fn cross_origin_refused() {
    let config = Config::default();
    for origin in [
        // The RFC's own example: a page on example.com, a socket to server.example.com.
        "http://example.com",
        "http://evil.example",
        "null",
        "http://server.example.com.evil.example",
        "http://evil.example/server.example.com",
        "http://server.example.com:8080",
        "https://server.example.com:8443",
        "file://",
        "server.example.com",
        "",
    ]
    .into_iter()
    .filter(|o| !o.is_empty())
    {
        assert_eq!(
            with_origin(origin, &config),
            Err(HandshakeError::OriginRefused),
            "{origin}"
        );
    }
    assert_eq!(HandshakeError::OriginRefused.status(), 403);
}

#[test]
fn allowed_origins_add_to_same_origin() {
    let config = Config::default().allowed_origins(["http://board.local"]);
    assert!(with_origin("http://board.local", &config).is_ok());
    assert!(with_origin("HTTP://BOARD.LOCAL", &config).is_ok());
    assert!(with_origin("http://server.example.com", &config).is_ok());
    assert_eq!(
        with_origin("http://evil.example", &config),
        Err(HandshakeError::OriginRefused)
    );
    assert_eq!(
        with_origin("null", &config),
        Err(HandshakeError::OriginRefused)
    );
    let any = Config::default().allowed_origins(["*"]);
    for origin in ["http://evil.example", "null", "anything at all"] {
        assert!(with_origin(origin, &any).is_ok(), "{origin}");
    }
}

#[test]
fn upgrade_with_a_body_or_an_expectation_is_refused() {
    let add = |line: &str| request_with("X-None", line);
    for line in [
        "Content-Length: 5",
        "Content-Length: 00",
        "content-length: x",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: identity",
    ] {
        assert_eq!(
            refusal(&add(line)),
            HandshakeError::UnexpectedBody,
            "{line}"
        );
    }
    assert!(parse(&add("Content-Length: 0"))
        .unwrap()
        .validate(&Config::default())
        .is_ok());
    for line in ["Expect: 100-continue", "Expect: something-else"] {
        assert_eq!(
            refusal(&add(line)),
            HandshakeError::ExpectationFailed,
            "{line}"
        );
    }
    let mut both = add("Expect: 100-continue");
    both.truncate(both.len() - 2);
    both.extend_from_slice(b"Content-Length: 5\r\n\r\n");
    assert_eq!(refusal(&both), HandshakeError::ExpectationFailed);
    assert_eq!(HandshakeError::UnexpectedBody.status(), 400);
    assert_eq!(HandshakeError::ExpectationFailed.status(), 417);
    // A page request may carry a body: that is the application's business.
    let post = b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    assert_eq!(
        parse(post).unwrap().check_host(&Config::default(), None),
        Ok(())
    );
}

#[test]
fn bare_lf_is_refused_as_soon_as_it_arrives() {
    for wire in [
        &b"GET / HTTP/1.1\nHost: a\n\n"[..],
        b"GET / HTTP/1.1\n",
        b"\n",
        b"GET / HTTP/1.1\r\nHost: a\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\n",
    ] {
        assert_eq!(
            Request::parse(wire, &Config::default()),
            Err(HandshakeError::BareLineFeed),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
    // After the head, an LF is the client's first frame's business.
    let mut wire = RFC_REQUEST.to_vec();
    wire.extend_from_slice(b"\n\n");
    assert_eq!(parse(&wire).unwrap().len(), RFC_REQUEST.len());
    assert_eq!(HandshakeError::BareLineFeed.status(), 400);
}

fn host_check(wire: &[u8], hostname: Option<&str>, config: &Config) -> Result<(), HandshakeError> {
    parse(wire).unwrap().check_host(config, hostname)
}

#[test]
fn host_is_required_and_well_formed() {
    let config = Config::default();
    let check = |wire: &[u8]| host_check(wire, None, &config);
    // RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400, pages too.
    assert_eq!(
        check(b"GET / HTTP/1.1\r\n\r\n"),
        Err(HandshakeError::MissingHost)
    );
    assert_eq!(check(b"GET / HTTP/1.0\r\n\r\n"), Ok(()));
    for host in ["", "a b", "board:http", "[::1", "user@board", "board:99999"] {
        let wire = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(
            check(wire.as_bytes()),
            Err(HandshakeError::InvalidHost),
            "{host:?}"
        );
    }
    assert_eq!(HandshakeError::MissingHost.status(), 400);
    assert_eq!(HandshakeError::InvalidHost.status(), 400);
}

#[test]
fn absolute_form_target_must_name_the_host() {
    let config = Config::default();
    let check = |wire: &[u8]| host_check(wire, None, &config);
    assert_eq!(
        check(b"GET ws://board.local:8080/ws HTTP/1.1\r\nHost: board.local:8080\r\n\r\n"),
        Ok(())
    );
    assert_eq!(
        check(b"GET http://Board.Local/ HTTP/1.1\r\nHost: board.local:80\r\n\r\n"),
        Ok(())
    );
    for wire in [
        &b"GET ws://evil.example/ws HTTP/1.1\r\nHost: board.local\r\n\r\n"[..],
        b"GET ws://board.local:8081/ws HTTP/1.1\r\nHost: board.local:8080\r\n\r\n",
        b"GET wss://board.local:80/ws HTTP/1.1\r\nHost: board.local\r\n\r\n",
    ] {
        assert_eq!(
            check(wire),
            Err(HandshakeError::HostMismatch),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
    assert_eq!(HandshakeError::HostMismatch.status(), 400);
}

#[test]
fn host_must_name_this_server() {
    let wire = |host: &str| format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let default = Config::default();
    for host in [
        "192.168.1.20:8080",
        "[fe80::1]:8080",
        "localhost:8080",
        "raspberrypi.local:8080",
        "raspberrypi",
    ] {
        assert_eq!(
            host_check(wire(host).as_bytes(), None, &default),
            Ok(()),
            "{host}"
        );
    }
    // An attacker's name pointed at the board by their DNS.
    let rebound = wire("rebind.evil.example:8080");
    assert_eq!(
        host_check(rebound.as_bytes(), None, &default),
        Err(HandshakeError::HostRefused)
    );
    assert_eq!(HandshakeError::HostRefused.status(), 421);
    // The machine's own name, and configured ones.
    let named = wire("board.example.com");
    assert_eq!(
        host_check(named.as_bytes(), Some("board.example.com"), &default),
        Ok(())
    );
    assert_eq!(
        host_check(named.as_bytes(), Some("board"), &default),
        Err(HandshakeError::HostRefused)
    );
    let config = Config::default().allowed_hosts([".example.com"]);
    assert_eq!(host_check(named.as_bytes(), None, &config), Ok(()));
    let any = Config::default().allowed_hosts(["*"]);
    assert_eq!(host_check(rebound.as_bytes(), None, &any), Ok(()));
}

#[test]
fn size_and_count_limits_get_431() {
    let config = Config::default().max_request_size(64);
    let long = [b'a'; 100];
    assert_eq!(
        Request::parse(&long, &config),
        Err(HandshakeError::RequestTooLarge)
    );
    assert_eq!(Request::parse(&long[..63], &config), Ok(Status::Partial));
    assert_eq!(HandshakeError::RequestTooLarge.status(), 431);
    // Exactly at the limit is fine.
    let config = Config::default().max_request_size(RFC_REQUEST.len());
    assert!(parse_with(RFC_REQUEST, &config).is_ok());
    let config = Config::default().max_request_size(RFC_REQUEST.len() - 1);
    assert_eq!(
        Request::parse(RFC_REQUEST, &config),
        Err(HandshakeError::RequestTooLarge)
    );

    let config = Config::default().max_headers(7);
    assert!(parse_with(RFC_REQUEST, &config).is_ok());
    let config = Config::default().max_headers(6);
    assert_eq!(
        Request::parse(RFC_REQUEST, &config),
        Err(HandshakeError::TooManyHeaders)
    );
    assert_eq!(HandshakeError::TooManyHeaders.status(), 431);
}

#[test]
fn subprotocol_selection_follows_server_preference() {
    let request = parse(RFC_REQUEST).unwrap();
    let supported = vec!["superchat".to_string(), "chat".to_string()];
    assert_eq!(request.select_protocol(&supported), Some("superchat"));
    assert_eq!(request.select_protocol(&["mqtt".to_string()]), None);
    assert_eq!(request.select_protocol(&[]), None);
}

#[test]
fn query_parameters_are_percent_decoded() {
    let wire = b"GET /latest?x=1&topics=a%2Cb,c%2Fd&sp=a+b%20c&bad=%zz%4&empty&utf=%C3%A9&nonutf=%FF HTTP/1.1\r\nHost: h\r\n\r\n";
    let request = parse(wire).unwrap();
    assert_eq!(request.query_param("topics").as_deref(), Some("a,b,c/d"));
    assert_eq!(request.query_param("x").as_deref(), Some("1"));
    assert_eq!(request.query_param("sp").as_deref(), Some("a b c"));
    assert_eq!(request.query_param("bad").as_deref(), Some("%zz%4"));
    assert_eq!(request.query_param("empty").as_deref(), Some(""));
    assert_eq!(request.query_param("utf").as_deref(), Some("é"));
    assert_eq!(request.query_param("nonutf"), None);
    assert_eq!(request.query_param("missing"), None);
    let bare = parse(b"GET /latest HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(bare.query_param("topics"), None);
}
