//! Nothing lost across dropped links, in a real browser, on every
//! transport (issues 13 and 14).
//!
//! A page served by a boardcast `Server` loads `/boardcast.js` and
//! subscribes to a topic the test publishes at 100 messages a second, over
//! the transport the test forces: WebSocket, Server-Sent Events, long
//! polling. The page reaches the server through a TCP proxy in the test,
//! which drops every connection at once, several times, as a Wi-Fi roam
//! would. At the end the page must have every sequence number from its
//! first to the last published, once each, in order, must have reconnected
//! once per cut, on the transport forced, and its messages must have
//! reached the handler and come back.
//!
//! Needs Chromium (see `tests/support/browser.rs`).

mod support;

use std::time::Duration;

use boardcast::{Config, Response, Transports};
use serde_json::{json, Value};
use support::{chromium, echo_over, init_logging, num, Browser, Proxy, Running, Ticker};

/// How many times the proxy drops the page's connections, per transport.
const CUTS: u64 = 3;

/// The test's page: one topic, every sequence number kept, the status and
/// the reconnects shown.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>resume</title>
<p>state: <span id="state">–</span>, reconnects: <span id="reconnects">0</span>,
last: <span id="last">–</span></p>
<script src="/boardcast.js"></script>
<script>
const state = window.state = { seqs: [], opens: 0, status: null, notRecovered: 0, reconnects: 0,
  transport: null, echoes: [] };
const transport = new URLSearchParams(location.search).get("transport");
const bc = window.bc = boardcast.connect("/ws", { topics: ["counter"], transport });
bc.on("message", (data) => state.echoes.push(data));
bc.on("counter", (data, meta) => {
  state.seqs.push(meta.seq);
  if (meta.recovered === false) state.notRecovered++;
  if (data !== "n" + meta.seq) state.bad = (state.bad || 0) + 1;
  document.getElementById("last").textContent = meta.seq;
});
bc.on("status", (s) => {
  state.status = s.state;
  state.transport = s.transport;
  if (s.state === "open") state.opens++;
  state.reconnects = bc.stats.reconnects;
  document.getElementById("state").textContent = s.state + " (" + s.transport + ")";
  document.getElementById("reconnects").textContent = bc.stats.reconnects;
});
</script>
"#;

#[test]
fn a_page_loses_nothing_when_its_link_drops_again_and_again() {
    let Some(chromium) = chromium() else {
        return;
    };
    init_logging();
    let mut browser = Browser::launch(&chromium);
    for transport in ["websocket", "sse", "poll"] {
        resumes_on(&mut browser, transport);
    }
}

fn resumes_on(browser: &mut Browser, transport: &str) {
    let server = boardcast::Server::bind("127.0.0.1:0", Config::default()).unwrap();
    let server = server
        .transports(Transports::default())
        .on_http(|request| match request.path() {
            "/" => Response::html(PAGE),
            _ => Response::text(404, "not found"),
        });
    let running = Running::start(server, echo_over);
    let proxy = Proxy::start(running.addr);

    // 100 messages a second, for as long as the test runs (bounded).
    let ticker = Ticker::start(&running.hub, "counter", Duration::from_millis(10));

    let mut page = browser.new_page();
    page.watch("window.state ?? null");
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://{}/?transport={transport}", proxy.addr) }),
    );
    let count = |s: &Value| s["seqs"].as_array().map_or(0, Vec::len) as u64;
    page.wait_for("the page to receive", |s| {
        s["status"] == "open" && count(s) >= 50
    });
    for cut in 1..=CUTS {
        let before = count(&page.state());
        assert!(proxy.cut() >= 1, "no connection to cut");
        // A long-polling page may keep its session: it polls again, and
        // the server answers what it queued meanwhile. The others open a
        // new link and resume.
        let polls = transport == "poll";
        page.wait_for("the page to reconnect and receive again", |s| {
            (polls || num(&s["opens"]) == cut + 1)
                && s["status"] == "open"
                && count(s) >= before + 30
        });
        // The page's messages reach the handler, and its answers the page.
        page.eval(&format!("bc.send('ping {cut}')"));
        let echo = format!("echo ping {cut} over {transport}");
        page.wait_for("the handler's answer", |s| {
            s["echoes"]
                .as_array()
                .is_some_and(|e| e.iter().any(|m| m == echo.as_str()))
        });
    }
    let last = ticker.stop();
    let state = page.wait_for("the last message", |s| {
        s["seqs"].as_array().and_then(|a| a.last()).map(num) == Some(last)
    });

    let seqs: Vec<u64> = state["seqs"].as_array().unwrap().iter().map(num).collect();
    let first = seqs[0];
    let expected: Vec<u64> = (first..=last).collect();
    if seqs != expected {
        let at = (0..seqs.len())
            .find(|&i| seqs.get(i) != expected.get(i))
            .unwrap_or(0);
        panic!(
            "a gap or a duplicate at {at}: {:?} (expected {:?})",
            &seqs[at.saturating_sub(3)..(at + 3).min(seqs.len())],
            &expected[at.saturating_sub(3)..(at + 3).min(expected.len())]
        );
    }
    assert_eq!(num(&state["notRecovered"]), 0, "{state:#}");
    assert!(
        state["bad"].is_null(),
        "payloads do not match their seq: {state:#}"
    );
    match transport {
        "poll" => assert!(num(&state["reconnects"]) <= CUTS, "{state:#}"),
        _ => assert_eq!(num(&state["reconnects"]), CUTS, "{state:#}"),
    }
    assert_eq!(state["transport"], transport, "{state:#}");
    eprintln!(
        "{transport}: {} messages ({first}..={last}) over {CUTS} dropped links: none lost, \
         none twice; {} reconnects",
        seqs.len(),
        num(&state["reconnects"])
    );
}
