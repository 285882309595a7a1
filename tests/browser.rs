//! The dashboard example in a real browser.
//!
//! Headless Chromium, driven over the DevTools protocol (a WebSocket of its
//! own), loads the page from the `dashboard` example binary and checks that
//! live readings arrive and the charts redraw, that commands round-trip
//! (pause, acknowledged, then silence; resume; a new rate, acknowledged and
//! kept), and that the page reconnects by itself after the server is killed
//! and started again on the same port. It saves screenshots of a desktop
//! and a phone viewport to `target/dashboard.png` and
//! `target/dashboard-phone.png`.
//!
//! The page keeps its state in `window.dashboard`; the test reads it with
//! `Runtime.evaluate` and polls it against deadlines: no fixed sleeps.
//!
//! Needs Chromium: Debian's `chromium` package, or the binary named by
//! `BOARDCAST_CHROMIUM`. `BOARDCAST_SKIP_BROWSER=1` skips the test instead.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long the page has to reach each expected state: generous, for a
/// loaded 2-core machine and a browser starting cold.
const WAIT: Duration = Duration::from_secs(20);

/// How often the page's state is polled.
const POLL: Duration = Duration::from_millis(50);

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
    let (mut server, port) = Process::dashboard(&example, 0);
    let mut browser = Browser::launch(&chromium);
    let mut page = browser.new_page();
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://127.0.0.1:{port}/") }),
    );

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

    // Pause: acknowledged, then no more readings (one may have been on its
    // way when the server unsubscribed the client).
    page.eval("document.getElementById('pause').click()");
    let state = page.wait_for("the pause to be acknowledged", |s| {
        s["lastAck"]["cmd"] == "pause"
    });
    assert_eq!(state["lastAck"]["paused"], true, "{state:#}");
    assert!(state["lastAck"]["rttMs"].is_number(), "{state:#}");
    let at_pause = num(&state["lastAck"]["readingsAtAck"]);
    page.holds_for(
        "no readings while paused",
        Duration::from_millis(1500),
        |s| num(&s["readings"]) <= at_pause + 1,
    );

    // Resume: acknowledged, readings flow again.
    page.eval("document.getElementById('pause').click()");
    let state = page.wait_for("the resume to be acknowledged", |s| {
        s["lastAck"]["cmd"] == "resume"
    });
    assert_eq!(state["lastAck"]["paused"], false, "{state:#}");
    let at_resume = num(&state["lastAck"]["readingsAtAck"]);
    page.wait_for("readings after resuming", |s| {
        num(&s["readings"]) >= at_resume + 5
    });

    // A slower rate: acknowledged, then readings are RATE / SLOW samples
    // apart.
    page.eval(&format!(
        "(() => {{ const s = document.getElementById('rate');
            s.value = '{SLOW}'; s.dispatchEvent(new Event('change')); }})()"
    ));
    let state = page.wait_for("the rate change to be acknowledged", |s| {
        s["lastAck"]["cmd"] == "rate"
    });
    assert_eq!(num(&state["lastAck"]["hz"]), SLOW, "{state:#}");
    let at_rate = num(&state["lastAck"]["readingsAtAck"]);
    page.wait_for("readings at the slower rate", |s| {
        num(&s["readings"]) >= at_rate + 3 && num(&s["seqGap"]) == RATE / SLOW
    });

    // The server dies: the page notices and retries; the server comes back
    // on the same port: the page reconnects by itself, asks again for its
    // rate, and readings resume.
    server.kill();
    let state = page.wait_for("the page to notice the server is gone", |s| {
        s["state"] == "reconnecting"
    });
    let before = num(&state["readings"]);
    // The one port handed over by number: a program binding this very port
    // between the kill and here would fail the restart (the example takes
    // no inherited socket).
    let (restarted, again) = Process::dashboard(&example, port);
    assert_eq!(again, port, "restarted on another port");
    server = restarted;
    page.wait_for(
        "the page to reconnect, restore its rate and get readings",
        |s| {
            s["state"] == "live"
                && num(&s["connects"]) == 2
                && num(&s["hz"]) == SLOW
                && num(&s["readings"]) >= before + 3
                && num(&s["seqGap"]) == RATE / SLOW
        },
    );

    // Back to full speed for the pictures.
    page.eval(&format!(
        "(() => {{ const s = document.getElementById('rate');
            s.value = '{RATE}'; s.dispatchEvent(new Event('change')); }})()"
    ));
    page.wait_for("full rate again", |s| num(&s["hz"]) == RATE);
    let target = target_dir();
    page.screenshot(390, 844, 2.0, true, &target.join("dashboard-phone.png"));
    page.screenshot(1280, 800, 1.0, false, &target.join("dashboard.png"));

    drop(server);
    let _ = writeln!(
        std::io::stderr(),
        "browser test took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        target.display()
    );
}

