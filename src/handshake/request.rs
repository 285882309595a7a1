//! The upgrade request: a partial-aware parser of the HTTP/1.1 request
//! head, and the checks of RFC 6455 §4.2.1.

use std::fmt;
use std::ops::Range;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::config::Config;
use crate::error::HandshakeError;
use crate::handshake::authority::{self, Authority};
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
    /// `Content-Length` other than 0, or any `Transfer-Encoding`.
    body: bool,
    /// An `Expect` header.
    expect: bool,
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
    /// [`HandshakeError::BareLineFeed`] as soon as a line ends in LF alone;
    /// [`HandshakeError::TooManyHeaders`], and the errors for a malformed
    /// request line, target or header. Checks that only concern WebSocket
    /// upgrades are left to [`validate`](Self::validate), so that other
    /// requests can still be answered.
    pub fn parse(buf: &'b [u8], config: &Config) -> Result<Status<Request<'b>>, HandshakeError> {
        let limit = config.max_request_size.min(u32::MAX as usize);
        let window = &buf[..buf.len().min(limit)];
        let Some(end) = head_end(window)? else {
            if buf.len() >= limit {
                return Err(HandshakeError::RequestTooLarge);
            }
            return Ok(Status::Partial);
        };
        let parts = parse_head(&buf[..end], config.max_headers)?;
        Ok(Status::Complete(Request { buf, parts }))
    }

    /// Rebuilds a request parsed earlier from the same bytes.
    pub(crate) fn from_parts(buf: &'b [u8], parts: Parts) -> Self {
        Request { buf, parts }
    }

    pub(crate) fn parts(&self) -> Parts {
        self.parts
    }

    /// The bytes of the request head.
    pub(crate) fn head(&self) -> &'b [u8] {
        &self.buf[..self.parts.len]
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

    /// The value of the query parameter `name` (its first occurrence),
    /// percent-decoded, with `+` as a space (as forms and `URLSearchParams`
    /// write them); `None` if absent, or not UTF-8 once decoded. A `%` not
    /// followed by two hex digits is kept as is.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query()?;
        let value = query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(key)? == name).then_some(value)
        })?;
        decode_component(value)
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

    /// Whether the `Upgrade` header names `websocket`, whatever the method
    /// and the other headers: such a request is a (maybe invalid) upgrade,
    /// never a page request.
    pub(crate) fn asks_websocket(&self) -> bool {
        self.parts.upgrade_websocket
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
    /// its `Origin` (same-origin, or [`Config::allowed_origins`]), and
    /// computes the `Sec-WebSocket-Accept` value.
    ///
    /// A request with an `Origin` header comes from a browser, on behalf
    /// of the page of that origin (RFC 6455 §10.2). Unless the origin is
    /// the request's own (same host and port as `Host`, the scheme's
    /// default port standing for a missing one) or allowed by the
    /// configuration, it is refused: any site a user visits could
    /// otherwise open a WebSocket to the board (cross-site WebSocket
    /// hijacking). `null` is never same-origin. A request without `Origin`
    /// does not come from a browser and is not checked.
    ///
    /// This does not check that `Host` names this server: see
    /// [`check_host`](Self::check_host), which the blocking layer runs on
    /// every request.
    ///
    /// # Errors
    ///
    /// The first problem found, in this order: method (405), HTTP version,
    /// `Host`, `Upgrade` and `Connection` (426), `Expect` (417), a body
    /// (400), `Sec-WebSocket-Version` (missing: 400, not 13: 426),
    /// `Sec-WebSocket-Key` (400), `Origin` (403).
    ///
    /// [`Config::allowed_origins`]: crate::Config#structfield.allowed_origins
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
        // A WebSocket upgrade has no content: nothing to continue with, and
        // a body would be read as the client's first frames.
        if self.parts.expect {
            return Err(HandshakeError::ExpectationFailed);
        }
        if self.parts.body {
            return Err(HandshakeError::UnexpectedBody);
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
        self.check_origin(config)?;
        Ok(AcceptKey::from_key(key))
    }

    /// Checks the `Origin` header, if there is one (a browser's page sent
    /// the request): the page must be of this server's origin, or of one in
    /// [`Config::allowed_origins`]. Upgrades are checked in
    /// [`validate`](Self::validate); the HTTP transports check their
    /// requests with it too.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::OriginRefused`] (403).
    ///
    /// [`Config::allowed_origins`]: crate::Config#structfield.allowed_origins
    pub fn check_origin(&self, config: &Config) -> Result<(), HandshakeError> {
        if let Some(origin) = self.origin() {
            let allowed = &config.allowed_origins;
            let listed = allowed
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(origin));
            let host = self.host().unwrap_or_default();
            if !listed && !authority::is_same_origin(origin, host) {
                return Err(HandshakeError::OriginRefused);
            }
        }
        Ok(())
    }

    /// Checks the `Host` header of any request, page or upgrade: that it
    /// is there in HTTP/1.1 and well-formed, and agrees with an
    /// absolute-form target (RFC 9112 §3.2); and that it names this
    /// server, so that no page and no WebSocket can be reached through a
    /// DNS name an attacker controls (DNS rebinding).
    ///
    /// Ours are IP addresses (a rebinding needs a name), names public DNS
    /// cannot answer for (`localhost`, `*.localhost`, `*.local`, names
    /// without a dot), `hostname` (the machine's name: the blocking layer
    /// reads it from `/proc/sys/kernel/hostname`), and
    /// [`Config::allowed_hosts`]. The port is not checked.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::MissingHost`] (400) for an HTTP/1.1 request
    /// without `Host`; [`HandshakeError::InvalidHost`] (400) for a `Host`
    /// that is not `host[:port]`; [`HandshakeError::HostMismatch`] (400)
    /// for an absolute-form target naming another host or port;
    /// [`HandshakeError::HostRefused`] (421 Misdirected Request) for a
    /// name that is not ours.
    ///
    /// [`Config::allowed_hosts`]: crate::Config#structfield.allowed_hosts
    pub fn check_host(
        &self,
        config: &Config,
        hostname: Option<&str>,
    ) -> Result<(), HandshakeError> {
        let Some(host) = self.host() else {
            // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request)
            // status code to any HTTP/1.1 request message that lacks a Host
            // header field". HTTP/1.0 did not have it.
            return match self.parts.minor_version {
                0 => Ok(()),
                _ => Err(HandshakeError::MissingHost),
            };
        };
        let host = Authority::parse(host).ok_or(HandshakeError::InvalidHost)?;
        let target = self.target();
        // §3.2.2: the server "MUST ignore the received Host header field" and
        // use the target's authority; one that differs is refused instead,
        // so that the name checked is the name the request is for.
        if !target.starts_with('/') && !authority::target_matches_host(target, &host) {
            return Err(HandshakeError::HostMismatch);
        }
        if !authority::is_served(&host, hostname, &config.allowed_hosts) {
            return Err(HandshakeError::HostRefused);
        }
        Ok(())
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

/// The length of the head (up to and including its blank line) if it is
/// all in `window`.
///
/// # Errors
///
/// [`HandshakeError::BareLineFeed`] for a line ended by LF alone (RFC 9112
/// §2.2 lets a server accept it, but a request that does is not from a
/// browser, and waiting for a CRLF that never comes would leave the client
/// without an answer).
fn head_end(window: &[u8]) -> Result<Option<usize>, HandshakeError> {
    let mut from = 0;
    while let Some(i) = window[from..].iter().position(|&b| b == b'\n') {
        let lf = from + i;
        if lf == 0 || window[lf - 1] != b'\r' {
            return Err(HandshakeError::BareLineFeed);
        }
        if lf >= 3 && window[lf - 3..lf - 1] == *b"\r\n" {
            return Ok(Some(lf + 1));
        }
        from = lf + 1;
    }
    Ok(None)
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
    } else if is("content-length") {
        parts.body |= value != b"0";
    } else if is("transfer-encoding") {
        parts.body = true;
    } else if is("expect") {
        parts.expect = true;
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

/// A query component, percent-decoded with `+` as a space; `None` if not
/// UTF-8 once decoded.
fn decode_component(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
