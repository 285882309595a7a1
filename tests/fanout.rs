//! A thousand clients subscribe and each receives a whole burst in order;
//! then a graceful shutdown leaves no thread behind.
//!
//! The only test in its binary, so the process's thread count is its own.

mod support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use boardcast::Config;
use support::{Running, Ws, TIMEOUT};

const CLIENTS: usize = 1000;
/// Over `QUEUE`, so queues fill while the flusher works through a thousand
/// clients; the burst fits every socket's buffers, so no client is slow
/// and none may be disconnected: the publisher writes a full queue out
/// itself before it applies the policy.
const BURST: u64 = 50;
/// Each client's `queue_messages`.
const QUEUE: usize = 16;
const READERS: usize = 4;
const TOPIC: &str = "burst";

#[test]
fn thousand_clients_receive_a_burst_in_order_and_shutdown_leaves_no_thread() {
    let baseline = support::threads();
    let server = support::server(
        Config::default()
            .max_connections(CLIENTS + 10)
            .queue_messages(QUEUE),
    );
    let running = Running::start(server, |mut client| {
        client.subscribe(TOPIC);
        while let Ok(Some(_)) = client.recv() {}
    });
    let addr = running.addr;

    let clients: Vec<Ws> = (0..CLIENTS)
        .map(|_| support::connect_small(addr, "/"))
        .collect();
    support::wait_until(TIMEOUT, "every client subscribed", || {
        running.hub.subscribers(TOPIC) == CLIENTS
    });
    let server_threads = support::server_threads();
    eprintln!(
        "{CLIENTS} clients: {server_threads} server threads, {} process threads",
        support::threads()
    );
    assert_eq!(server_threads, 2 * CLIENTS, "a reader and a writer each");

    // A few reader threads, each over many blocking sockets: the burst is
    // in the kernel buffers, so reading one socket after another is fine.
    let (burst_read, bursts) = mpsc::channel();
    let mut readers = Vec::new();
    let mut clients = clients.into_iter();
    for r in 0..READERS {
        let mine: Vec<Ws> = clients.by_ref().take(CLIENTS / READERS).collect();
        let burst_read = burst_read.clone();
        let reader = thread::Builder::new()
            .name(format!("test-reader-{r}"))
            .spawn(move || read_burst_then_close(mine, &burst_read))
            .unwrap();
        readers.push(reader);
    }
    drop(burst_read);

    for seq in 0..BURST {
        let published = running.hub.publish_text(TOPIC, &seq.to_string());
        assert_eq!(
            published.queued, CLIENTS,
            "message {seq} queued for every client"
        );
        assert_eq!(published.seq, seq + 1, "the topic numbers its messages");
    }
    let mut complete = 0;
    for _ in 0..READERS {
        complete += bursts
            .recv_timeout(TIMEOUT)
            .expect("a reader did not finish the burst");
    }
    assert_eq!(complete, CLIENTS, "clients that got the whole burst");
    support::wait_until(TIMEOUT, "delivered counts the burst", || {
        running.stats().delivered == BURST * CLIENTS as u64
    });

    // Graceful shutdown from this thread while `run` blocks on its own.
    let took = running.shutdown(TIMEOUT);
    eprintln!("shutdown of {CLIENTS} clients took {took:?}");
    let mut closed_with_1001 = 0;
    for reader in readers {
        closed_with_1001 += reader.join().expect("a reader panicked");
    }
    assert_eq!(closed_with_1001, CLIENTS, "clients closed with 1001");
    assert_eq!(support::server_threads(), 0, "server threads after run");
    support::wait_until(
        Duration::from_secs(5),
        "the thread count is back to its baseline",
        || support::threads() == baseline,
    );
}

/// Reads the burst from every client, checking the order, and reports how
/// many got all of it; then answers the shutdown's close on each and waits
/// for the server to end the connection. Returns how many closes were 1001.
fn read_burst_then_close(mut clients: Vec<Ws>, burst_read: &mpsc::Sender<usize>) -> usize {
    let mut complete = 0;
    for ws in &mut clients {
        let mut expected = 0;
        while expected < BURST {
            let text = support::next_text(ws);
            assert_eq!(text, expected.to_string(), "out of order");
            expected += 1;
        }
        complete += 1;
    }
    burst_read.send(complete).unwrap();
    // Answer every close first, then wait for every end: the server ends
    // them in parallel.
    let mut away = 0;
    for ws in &mut clients {
        if support::read_close(ws) == Some(1001) {
            away += 1;
        }
        let _ = ws.flush();
    }
    for ws in &mut clients {
        support::finish_close(ws);
    }
    away
}
