//! A `boardcast.v1` client over tungstenite (`docs/protocol.md`): the
//! frames it reads, parsed, for tests of the server's side of the protocol.

use std::net::SocketAddr;

use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use super::{next_message, try_connect_response, Ws};

/// A frame of the server, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1 {
    Welcome(String),
    /// `m`: topic, seq, payload, and whether it came in a text frame.
    Published(String, u64, Vec<u8>, bool),
    Direct(Vec<u8>, bool),
    Subscribed(String, bool, u64),
    Unsubscribed(String),
    Refused(String),
}

/// Connects offering `boardcast.v1`; checks it was selected and reads the
/// welcome. Returns the client and the epoch.
pub fn connect_v1(addr: SocketAddr) -> (Ws, String) {
    let mut ws = connect_v1_raw(addr);
    match read_v1(&mut ws) {
        V1::Welcome(epoch) => (ws, epoch),
        other => panic!("expected the welcome first, got {other:?}"),
    }
}

/// Connects offering `boardcast.v1` and checks it was selected; the
/// welcome is still to read.
pub fn connect_v1_raw(addr: SocketAddr) -> Ws {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "boardcast.v1".parse().unwrap());
    let (ws, response) = try_connect_response(addr, request).expect("v1 handshake");
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.to_str().unwrap()),
        Some("boardcast.v1")
    );
    ws
}

/// The next frame of the server but heartbeats (`h`), parsed.
pub fn read_v1(ws: &mut Ws) -> V1 {
    loop {
        match read_v1_or_heartbeat(ws) {
            Some(frame) => return frame,
            None => continue,
        }
    }
}

/// The next frame of the server, parsed; `None` for a heartbeat.
pub fn read_v1_or_heartbeat(ws: &mut Ws) -> Option<V1> {
    let (bytes, text) = match next_message(ws) {
        Message::Text(t) => (t.as_bytes().to_vec(), true),
        Message::Binary(b) => (b.to_vec(), false),
        other => panic!("expected a boardcast.v1 frame, got {other:?}"),
    };
    let (line, payload) = match bytes.iter().position(|&b| b == b'\n') {
        Some(at) => (&bytes[..at], bytes[at + 1..].to_vec()),
        None => (&bytes[..], Vec::new()),
    };
    let line = std::str::from_utf8(line).expect("an ASCII first line");
    let fields: Vec<&str> = line.split(' ').collect();
    Some(match fields[..] {
        ["h"] => return None,
        ["w", epoch] => V1::Welcome(epoch.into()),
        ["w", epoch, heartbeat] => {
            heartbeat
                .parse::<u64>()
                .expect("the heartbeat in milliseconds");
            V1::Welcome(epoch.into())
        }
        ["m", topic, seq] => V1::Published(topic.into(), seq.parse().unwrap(), payload, text),
        ["d"] => V1::Direct(payload, text),
        ["r", topic, recovered, last] => {
            V1::Subscribed(topic.into(), recovered == "1", last.parse().unwrap())
        }
        ["u", topic] => V1::Unsubscribed(topic.into()),
        ["e", ..] => V1::Refused(line[2..].into()),
        _ => panic!("not a boardcast.v1 frame: {line:?}"),
    })
}

/// Sends a text frame (a command, or `d\n…`).
pub fn send_v1(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).expect("client send");
}

/// The next `m` frame: its topic, seq and payload as text.
pub fn next_published(ws: &mut Ws) -> (String, u64, String) {
    match read_v1(ws) {
        V1::Published(topic, seq, payload, true) => {
            (topic, seq, String::from_utf8(payload).unwrap())
        }
        other => panic!("expected a published text message, got {other:?}"),
    }
}
