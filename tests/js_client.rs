//! `boardcast.js` in Node against a real boardcast server.
//!
//! Each test starts a [`boardcast::Server`] on `127.0.0.1:0`, serving
//! WebSocket and the HTTP transports (`docs/transports.md`), and runs one
//! script of `tests/js/` in `node` (with `--experimental-websocket` before
//! Node 22, so no npm package is needed), then asserts on its exit status
//! and on the `ok …` line it prints. The scripts check the client's side
//! themselves and exit 1 with a `FAIL …` line on the first failed check;
//! each has a time limit of its own, and this test kills it after
//! [`SCRIPT_TIMEOUT`] whatever happens.
//!
//! The server's handler understands a few texts the scripts send with
//! `bc.send` (see [`Board::handle`]): publish a text or binary message,
//! report something to the test, anything else is echoed; so the scripts
//! drive the server over their one connection, in order, with no sleeps.
//!
//! Needs Node 20 or later: Debian's `nodejs` package, or the binary named by
//! `BOARDCAST_NODE`. `BOARDCAST_SKIP_NODE=1` skips these tests instead.

mod support;

use std::env;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use boardcast::hub::Retention;
use boardcast::{Accept, Client, CloseCode, Config, Hub, Message, Response, Sender, Transports};

use support::{wait_until, Running, TIMEOUT};

/// The longest a script may run before it is killed and the test fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The client's own rules, against a scripted fake WebSocket: no server.
#[test]
fn client_rules_against_a_fake_websocket() {
    let Some(node) = Node::find() else { return };
    let out = Script::run(&node, "unit.mjs", &[]).finish();
    assert!(out.contains("ok unit"), "{out}");
}

/// Text and binary messages with their meta, subscribe and unsubscribe at
/// runtime, sends answered by the handler (over WebSocket: "auto" with
/// nothing refused).
#[test]
fn messages_subscriptions_and_sends() {
    basic_over("auto", "websocket");
}

/// The same over Server-Sent Events (fetch-read in Node) and `POST /send`.
#[test]
fn messages_subscriptions_and_sends_over_sse() {
    basic_over("sse", "sse");
}

/// The same over long polling and `POST /send`.
#[test]
fn messages_subscriptions_and_sends_over_long_polling() {
    basic_over("poll", "poll");
}

/// `basic.mjs` with `transport`; the server's handler must have seen one
/// client, over `expected`.
fn basic_over(transport: &str, expected: &str) {
    let Some(node) = Node::find() else { return };
    let board = Board::start(Config::default());
    let out = Script::run(&node, "basic.mjs", &[board.port(), transport.into()]).finish();
    assert!(out.contains(&format!("ok basic {expected}")), "{out}");
    assert_eq!(board.transports(), [expected]);
    // What the script's commands did on the server's side.
    assert_eq!(
        board.running.hub.last_seq("news"),
        3,
        "news published 3 times"
    );
    assert_eq!(board.running.hub.last_seq("late"), 2);
    assert_eq!(board.said(), ["sync-1", "sync-2"]);
}

/// The server cuts the client's connection several times while it
/// publishes at about 100 messages a second: the client reconnects and
/// resumes each time, and ends with every message once, in order.
#[test]
fn resumes_gap_free_while_the_server_cuts() {
    resume_over("auto", "websocket");
}

/// The same over Server-Sent Events: each new stream resumes from the
/// cursor of the client's positions (`lastEventID`).
#[test]
fn resumes_gap_free_over_sse_while_the_server_cuts() {
    resume_over("sse", "sse");
}

/// The same over long polling: each cut closes the session, whose next
/// poll gets 404, and a new session resumes from the client's cursor.
#[test]
fn resumes_gap_free_over_long_polling_while_the_server_cuts() {
    resume_over("poll", "poll");
}

