//! The little HTTP/1.1 and Server-Sent Events a transport client needs:
//! response heads, event blocks, base64, and the send time in a payload.

/// What a response head says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// `Content-Length`, if given.
    pub content_length: Option<usize>,
    /// `ETag`, if given.
    pub etag: Option<String>,
    /// `Connection: close`.
    pub close: bool,
    /// `Sec-WebSocket-Protocol`, if given.
    pub protocol: Option<String>,
}

/// The end of a response head (`\r\n\r\n`) in `buf`: the head's length
/// with it.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    find(buf, b"\r\n\r\n").map(|at| at + 4)
}

/// Parses a response head (up to and with its blank line).
pub fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "a response head that is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut out = Head {
        status,
        ..Head::default()
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                out.content_length = Some(
                    value
                        .parse()
                        .map_err(|_| "bad Content-Length".to_string())?,
                )
            }
            "etag" => out.etag = Some(value.to_string()),
            "connection" => {
                out.close = value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"))
            }
            "sec-websocket-protocol" => out.protocol = Some(value.to_string()),
            _ => {}
        }
    }
    Ok(out)
}

/// One Server-Sent Event: its type (empty: `message`), `id` and data
/// lines joined with `\n`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field.
    pub kind: String,
    /// The `id:` field.
    pub id: String,
    /// The `data:` lines.
    pub data: String,
}

/// The end of the first event block in `buf` (after its blank line), for
/// streams whose lines end with `\n` (as boardcast's do).
pub fn event_end(buf: &[u8]) -> Option<usize> {
    find(buf, b"\n\n").map(|at| at + 2)
}

/// Parses one event block; `None` for a block of comments and `retry:`
/// only.
pub fn parse_event(block: &[u8]) -> Option<Event> {
    let text = String::from_utf8_lossy(block);
    let mut event = Event::default();
    let mut any = false;
    for line in text.split('\n') {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.kind = value.to_string(),
            "id" => event.id = value.to_string(),
            "data" => {
                if any {
                    event.data.push('\n');
                }
                event.data.push_str(value);
                any = true;
            }
            _ => {}
        }
    }
    any.then_some(event)
}

/// Decodes standard base64 (RFC 4648 §4, padded or not); `None` if it is
/// not.
pub fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The send time (ns since the UNIX epoch) a broadcast payload carries:
/// the first 8 bytes, big-endian, of a binary one; the `"t"` field of a
/// JSON reading.
pub fn sent_ns(payload: &[u8], binary: bool) -> Option<u64> {
    if binary {
        return Some(u64::from_be_bytes(payload.get(..8)?.try_into().ok()?));
    }
    let at = find(payload, b"\"t\":")? + 4;
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&payload[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// The first position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_events_and_payloads() {
        let head = b"HTTP/1.1 304 Not Modified\r\nETag: \"ab-7\"\r\nContent-Length: 0\r\n\
                     Connection: keep-alive\r\n\r\n";
        assert_eq!(head_end(head), Some(head.len()));
        let h = parse_head(head).unwrap();
        assert_eq!(
            (h.status, h.content_length, h.etag.as_deref(), h.close),
            (304, Some(0), Some("\"ab-7\""), false)
        );
        let stream = b"retry: 2000\n\nid: e~bench~4\nevent: binary\ndata: AAEC\n\nrest";
        let first = event_end(stream).unwrap();
        assert_eq!(parse_event(&stream[..first]), None);
        let second = first + event_end(&stream[first..]).unwrap();
        let event = parse_event(&stream[first..second]).unwrap();
        assert_eq!(
            (event.kind.as_str(), event.id.as_str()),
            ("binary", "e~bench~4")
        );
        assert_eq!(base64(&event.data), Some(vec![0, 1, 2]));
        assert_eq!(base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(
            sent_ns(br#"{"t":1733472000123456789,"seq":42}"#, false),
            Some(1733472000123456789)
        );
        assert_eq!(sent_ns(&7u64.to_be_bytes(), true), Some(7));
    }
}
