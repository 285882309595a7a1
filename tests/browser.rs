//! The dashboard example in a real browser.
//!
//! Headless Chromium, driven over the DevTools protocol (a WebSocket of its
//! own), loads the page from the `dashboard` example binary and checks that
//! live readings arrive and the charts redraw, that the page's controls
//! work (pause: silence; resume; a new rate, kept), that `/latest` answers,
//! and that the page reconnects by itself after the server is killed and
//! started again on the same port; with the `deflate` feature, that
//! Chromium and the dashboard agreed to permessage-deflate (the handshake
//! response's `Sec-WebSocket-Extensions`, read over DevTools), and without
//! it that they agreed to no extension. (`tests/browser_liveness.rs` checks
//! the history, the liveness, and takes the screenshots.)
//!
//! The page keeps its state in `window.dashboard`; the test reads it with
//! `Runtime.evaluate` and polls it against deadlines: no fixed sleeps.
//!
//! Needs Chromium: Debian's `chromium` package, or the binary named by
//! `BOARDCAST_CHROMIUM`. `BOARDCAST_SKIP_BROWSER=1` skips the test instead.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{chromium, example_binary, num, Browser, Dashboard};

/// The DevTools event with a WebSocket's opening handshake response.
const HANDSHAKE_RESPONSE: &str = "Network.webSocketHandshakeResponseReceived";

/// The example's default sample rate, and the slower rate the test picks.
const RATE: u64 = 10;
const SLOW: u64 = 2;

#[test]
fn dashboard_in_a_browser() {
    let started = Instant::now();
    let Some(chromium) = chromium() else {
        return;
    };
    let example = example_binary();
    // Port 0: the dashboard binds a port the kernel picks, and prints it.
    let mut server = Dashboard::start(&example, 0);
    let port = server.port();
    let mut browser = Browser::launch(&chromium);
    let mut page = browser.new_page();
    // The opening handshake's response, as Chromium received it.
    page.record(HANDSHAKE_RESPONSE);
    page.call("Network.enable", json!({}));
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://127.0.0.1:{port}/") }),
    );

    // permessage-deflate: Chromium offers it, and the dashboard agrees
    // when built with the `deflate` feature (on by default then), and
    // only then.
    let handshake = page.event(HANDSHAKE_RESPONSE);
    page.call("Network.disable", json!({}));
    assert_eq!(handshake["response"]["status"], 101, "{handshake:#}");
    let extensions = handshake["response"]["headers"]
        .as_object()
        .expect("response headers")
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .and_then(|(_, value)| value.as_str());
    if cfg!(feature = "deflate") {
        let agreed = extensions.unwrap_or_else(|| panic!("no extension agreed: {handshake:#}"));
        assert!(
            agreed.starts_with("permessage-deflate"),
            "agreed to {agreed:?}, not permessage-deflate"
        );
    } else {
        assert_eq!(extensions, None, "an extension without the feature");
    }

    // Live readings arrive; each card shows a value; the charts redraw.
    let state = page.wait_for("live readings and chart redraws", |s| {
        s["state"] == "live" && num(&s["readings"]) >= 10 && num(&s["redraws"]) >= 5
    });
    let sensors = state["sensors"].as_array().expect("sensors in the hello");
    assert!(!sensors.is_empty(), "no sensor: {state:#}");
    for sensor in sensors {
        assert!(
            sensor["unit"].is_string(),
            "sensor without a unit: {sensor}"
        );
    }
    let values = state["values"].as_object().expect("values");
    assert!(
        values.values().any(Value::is_number),
        "no reading has a value: {state:#}"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('.card').length"),
        json!(sensors.len()),
        "one card per sensor"
    );
    let drawn = "[...document.querySelectorAll('canvas')].filter(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
        return false;
    }).length";
    assert!(num(&page.eval(drawn)) >= 1, "no chart has been drawn");

    // Pause: the page unsubscribes; from then on no reading is shown
    // (boardcast.js drops what was on its way before the server's answer).
    page.eval("document.getElementById('pause').click()");
    let state = page.wait_for("the pause", |s| s["lastChange"]["paused"] == true);
    let at_pause = num(&state["lastChange"]["readings"]);
    page.holds_for(
        "no readings while paused",
        Duration::from_millis(1500),
        |s| num(&s["readings"]) == at_pause,
    );

    // Resume: readings flow again.
    page.eval("document.getElementById('pause').click()");
    let state = page.wait_for("the resume", |s| s["lastChange"]["paused"] == false);
    let at_resume = num(&state["lastChange"]["readings"]);
    page.wait_for("readings after resuming", |s| {
        num(&s["readings"]) >= at_resume + 5
    });

    // A slower rate: the page moves to that rate's topic, whose readings
    // are RATE / SLOW samples apart.
    page.eval(&format!(
        "(() => {{ const s = document.getElementById('rate');
            s.value = '{SLOW}'; s.dispatchEvent(new Event('change')); }})()"
    ));
    let state = page.wait_for("the rate change", |s| num(&s["lastChange"]["hz"]) == SLOW);
    let at_rate = num(&state["lastChange"]["readings"]);
    page.wait_for("readings at the slower rate", |s| {
        num(&s["readings"]) >= at_rate + 3 && num(&s["seqGap"]) == RATE / SLOW
    });

    // GET /latest answers each topic's latest message: the info, published
    // once, and a reading.
    let latest = page.eval(&format!(
        "fetch('/latest?topics=sensors/info,sensors/{SLOW}hz').then(r => r.json())"
    ));
    assert_eq!(latest["sensors/info"]["seq"], 1, "{latest:#}");
    let reading = latest[format!("sensors/{SLOW}hz")]["data"]
        .as_str()
        .unwrap_or("");
    assert!(reading.contains(r#""type":"reading""#), "{latest:#}");

    // The server dies: the page notices and retries; the server comes back
    // on the same port: the page reconnects by itself, subscribes again to
    // its rate's topic (in a new epoch: not recovered), and readings resume.
    server.process.kill();
    let state = page.wait_for("the page to notice the server is gone", |s| {
        s["state"] == "reconnecting"
    });
    let before = num(&state["readings"]);
    // The one port handed over by number: a program binding this very port
    // between the kill and here would fail the restart (the example takes
    // no inherited socket).
    let restarted = Dashboard::start(&example, port);
    assert_eq!(restarted.port(), port, "restarted on another port");
    server = restarted;
    page.wait_for(
        "the page to reconnect, keep its rate and get readings",
        |s| {
            s["state"] == "live"
                && num(&s["connects"]) == 2
                && num(&s["hz"]) == SLOW
                && num(&s["readings"]) >= before + 3
                && num(&s["seqGap"]) == RATE / SLOW
        },
    );

    drop(server);
    let _ = writeln!(
        std::io::stderr(),
        "browser test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