fn resume_over(transport: &str, expected: &str) {
    const COUNT: u64 = 300;
    const CUTS: u64 = 4;
    let Some(node) = Node::find() else { return };
    let board = Board::start(Config::default());
    let hub = board.running.hub.clone();
    let script = Script::run(
        &node,
        "resume.mjs",
        &[
            board.port(),
            COUNT.to_string(),
            CUTS.to_string(),
            transport.into(),
        ],
    );
    wait_until(TIMEOUT, "the script subscribes", || {
        hub.subscribers("ticks") == 1
    });
    let mut cut = 0;
    for seq in 1..=COUNT {
        // Cut at evenly spaced points, each time a connection that came
        // after the last cut (so every cut drops a distinct connection).
        if seq % (COUNT / (CUTS + 1)) == 0 && cut < CUTS {
            let fresh = board.wait_for_connection();
            for sender in fresh {
                let _ = sender.close(CloseCode::AWAY, "cut by the test");
            }
            cut += 1;
        }
        hub.publish_text("ticks", &format!("tick {seq}"));
        thread::sleep(Duration::from_millis(10)); // the pace, ~100 msg/s
    }
    assert_eq!(cut, CUTS);
    let out = script.finish();
    assert!(out.contains(&format!("ok resume {expected}")), "{out}");
    assert!(
        board.connections.load(Ordering::SeqCst) > CUTS as usize,
        "the server saw {} connections",
        board.connections.load(Ordering::SeqCst)
    );
    let seen = board.transports();
    assert!(
        seen.iter().all(|t| *t == expected),
        "every connection over {expected}: {seen:?}"
    );
}

/// 150 topics of 60 characters over SSE, more than a request head may
/// hold: the client puts what fits in the URL and subscribes the rest with
/// `POST /send`; all are subscribed, and all resume after a cut.
#[test]
fn many_topics_over_sse() {
    many_topics("sse");
}

/// The same over long polling.
#[test]
fn many_topics_over_long_polling() {
    many_topics("poll");
}

fn many_topics(transport: &str) {
    let Some(node) = Node::find() else { return };
    let board = Board::start(Config::default());
    let hub = board.running.hub.clone();
    let script = Script::run(&node, "many.mjs", &[board.port(), transport.into()]);
    assert_eq!(board.next_said(), "subscribed");
    let names: Vec<String> = (0..150)
        .map(|i| format!("{}{i:03}", "m".repeat(57)))
        .collect();
    let missing: Vec<&String> = names.iter().filter(|t| hub.subscribers(t) != 1).collect();
    assert!(missing.is_empty(), "not subscribed: {missing:?}");
    for sender in board.wait_for_connection() {
        let _ = sender.close(CloseCode::AWAY, "cut by the test");
    }
    assert_eq!(board.next_said(), "resumed");
    // The new link subscribed every topic again; the old one's are gone.
    wait_until(TIMEOUT, "one subscriber per topic", || {
        names.iter().all(|t| hub.subscribers(t) == 1)
    });
    assert_eq!(board.transports(), [transport, transport]);
    hub.publish_text("go", "bye");
    let out = script.finish();
    assert!(out.contains(&format!("ok many {transport}")), "{out}");
}

/// `transport: "auto"` against a server that refuses every WebSocket
/// upgrade (403): SSE at once, working as WebSocket would; after a cut,
/// back on SSE without trying WebSocket again.
#[test]
fn falls_back_to_sse_when_upgrades_are_refused() {
    fallback(Transports::default(), "sse");
}

/// The same with no SSE served either (a 404): long polling.
#[test]
fn falls_back_to_long_polling_when_sse_is_not_served_either() {
    let mut transports = Transports::default();
    transports.sse = None;
    fallback(transports, "poll");
}

