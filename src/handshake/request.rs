//! The upgrade request: a partial-aware parser of the HTTP/1.1 request
//! head, and the checks of RFC 6455 §4.2.1.

use std::fmt;
use std::ops::Range;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::config::Config;
use crate::error::HandshakeError;
use crate::handshake::{AcceptKey, Status};

/// Byte ranges of the parsed parts, so a request can be kept next to its
/// buffer without borrowing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Parts {
    len: usize,
    method: Span,
    target: Span,
    path: Span,
    query: Option<Span>,
    minor_version: u8,
    headers: Span,
    header_count: usize,
    host: Option<Span>,
    key: Option<Span>,
    version: Option<Span>,
    origin: Option<Span>,
    upgrade_websocket: bool,
    connection_upgrade: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span of `range`; request heads are far below 4 GiB (the size
    /// limit is capped there), and small spans keep parsed requests small.
    fn new(range: Range<usize>) -> Span {
        Span {
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A parsed HTTP/1.x request head: an upgrade request, or any other request
/// that arrived on the WebSocket port (a browser asking for the page).
///
/// Everything borrows the bytes it was parsed from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Request<'b> {
    buf: &'b [u8],
    parts: Parts,
}

impl<'b> Request<'b> {
    /// Parses a request head from the start of `buf`.
    ///
    /// Returns [`Status::Partial`] until the blank line that ends the head
    /// has arrived; the complete request tells its length in bytes with
    /// [`len`](Self::len): anything after it is the client's first frames.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::RequestTooLarge`] as soon as `buf` holds more than
    /// `config.max_request_size` bytes without a complete head;
    /// [`HandshakeError::TooManyHeaders`], and the errors for a malformed
    /// request line, target or header. Checks that only concern WebSocket
    /// upgrades are left to [`validate`](Self::validate), so that other
    /// requests can still be answered.
    pub fn parse(buf: &'b [u8], config: &Config) -> Result<Status<Request<'b>>, HandshakeError> {
        let limit = config.max_request_size.min(u32::MAX as usize);
        let window = &buf[..buf.len().min(limit)];
        let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
            if buf.len() >= limit {
                return Err(HandshakeError::RequestTooLarge);
            }
            return Ok(Status::Partial);
        };
        let parts = parse_head(&buf[..end + 4], config.max_headers)?;
        Ok(Status::Complete(Request { buf, parts }))
    }

    /// Rebuilds a request parsed earlier from the same bytes.
    pub(crate) fn from_parts(buf: &'b [u8], parts: Parts) -> Self {
        Request { buf, parts }
    }

    pub(crate) fn parts(&self) -> Parts {
        self.parts
    }

    /// The length of the request head in bytes, blank line included.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.parts.len
    }

    fn str(&self, span: Span) -> &'b str {
        // Every span was checked to be UTF-8 while parsing.
        std::str::from_utf8(&self.buf[span.range()]).unwrap_or_default()
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'b str {
        self.str(self.parts.method)
    }

    /// The request target as sent, e.g. `/ws?token=1`.
    pub fn target(&self) -> &'b str {
        self.str(self.parts.target)
    }

    /// The path of the target, e.g. `/ws` (`/` for an absolute URI without
    /// one).
    pub fn path(&self) -> &'b str {
        match self.str(self.parts.path) {
            "" => "/",
            path => path,
        }
    }

    /// The query of the target, without the `?`.
    pub fn query(&self) -> Option<&'b str> {
        self.parts.query.map(|span| self.str(span))
    }

    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.parts.minor_version
    }

    /// The header fields, in order, names as sent.
    pub fn headers(&self) -> Headers<'b> {
        Headers {
            rest: &self.buf[self.parts.headers.range()],
        }
    }

    /// The value of the first header field named `name` (without regard to
    /// ASCII case).
    pub fn header(&self, name: &str) -> Option<&'b str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The `Host` header.
    pub fn host(&self) -> Option<&'b str> {
        self.parts.host.map(|span| self.str(span))
    }

    /// The `Origin` header, sent by browsers.
    pub fn origin(&self) -> Option<&'b str> {
        self.parts.origin.map(|span| self.str(span))
    }

    /// Whether this asks for a WebSocket upgrade: `GET` with `Upgrade:
    /// websocket` and `Connection: upgrade`. Requests that don't are
    /// ordinary HTTP requests, to be answered with a [`Response`](super::Response).
    pub fn is_upgrade(&self) -> bool {
        self.method() == "GET" && self.parts.upgrade_websocket && self.parts.connection_upgrade
    }

    /// The subprotocols the client offers in `Sec-WebSocket-Protocol`, in
    /// its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &'b str> {
        self.headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
            .flat_map(|(_, v)| tokens(v))
    }

    /// The first of `supported` (the server's preference order) that the
    /// client offers.
    pub fn select_protocol<'s>(&self, supported: &'s [String]) -> Option<&'s str> {
        supported
            .iter()
            .find(|s| self.protocols().any(|offered| offered == s.as_str()))
            .map(String::as_str)
    }

    /// Checks everything RFC 6455 §4.2.1 asks of an upgrade request, and
    /// the configured origin allow-list, and computes the
    /// `Sec-WebSocket-Accept` value.
    ///
    /// # Errors
    ///
    /// The first problem found, in this order: method (405), HTTP version,
    /// `Host`, `Upgrade` and `Connection` (426), `Sec-WebSocket-Version`
    /// (missing: 400, not 13: 426), `Sec-WebSocket-Key` (400), `Origin`
    /// (403).
    pub fn validate(&self, config: &Config) -> Result<AcceptKey, HandshakeError> {
        if self.method() != "GET" {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if self.parts.minor_version < 1 {
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        if self.host().is_none() {
            return Err(HandshakeError::MissingHost);
        }
        if !self.parts.upgrade_websocket || !self.parts.connection_upgrade {
            return Err(HandshakeError::NotUpgrade);
        }
        match self.parts.version.map(|span| self.str(span)) {
            None => return Err(HandshakeError::MissingVersion),
            Some("13") => {}
            Some(_) => return Err(HandshakeError::UnsupportedVersion),
        }
        let key = self.parts.key.map(|span| self.str(span));
        let key = key.ok_or(HandshakeError::MissingKey)?;
        // §4.2.1: "a base64-encoded value that, when decoded, is 16 bytes".
        let mut decoded = [0u8; 18];
        if key.len() != 24 || STANDARD.decode_slice(key, &mut decoded) != Ok(16) {
            return Err(HandshakeError::InvalidKey);
        }
        if let (Some(allowed), Some(origin)) = (&config.allowed_origins, self.origin()) {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
                return Err(HandshakeError::OriginRefused);
            }
        }
        Ok(AcceptKey::from_key(key))
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("headers", &self.parts.header_count)
            .finish()
    }
}

