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

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boardcast::hub::Retention;
use boardcast::{Config, Policy, Server};

#[path = "common/args.rs"]
mod args;

use args::Args;

const TOPIC: &str = "bench";

fn main() -> std::io::Result<()> {
    env_logger::init();
    let mut args = Args::new(
        "broadcast",
        "[ADDR] [--rate MSGS_PER_SEC] [--size BYTES] [--policy disconnect|drop-oldest|keep-latest] \
         [--history on|off]",
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
    let addr = args.address("127.0.0.1:9002");
    args.finish();
    let size = size.max(16);

    let server = Server::bind(&addr, Config::default().max_connections(10_000))?;
    println!(
        "broadcast on ws://{} : {size}-byte messages at {} ({policy:?}, history {})",
        server.local_addr(),
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
        .spawn(move || publish(&hub, rate, size))?;
    server.run(|mut client| {
        if !client.speaks_v1() {
            client.subscribe(TOPIC);
        }
        while let Ok(Some(_)) = client.recv() {}
    })
}

fn publish(hub: &boardcast::Hub, rate: u64, size: usize) {
    let mut payload = vec![0u8; size];
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
        payload[..8].copy_from_slice(&(now.as_nanos() as u64).to_be_bytes());
        payload[8..16].copy_from_slice(&seq.to_be_bytes());
        hub.publish_binary(TOPIC, &payload);
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            log::info!("{:?}", hub.stats());
        }
    }
}
