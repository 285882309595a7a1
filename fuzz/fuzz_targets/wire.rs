//! The `boardcast.v1` command parser, cursors and the `GET /latest` query on
//! arbitrary input: never a panic; what parses is what the protocol allows
//! (topics pass `is_topic`, a command written back reads the same), and the
//! JSON answer is one object.
#![no_main]

use boardcast::hub::Hub;
use boardcast::wire::cursor::Cursor;
use boardcast::wire::{json, v1};
use boardcast::handshake::{Request, Status};
use boardcast::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match v1::parse(text) {
            Ok(v1::Command::Subscribe { topic, since }) => {
                assert!(v1::is_topic(topic));
                let mut again = match since.after {
                    Some(p) => format!("s {topic} {:016x} {}", p.epoch, p.seq),
                    None => format!("s {topic}"),
                };
                if let Some(past) = since.past {
                    assert!(past <= v1::MAX_PAST);
                    again.push_str(&format!(" past={}", past.as_secs()));
                }
                assert_eq!(v1::parse(&again), v1::parse(text));
            }
            Ok(v1::Command::Unsubscribe { topic }) => {
                assert!(v1::is_topic(topic));
                assert_eq!(text, format!("x {topic}"));
            }
            Ok(v1::Command::Data(payload)) => assert_eq!(text, format!("d\n{payload}")),
            Err(_) => {}
        }
        // A cursor that reads writes back one that reads the same (leading
        // zeros of a number are not kept).
        if let Ok(cursor) = Cursor::parse(text) {
            assert_eq!(Cursor::parse(&cursor.to_string()), Ok(cursor.clone()));
            assert!(cursor.positions.iter().all(|(t, _)| v1::is_topic(t)));
        }
    }
    let mut request = b"GET /latest?".to_vec();
    request.extend_from_slice(data);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
    if let Ok(Status::Complete(request)) = Request::parse(&request, &Config::default()) {
        let topics = request.query_param("topics");
        let hub = Hub::new();
        hub.publish_text("a", "\"\\\u{1}é");
        hub.publish_binary("b/c", &[0, 255]);
        if let Ok(answer) = json::latest(&hub, topics.as_deref()) {
            assert!(answer.starts_with('{') && answer.ends_with('}'));
        }
    }
});