/// The header fields of a [`Request`], as `(name, value)` pairs.
#[derive(Debug, Clone)]
pub struct Headers<'b> {
    rest: &'b [u8],
}

impl<'b> Iterator for Headers<'b> {
    type Item = (&'b str, &'b str);

    fn next(&mut self) -> Option<Self::Item> {
        // The block was validated by the parser: every line is
        // `name ":" OWS value OWS CRLF` and UTF-8.
        let end = self.rest.windows(2).position(|w| w == b"\r\n")?;
        let line = &self.rest[..end];
        self.rest = &self.rest[end + 2..];
        let colon = line.iter().position(|&b| b == b':')?;
        let name = std::str::from_utf8(&line[..colon]).ok()?;
        let value = std::str::from_utf8(trim(&line[colon + 1..])).ok()?;
        Some((name, value))
    }
}

/// Parses a complete head (ending with the blank line).
fn parse_head(head: &[u8], max_headers: usize) -> Result<Parts, HandshakeError> {
    let mut parts = Parts {
        len: head.len(),
        ..Parts::default()
    };
    let line_end = find_crlf(head, 0).ok_or(HandshakeError::InvalidRequestLine)?;
    parse_request_line(head, line_end, &mut parts)?;

    let block_start = line_end + 2;
    let block_end = head.len() - 2; // before the final CRLF
    parts.headers = Span::new(block_start..block_end);
    let mut pos = block_start;
    while pos < block_end {
        let end = find_crlf(head, pos).ok_or(HandshakeError::InvalidHeader)?;
        parts.header_count += 1;
        if parts.header_count > max_headers {
            return Err(HandshakeError::TooManyHeaders);
        }
        parse_header(head, pos, end, &mut parts)?;
        pos = end + 2;
    }
    Ok(parts)
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

/// `method SP request-target SP HTTP/1.x` (RFC 9112 §3).
fn parse_request_line(head: &[u8], end: usize, parts: &mut Parts) -> Result<(), HandshakeError> {
    let line = &head[..end];
    let mut fields = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(HandshakeError::InvalidRequestLine);
    };
    if method.is_empty() || !method.iter().all(|&b| is_token(b)) {
        return Err(HandshakeError::InvalidRequestLine);
    }
    parts.minor_version = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(HandshakeError::UnsupportedHttpVersion)
        }
        _ => return Err(HandshakeError::InvalidRequestLine),
    };
    parts.method = Span::new(0..method.len());
    let start = method.len() + 1;
    parts.target = Span::new(start..start + target.len());
    parse_target(target, start, parts)
}