/// The browser to drive, or `None` (after saying so) when the test is to
/// be skipped.
fn chromium() -> Option<PathBuf> {
    if env::var_os("BOARDCAST_SKIP_BROWSER").is_some_and(|v| !v.is_empty() && v != "0") {
        let _ = writeln!(
            std::io::stderr(),
            "browser test skipped: BOARDCAST_SKIP_BROWSER is set"
        );
        return None;
    }
    if let Some(path) = env::var_os("BOARDCAST_CHROMIUM") {
        return Some(path.into());
    }
    let path = env::var_os("PATH").unwrap_or_default();
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file());
    match found {
        Some(path) => Some(path),
        None => panic!(
            "Chromium not found: install Debian's `chromium` package (apt-get install -y \
             chromium), or set BOARDCAST_CHROMIUM to a Chrome or Chromium binary, or set \
             BOARDCAST_SKIP_BROWSER=1 to skip this test"
        ),
    }
}

/// The dashboard example, built now with this test's profile: `cargo test
/// --test browser` builds no example, and a build that is up to date costs
/// a fraction of a second. `BOARDCAST_DASHBOARD` names a binary to use
/// instead.
fn example_binary() -> PathBuf {
    if let Some(path) = env::var_os("BOARDCAST_DASHBOARD") {
        return path.into();
    }
    // This test runs as target/<profile>/deps/browser-<hash>.
    let exe = env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from(env!("CARGO")));
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", "dashboard"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(profile) => {
            build.args(["--profile", profile]);
        }
        None => {}
    }
    let mut child = Process::spawn("cargo build --example dashboard", &mut build);
    let status = child
        .wait(Duration::from_secs(300))
        .expect("cargo build --example dashboard did not finish in 300 s");
    assert!(status.success(), "cargo build --example dashboard failed");
    let binary = profile_dir.join("examples").join("dashboard");
    assert!(
        binary.is_file(),
        "{} not found after building it; set BOARDCAST_DASHBOARD to the example binary",
        binary.display()
    );
    binary
}

/// Where to put the screenshots: target/, above target/<profile>/deps/.
fn target_dir() -> PathBuf {
    let exe = env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf()
}

fn num(value: &Value) -> u64 {
    value.as_f64().map_or(0, |n| n as u64)
}

/// A child process, killed and reaped when dropped, however the test ends.
struct Process {
    child: Child,
    name: &'static str,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command) -> Process {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process { child, name }
    }

    /// Starts the dashboard on `127.0.0.1:port` (0: a port the kernel
    /// picks) and waits until it says it listens, with the port it bound:
    /// its line `dashboard: open http://127.0.0.1:PORT/`, printed once bound.
    fn dashboard(binary: &Path, port: u16) -> (Process, u16) {
        let mut process = Process::spawn(
            "the dashboard example",
            Command::new(binary)
                .args(["--addr", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::piped()),
        );
        let stdout = process.child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::Builder::new()
            .name("test-dashboard-stdout".into())
            .spawn(move || {
                // Read to the end, so the example never blocks on the pipe.
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    let _ = tx.send(line);
                }
            })
            .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("the dashboard example exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the dashboard example did not say it listens within {WAIT:?}"
            );
            let Ok(line) = lines.recv_timeout(POLL) else {
                continue;
            };
            if let Some(addr) = line
                .strip_prefix("dashboard: open http://")
                .and_then(|rest| rest.strip_suffix('/'))
            {
                let addr: SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
                return (process, addr.port());
            }
        }
    }

    /// Waits for the process to exit, at most `timeout`.
    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    fn kill(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("cannot kill {}: {e}", self.name);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // A helper process of the browser may still be writing for a moment.
        for _ in 0..20 {
            if fs::remove_dir_all(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            thread::sleep(POLL);
        }
    }
}

/// Headless Chromium with a fresh profile and the DevTools protocol on an
/// ephemeral port. Dropping it closes the browser (killing it if it does
/// not exit in time) and removes its directory.
struct Browser {
    devtools: String,
    connection: Page,
    process: Process,
    _dir: TempDir,
}

