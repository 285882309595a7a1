//! The `dashboard` example, built with the test's profile and features and
//! run as a child process on loopback.

use std::env;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Process, POLL, WAIT};

/// The dashboard example, built now with this test's profile: `cargo test`
/// builds no example for an integration test, and a build that is up to
/// date costs a fraction of a second. `BOARDCAST_DASHBOARD` names a binary
/// to use instead.
pub fn example_binary() -> PathBuf {
    if let Some(path) = env::var_os("BOARDCAST_DASHBOARD") {
        return path.into();
    }
    // A test runs as target/<profile>/deps/<name>-<hash>.
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
    // With this test's features: `cargo test --features deflate` then
    // reuses the library it built, and the page negotiates compression.
    if cfg!(feature = "deflate") {
        build.args(["--features", "deflate"]);
    }
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
    // Usually built already; a cold build on a loaded machine may take
    // minutes.
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

/// Starts the dashboard on `127.0.0.1:port` (0: a port the kernel picks)
/// and waits until it says it listens, with the port it bound: its line
/// `dashboard: open http://127.0.0.1:PORT/`, printed once bound.
pub fn start_dashboard(binary: &Path, port: u16) -> (Process, u16) {
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
