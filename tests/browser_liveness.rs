//! The dashboard a person can trust (issue 15), in Chromium: a page that
//! opens draws the recent past at once from the hub's history; its status
//! says live only while readings come on time, and stale (greyed) while
//! the link is frozen, live again when it thaws; paused, the server's
//! heartbeats keep it live; a page whose link drops comes back with no gap.
//!
//! The page reaches the `dashboard` example through a TCP proxy in the
//! test that freezes the link (stops forwarding, closes nothing: Wi-Fi
//! gone quiet) or cuts it. Saves the screenshots the README shows:
//! `target/dashboard.png` (desktop), `target/dashboard-phone.png` and
//! `target/dashboard-dark.png`.
//!
//! Needs Chromium (see `tests/support/browser.rs`).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use support::{
    chromium, example_binary, get_json, num, target_dir, wait_until, Browser, Dashboard, Proxy,
};

/// The example's default sample rate, and the readings the test lets the
/// board keep before the page opens: 15 s.
const RATE: u64 = 10;
const KEPT: u64 = 15 * RATE;

/// The sequence number of the latest reading of the fastest topic.
fn latest_seq(addr: SocketAddr) -> u64 {
    let topic = format!("sensors/{RATE}hz");
    let (_, latest) = get_json(addr, &format!("/latest?topics={topic}"));
    latest[topic]["seq"].as_u64().unwrap_or(0)
}

fn text_of(page: &mut support::Page, id: &str) -> String {
    let text = page.eval(&format!("document.getElementById('{id}').textContent"));
    text.as_str().unwrap_or_default().to_string()
}

#[test]
fn the_dashboard_opens_with_its_past_and_tells_stale_from_live() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dashboard = Dashboard::start(&example_binary(), 0);
    let addr = dashboard.addr;
    wait_until(
        Duration::from_secs(60),
        "the board to keep 15 s of readings",
        || latest_seq(addr) >= KEPT,
    );
    let proxy = Proxy::start(addr);
    let mut browser = Browser::launch(&chromium);
    let mut page = browser.new_page();
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://{}/", proxy.addr) }),
    );

    // The charts open with the recent past: what the board kept arrives
    // with the subscription, replayed, before the live readings.
    let state = page.wait_for("the recent past, then live readings", |s| {
        s["state"] == "live" && num(&s["replayed"]) >= KEPT - 10 && num(&s["redraws"]) >= 2
    });
    assert!(
        num(&state["span"]) >= 14_000,
        "the charts hold less than 14 s: {state:#}"
    );
    let drawn = "[...document.querySelectorAll('canvas')].filter(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lit = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i]) lit++;
        return lit > 500;
    }).length";
    assert!(num(&page.eval(drawn)) >= 1, "no chart has been drawn");
    assert_eq!(num(&state["gaps"]), 0, "{state:#}");

    let target = target_dir();
    page.screenshot(1280, 800, 1.0, false, &target.join("dashboard.png"));
    page.screenshot(390, 844, 2.0, true, &target.join("dashboard-phone.png"));
    page.call(
        "Emulation.setEmulatedMedia",
        json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] }),
    );
    page.screenshot(1280, 800, 1.0, false, &target.join("dashboard-dark.png"));
    page.call(
        "Emulation.setEmulatedMedia",
        json!({ "features": [{ "name": "prefers-color-scheme", "value": "light" }] }),
    );

    // The link freezes: no reading comes, nothing is closed. The page says
    // stale, for how long, and greys its values; not before a second of
    // silence (ten readings missed).
    proxy.freeze();
    let state = page.wait_for("the page to say stale", |s| s["state"] == "stale");
    assert!(num(&state["silentFor"]) >= 1000, "{state:#}");
    let status = text_of(&mut page, "state");
    assert!(status.starts_with("stale · no data for"), "{status:?}");
    assert_eq!(
        page.eval("document.body.classList.contains('stale')"),
        json!(true),
        "values not greyed"
    );
    let frozen_at = num(&state["readings"]);

    // It thaws: the same link goes on (no reconnect), live, with every
    // reading of the freeze.
    proxy.thaw();
    let state = page.wait_for("live again after the thaw", |s| {
        s["state"] == "live" && num(&s["readings"]) > frozen_at + RATE
    });
    assert_eq!(num(&state["connects"]), 1, "{state:#}");
    assert_eq!(num(&state["gaps"]), 0, "{state:#}");
    assert!(
        text_of(&mut page, "state").starts_with("live"),
        "{:?}",
        text_of(&mut page, "state")
    );

    // Paused (no readings at all), the server's heartbeats keep it live
    // past the time a heartbeat-less page would call stale (8.5 s).
    page.eval("document.getElementById('pause').click()");
    page.wait_for("the pause", |s| s["paused"] == true);
    page.holds_for(
        "live while paused: heartbeats",
        Duration::from_secs(10),
        |s| s["state"] == "live",
    );
    page.eval("document.getElementById('pause').click()");
    let state = page.wait_for("readings again", |s| {
        s["paused"] == false && s["state"] == "live"
    });

    // The link drops: the page reconnects, resumes, and has every reading
    // of the outage (no gap).
    let before = num(&state["readings"]);
    assert!(proxy.cut() >= 1, "no connection to cut");
    let state = page.wait_for("back, with the readings of the outage", |s| {
        s["state"] == "live" && num(&s["connects"]) == 2 && num(&s["readings"]) >= before + 2 * RATE
    });
    assert_eq!(num(&state["gaps"]), 0, "{state:#}");
}