fn fallback(transports: Transports, expected: &str) {
    let Some(node) = Node::find() else { return };
    let board = Board::launch(
        support::server(Config::default()).transports(transports),
        Some(Door::shut(403)),
    );
    let script = Script::run(&node, "fallback.mjs", &[board.port(), expected.into()]);
    assert_eq!(board.next_said(), "ready");
    let fresh = board.wait_for_connection();
    assert_eq!(fresh.len(), 1, "one client so far");
    for sender in fresh {
        let _ = sender.close(CloseCode::AWAY, "cut by the test");
    }
    assert_eq!(board.next_said(), "done");
    let out = script.finish();
    assert!(out.contains(&format!("ok fallback {expected}")), "{out}");
    assert_eq!(
        board.door.refused.load(Ordering::SeqCst),
        1,
        "one upgrade tried (and refused), none after the cut"
    );
    assert_eq!(board.transports(), [expected, expected]);
    assert_eq!(board.running.hub.last_seq("fb"), 2);
}

/// `transport: "latest"`: GET /latest at an interval, read-only; only the
/// latest message of each topic, the ones between polls flagged as a gap;
/// `If-None-Match` answered 304.
#[test]
fn polls_the_latest_messages() {
    let Some(node) = Node::find() else { return };
    let board = Board::start(Config::default());
    let out = Script::run(&node, "latest.mjs", &[board.port()]).finish();
    assert!(out.contains("ok latest"), "{out}");
    assert_eq!(board.running.hub.last_seq("lt"), 5);
    // Only the publishing WebSocket client: pollers of /latest are no
    // sessions.
    assert_eq!(board.transports(), ["websocket"]);
}

/// Messages past the history window: the client reports the gap
/// (`recovered: false`) on the first message after it; its backoff grows
/// and is capped while the server refuses it.
#[test]
fn reports_a_gap_past_the_history_and_backs_off() {
    let Some(node) = Node::find() else { return };
    let board = Board::start_with_door(Config::default());
    let hub = board.running.hub.clone();
    hub.set_retention("small", Retention::default().messages(5));
    let script = Script::run(&node, "gap.mjs", &[board.port()]);
    wait_until(TIMEOUT, "the script subscribes", || {
        hub.subscribers("small") == 1
    });
    for seq in 1..=3 {
        hub.publish_text("small", &format!("s{seq}"));
    }
    assert_eq!(board.next_said(), "have 3");
    // Shut the door, cut, publish past the history while it is out.
    board.door.open.store(false, Ordering::SeqCst);
    for sender in board.senders.lock().unwrap().drain(..) {
        let _ = sender.close(CloseCode::AWAY, "cut by the test");
    }
    wait_until(TIMEOUT, "the client is gone", || {
        hub.subscribers("small") == 0
    });
    for seq in 4..=23 {
        hub.publish_text("small", &format!("s{seq}"));
    }
    wait_until(TIMEOUT, "5 refused attempts", || {
        board.door.refused.load(Ordering::SeqCst) >= 5
    });
    board.door.open.store(true, Ordering::SeqCst);
    assert_eq!(board.next_said(), "have 23");
    hub.publish_text("small", "s24");
    let out = script.finish();
    assert!(out.contains("ok gap"), "{out}");
    assert_eq!(board.connections.load(Ordering::SeqCst), 2);
    assert_eq!(board.transports(), ["websocket", "websocket"]);
}

// ---------------------------------------------------------------------------
// The server side.

/// A running server whose handler obeys the scripts' commands, with what
/// the tests need to see and steer: the senders of live connections, the
/// transport of each, what the scripts said, and a door that can refuse
/// upgrades.
struct Board {
    running: Running,
    senders: Arc<Mutex<Vec<Sender>>>,
    transports: Arc<Mutex<Vec<&'static str>>>,
    said: Mutex<mpsc::Receiver<String>>,
    said_all: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
    door: Door,
}

/// Whether WebSocket upgrades are let in, how many were refused, and with
/// what status.
#[derive(Clone)]
struct Door {
    open: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    status: u16,
}

impl Door {
    fn open(status: u16) -> Door {
        Door {
            open: Arc::new(AtomicBool::new(true)),
            refused: Arc::default(),
            status,
        }
    }

    fn shut(status: u16) -> Door {
        let door = Door::open(status);
        door.open.store(false, Ordering::SeqCst);
        door
    }
}

