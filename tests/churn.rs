//! Thousands of clients come and go in every way a board meets on a
//! network (a clean close, a drop without a close frame, a reset in the
//! middle of a frame, a slowloris that gives up, a plain HTTP request, a
//! request with too many header fields), and
//! the server is left as it was: the process's thread count back to its
//! baseline, resident memory within a bound, every slot free, and a normal
//! client served.
//!
//! The only test in its binary, so the process's threads and memory are
//! its own.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use boardcast::Config;
use support::{op, Running, TIMEOUT};

/// Connections in the measured churn.
const CONNECTIONS: usize = 5000;
/// Connections before the baseline is taken, so that the allocator's
/// arenas and the thread stack cache are warm.
const WARM_UP: usize = 500;
/// Client threads making connections at once.
const WORKERS: usize = 4;
/// Resident memory the churn may add, measured after it ends: generous
/// for allocator noise (a few hundred KiB are typical), yet a leak of 2 KiB
/// per connection would go past it.
const RSS_BOUND_KIB: usize = 8 << 10;

/// The ways a client leaves, one after the other.
const KINDS: usize = 6;

/// Connects and leaves in the `kind`-th way; returns whether it was a
/// failed handshake (as the server counts them).
fn come_and_go(addr: SocketAddr, kind: usize) -> bool {
    match kind {
        // A clean close.
        0 => {
            let mut stream = support::raw_upgrade(addr, "/");
            stream
                .write_all(&support::client_frame(true, op::TEXT, b"hello"))
                .expect("send a frame");
            let echo = support::read_frame(&mut stream).expect("the echo");
            assert!(echo.fin, "fragmented server frame");
            assert_eq!(echo.payload, b"hello");
            stream
                .write_all(&support::client_close(1000, ""))
                .expect("send a frame");
            let close = support::read_frame(&mut stream).expect("the close reply");
            assert_eq!(close.close_code(), Some(1000));
            support::read_to_end(&mut stream, 0);
            false
        }
        // Gone without a close frame.
        1 => {
            drop(support::raw_upgrade(addr, "/"));
            false
        }
        // A reset in the middle of a frame: an unread pong in our buffer
        // turns our close into a RST.
        2 => {
            let mut stream = support::raw_upgrade(addr, "/");
            stream
                .write_all(&support::client_frame(true, op::PING, b"x"))
                .expect("send a frame");
            assert_eq!(stream.peek(&mut [0u8; 1]).expect("the pong"), 1);
            let partial = support::frame_header(true, op::BINARY, 1000, Some(support::MASK));
            stream.write_all(&partial[..5]).unwrap();
            drop(stream);
            false
        }
        // A slowloris that gives up: half a request, then gone.
        3 => {
            let mut stream = support::tcp(addr);
            let request = support::upgrade_request("/", "");
            stream.write_all(&request.as_bytes()[..40]).unwrap();
            drop(stream);
            true
        }
        // Too many header fields (the default limit is 32), in a head the
        // server reads whole: refused with 431.
        4 => {
            let extra: String = (0..40).map(|i| format!("X-Filler-{i}: v\r\n")).collect();
            let reply = support::http(addr, &support::upgrade_request("/", &extra));
            assert!(reply.starts_with("HTTP/1.1 431 "), "{reply:?}");
            assert!(reply.ends_with("too many header fields"), "{reply:?}");
            true
        }
        // A plain HTTP request, answered with 426.
        _ => {
            let reply = support::http(addr, "GET / HTTP/1.1\r\nHost: board\r\n\r\n");
            assert!(reply.starts_with("HTTP/1.1 426 "), "{reply:?}");
            false
        }
    }
}

/// Runs `connections` comings and goings on [`WORKERS`] threads; returns
/// how many were failed handshakes.
fn churn(addr: SocketAddr, connections: usize) -> u64 {
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            thread::Builder::new()
                .name(format!("test-churn-{w}"))
                .spawn(move || {
                    let mut failed = 0;
                    for i in (w..connections).step_by(WORKERS) {
                        failed += u64::from(come_and_go(addr, i % KINDS));
                    }
                    failed
                })
                .unwrap()
        })
        .collect();
    workers
        .into_iter()
        .map(|w| w.join().expect("a churn worker panicked"))
        .sum()
}

/// Waits until every connection is gone: no client, no server thread.
///
/// A slowloris is the only way to leave without the server's answer, so
/// the last ones may still wait in the listen backlog when the clients are
/// done: the server has seen every connection once it has counted
/// `failed` failed handshakes.
fn settled(running: &Running, failed: u64) {
    support::wait_until(TIMEOUT, "every failed handshake counted", || {
        running.stats().handshake_failed >= failed
    });
    support::wait_until(TIMEOUT, "every client gone and its threads ended", || {
        running.stats().clients == 0 && support::server_threads() == 0
    });
}

#[test]
fn thousands_of_clients_coming_and_going_leave_no_thread_and_bounded_memory() {
    let baseline = support::threads();
    let config = Config::default().handshake_timeout(Duration::from_secs(2));
    let running = Running::start(support::server(config), support::echo);
    let addr = running.addr;
    // The server's accept thread.
    let serving = baseline + 1;

    let warm_failed = churn(addr, WARM_UP);
    settled(&running, warm_failed);
    support::wait_until(TIMEOUT, "the thread count back after the warm-up", || {
        support::threads() == serving
    });
    let rss_before = support::rss_kib();

    let start = Instant::now();
    let failed = churn(addr, CONNECTIONS);
    let took = start.elapsed();
    settled(&running, warm_failed + failed);
    support::wait_until(TIMEOUT, "the thread count back to its baseline", || {
        support::threads() == serving
    });
    let rss_after = support::rss_kib();
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "{CONNECTIONS} connections in {took:?}; threads {serving}; \
         VmRSS {rss_before} -> {rss_after} KiB after the churn"
    );
    assert!(
        growth < RSS_BOUND_KIB,
        "VmRSS grew by {growth} KiB over {CONNECTIONS} connections"
    );

    let stats = running.stats();
    assert_eq!(stats.handshake_failed, warm_failed + failed, "{stats:?}");
    assert_eq!(stats.rejected_full, 0, "a slot was not freed: {stats:?}");
    assert_eq!(stats.subscriptions, 0);
    support::assert_served(addr);
    running.shutdown(TIMEOUT);
    support::wait_until(TIMEOUT, "the thread count back after shutdown", || {
        support::threads() == baseline
    });
}
