//! The automatic fallback in a real browser behind a real proxy (issue 14):
//! Debian's nginx in front of a boardcast `Server`, configured as some
//! corporate proxies are, to refuse WebSocket upgrades. A page with
//! `boardcast.js` (transport `auto`) must fall back to Server-Sent Events by
//! itself, receive the topic, and send (by `POST /send`) to the handler,
//! whose answer comes back.
//!
//! Needs Chromium (see `tests/support/browser.rs`) and nginx (Debian's
//! `nginx`, or the binary named by `BOARDCAST_NGINX`);
//! `BOARDCAST_SKIP_BROWSER=1` skips it.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use boardcast::{Config, Response, Transports};
use serde_json::{json, Value};
use support::{
    chromium, echo_over, init_logging, num, Browser, Process, Running, TempDir, Ticker, POLL, WAIT,
};

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>fallback</title>
<p>transport: <span id="transport">–</span>, last: <span id="last">–</span></p>
<script src="/boardcast.js"></script>
<script>
const state = window.state = { seqs: [], status: null, transport: null, failed: null, echoes: [] };
const bc = window.bc = boardcast.connect("/ws", { topics: ["counter"] });
bc.on("counter", (data, meta) => state.seqs.push(meta.seq));
bc.on("message", (data) => state.echoes.push(data));
bc.on("status", (s) => {
  state.status = s.state;
  state.transport = s.transport;
  if (s.failed) state.failed = s.failed;
  document.getElementById("transport").textContent = s.transport;
});
</script>
"#;

/// The site: everything proxied to boardcast, except that a WebSocket
/// upgrade is refused, as a proxy that does not allow them does.
const SITE: &str = r#"
upstream board { server 127.0.0.1:BOARD_PORT; }
server {
    listen 127.0.0.1:NGINX_PORT;
    location / {
        proxy_pass http://board;
        proxy_set_header Host $http_host;
    }
    location /ws {
        if ($http_upgrade) { return 403; }
        proxy_pass http://board;
        proxy_set_header Host $http_host;
    }
    location /sse {
        proxy_pass http://board;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_buffering off;
        proxy_read_timeout 75s;
    }
}
"#;

#[test]
fn behind_a_proxy_that_refuses_websockets_the_page_falls_back_to_sse() {
    let Some(chromium) = chromium() else {
        return;
    };
    let nginx = nginx();
    init_logging();
    let server = boardcast::Server::bind("127.0.0.1:0", Config::default()).unwrap();
    let server = server
        .transports(Transports::default())
        .on_http(|request| match request.path() {
            "/" => Response::html(PAGE),
            _ => Response::text(404, "not found"),
        });
    let running = Running::start(server, echo_over);
    let ticker = Ticker::start(&running.hub, "counter", Duration::from_millis(20));
    let proxy = Nginx::start(&nginx, running.addr.port());

    let mut browser = Browser::launch(&chromium);
    let mut page = browser.new_page();
    page.watch("window.state ?? null");
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://127.0.0.1:{}/", proxy.port) }),
    );
    let count = |s: &Value| s["seqs"].as_array().map_or(0, Vec::len) as u64;
    let state = page.wait_for("the page on SSE, receiving", |s| {
        s["status"] == "open" && s["transport"] == "sse" && count(s) >= 20
    });
    page.eval("bc.send('hello')");
    page.wait_for("the handler's answer", |s| {
        s["echoes"]
            .as_array()
            .is_some_and(|e| e.iter().any(|m| m == "echo hello over sse"))
    });
    let seqs: Vec<u64> = state["seqs"].as_array().unwrap().iter().map(num).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    ticker.stop();

    // nginx refused the upgrade, and passed the page's POST (the stream
    // itself is logged when it ends).
    let log = fs::read_to_string(proxy.dir.0.join("access.log")).unwrap_or_default();
    assert!(log.contains("\"GET /ws HTTP/1.1\" 403"), "{log}");
    assert!(log.contains("\"POST /send?session="), "{log}");
    eprintln!(
        "fell back to SSE behind nginx: {} messages, failed first: {}",
        seqs.len(),
        state["failed"]
    );
}

/// nginx: `BOARDCAST_NGINX`, on the PATH, or Debian's `/usr/sbin/nginx`.
fn nginx() -> PathBuf {
    if let Some(path) = std::env::var_os("BOARDCAST_NGINX") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nginx"))
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx not found: install Debian's `nginx` package (apt-get install -y nginx), \
                 or set BOARDCAST_NGINX to its binary, or BOARDCAST_SKIP_BROWSER=1 to skip"
            )
        })
}

/// nginx in the foreground with `SITE`, every path in a directory of its
/// own, on a port a launcher binds first (127.0.0.1:0) and hands to it (nginx
/// takes inherited listening sockets from the `NGINX` variable), so no
/// other program can take the port in between.
struct Nginx {
    port: u16,
    dir: TempDir,
    _process: Process,
}

impl Nginx {
    fn start(nginx: &std::path::Path, board_port: u16) -> Nginx {
        let dir = TempDir::new("boardcast-nginx");
        let work = dir.0.display().to_string();
        fs::create_dir_all(dir.0.join("tmp")).unwrap();
        let site = SITE.replace("BOARD_PORT", &board_port.to_string());
        fs::write(dir.0.join("site.conf.in"), site).unwrap();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log info;\n\
             events {{ worker_connections 64; }}\nhttp {{\n  access_log {work}/access.log;\n  \
             client_body_temp_path {work}/tmp/body;\n  proxy_temp_path {work}/tmp/proxy;\n  \
             fastcgi_temp_path {work}/tmp/fastcgi;\n  uwsgi_temp_path {work}/tmp/uwsgi;\n  \
             scgi_temp_path {work}/tmp/scgi;\n  include {work}/site.conf;\n}}\n"
        );
        fs::write(dir.0.join("nginx.conf"), conf).unwrap();
        let launcher = r#"
import os, socket, sys
nginx, work = sys.argv[1], sys.argv[2]
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(64)
port = sock.getsockname()[1]
site = open(f"{work}/site.conf.in").read().replace("NGINX_PORT", str(port))
open(f"{work}/site.conf", "w").write(site)
open(f"{work}/port.tmp", "w").write(f"{port}\n")
os.rename(f"{work}/port.tmp", f"{work}/port")
os.set_inheritable(sock.fileno(), True)
args = [nginx, "-p", work, "-c", f"{work}/nginx.conf", "-e", f"{work}/error.log"]
os.execve(nginx, args, dict(os.environ, NGINX=f"{sock.fileno()};"))
"#;
        let process = Process::spawn(
            "nginx",
            Command::new("python3")
                .args(["-c", launcher])
                .arg(nginx)
                .arg(&dir.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let deadline = Instant::now() + WAIT;
        let port = loop {
            if let Some(port) = fs::read_to_string(dir.0.join("port"))
                .ok()
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not start within {WAIT:?}"
            );
            thread::sleep(POLL);
        };
        // nginx answers once it runs its workers.
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .and_then(|mut s| {
                use std::io::{Read, Write};
                s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    .ok()?;
                let mut buf = [0; 12];
                s.read_exact(&mut buf).ok().map(|_| ())
            })
            .is_none()
        {
            let log = fs::read_to_string(dir.0.join("error.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "nginx did not answer within {WAIT:?}: {log}"
            );
            thread::sleep(POLL);
        }
        Nginx {
            port,
            dir,
            _process: process,
        }
    }
}
