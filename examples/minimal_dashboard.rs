//! The README's "build your own dashboard in 30 lines": the load average,
//! pushed once a second to every browser that opens the page.
use std::time::Duration;

use boardcast::{Config, Policy, Response, Server};

const PAGE: &str = r#"<!doctype html><meta name="viewport" content="width=device-width">
<h1>Load average: <span id="load">…</span></h1>
<script src="/boardcast.js"></script>
<script>
  const bc = boardcast.connect("/ws", { topics: ["load"] }); // reconnects and resumes by itself
  bc.on("load", (data) => document.getElementById("load").textContent = data);
</script>"#;

fn main() -> std::io::Result<()> {
    let server =
        Server::bind("0.0.0.0:8080", Config::default())?.on_http(|request| match request.path() {
            "/" => Response::html(PAGE),
            "/boardcast.js" => boardcast::wire::script(),
            _ => Response::text(404, "not found"),
        });
    let hub = server.hub();
    hub.set_policy("load", Policy::KeepLatest); // a slow phone gets the latest, not a backlog
    std::thread::spawn(move || loop {
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        hub.publish_text("load", loadavg.split_whitespace().next().unwrap_or("?"));
        std::thread::sleep(Duration::from_secs(1));
    });
    println!("open http://localhost:8080/");
    // boardcast.js subscribes by itself: the handler only waits for the
    // browser to go away.
    server.run(|mut client| while let Ok(Some(_)) = client.recv() {})
}
