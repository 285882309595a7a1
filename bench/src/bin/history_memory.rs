//! `history_memory`: what the hub's history costs at its defaults, measured
//! in this process, one measurement per call (a fresh process each, so the
//! allocator starts clean), printed as one JSON object.
//!
//! ```text
//! history_memory --topics 10 [--form raw|v1|v1-resume] [--fill interleaved|sequential]
//!                [--size 80] [--per-topic 2048]
//! ```
//!
//! `--topics` topics are each published `--per-topic` JSON sensor readings
//! of `--size` bytes (about 80 by default), past the default retention
//! (1024 messages, 128 KiB per topic) and, with enough topics, past the
//! hub's default budget (2 MiB in all); round-robin across the topics
//! (`interleaved`, as a board publishing several sensors does) or one topic
//! after the other (`sequential`). Then it reports:
//!
//! - `Stats::history_bytes`, the hub's own count (allocator-independent:
//!   each message's frame, the forms made of it, and `ENTRY_OVERHEAD`), per
//!   topic and per kept message;
//! - the process's resident memory (`VmRSS`) before and after, per topic
//!   and per kept message (includes the allocator's slack and freed memory
//!   not given back);
//! - how many messages each topic kept (found by resuming with a
//!   subscriber of our own at positions further and further back, after
//!   the RSS is read), and whether the budget, not the per-topic retention,
//!   bounded them.
//!
//! `--form raw` publishes on a bare `Hub::new()` with no subscriber: each
//! kept message holds its WebSocket frame only. `--form v1` runs a real
//! `Server` on 127.0.0.1 with one `boardcast.v1` client connected (in this
//! process, through the loopback) and subscribed to every topic, so each
//! publish also makes the `m <topic> <seq>` envelope, which the history
//! keeps with the message; the client's socket is drained by a thread, and
//! the policy is drop-oldest so that the client is never cut off. The RSS
//! figures of that form include the server's and client's share of what
//! is in flight, and are taken after a short settle.
//!
//! `--form v1-resume` fills a real server's hub with no subscriber (raw
//! frames, as `raw`), measures, then connects a `boardcast.v1` client that
//! resumes every topic from its oldest kept message: the replay makes each
//! kept message's envelope, after its cost was counted. `after_resume`
//! gives the RSS and `Stats::history_bytes` then.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use boardcast::hub::{Delivery, Encoded, Position, Resumed, Retention, Subscriber};
use boardcast::{Config, Hub, Policy, Server};
use boardcast_bench::args::Args;
use boardcast_bench::wire::{self, opcode};
use boardcast_bench::{procfs, round3};
use serde_json::json;

/// The hub's default history budget (`Hub::set_history_budget`): 2 MiB.
const BUDGET: usize = 2 << 20;