impl Board {
    /// A server with every transport, upgrades let in.
    fn start(config: Config) -> Board {
        Board::launch(
            support::server(config).transports(Transports::default()),
            None,
        )
    }

    /// A server whose upgrades are refused (503) while the door is shut.
    fn start_with_door(config: Config) -> Board {
        Board::launch(
            support::server(config).transports(Transports::default()),
            Some(Door::open(503)),
        )
    }

    fn launch(server: boardcast::Server, door: Option<Door>) -> Board {
        let server = match &door {
            Some(door) => {
                let door = door.clone();
                server.on_upgrade(move |_| {
                    if door.open.load(Ordering::SeqCst) {
                        Ok(Accept::new())
                    } else {
                        door.refused.fetch_add(1, Ordering::SeqCst);
                        Err(Response::text(door.status, "the door is shut"))
                    }
                })
            }
            None => server,
        };
        // Without a door, one that stays open (and is never asked).
        let door = door.unwrap_or_else(|| Door::open(503));
        let senders = Arc::new(Mutex::new(Vec::new()));
        let transports = Arc::new(Mutex::new(Vec::new()));
        let said_all = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (tx, said) = mpsc::channel();
        let tx = Mutex::new(tx);
        let (s, t, all, n) = (
            Arc::clone(&senders),
            Arc::clone(&transports),
            Arc::clone(&said_all),
            Arc::clone(&connections),
        );
        let running = Running::start(server, move |client| {
            n.fetch_add(1, Ordering::SeqCst);
            t.lock().unwrap().push(client.transport());
            s.lock().unwrap().push(client.sender());
            Board::handle(client, &|text| {
                all.lock().unwrap().push(text.to_owned());
                let _ = tx.lock().unwrap().send(text.to_owned());
            });
        });
        Board {
            running,
            senders,
            transports,
            said: Mutex::new(said),
            said_all,
            connections,
            door,
        }
    }

    /// The transport of every client the handler got, in order.
    fn transports(&self) -> Vec<&'static str> {
        self.transports.lock().unwrap().clone()
    }

    /// The handler: `pub <topic> <text>` and `pubbin <topic> <hex>`
    /// publish, `say <text>` reports `<text>` to the test (and is echoed),
    /// any other text is answered `echo <text>`, binary is echoed as is.
    fn handle(mut client: Client, say: &dyn Fn(&str)) {
        let hub: Hub = client.hub();
        while let Ok(Some(message)) = client.recv() {
            match message {
                Message::Text(text) => {
                    if let Some(rest) = text.strip_prefix("pub ") {
                        let (topic, body) = rest.split_once(' ').unwrap_or((rest, ""));
                        hub.publish_text(topic, body);
                        continue;
                    }
                    if let Some(rest) = text.strip_prefix("pubbin ") {
                        let (topic, hex) = rest.split_once(' ').unwrap_or((rest, ""));
                        hub.publish_binary(topic, &unhex(hex));
                        continue;
                    }
                    if let Some(said) = text.strip_prefix("say ") {
                        say(said);
                    }
                    let _ = client.send_text(&format!("echo {text}"));
                }
                Message::Binary(data) => {
                    let _ = client.send_binary(&data);
                }
                _ => {}
            }
        }
    }

    /// The port, as a script's argument.
    fn port(&self) -> String {
        self.running.addr.port().to_string()
    }

    /// The next thing a script said; fails the test after [`TIMEOUT`].
    fn next_said(&self) -> String {
        self.said
            .lock()
            .unwrap()
            .recv_timeout(TIMEOUT)
            .expect("the script said nothing in time")
    }

    /// Everything the scripts said so far.
    fn said(&self) -> Vec<String> {
        self.said_all.lock().unwrap().clone()
    }

    /// Waits for a connection made since the last call, and takes the
    /// senders of the connections made since.
    fn wait_for_connection(&self) -> Vec<Sender> {
        wait_until(TIMEOUT, "a new connection", || {
            !self.senders.lock().unwrap().is_empty()
        });
        self.senders.lock().unwrap().drain(..).collect()
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

// ---------------------------------------------------------------------------
// Node.

/// The `node` binary and the flags it needs for a global `WebSocket`.
struct Node {
    path: PathBuf,
    flags: Vec<&'static str>,
}

impl Node {
    /// Node, or `None` (the test is skipped) when `BOARDCAST_SKIP_NODE` is
    /// set; panics with how to install it when it cannot be found.
    fn find() -> Option<Node> {
        if env::var_os("BOARDCAST_SKIP_NODE").is_some_and(|v| !v.is_empty() && v != "0") {
            eprintln!("boardcast.js test skipped: BOARDCAST_SKIP_NODE is set");
            return None;
        }
        let path = env::var_os("BOARDCAST_NODE")
            .map(PathBuf::from)
            .or_else(|| {
                let dirs = env::var_os("PATH").unwrap_or_default();
                env::split_paths(&dirs)
                    .flat_map(|dir| ["node", "nodejs"].map(|name| dir.join(name)))
                    .find(|candidate| candidate.is_file())
            });
        let Some(path) = path else {
            panic!(
                "Node not found: install Debian's `nodejs` package (apt-get install -y nodejs; \
                 Node 20 or later), or set BOARDCAST_NODE to a node binary, or set \
                 BOARDCAST_SKIP_NODE=1 to skip this test"
            );
        };
        let version = Command::new(&path)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("{}: unexpected version {version:?}", path.display()));
        assert!(
            major >= 20,
            "{} is Node {version}: boardcast.js's tests need Node 20 or later (or set \
             BOARDCAST_SKIP_NODE=1 to skip them)",
            path.display()
        );
        // Node 22 has a global WebSocket by default; 20 and 21 behind a flag.
        let flags = if major < 22 {
            vec!["--experimental-websocket"]
        } else {
            Vec::new()
        };
        Some(Node { path, flags })
    }
}

