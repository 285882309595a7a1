//! JSON for hub messages: what `GET /latest` answers (`docs/protocol.md`).
//! Written by hand, the few shapes it needs: an object keyed by topic, each
//! message with its epoch, sequence number and data (a text message as a
//! string, a binary one in base64).

use crate::handshake::{Request, Response};
use crate::hub::{Encoded, Form, Hub};
use crate::wire::base64;
use crate::wire::v1::is_topic;
use crate::wire::Notice;

/// A topic name the protocol does not carry, in a `topics` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTopic;

impl std::fmt::Display for BadTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bad topic name")
    }
}

impl std::error::Error for BadTopic {}

/// The latest kept message of each topic in `topics` (a comma-separated
/// list; `None`: every topic), as a JSON object keyed by topic. Topics that
/// keep nothing are left out.
///
/// # Errors
///
/// [`BadTopic`] if a name in `topics` is not a topic name.
pub fn latest(hub: &Hub, topics: Option<&str>) -> Result<String, BadTopic> {
    let names: Vec<String> = match topics {
        Some(list) => {
            let names: Vec<&str> = list.split(',').filter(|n| !n.is_empty()).collect();
            if !names.iter().all(|n| is_topic(n)) {
                return Err(BadTopic);
            }
            names.into_iter().map(String::from).collect()
        }
        None => hub.topics().iter().map(|t| t.to_string()).collect(),
    };
    let mut out = String::from("{");
    let mut seen = Vec::new();
    for name in &names {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        if let Some(message) = hub.latest(name) {
            if out.len() > 1 {
                out.push(',');
            }
            push_string(&mut out, name);
            out.push(':');
            push_message(&mut out, hub.epoch(), &message);
        }
    }
    out.push('}');
    Ok(out)
}

/// The answer to `GET /latest?topics=a,b` (see [`latest`]), for a route of
/// your [`Server::on_http`](crate::Server::on_http): `200` with the JSON,
/// `400` for a bad topic name, `405` for a method other than `GET` or
/// `HEAD`. Never cached: it is a snapshot of the present.
pub fn latest_response(hub: &Hub, request: &Request<'_>) -> Response {
    if !matches!(request.method(), "GET" | "HEAD") {
        return Response::text(405, "method not allowed").header("Allow", "GET, HEAD");
    }
    match latest(hub, request.query_param("topics").as_deref()) {
        Ok(json) => Response::new(200)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store")
            .body(json),
        Err(e) => Response::text(400, e.to_string()),
    }
}

/// A published message as a long-poll event, `{"type":"m","topic":…,
/// "seq":N,"data":…}`: a form of the hub's message, made once for all its
/// long-poll subscribers.
pub(crate) const EVENT: Form = Form::new(2, event);

fn event(message: &Encoded) -> Vec<u8> {
    let mut out = String::from("{\"type\":\"m\",\"topic\":");
    push_string(&mut out, message.topic().map_or("", |t| &**t));
    out.push_str(&format!(",\"seq\":{},", message.seq()));
    push_data(&mut out, message.is_text(), message.payload());
    out.push('}');
    out.into_bytes()
}

/// A notice as a long-poll event (the welcome is the answer's own fields).
pub(crate) fn notice(notice: &Notice<'_>) -> Vec<u8> {
    let mut out = String::from("{\"type\":");
    match *notice {
        Notice::Welcome {
            epoch, heartbeat, ..
        } => {
            out.push_str(&format!("\"w\",\"epoch\":\"{epoch:016x}\""));
            if let Some(interval) = heartbeat {
                out.push_str(&format!(",\"heartbeat\":{}", interval.as_millis()));
            }
        }
        Notice::Subscribed {
            topic,
            recovered,
            last,
        } => {
            out.push_str("\"r\",\"topic\":");
            push_string(&mut out, topic);
            out.push_str(&format!(",\"recovered\":{recovered},\"last\":{last}"));
        }
        Notice::Unsubscribed { topic } => {
            out.push_str("\"u\",\"topic\":");
            push_string(&mut out, topic);
        }
        Notice::Refused { reason } => {
            out.push_str("\"e\",\"reason\":");
            push_string(&mut out, reason);
        }
        Notice::Direct { text, payload } => {
            out.push_str("\"d\",");
            push_data(&mut out, text, payload);
        }
    }
    out.push('}');
    out.into_bytes()
}

