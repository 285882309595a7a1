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

/// The running example (killed and reaped when dropped, by [`Process`])
/// and the lines it prints, as they come.
pub struct Dashboard {
    pub process: Process,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Dashboard {
    /// Starts `binary` on `127.0.0.1:port` (0: a port the kernel picks)
    /// and waits until it says it listens, with the port it bound: its
    /// line `dashboard: open http://127.0.0.1:PORT/`, printed once bound,
    /// after any notes on missing sensors.
    pub fn start(binary: &Path, port: u16) -> Dashboard {
        super::init_logging();
        let mut process = Process::spawn(
            "the dashboard example",
            Command::new(binary)
                .args(["--addr", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::piped()),
        );
        let stdout = process.child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        // Reads to the end: the example never blocks on the pipe, and its
        // last line comes as it exits.
        thread::Builder::new()
            .name("test-dashboard-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            })
            .unwrap();
        let mut dashboard = Dashboard {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
        };
        // Killed by the drop if this fails.
        let line = dashboard.line_starting("dashboard: open http://");
        let addr = line["dashboard: open http://".len()..].trim_end_matches('/');
        dashboard.addr = addr.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        dashboard
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next line printed that starts with `prefix`, within [`WAIT`];
    /// fails if the example exits first.
    pub fn line_starting(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no line {prefix:?} from the dashboard within {WAIT:?}"
            );
            match self.lines.recv_timeout(left.min(POLL)) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the dashboard ended without printing {prefix:?}")
                }
            }
        }
    }
}