impl Browser {
    fn launch(chromium: &Path) -> Browser {
        // The profile, and the temporary files Chromium would otherwise
        // leave in /tmp when it is killed, all in one directory.
        let dir = TempDir::new("boardcast-browser");
        let (profile, tmp) = (dir.0.join("profile"), dir.0.join("tmp"));
        fs::create_dir_all(&tmp).expect("create a temporary directory");
        let log = fs::File::create(dir.0.join("chromium.log")).expect("chromium.log");
        let mut process = Process::spawn(
            "chromium",
            Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    "--disable-sync",
                    "--disable-quic",
                    "--hide-scrollbars",
                    "--remote-debugging-port=0",
                    "--window-size=1280,800",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("about:blank")
                .env("TMPDIR", &tmp)
                .stdout(Stdio::null())
                .stderr(log),
        );
        // Chromium writes the port it chose, and the browser's WebSocket
        // path, to DevToolsActivePort in the profile.
        let active = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + WAIT;
        let devtools = loop {
            let text = fs::read_to_string(&active).unwrap_or_default();
            if let [port, path] = text.lines().collect::<Vec<_>>()[..] {
                break format!("127.0.0.1:{port}{path}");
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                let log = fs::read_to_string(dir.0.join("chromium.log")).unwrap_or_default();
                panic!("chromium exited ({status}) before opening DevTools:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not open DevTools within {WAIT:?}"
            );
            thread::sleep(POLL);
        };
        Browser {
            connection: Page::connect(&devtools),
            devtools,
            process,
            _dir: dir,
        }
    }

    /// A new tab, and a DevTools connection to it.
    fn new_page(&mut self) -> Page {
        let target = self
            .connection
            .call("Target.createTarget", json!({ "url": "about:blank" }));
        let id = target["targetId"].as_str().expect("targetId");
        let host = self.devtools.split('/').next().unwrap_or_default();
        Page::connect(&format!("{host}/devtools/page/{id}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing lets Chromium end its helper processes and clean up;
        // Process's own drop kills it if that takes too long.
        let close = json!({ "id": 0, "method": "Browser.close" });
        if self
            .connection
            .socket
            .send(Message::text(close.to_string()))
            .is_ok()
        {
            let _ = self.process.wait(Duration::from_secs(5));
        }
    }
}

/// A DevTools protocol connection: commands out, their results back.
struct Page {
    socket: WebSocket<TcpStream>,
    next_id: u64,
}

impl Page {
    fn connect(address: &str) -> Page {
        let host = address.split('/').next().unwrap_or_default();
        let stream = TcpStream::connect(host).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(WAIT))
            .expect("set_read_timeout");
        let (socket, _) = tungstenite::client(format!("ws://{address}"), stream)
            .unwrap_or_else(|e| panic!("DevTools handshake with {address}: {e}"));
        Page { socket, next_id: 0 }
    }

    /// Sends a command and waits for its result, skipping events.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(command.to_string()))
            .unwrap_or_else(|e| panic!("sending {method}: {e}"));
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "no answer to {method} in {WAIT:?}"
            );
            let message = self
                .socket
                .read()
                .unwrap_or_else(|e| panic!("waiting for the answer to {method}: {e}"));
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if answer["id"] == id {
                if let Some(error) = answer.get("error") {
                    panic!("{method} failed: {error}");
                }
                return answer["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception:#}");
        }
        result["result"]["value"].clone()
    }

    /// The page's `window.dashboard` (null before the page has loaded).
    fn state(&mut self) -> Value {
        self.eval("window.dashboard ?? null")
    }

    /// Polls the page's state until `done` holds, at most [`WAIT`].
    fn wait_for(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let state = self.state();
            if done(&state) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; the page's state: {state:#}"
            );
            thread::sleep(POLL);
        }
    }

    /// Polls the page's state for `period`; `holds` must stay true.
    fn holds_for(&mut self, what: &str, period: Duration, holds: impl Fn(&Value) -> bool) {
        let until = Instant::now() + period;
        while Instant::now() < until {
            let state = self.state();
            assert!(
                holds(&state),
                "expected {what}; the page's state: {state:#}"
            );
            thread::sleep(POLL);
        }
    }

    /// Resizes the viewport, waits for the charts to be redrawn at that
    /// size, and saves a PNG screenshot.
    fn screenshot(&mut self, width: u32, height: u32, scale: f64, mobile: bool, path: &Path) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile }),
        );
        let redraws = num(&self.state()["redraws"]);
        self.wait_for("the charts redrawn at the new size", |s| {
            num(&s["redraws"]) >= redraws + 2
        });
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let data = shot["data"].as_str().expect("screenshot data");
        let mut png = vec![0; base64::decoded_len_estimate(data.len())];
        let len = base64::engine::general_purpose::STANDARD
            .decode_slice(data, &mut png)
            .expect("screenshot in base64");
        png.truncate(len);
        fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