/// `"data":…`: a text message as a JSON string; a binary one (or text that
/// is not UTF-8) in base64, with `"binary":true`.
fn push_data(out: &mut String, text: bool, payload: &[u8]) {
    out.push_str("\"data\":");
    match std::str::from_utf8(payload) {
        Ok(utf8) if text => push_string(out, utf8),
        _ => {
            out.push('"');
            out.push_str(&base64(payload));
            out.push_str("\",\"binary\":true");
        }
    }
}

/// `{"epoch":"…","seq":N,"data":…}`, with `"binary":true` for a binary
/// message (its data in base64).
pub(crate) fn push_message(out: &mut String, epoch: u64, message: &Encoded) {
    out.push_str(&format!(
        "{{\"epoch\":\"{epoch:016x}\",\"seq\":{},",
        message.seq()
    ));
    push_data(out, message.is_text(), message.payload());
    out.push('}');
}

/// `text` as a JSON string (RFC 8259 §7): quotes, backslashes and control
/// characters escaped; the rest as is (JSON is UTF-8).
pub(crate) fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Policy, Retention};

    #[test]
    fn long_poll_events() {
        use crate::frame::{Frame, OpCode};
        use std::sync::Arc;
        let text = Frame::new(OpCode::Text, b"a\"b", None);
        let message = Encoded::new(Some(Arc::from("t")), 1, 7, &text);
        assert_eq!(
            message.form(EVENT),
            br#"{"type":"m","topic":"t","seq":7,"data":"a\"b"}"#
        );
        let r = Notice::Subscribed {
            topic: "t",
            recovered: false,
            last: 7,
        };
        assert_eq!(
            notice(&r),
            br#"{"type":"r","topic":"t","recovered":false,"last":7}"#
        );
        assert_eq!(
            notice(&Notice::Unsubscribed { topic: "t" }),
            br#"{"type":"u","topic":"t"}"#
        );
        assert_eq!(
            notice(&Notice::Refused { reason: "bad" }),
            br#"{"type":"e","reason":"bad"}"#
        );
        let d = Notice::Direct {
            text: false,
            payload: &[0, 1, 2],
        };
        assert_eq!(notice(&d), br#"{"type":"d","data":"AAEC","binary":true}"#);
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        push_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn latest_of_each_topic() {
        let hub = Hub::new();
        hub.set_policy("temp", Policy::KeepLatest);
        hub.set_retention("temp", Retention::none());
        hub.publish_text("temp", "{\"c\":41}");
        hub.publish_text("temp", "{\"c\":42}");
        hub.publish_binary("cam", &[0, 1, 2]);
        let epoch = format!("{:016x}", hub.epoch());
        let json = latest(&hub, Some("temp,cam,none")).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"temp":{{"epoch":"{epoch}","seq":2,"data":"{{\"c\":42}}"}},"cam":{{"epoch":"{epoch}","seq":1,"data":"AAEC","binary":true}}}}"#
            )
        );
        let all = latest(&hub, None).unwrap();
        assert!(
            all.contains("\"temp\":") && all.contains("\"cam\":"),
            "{all}"
        );
        assert_eq!(
            latest(&hub, Some("temp,temp"))
                .unwrap()
                .matches("temp")
                .count(),
            1
        );
        assert_eq!(latest(&hub, Some("a b")), Err(BadTopic));
        assert_eq!(latest(&hub, Some("")).unwrap(), "{}");
    }
}