/// A script of `tests/js/` running in Node; killed however the test ends.
struct Script {
    name: String,
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    started: Instant,
}

impl Script {
    fn run(node: &Node, name: &str, args: &[String]) -> Script {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/js")
            .join(name);
        let mut child = Command::new(&node.path)
            .args(&node.flags)
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", node.path.display()));
        // Both pipes drained on threads of their own, so a chatty script
        // never blocks on a full pipe.
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().expect("piped");
        thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(err).read_to_string(&mut text);
            let _ = tx.send(text);
        });
        Script {
            name: name.into(),
            child,
            stdout,
            stderr,
            started: Instant::now(),
        }
    }

    /// Waits for the script to exit (killing it after [`SCRIPT_TIMEOUT`]),
    /// asserts that it succeeded, and returns what it printed.
    fn finish(mut self) -> String {
        let deadline = self.started + SCRIPT_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(10));
        };
        // The pipes close when the process is gone: read what is left.
        let mut out = String::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(5)) {
            out.push_str(&line);
            out.push('\n');
        }
        // Read to its end by its thread once the process is gone.
        let err = self
            .stderr
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        match status {
            Some(status) if status.success() => {
                eprintln!(
                    "{} took {:?}: {}",
                    self.name,
                    self.started.elapsed(),
                    out.trim()
                );
                out
            }
            Some(status) => panic!(
                "{} failed ({status}):\n--- stdout\n{out}--- stderr\n{err}",
                self.name
            ),
            None => panic!(
                "{} still running after {SCRIPT_TIMEOUT:?}, killed:\n--- stdout\n{out}--- \
                 stderr\n{err}",
                self.name
            ),
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            // The test failed on its side: show what the script saw.
            let out: Vec<String> = self.stdout.try_iter().collect();
            let err = self
                .stderr
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_default();
            eprintln!(
                "{} (killed):\n--- stdout\n{}\n--- stderr\n{err}",
                self.name,
                out.join("\n")
            );
        }
    }
}