/// Splits an origin-form (`/path?query`) or absolute-form
/// (`ws://host/path?query`) target; a `#fragment` is refused (RFC 6455 §3).
fn parse_target(target: &[u8], offset: usize, parts: &mut Parts) -> Result<(), HandshakeError> {
    if target.is_empty() || !target.iter().all(|b| b.is_ascii_graphic()) {
        return Err(HandshakeError::InvalidTarget);
    }
    if target.contains(&b'#') {
        return Err(HandshakeError::FragmentInTarget);
    }
    let path_start = if target[0] == b'/' {
        0
    } else {
        let scheme_end = target
            .windows(3)
            .position(|w| w == b"://")
            .ok_or(HandshakeError::InvalidTarget)?;
        let scheme = &target[..scheme_end];
        let known = [&b"http"[..], b"https", b"ws", b"wss"];
        if !known.iter().any(|k| scheme.eq_ignore_ascii_case(k)) {
            return Err(HandshakeError::InvalidTarget);
        }
        let authority = scheme_end + 3;
        target[authority..]
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .map_or(target.len(), |i| authority + i)
    };
    let query = target[path_start..].iter().position(|&b| b == b'?');
    let path_end = query.map_or(target.len(), |q| path_start + q);
    parts.path = Span::new(offset + path_start..offset + path_end);
    parts.query = query.map(|_| Span::new(offset + path_end + 1..offset + target.len()));
    Ok(())
}

/// `field-name ":" OWS field-value OWS` (RFC 9112 §5), recording the fields
/// the handshake needs.
fn parse_header(
    head: &[u8],
    start: usize,
    end: usize,
    parts: &mut Parts,
) -> Result<(), HandshakeError> {
    let line = &head[start..end];
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HandshakeError::InvalidHeader)?;
    let name = &line[..colon];
    // An empty name also catches obsolete line folding (a leading space).
    if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
        return Err(HandshakeError::InvalidHeader);
    }
    let raw = &line[colon + 1..];
    if !raw
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || b >= 0x21 && b != 0x7F)
    {
        return Err(HandshakeError::InvalidHeader);
    }
    let value = trim(raw);
    let Ok(text) = std::str::from_utf8(value) else {
        return Err(HandshakeError::InvalidHeader);
    };
    let value_start = start + colon + 1 + (raw.len() - raw.trim_ascii_start().len());
    let span = Span::new(value_start..value_start + value.len());
    let once = |slot: &mut Option<Span>| {
        if slot.replace(span).is_some() {
            return Err(HandshakeError::DuplicateHeader);
        }
        Ok(())
    };
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if is("host") {
        once(&mut parts.host)?;
    } else if is("upgrade") {
        parts.upgrade_websocket |= tokens(text).any(|t| t.eq_ignore_ascii_case("websocket"));
    } else if is("connection") {
        parts.connection_upgrade |= tokens(text).any(|t| t.eq_ignore_ascii_case("upgrade"));
    } else if is("sec-websocket-key") {
        once(&mut parts.key)?;
    } else if is("sec-websocket-version") {
        once(&mut parts.version)?;
    } else if is("origin") {
        once(&mut parts.origin)?;
    }
    Ok(())
}

/// The elements of a comma-separated list, trimmed, empty ones skipped.
fn tokens(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|t| !t.is_empty())
}

fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
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
        assert_eq!(r.origin(), Some("http://example.com"));
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
                HandshakeError::InvalidHeader,
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

    #[test]
    fn origin_allow_list() {
        let request = parse(RFC_REQUEST).unwrap();
        let config = Config::default().allowed_origins(["http://board.local"]);
        assert_eq!(
            request.validate(&config),
            Err(HandshakeError::OriginRefused)
        );
        assert_eq!(HandshakeError::OriginRefused.status(), 403);
        let config = Config::default().allowed_origins(["HTTP://EXAMPLE.COM"]);
        assert!(request.validate(&config).is_ok());
        // No Origin header: not a browser, allowed.
        let wire = request_with("Origin:", "");
        let config = Config::default().allowed_origins(["http://board.local"]);
        assert!(parse(&wire).unwrap().validate(&config).is_ok());
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
}