const USAGE: &str = "usage: history_memory --topics N [--form raw|v1|v1-resume] \
[--fill interleaved|sequential] [--size BYTES (80)] [--per-topic N (2048)] [--settle S (0.3)] \
[--run N] [--note TEXT]";

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("history_memory: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(mut value) => {
            for key in ["run", "note"] {
                let v = args.string(key, "");
                if !v.is_empty() {
                    value[key] = match v.parse::<u64>() {
                        Ok(n) => n.into(),
                        Err(_) => v.into(),
                    };
                }
            }
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("history_memory: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

/// A subscriber that takes what it is offered and does nothing with it:
/// enough to ask the hub what it keeps.
#[derive(Debug)]
struct Probe;

impl Subscriber for Probe {
    fn offer(&self, _message: &Encoded, _policy: Policy) -> Delivery {
        Delivery::Queued
    }
}

/// A sensor reading as JSON, `size` bytes (padded in its `id` field).
fn reading(topic: usize, seq: u64, size: usize) -> String {
    let celsius = 20.0 + (seq % 400) as f64 / 20.0;
    let rh = 30.0 + (seq % 300) as f64 / 10.0;
    let ts = 1_767_312_000_000u64 + seq * 100;
    let body = format!(r#""t":{ts},"seq":{seq},"celsius":{celsius:.2},"rh":{rh:.1}}}"#);
    let head = format!(r#"{{"id":"s{topic}"#);
    // `{"id":"s<topic><pad>",` + body
    let pad = size.saturating_sub(head.len() + 2 + body.len());
    format!("{head}{}\",{body}", "-".repeat(pad))
}

fn rss_kib() -> Result<u64, String> {
    procfs::status(std::process::id())
        .map(|s| s.rss_kib)
        .map_err(|e| format!("/proc/self/status: {e}"))
}

fn run(args: &Args) -> Result<serde_json::Value, String> {
    let topics: usize = args.required("topics")?;
    let form = args.string("form", "raw");
    let fill = args.string("fill", "interleaved");
    let size: usize = args.get("size", 80)?;
    let per_topic: u64 = args.get("per-topic", 2048)?;
    let settle = args.seconds("settle", 0.3)?;
    if !(1..=256).contains(&topics) || per_topic == 0 || per_topic > 1_000_000 {
        return Err("--topics must be 1..=256, --per-topic 1..=1000000".into());
    }
    if !matches!(fill.as_str(), "interleaved" | "sequential") {
        return Err(format!("bad --fill {fill:?}"));
    }
    let names: Vec<String> = (0..topics).map(|i| format!("sensor/{i:03}")).collect();

    // The hub; for v1 the server, and its one client subscribed before
    // the fill.
    let (hub, addr) = match form.as_str() {
        "raw" => (Hub::new(), None),
        "v1" | "v1-resume" => {
            let (hub, addr) = server()?;
            (hub, Some(addr))
        }
        _ => return Err(format!("bad --form {form:?}")),
    };
    let client = match (form.as_str(), addr) {
        ("v1", Some(addr)) => {
            let subscribes: Vec<String> = names.iter().map(|n| format!("s {n}")).collect();
            Some(v1_client(addr, &subscribes)?)
        }
        _ => None,
    };
    // Each reading is formatted into one reused buffer: what stays
    // allocated after the fill is what the hub keeps (and the allocator's
    // slack).
    let rss_before = rss_kib()?;
    let history_before = hub.stats().history_bytes;
    let started = Instant::now();
    let mut text = String::with_capacity(size + 32);
    let mut publish = |t: usize, seq: u64| {
        text.clear();
        text.push_str(&reading(t, seq, size));
        hub.publish_text(&names[t], &text);
    };
    match fill.as_str() {
        "interleaved" => {
            for seq in 0..per_topic {
                for t in 0..topics {
                    publish(t, seq);
                }
            }
        }
        _ => {
            for t in 0..topics {
                for seq in 0..per_topic {
                    publish(t, seq);
                }
            }
        }
    }
    let publish_s = started.elapsed().as_secs_f64();
    if client.is_some() {
        // Let the last publishes reach the client (drop-oldest bounds it).
        thread::sleep(settle);
    }
    let rss_after = rss_kib()?;
    let stats = hub.stats();
    let history = stats.history_bytes - history_before;

    let kept: Vec<u64> = names.iter().map(|n| kept(&hub, n)).collect();
    let kept_total: u64 = kept.iter().sum();
    let kept_min = kept.iter().copied().min().unwrap_or(0);
    let kept_max = kept.iter().copied().max().unwrap_or(0);
    let per_message = history as f64 / kept_total.max(1) as f64;
    let retention = Retention::default();
    // What one topic would keep on its own: the retention's first bound.
    let alone = (retention.messages as u64)
        .min((retention.bytes as f64 / per_message).floor() as u64)
        .min(per_topic);
    let rss_delta = rss_after as i64 - rss_before as i64;
    // v1-resume: a boardcast.v1 client resumes every topic from its oldest
    // kept message, which makes the envelope of each; what that adds.
    let mut resumed = serde_json::Value::Null;
    if let (true, Some(addr)) = (form == "v1-resume", addr) {
        let resumes: Vec<String> = names
            .iter()
            .zip(&kept)
            .map(|(n, k)| format!("s {n} {:016x} {}", hub.epoch(), hub.last_seq(n) - k))
            .collect();
        let late = v1_client(addr, &resumes)?;
        thread::sleep(settle);
        let rss = rss_kib()?;
        let counted = hub.stats().history_bytes - history_before;
        let received = late.bytes.load(Ordering::Relaxed);
        late.stop();
        resumed = json!({
            "rss_after_kib": rss,
            "rss_delta_kib": rss as i64 - rss_before as i64,
            "history_bytes": counted,
            "client_received_bytes": received,
        });
    }
    let received = client.as_ref().map(|c| c.bytes.load(Ordering::Relaxed));
    if let Some(client) = client {
        client.stop();
    }
    Ok(json!({
        "kind": "history_memory",
        "form": form,
        "fill": fill,
        "topics": topics,
        "payload_bytes": reading(0, 0, size).len(),
        "published_per_topic": per_topic,
        "publish_s": round3(publish_s),
        "retention_messages": retention.messages,
        "retention_bytes": retention.bytes,
        "budget_bytes": BUDGET,
        "history_bytes": history,
        "history_bytes_per_topic": round3(history as f64 / topics as f64),
        "history_bytes_per_message": round3(per_message),
        "kept_total": kept_total,
        "kept_min": kept_min,
        "kept_max": kept_max,
        "kept_alone": alone,
        // The budget bounded some topic below what its retention allows.
        "capped": kept_min < alone,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_delta_kib": rss_delta,
        "rss_per_topic_kib": round3(rss_delta as f64 / topics as f64),
        "rss_per_message_bytes": round3(rss_delta as f64 * 1024.0 / kept_total.max(1) as f64),
        "client_received_bytes": received,
        "after_resume": resumed,
    }))
}

/// How many messages `topic` keeps: the furthest position back from which
/// a resume still recovers everything.
fn kept(hub: &Hub, topic: &str) -> u64 {
    let probe: Arc<dyn Subscriber> = Arc::new(Probe);
    let last = hub.last_seq(topic);
    let recovers = |after: u64| {
        let position = Position {
            epoch: hub.epoch(),
            seq: after,
        };
        let resumed = hub.resume(topic, &probe, Some(position));
        hub.unsubscribe(topic, &probe);
        matches!(resumed, Some(Resumed::Recovered { .. }))
    };
    // The smallest `after` that recovers (`last` always does).
    let (mut lo, mut hi) = (0, last);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if recovers(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    last - lo
}

/// The `boardcast.v1` client of `--form v1`: its socket, drained by a
/// thread that counts the bytes.
struct Client {
    stream: TcpStream,
    bytes: Arc<AtomicU64>,
    reader: thread::JoinHandle<()>,
}

impl Client {
    fn stop(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let _ = self.reader.join();
    }
}

/// A server on 127.0.0.1 whose handlers only serve their clients'
/// `boardcast.v1` commands; drop-oldest, so a client is never cut.
fn server() -> Result<(Hub, SocketAddr), String> {
    let server = Server::bind("127.0.0.1:0", Config::default()).map_err(|e| e.to_string())?;
    let addr = server.local_addr();
    let hub = server.hub();
    hub.set_default_policy(Policy::DropOldest);
    thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            let _ = server.run(|mut client| while let Ok(Some(_)) = client.recv() {});
        })
        .map_err(|e| e.to_string())?;
    Ok((hub, addr))
}

/// A `boardcast.v1` client of the server at `addr` that sends `commands`
/// (subscribes), reads the welcome and one `r` line per command (and
/// whatever is replayed meanwhile), then is drained by a thread.
fn v1_client(addr: SocketAddr, commands: &[String]) -> Result<Client, String> {
    let (stream, early) = wire::connect_subprotocol(addr, "boardcast.v1", Duration::from_secs(5))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut buf = early;
    let mut lines = 0;
    let mut writer = &stream;
    for command in commands {
        let frame = wire::masked_frame(opcode::TEXT, command.as_bytes(), [5, 6, 7, 8]);
        writer.write_all(&frame).map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines < commands.len() + 1 {
        if Instant::now() > deadline {
            return Err(format!("{lines} of {} answers read", commands.len() + 1));
        }
        match wire::parse_header(&buf).map_err(|e| e.to_string())? {
            Some(h) if buf.len() >= h.len + h.payload => {
                let payload = &buf[h.len..h.len + h.payload];
                if h.opcode == opcode::TEXT {
                    if payload.starts_with(b"e ") {
                        return Err(format!("refused: {}", String::from_utf8_lossy(payload)));
                    }
                    if payload.starts_with(b"w ") || payload.starts_with(b"r ") {
                        lines += 1;
                    }
                }
                buf.drain(..h.len + h.payload);
            }
            _ => {
                let mut chunk = [0u8; 4096];
                let n = (&stream).read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the server closed the connection".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    let bytes = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&bytes);
    let mut reading = stream.try_clone().map_err(|e| e.to_string())?;
    let reader = thread::Builder::new()
        .name("v1-client".into())
        .spawn(move || {
            // Nothing but published messages follows (no pings within the
            // run's few seconds); read them as bytes.
            let mut chunk = vec![0u8; 64 << 10];
            while let Ok(n) = reading.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                count.fetch_add(n as u64, Ordering::Relaxed);
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(Client {
        stream,
        bytes,
        reader,
    })
}

#[cfg(test)]
mod tests {
    use super::reading;

    #[test]
    fn readings_are_json_of_the_size_asked() {
        for (t, seq) in [(0, 0), (99, 2047), (7, 123_456)] {
            let r = reading(t, seq, 80);
            assert_eq!(r.len(), 80, "{r}");
            let v: serde_json::Value = serde_json::from_str(&r).unwrap();
            assert_eq!(v["seq"], seq);
        }
    }
}
