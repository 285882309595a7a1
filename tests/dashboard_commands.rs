//! The dashboard example's commands (docs/dashboard.md, "Commands"), as a
//! plain WebSocket client (websocat, a script) sends them: pause, resume
//! and rate act and are acknowledged; invalid JSON, an unknown command and
//! a rate not offered get an error that says which.

mod support;

use serde_json::{json, Value};
use support::{connect, example_binary, next_text, send_text, Dashboard, Ws};

/// The next message that is not a reading.
fn next_answer(ws: &mut Ws) -> Value {
    loop {
        let message: Value = serde_json::from_str(&next_text(ws)).expect("JSON from the board");
        if message["type"] != "reading" {
            return message;
        }
    }
}

/// The next two readings' sample numbers.
fn two_readings(ws: &mut Ws) -> (u64, u64) {
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        let message: Value = serde_json::from_str(&next_text(ws)).unwrap();
        assert_eq!(message["type"], "reading", "{message}");
        seqs.push(message["seq"].as_u64().unwrap());
    }
    (seqs[0], seqs[1])
}

#[test]
fn commands_act_and_bad_ones_get_clear_errors() {
    let dashboard = Dashboard::start(&example_binary(), 0);
    let mut ws = connect(dashboard.addr, "/ws");
    let info: Value = serde_json::from_str(&next_text(&mut ws)).unwrap();
    assert_eq!(info["type"], "info", "{info}");

    send_text(&mut ws, "{not json");
    let error = next_answer(&mut ws);
    assert_eq!(error["type"], "error", "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON: "),
        "{error}"
    );

    send_text(&mut ws, r#"{"cmd":"fly"}"#);
    let error = next_answer(&mut ws);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown command \"fly\""),
        "{error}"
    );
    send_text(&mut ws, r#"["pause"]"#);
    let error = next_answer(&mut ws);
    assert!(
        error["error"].as_str().unwrap().contains("\"cmd\""),
        "{error}"
    );
    send_text(&mut ws, r#"{"cmd":"rate","hz":7}"#);
    let error = next_answer(&mut ws);
    assert!(
        error["error"].as_str().unwrap().contains("rates offered"),
        "{error}"
    );

    // Two readings a second: samples 5 apart (the board samples 10).
    send_text(&mut ws, r#"{"cmd":"rate","hz":2}"#);
    assert_eq!(
        next_answer(&mut ws),
        json!({"type": "ack", "cmd": "rate", "hz": 2, "paused": false})
    );
    let (a, b) = two_readings(&mut ws);
    assert_eq!(b - a, 5);

    // Paused, nothing comes until resumed.
    send_text(&mut ws, r#"{"cmd":"pause"}"#);
    send_text(&mut ws, r#"{"cmd":"resume"}"#);
    assert_eq!(next_answer(&mut ws)["paused"], true);
    let resumed: Value = serde_json::from_str(&next_text(&mut ws)).unwrap();
    assert_eq!(
        resumed,
        json!({"type": "ack", "cmd": "resume", "hz": 2, "paused": false}),
        "a reading came while paused"
    );
    let (a, b) = two_readings(&mut ws);
    assert_eq!(b - a, 5);
}
