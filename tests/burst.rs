//! A measurement, not a check (ignored by default): the resident memory of
//! the `broadcast` example, run as its own process, before, at the peak of
//! and after a burst of clients that each send most of a near-limit
//! message and then leave without finishing it.
//!
//! ```text
//! cargo build --release --example broadcast
//! cargo test --release --test burst -- --ignored --nocapture
//! BURST_CLIENTS=500 BROADCAST_BIN=path/to/broadcast MALLOC_ARENA_MAX=2 cargo test ...
//! ```
//!
//! The server's environment is this process's, so `MALLOC_ARENA_MAX` and
//! the other `MALLOC_*` variables set for the test reach it.

mod support;

use std::io::Write;
use std::net::TcpStream;

use support::{op, TIMEOUT};

#[test]
#[ignore = "a measurement: needs the release build of examples/broadcast"]
fn resident_memory_before_during_and_after_a_burst_of_partial_messages() {
    let clients: usize = std::env::var("BURST_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let example = support::BroadcastExample::start();
    let addr = example.addr;
    let field = |name| example.status(name);
    support::wait_until(TIMEOUT, "the publisher thread started", || {
        field("Threads:") == 2
    });
    // One client in and out first, so the baseline has the flusher thread
    // and the allocator's first arenas.
    drop(support::raw_upgrade(addr, "/"));
    support::wait_until(TIMEOUT, "the warm-up client gone", || {
        field("Threads:") <= 3
    });
    let rss_before = field("VmRSS:");

    // Most of a 256 KiB message (the default limit), never finished.
    let len = 256 << 10;
    let frame = support::client_frame(true, op::BINARY, &vec![7; len]);
    let partial = &frame[..frame.len() - 4096];
    let mut streams: Vec<TcpStream> = Vec::with_capacity(clients);
    let mut cut = 0;
    for _ in 0..clients {
        let mut stream = support::raw_upgrade(addr, "/");
        // Past the server's budget the connection is closed with 1013
        // mid-write: the write then fails, which is fine.
        if stream.write_all(partial).is_err() {
            cut += 1;
        }
        streams.push(stream);
    }
    // Let the server read what it will: until its resident memory stops
    // growing for a while (a measurement: a sleep is fine here).
    let mut last = 0;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = field("VmRSS:");
        if now == last {
            break;
        }
        last = now;
    }
    let (rss_peak, hwm) = (field("VmRSS:"), field("VmHWM:"));
    drop(streams);
    // Gone when no connection or writer thread is left (the flusher
    // thread may have started meanwhile: it stays).
    let client_threads = || {
        std::fs::read_dir(format!("/proc/{}/task", example.id()))
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| {
                name.starts_with("boardcast-conn") || name.starts_with("boardcast-write")
            })
            .count()
    };
    support::wait_until(TIMEOUT, "every client's threads gone", || {
        client_threads() == 0
    });
    let rss_after = field("VmRSS:");
    eprintln!(
        "{clients} clients x {} KiB of a 256 KiB message ({cut} cut mid-write): \
         VmRSS {rss_before} KiB before, {rss_peak} KiB at the peak (VmHWM {hwm} KiB), \
         {rss_after} KiB after they left (MALLOC_ARENA_MAX={})",
        partial.len() >> 10,
        std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "unset".into())
    );
}
