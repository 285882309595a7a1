//! Graceful shutdown: clients get close 1001, and `run` returns with every
//! connection ended even when a peer or a handler ignores the close.
//!
//! The tests take [`support::serial`]: they count the server's threads.

mod support;

use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use boardcast::Config;
use support::{Running, TIMEOUT};

fn echo(mut client: boardcast::Client) {
    while let Ok(Some(message)) = client.recv() {
        if message.is_data() {
            let _ = client.send(message);
        }
    }
}

#[test]
fn shutdown_closes_clients_with_1001_and_ends_every_thread() {
    let _serial = support::serial();
    let mut running = Running::start(support::server(Config::default()), echo);
    let mut clients: Vec<_> = (0..3)
        .map(|_| support::connect(running.addr, "/"))
        .collect();
    for ws in &mut clients {
        support::send_text(ws, "up");
        assert_eq!(support::next_text(ws), "up");
    }
    assert_eq!(support::server_threads(), 6);

    assert!(support::listens(running.addr), "the listener is seen");
    let stop = running.shutdown_handle();
    let stopper = thread::Builder::new()
        .name("test-stopper".into())
        .spawn(move || stop.shutdown())
        .unwrap();
    for ws in &mut clients {
        assert_eq!(support::read_close(ws), Some(1001));
        support::finish_close(ws);
    }
    stopper.join().unwrap();
    running.join(TIMEOUT);
    assert_eq!(support::server_threads(), 0, "threads left after run");
    assert!(
        !support::listens(running.addr),
        "still listening after run returned"
    );
}

#[test]
fn shutdown_cuts_a_peer_that_ignores_the_close() {
    let _serial = support::serial();
    let shutdown_timeout = Duration::from_millis(300);
    // Far longer than the test waits: only the shutdown can end it.
    let close_timeout = Duration::from_secs(60);
    let running = Running::start(
        support::server(
            Config::default()
                .shutdown_timeout(shutdown_timeout)
                .close_timeout(close_timeout),
        ),
        echo,
    );
    let mut peer = support::raw_upgrade(running.addr, "/");
    support::wait_until(TIMEOUT, "the peer is a client", || {
        running.stats().clients == 1
    });

    let took = running.shutdown(TIMEOUT);
    eprintln!("shutdown with a peer ignoring the close took {took:?}");
    assert!(took >= shutdown_timeout, "returned after {took:?}");
    let close = support::read_frame(&mut peer).expect("a close frame");
    assert_eq!(close.close_code(), Some(1001));
    assert!(support::read_frame(&mut peer).is_none(), "not cut");
    assert_eq!(support::server_threads(), 0, "threads left after run");
}

#[test]
fn shutdown_returns_when_a_handler_ignores_the_close() {
    let _serial = support::serial();
    let timeout = Duration::from_millis(300);
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let running = Running::start(
        support::server(
            Config::default()
                .shutdown_timeout(timeout)
                .close_timeout(timeout),
        ),
        move |client| {
            // Busy elsewhere: never calls recv.
            let _ = released.lock().unwrap().recv_timeout(TIMEOUT);
            drop(client);
        },
    );
    let mut ws = support::connect(running.addr, "/");
    support::wait_until(TIMEOUT, "the client is connected", || {
        running.stats().clients == 1
    });

    let start = Instant::now();
    let stop = running.shutdown_handle();
    stop.shutdown();
    // The client answers the close, which the handler never reads; the
    // connection is cut anyway.
    assert_eq!(support::read_close(&mut ws), Some(1001));
    support::finish_close(&mut ws);
    let took = running.shutdown(TIMEOUT);
    eprintln!(
        "shutdown with a handler ignoring the close took {took:?} ({:?} since it began)",
        start.elapsed()
    );
    assert!(start.elapsed() >= timeout, "returned after {took:?}");
    support::wait_until(TIMEOUT, "only the stuck handler's thread is left", || {
        support::server_threads() == 1
    });
    release.send(()).unwrap();
    support::wait_until(TIMEOUT, "the released handler's thread ended", || {
        support::server_threads() == 0
    });
}

#[test]
fn shutdown_does_not_wait_for_a_connection_still_in_its_handshake() {
    let _serial = support::serial();
    // Far longer than the test waits.
    let long = Duration::from_secs(60);
    let running = Running::start(
        support::server(
            Config::default()
                .handshake_timeout(long)
                .shutdown_timeout(long),
        ),
        echo,
    );
    // Connected, request not sent, as a browser's speculative connection.
    let mut idle = support::tcp(running.addr);
    support::wait_until(TIMEOUT, "its thread started", || {
        support::server_threads() == 1
    });
    let took = running.shutdown(TIMEOUT);
    eprintln!("shutdown with a connection in its handshake took {took:?}");
    assert_eq!(support::read_to_end(&mut idle, 0).1, 0);
    assert_eq!(support::server_threads(), 0, "threads left after run");
}
