//! The answers to a request: the `101 Switching Protocols` of an accepted
//! upgrade, and plain HTTP responses (pages, refusals).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::HandshakeError;

/// The GUID of RFC 6455 §1.3, appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value: base64 of the SHA-1 of the key and the
/// GUID (RFC 6455 §4.2.2), held on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AcceptKey([u8; 28]);

impl AcceptKey {
    /// Computes the answer to a client's `Sec-WebSocket-Key`.
    pub fn from_key(key: &str) -> AcceptKey {
        let mut sha1 = sha1_smol::Sha1::new();
        sha1.update(key.as_bytes());
        sha1.update(GUID);
        let mut out = [0u8; 28];
        let written = STANDARD
            .encode_slice(sha1.digest().bytes(), &mut out)
            .expect("20 bytes encode to 28");
        debug_assert_eq!(written, 28);
        AcceptKey(out)
    }

    /// The value as it goes in the header.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AcceptKey({})", self.as_str())
    }
}

/// The application's answer to an upgrade request it accepts: the
/// subprotocol and any extra response headers (cookies, for instance).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    protocol: Option<String>,
    headers: Vec<(String, String)>,
}

impl Accept {
    /// Accepts with no subprotocol and no extra headers.
    pub fn new() -> Self {
        Accept::default()
    }

    /// Selects this subprotocol, overriding the configured selection.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Adds a header to the `101 Switching Protocols` response.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether a header named `name` (without regard to ASCII case) was
    /// added.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The selected subprotocol, if any.
    pub fn selected_protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Writes the `101 Switching Protocols` response. Header names and
    /// values with CR or LF are dropped, so they cannot split the response.
    pub fn write_response(&self, key: &AcceptKey, out: &mut Vec<u8>) {
        out.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
        );
        out.extend_from_slice(key.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(protocol) = &self.protocol {
            write_header(out, "Sec-WebSocket-Protocol", protocol);
        }
        for (name, value) in &self.headers {
            write_header(out, name, value);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A plain HTTP response: a page on the WebSocket port, a redirect, or a
/// refusal. Always sent with `Content-Length` and `Connection: close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// A response with this status, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into())
    }

    /// A `200 OK` `text/html` page.
    pub fn html(body: impl Into<Vec<u8>>) -> Self {
        Response::new(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(body)
    }

    /// The response to a refused upgrade request: its status, its reason as
    /// the body, and the headers RFC 6455 and HTTP ask for (`Sec-WebSocket-
    /// Version: 13` with 426, `Allow: GET` with 405).
    pub fn refusal(error: HandshakeError) -> Self {
        let response = Response::text(error.status(), error.reason());
        match error {
            HandshakeError::UnsupportedVersion | HandshakeError::NotUpgrade => response
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13"),
            HandshakeError::MethodNotAllowed => response.header("Allow", "GET"),
            _ => response,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Writes the response: status line, headers, `Content-Length`,
    /// `Connection: close`, and the body unless the request was `HEAD`.
    pub fn write(&self, with_body: bool, out: &mut Vec<u8>) {
        self.write_head_and_body(with_body, None, out);
    }

    /// Writes the response as [`write`](Self::write) does, but with
    /// `Connection: keep-alive` when `keep_alive` says for how many
    /// seconds the connection waits for another request after it.
    pub(crate) fn write_head_and_body(
        &self,
        with_body: bool,
        keep_alive: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            write_header(out, name, value);
        }
        // A 304 has no body, and says nothing of its length.
        if self.status != 304 {
            write_header(out, "Content-Length", &self.body.len().to_string());
        }
        match keep_alive {
            Some(seconds) => {
                write_header(out, "Connection", "keep-alive");
                write_header(out, "Keep-Alive", &format!("timeout={seconds}"));
            }
            None => write_header(out, "Connection", "close"),
        }
        out.extend_from_slice(b"\r\n");
        if with_body && self.status != 304 {
            out.extend_from_slice(&self.body);
        }
    }
}

fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let splits = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
    if name.is_empty() || splits(name) || splits(value) {
        log::warn!("dropping response header {name:?} with CR or LF");
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase for common statuses (a client must not rely on it).
fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_response() {
        let key = AcceptKey::from_key("dGhlIHNhbXBsZSBub25jZQ==");
        let mut out = Vec::new();
        Accept::new()
            .protocol("chat")
            .header("Set-Cookie", "a=b")
            .header("X-Bad", "a\r\nInjected: yes")
            .write_response(&key, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\
             Set-Cookie: a=b\r\n\r\n"
        );
    }

    #[test]
    fn refusal_responses() {
        let mut out = Vec::new();
        Response::refusal(HandshakeError::UnsupportedVersion).write(true, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\nunsupported websocket version, 13 required"),
            "{text}"
        );

        let mut out = Vec::new();
        Response::refusal(HandshakeError::MethodNotAllowed).write(false, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: GET\r\n"), "{text}");
        assert!(text.ends_with("Connection: close\r\n\r\n"), "{text}");
    }
}
