//! A Server-Sent Events stream over a raw socket, read event by event.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value;

use super::tcp;

/// An SSE stream, read event by event.
pub struct Events {
    pub reader: BufReader<TcpStream>,
    pub head: String,
}

/// One event: its fields, `data` lines joined by `\n`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl Events {
    pub fn open(addr: SocketAddr, target: &str, extra: &str) -> Events {
        let mut stream = tcp(addr);
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{extra}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("the response head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        Events { reader, head }
    }

    /// The next event but heartbeats (`h`).
    pub fn next(&mut self) -> Event {
        loop {
            let event = self.next_event();
            if event.event.as_deref() != Some("h") {
                return event;
            }
        }
    }

    /// The next event, heartbeats too (comments and `retry` skipped).
    pub fn next_event(&mut self) -> Event {
        let mut event = Event::default();
        let mut data: Vec<String> = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("an event");
            assert!(n > 0, "the stream ended");
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if data.is_empty() && event.event.is_none() {
                    continue;
                }
                event.data = data.join("\n");
                return event;
            }
            if line.starts_with(':') || line.starts_with("retry:") {
                continue;
            }
            let (field, value) = line.split_once(": ").unwrap_or((line, ""));
            match field {
                "id" => event.id = Some(value.into()),
                "event" => event.event = Some(value.into()),
                "data" => data.push(value.into()),
                other => panic!("unexpected field {other:?}"),
            }
        }
    }

    /// The welcome: the session's id.
    pub fn welcome(&mut self) -> String {
        self.welcome_json()["session"].as_str().unwrap().to_string()
    }

    /// The welcome's JSON.
    pub fn welcome_json(&mut self) -> Value {
        let welcome = self.next();
        assert_eq!(welcome.event.as_deref(), Some("welcome"), "{welcome:?}");
        serde_json::from_str(&welcome.data).unwrap()
    }
}
