//! The connection cap and the handshake deadline.
//!
//! The tests take [`runtime::serial`]: they count the server's threads.

mod runtime;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use boardcast::Config;
use runtime::{Running, TIMEOUT};

/// An echo handler: what most tests here need from a served client.
fn echo(mut client: boardcast::Client) {
    while let Ok(Some(message)) = client.recv() {
        if message.is_data() {
            let _ = client.send(message);
        }
    }
}

fn echoes(ws: &mut runtime::Ws, text: &str) {
    runtime::send_text(ws, text);
    assert_eq!(runtime::next_text(ws), text);
}

#[test]
fn full_server_answers_503_without_a_thread_and_frees_slots() {
    let _serial = runtime::serial();
    let running = Running::start(runtime::server(Config::default().max_connections(2)), echo);
    let addr = running.addr;
    let mut first = runtime::connect(addr, "/");
    let mut second = runtime::connect(addr, "/");
    echoes(&mut first, "one");
    echoes(&mut second, "two");
    let threads = runtime::server_threads();
    assert_eq!(threads, 4, "two threads per client");

    // Read to the end of the connection (or a reset, if the request
    // arrived after the server closed).
    let reply = runtime::http(addr, &runtime::upgrade_request(addr, "/"));
    assert!(reply.starts_with("HTTP/1.1 503 "), "{reply:?}");
    assert!(
        reply.to_ascii_lowercase().contains("\r\nretry-after: "),
        "{reply:?}"
    );
    assert_eq!(runtime::server_threads(), threads, "a thread for the 503");
    assert_eq!(running.stats().rejected_full, 1);
    assert_eq!(running.stats().clients, 2);

    // A slot frees when its client leaves, again and again.
    runtime::close(first);
    for round in 0..3 {
        // Its slot is free once both its threads are gone.
        runtime::wait_until(TIMEOUT, "a client left", || {
            running.stats().clients == 1 && runtime::server_threads() == 2
        });
        let mut next = runtime::try_connect(addr, format!("ws://{addr}/"))
            .unwrap_or_else(|e| panic!("round {round}: a freed slot refused: {e}"));
        echoes(&mut next, "again");
        runtime::close(next);
    }
    echoes(&mut second, "still served");
    assert_eq!(running.stats().rejected_full, 1);
}

#[test]
fn slowloris_is_dropped_at_the_handshake_deadline_while_others_are_served() {
    let _serial = runtime::serial();
    let deadline = Duration::from_millis(300);
    let running = Running::start(
        runtime::server(Config::default().handshake_timeout(deadline)),
        echo,
    );
    let addr = running.addr;

    // One byte every 50 ms: the whole request would take about 8 s.
    let request = runtime::upgrade_request(addr, "/");
    let (connected, started) = mpsc::channel();
    let slowloris = thread::Builder::new()
        .name("test-slowloris".into())
        .spawn(move || {
            let mut stream = runtime::tcp(addr);
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let start = Instant::now();
            connected.send(()).unwrap();
            for (sent, byte) in request.bytes().enumerate() {
                if stream.write_all(&[byte]).is_err() || is_closed(&mut stream) {
                    return (sent, start.elapsed());
                }
            }
            panic!("the whole request went out: the server waited for it");
        })
        .unwrap();
    started.recv_timeout(TIMEOUT).unwrap();

    // Served meanwhile.
    let mut client = runtime::connect(addr, "/");
    echoes(&mut client, "not blocked by the slowloris");

    let (sent, after) = slowloris.join().expect("the slowloris panicked");
    eprintln!("slowloris cut after {sent} bytes and {after:?}");
    assert!(after >= deadline, "cut before its deadline: {after:?}");
    echoes(&mut client, "still served");
    runtime::wait_until(TIMEOUT, "the failed handshake counted", || {
        running.stats().handshake_failed == 1
    });
    // The slowloris's thread counts its failure just before it ends.
    runtime::wait_until(TIMEOUT, "only the echo client's threads are left", || {
        runtime::server_threads() == 2
    });
}

/// Waits (the read timeout: one slowloris beat) for the server to end the
/// connection: true once it has.
fn is_closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server answered a partial request"),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            false
        }
        Err(_) => true,
    }
}
