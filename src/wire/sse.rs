//! Server-Sent Events (`docs/transports.md`): a published message as an
//! event whose id is its cursor, made once per publish for every SSE
//! subscriber; the notices as named events; the heartbeat.

use crate::hub::{Encoded, Form};
use crate::wire::{base64, cursor, json, Notice};

/// What a stream starts with: how long a browser's `EventSource` waits
/// before it reconnects by itself.
pub(crate) const RETRY: &[u8] = b"retry: 2000\n\n";

/// The heartbeat: an `h` event with empty data (`EventSource` dispatches
/// no event without a `data` field), every `heartbeat_interval`.
pub(crate) const HEARTBEAT: &[u8] = b"event: h\ndata\n\n";

/// A published message as an event: a form of the hub's message, made once
/// for all its SSE subscribers.
pub(crate) const EVENT: Form = Form::new(1, event);

fn event(message: &Encoded) -> Vec<u8> {
    let topic = message.topic().map_or("", |t| &**t);
    let id = cursor::of_message(message.epoch(), topic, message.seq());
    let mut out = Vec::with_capacity(id.len() + message.payload().len() + 32);
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(id.as_bytes());
    out.push(b'\n');
    data(
        &mut out,
        message.is_text(),
        message.payload(),
        ["", "binary", "text64"],
    );
    out
}

/// A notice as an event.
pub(crate) fn notice(notice: &Notice<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut named = |name: &str, text: &str| {
        out.extend_from_slice(format!("event: {name}\n").as_bytes());
        lines(&mut out, text);
    };
    match *notice {
        Notice::Welcome {
            epoch,
            session,
            heartbeat,
        } => {
            let mut json = String::from("{\"session\":");
            json::push_string(&mut json, session.unwrap_or(""));
            json.push_str(&format!(",\"epoch\":\"{epoch:016x}\""));
            if let Some(interval) = heartbeat {
                json.push_str(&format!(",\"heartbeat\":{}", interval.as_millis()));
            }
            json.push('}');
            named("welcome", &json);
        }
        Notice::Subscribed {
            topic,
            recovered,
            last,
        } => named(
            "subscribed",
            &format!("{{\"topic\":\"{topic}\",\"recovered\":{recovered},\"last\":{last}}}"),
        ),
        Notice::Unsubscribed { topic } => named("unsubscribed", topic),
        Notice::Refused { reason } => named("refused", reason),
        Notice::Direct { text, payload } => data(
            &mut out,
            text,
            payload,
            ["direct", "direct-binary", "direct64"],
        ),
    }
    out
}

/// The `event:` line (none for the first name) and the `data:` lines of a
/// message: text as is, split at its line feeds; binary, or text with a
/// carriage return (which SSE cannot carry), in base64, under the second
/// and third names.
fn data(out: &mut Vec<u8>, text: bool, payload: &[u8], names: [&str; 3]) {
    let plain = text && !payload.contains(&b'\r');
    let text_payload = std::str::from_utf8(payload).ok().filter(|_| plain);
    let name = match (text_payload, text) {
        (Some(_), _) => names[0],
        (None, false) => names[1],
        (None, true) => names[2],
    };
    if !name.is_empty() {
        out.extend_from_slice(format!("event: {name}\n").as_bytes());
    }
    match text_payload {
        Some(text) => lines(out, text),
        None => lines(out, &base64(payload)),
    }
}

/// `text` as `data:` lines, then the blank line that ends the event.
fn lines(out: &mut Vec<u8>, text: &str) {
    for line in text.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::frame::{Frame, OpCode};

    fn published(opcode: OpCode, payload: &[u8]) -> Encoded {
        Encoded::new(
            Some(Arc::from("temp")),
            255,
            7,
            &Frame::new(opcode, payload, None),
        )
    }

    #[test]
    fn messages_are_events_with_their_cursor_as_id() {
        let text = published(OpCode::Text, b"{\"c\":41}\nsecond line");
        assert_eq!(
            text.form(EVENT),
            b"id: 00000000000000ff~temp~7\ndata: {\"c\":41}\ndata: second line\n\n"
        );
        let binary = published(OpCode::Binary, &[0, 1, 2]);
        assert_eq!(
            binary.form(EVENT),
            b"id: 00000000000000ff~temp~7\nevent: binary\ndata: AAEC\n\n"
        );
        let cr = published(OpCode::Text, b"a\r\nb");
        assert_eq!(
            cr.form(EVENT),
            b"id: 00000000000000ff~temp~7\nevent: text64\ndata: YQ0KYg==\n\n"
        );
        let empty = published(OpCode::Text, b"");
        assert_eq!(
            empty.form(EVENT),
            b"id: 00000000000000ff~temp~7\ndata: \n\n"
        );
    }

    #[test]
    fn notices_are_named_events() {
        let welcome = Notice::Welcome {
            epoch: 255,
            session: Some("5e0c"),
            heartbeat: None,
        };
        assert_eq!(
            notice(&welcome),
            b"event: welcome\ndata: {\"session\":\"5e0c\",\"epoch\":\"00000000000000ff\"}\n\n"
        );
        let subscribed = Notice::Subscribed {
            topic: "t",
            recovered: true,
            last: 47,
        };
        assert_eq!(
            notice(&subscribed),
            b"event: subscribed\ndata: {\"topic\":\"t\",\"recovered\":true,\"last\":47}\n\n"
        );
        assert_eq!(
            notice(&Notice::Unsubscribed { topic: "t" }),
            b"event: unsubscribed\ndata: t\n\n"
        );
        assert_eq!(
            notice(&Notice::Refused {
                reason: "bad topic name"
            }),
            b"event: refused\ndata: bad topic name\n\n"
        );
        let direct = Notice::Direct {
            text: true,
            payload: b"ack\npause",
        };
        assert_eq!(
            notice(&direct),
            b"event: direct\ndata: ack\ndata: pause\n\n"
        );
        let binary = Notice::Direct {
            text: false,
            payload: &[255],
        };
        assert_eq!(notice(&binary), b"event: direct-binary\ndata: /w==\n\n");
    }
}
