//! Connections: handshakes per second while opening idle connections, and
//! what each idle connection costs the server (`/proc/PID/status` before
//! and after, and `/proc/PID/smaps` split into stacks and heap).
//!
//! WebSocket connections complete their handshake and then only read (a
//! broadcast server's messages are drained, its pings answered). A raw TCP
//! connection does one 1-byte round trip, so the server's thread for it
//! is known to run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::args::Args;
use crate::fanout::{connect_all, drain_until, Sub};
use crate::procfs::{self, Status};
use crate::round3;
use crate::wire::{self, Proto};

enum Held {
    Ws(Vec<Sub>),
    Tcp(Vec<TcpStream>),
}

/// Runs one connections measurement; see `wsload --help`.
pub fn run(args: &Args) -> Result<Value, String> {
    let addr: SocketAddr = args.required("addr")?;
    let proto: Proto = args.get("proto", Proto::Ws)?;
    let count: usize = args.get("count", 1000)?;
    let pid: u32 = args.required("server-pid")?;
    let settle = args.seconds("settle", 1.5)?;
    if count == 0 {
        return Err("--count must be positive".into());
    }
    let status =
        |what: &str| procfs::status(pid).map_err(|e| format!("{what}: /proc/{pid}/status: {e}"));
    let before = status("before")?;
    let before_parts = procfs::breakdown(pid).map_err(|e| e.to_string())?;

    let started = Instant::now();
    let mut held = match proto {
        Proto::Ws => Held::Ws(connect_all(addr, count, false)?.0),
        Proto::Tcp => {
            let mut streams = Vec::with_capacity(count);
            for i in 0..count {
                let connect = || -> std::io::Result<TcpStream> {
                    let (mut stream, _) = wire::connect(addr, proto, Duration::from_secs(5))?;
                    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                    stream.write_all(b"x")?;
                    stream.read_exact(&mut [0u8; 1])?;
                    Ok(stream)
                };
                let stream =
                    connect().map_err(|e| format!("connection {} of {count}: {e}", i + 1))?;
                wire::set_reset_on_close(&stream);
                streams.push(stream);
            }
            Held::Tcp(streams)
        }
    };
    let handshakes_per_s = count as f64 / started.elapsed().as_secs_f64();

    // Settle: at least `settle`, then until the thread count holds still
    // for half a second (writer threads start after the 101), at most 10 s.
    let settled = Instant::now();
    let mut last = status("settling")?.threads;
    loop {
        let until = Instant::now() + Duration::from_millis(500);
        match &mut held {
            Held::Ws(subs) => drain_until(subs, until).map_err(|e| e.to_string())?,
            Held::Tcp(_) => thread::sleep(Duration::from_millis(500)),
        }
        let threads = status("settling")?.threads;
        let waited = settled.elapsed();
        if (threads == last && waited >= settle) || waited >= Duration::from_secs(10) {
            break;
        }
        last = threads;
    }
    let after: Status = status("after")?;
    let parts = procfs::breakdown(pid).map_err(|e| e.to_string())?;
    let (stack_kib, stack_count, stacks) = procfs::thread_stacks(pid).map_err(|e| e.to_string())?;
    let open = match &held {
        Held::Ws(subs) => subs.iter().filter(|s| s.open).count(),
        Held::Tcp(streams) => streams.len(),
    };
    drop(held);

    let per = |a: u64, b: u64| round3((a as f64 - b as f64) / count as f64);
    Ok(json!({
        "kind": "conns",
        "proto": match proto { Proto::Ws => "ws", Proto::Tcp => "tcp" },
        "count": count,
        "open_at_end": open,
        "handshakes_per_s": round3(handshakes_per_s),
        "rss_before_kib": before.rss_kib,
        "rss_after_kib": after.rss_kib,
        "rss_per_conn_kib": per(after.rss_kib, before.rss_kib),
        "stack_rss_per_conn_kib": per(parts.stacks_kib, before_parts.stacks_kib),
        "heap_rss_per_conn_kib": per(parts.heap_kib, before_parts.heap_kib),
        "threads_before": before.threads,
        "threads_after": after.threads,
        "threads_per_conn": per(after.threads, before.threads),
        "vm_per_conn_kib": per(after.vm_kib, before.vm_kib),
        // The most common thread stack mapping: the reserved stack size.
        "stack_reserved_kib": stack_kib,
        "stacks_of_that_size": stack_count,
        "stacks": stacks,
    }))
}
