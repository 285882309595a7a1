//! A load source for fan-out benchmarks: every client (any path) is
//! subscribed to one topic, and binary messages are published to it at a
//! fixed rate.
//!
//! ```text
//! cargo run --release --example broadcast -- 127.0.0.1:9002 --rate 1000 --size 64
//! ```
//!
//! Each payload starts with the send time (nanoseconds since the UNIX epoch)
//! and a sequence number, both 8-byte big-endian; the rest is zero.
//! `--rate 0` publishes as fast as the hub accepts. `--policy` picks what
//! happens to a client that falls behind: `disconnect` (the default),
//! `drop-oldest` or `keep-latest`. `--history on` (the default) keeps the
//! topic's recent past at the hub's default retention (1024 messages /
//! 128 KiB); `--history off` keeps none (`Retention::none()`), to measure
//! what history costs.
//!
//! A plain WebSocket client is subscribed by the server; a `boardcast.v1`
//! client (`docs/protocol.md`) subscribes itself with `s bench`, and may
//! resume after a dropped link with `s bench <epoch> <seq>`.
//!
//! The HTTP transports (`docs/transports.md`) are mounted beside it, at
//! their default paths: Server-Sent Events (`/sse?topics=bench`), long
//! polling (`/poll`), `POST /send` and `/latest`.
//!
//! `--payload json` publishes text instead: a sensor reading of `--size`
//! bytes (at least 60) carrying the send time and the sequence number,
//! `{"t":1733472000123456789,"seq":42,"celsius":41.2,"rh":35   }`: padded
//! with spaces before its closing brace (to 60 bytes up to seq 9999999).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boardcast::hub::Retention;
use boardcast::{Config, Policy, Server, Transports};

#[path = "common/args.rs"]
mod args;

use args::Args;

const TOPIC: &str = "bench";

fn main() -> std::io::Result<()> {
    env_logger::init();
    let mut args = Args::new(
        "broadcast",
        "[ADDR] [--rate MSGS_PER_SEC] [--size BYTES] [--policy disconnect|drop-oldest|keep-latest] \
         [--history on|off] [--payload binary|json]",
    );
    let rate: u64 = args.option("--rate", 1000);
    let size: usize = args.option("--size", 16);
    let policy = match args.option("--policy", "disconnect".to_string()).as_str() {
        "disconnect" => Policy::Disconnect,
        "drop-oldest" => Policy::DropOldest,
        "keep-latest" => Policy::KeepLatest,
        _ => args.fail("bad --policy"),
    };
    let history = match args.option("--history", "on".to_string()).as_str() {
        "on" => true,
        "off" => false,
        _ => args.fail("bad --history"),
    };
    let json = match args.option("--payload", "binary".to_string()).as_str() {
        "binary" => false,
        "json" => true,
        _ => args.fail("bad --payload"),
    };
    let addr = args.address("127.0.0.1:9002");
    args.finish();
    let size = if json { size.max(60) } else { size.max(16) };

    let server = Server::bind(&addr, Config::default().max_connections(10_000))?
        .transports(Transports::default());
    println!(
        "broadcast on ws://{} : {size}-byte {} messages at {} ({policy:?}, history {})",
        server.local_addr(),
        if json { "JSON" } else { "binary" },
        if rate == 0 {
            "full speed".to_string()
        } else {
            format!("{rate}/s")
        },
        if history { "on" } else { "off" }
    );
    let hub = server.hub();
    hub.set_default_policy(policy);
    if !history {
        hub.set_retention(TOPIC, Retention::none());
    }
    std::thread::Builder::new()
        .name("publisher".into())
        .spawn(move || publish(&hub, rate, size, json))?;
    server.run(|mut client| {
        if !client.speaks_v1() {
            client.subscribe(TOPIC);
        }
        while let Ok(Some(_)) = client.recv() {}
    })
}

fn publish(hub: &boardcast::Hub, rate: u64, size: usize, json: bool) {
    let mut payload = vec![0u8; size];
    let mut text = String::with_capacity(size);
    let start = Instant::now();
    let mut last_report = Instant::now();
    for seq in 0u64.. {
        if let Some(offset) = (seq * 1_000_000_000).checked_div(rate) {
            let due = start + Duration::from_nanos(offset);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let t = now.as_nanos() as u64;
        if json {
            reading(&mut text, t, seq, size);
            hub.publish_text(TOPIC, &text);
        } else {
            payload[..8].copy_from_slice(&t.to_be_bytes());
            payload[8..16].copy_from_slice(&seq.to_be_bytes());
            hub.publish_binary(TOPIC, &payload);
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            log::info!("{:?}", hub.stats());
        }
    }
}

/// A JSON sensor reading sent at `t` (ns since the UNIX epoch), padded
/// with spaces to `size` bytes when it is shorter.
fn reading(text: &mut String, t: u64, seq: u64, size: usize) {
    use std::fmt::Write;
    text.clear();
    let celsius = 40.0 + (seq % 40) as f64 / 10.0;
    let _ = write!(
        text,
        "{{\"t\":{t},\"seq\":{seq},\"celsius\":{celsius:.1},\"rh\":35"
    );
    // Past 60 bytes, more readings of the same board, as a dashboard's
    // message carries (so that compression sees realistic JSON), then
    // spaces.
    let mut field = 0;
    while text.len() + 16 < size {
        let value = (seq * 7 + field * 13) % 1000;
        let _ = write!(text, ",\"s{field}\":{}.{}", value / 10, value % 10);
        field += 1;
    }
    while text.len() + 1 < size {
        text.push(' ');
    }
    text.push('}');
}
