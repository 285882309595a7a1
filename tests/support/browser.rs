//! Headless Chromium for the browser tests, driven over the DevTools
//! protocol (a WebSocket of its own): launch it with a fresh profile, open
//! a tab, evaluate JavaScript, poll the page's state against deadlines (no
//! fixed sleeps), take screenshots.
//!
//! Needs Chromium: Debian's `chromium` package, or the binary named by
//! `BOARDCAST_CHROMIUM`. `BOARDCAST_SKIP_BROWSER=1` skips the browser tests
//! instead.

use std::env;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long the page has to reach each expected state: generous, for a
/// loaded 2-core machine and a browser starting cold.
pub const WAIT: Duration = Duration::from_secs(20);

/// How often the page's state is polled.
pub const POLL: Duration = Duration::from_millis(50);

/// The browser to drive, or `None` (after saying so) when the test is to
/// be skipped.
pub fn chromium() -> Option<PathBuf> {
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

/// Where to put the screenshots: target/, above target/<profile>/deps/.
pub fn target_dir() -> PathBuf {
    let exe = env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("the test binary is in target/<profile>/deps")
        .to_path_buf()
}

pub fn num(value: &Value) -> u64 {
    value.as_f64().map_or(0, |n| n as u64)
}

/// A child process, killed and reaped when dropped, however the test ends.
pub struct Process {
    pub child: Child,
    name: &'static str,
}

impl Process {
    pub fn spawn(name: &'static str, command: &mut Command) -> Process {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process { child, name }
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
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

    pub fn kill(&mut self) {
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
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
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
pub struct Browser {
    devtools: String,
    connection: Page,
    process: Process,
    _dir: TempDir,
}

impl Browser {
    pub fn launch(chromium: &Path) -> Browser {
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
    pub fn new_page(&mut self) -> Page {
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
pub struct Page {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    /// The expression [`state`](Self::state) evaluates.
    state: &'static str,
    /// The events [`record`](Self::record) asked for, as they arrived and
    /// until [`event`](Self::event) takes them; other events are skipped.
    recorded: Vec<&'static str>,
    events: Vec<(&'static str, Value)>,
}

impl Page {
    pub fn connect(address: &str) -> Page {
        let host = address.split('/').next().unwrap_or_default();
        let stream = TcpStream::connect(host).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(WAIT))
            .expect("set_read_timeout");
        let (socket, _) = tungstenite::client(format!("ws://{address}"), stream)
            .unwrap_or_else(|e| panic!("DevTools handshake with {address}: {e}"));
        Page {
            socket,
            next_id: 0,
            state: "window.dashboard ?? null",
            recorded: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Sends a command and waits for its result, skipping events.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
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
            self.keep_if_recorded(&answer);
            if answer["id"] == id {
                if let Some(error) = answer.get("error") {
                    panic!("{method} failed: {error}");
                }
                return answer["result"].clone();
            }
        }
    }

    /// Keeps the events named `method` (e.g.
    /// `Network.webSocketHandshakeResponseReceived`, once its domain is
    /// enabled) for [`event`](Self::event), instead of skipping them.
    pub fn record(&mut self, method: &'static str) {
        self.recorded.push(method);
    }

    fn keep_if_recorded(&mut self, message: &Value) {
        let method = message["method"].as_str().unwrap_or_default();
        if let Some(&method) = self.recorded.iter().find(|m| **m == method) {
            self.events.push((method, message["params"].clone()));
        }
    }

    /// The parameters of the first recorded event named `method` not yet
    /// taken, waiting at most [`WAIT`] for it.
    pub fn event(&mut self, method: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self.events.iter().position(|(m, _)| *m == method) {
                return self.events.remove(i).1;
            }
            assert!(Instant::now() < deadline, "no {method} event in {WAIT:?}");
            let message = self
                .socket
                .read()
                .unwrap_or_else(|e| panic!("waiting for {method}: {e}"));
            if let Message::Text(text) = message {
                let message: Value =
                    serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
                self.keep_if_recorded(&message);
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value
    /// (a promise's, once it settles).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception:#}");
        }
        result["result"]["value"].clone()
    }

    /// Makes [`state`](Self::state) evaluate `expression` (by default
    /// `window.dashboard ?? null`).
    pub fn watch(&mut self, expression: &'static str) {
        self.state = expression;
    }

    /// The page's state: `window.dashboard` (null before the page has
    /// loaded), or what [`watch`](Self::watch) chose.
    pub fn state(&mut self) -> Value {
        self.eval(self.state)
    }

    /// Polls the page's state until `done` holds, at most [`WAIT`].
    pub fn wait_for(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
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
    pub fn holds_for(&mut self, what: &str, period: Duration, holds: impl Fn(&Value) -> bool) {
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
    pub fn screenshot(&mut self, width: u32, height: u32, scale: f64, mobile: bool, path: &Path) {
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
