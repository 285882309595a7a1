//! Keepalive: a peer that stops answering pings is closed; one that answers
//! stays.

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use boardcast::{Config, Message};
use support::{Running, TIMEOUT};

const INTERVAL: Duration = Duration::from_millis(200);

fn config(pong_timeout: Duration) -> Config {
    Config::default()
        .ping_interval(Some(INTERVAL))
        .pong_timeout(pong_timeout)
}

/// What the handler's last `recv` returned, and when.
type Ended = (Result<Option<Message>, String>, Instant);

/// A handler that receives until the connection ends and reports how.
fn start(config: Config) -> (Running, mpsc::Receiver<Ended>) {
    let (tx, ended) = mpsc::channel::<Ended>();
    let tx = std::sync::Mutex::new(tx);
    let running = Running::start(support::server(config), move |mut client| {
        let last = loop {
            match client.recv() {
                Ok(Some(message)) if message.is_data() => {
                    let _ = client.send(message);
                }
                Ok(Some(_)) => {}
                other => break other.map_err(|e| e.to_string()),
            }
        };
        let _ = tx.lock().unwrap().send((last, Instant::now()));
    });
    (running, ended)
}

#[test]
fn silent_peer_is_pinged_then_closed() {
    let (running, ended) = start(config(Duration::from_millis(200)));
    let mut peer = support::raw_upgrade(running.addr, "/");

    // It reads, so it sees the ping, but never answers.
    let ping = support::read_frame(&mut peer).expect("a ping before the end");
    assert_eq!(ping.opcode, 0x9, "expected a ping, got {ping:?}");
    let pinged = Instant::now();
    let after_ping = support::read_frame(&mut peer);
    assert!(
        after_ping.is_none(),
        "expected the end of the connection, got {after_ping:?}"
    );
    let (last, at) = ended
        .recv_timeout(TIMEOUT)
        .expect("the handler's recv did not return");
    // The handler learns why: the keepalive, not a close or a reset.
    assert_eq!(
        last,
        Err("i/o error: no answer to the keepalive ping".to_string()),
        "what recv ended with"
    );
    eprintln!(
        "unresponsive peer: recv returned {last:?} {:?} after the ping",
        at.saturating_duration_since(pinged)
    );
    support::wait_until(TIMEOUT, "the disconnection counted", || {
        running.stats().disconnected_unresponsive == 1
    });
    // The client is counted out when it is dropped, just after the handler
    // reported.
    support::wait_until(TIMEOUT, "the client counted out", || {
        running.stats().clients == 0
    });
}

#[test]
fn peer_answering_pings_stays_connected() {
    // A pong timeout with room for a loaded machine's scheduling delays.
    // (The writer checks for the pong when the timeout is up, so pings come
    // every 400 ms here.)
    let (running, ended) = start(config(Duration::from_millis(400)));
    let mut ws = support::connect(running.addr, "/");
    // Short reads: tungstenite answers each ping inside `read`, which then
    // times out waiting for data.
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut pings = 0;
    let deadline = Instant::now() + TIMEOUT;
    while pings < 4 {
        assert!(
            Instant::now() < deadline,
            "only {pings} pings before the deadline"
        );
        match ws.read() {
            Ok(tungstenite::Message::Ping(_)) => pings += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("connection lost after {pings} pings: {e}"),
        }
    }
    ws.get_ref().set_read_timeout(Some(TIMEOUT)).unwrap();
    support::send_text(&mut ws, "still here");
    assert_eq!(support::next_text(&mut ws), "still here");
    assert!(ended.try_recv().is_err(), "the handler's recv ended early");
    let stats = running.stats();
    assert_eq!(stats.disconnected_unresponsive, 0);
    assert_eq!(stats.clients, 1);
    support::close(ws);
}

#[test]
fn no_pings_without_a_ping_interval() {
    // ping_interval(None) with a 50 ms pong timeout: for a second, nothing
    // arrives (no ping), the silent peer is not cut, and it is still
    // served. This catches a missing interval read as "ping at once" or as
    // any interval under a second; one read as the 20 s default would need
    // a test that waits longer than that.
    let config = Config::default()
        .ping_interval(None)
        .pong_timeout(Duration::from_millis(50));
    let (running, ended) = start(config);
    let mut peer = support::raw_upgrade(running.addr, "/");
    peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut byte = [0u8; 1];
    match std::io::Read::read(&mut peer, &mut byte) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence, got {other:?} ({byte:?})"),
    }
    peer.set_read_timeout(Some(TIMEOUT)).unwrap();
    std::io::Write::write_all(
        &mut peer,
        &support::client_frame(true, support::op::TEXT, b"still here"),
    )
    .unwrap();
    let echo = support::read_frame(&mut peer).expect("the echo");
    assert_eq!((echo.opcode, &echo.payload[..]), (0x1, &b"still here"[..]));
    assert!(ended.try_recv().is_err(), "the handler's recv ended");
    assert_eq!(running.stats().disconnected_unresponsive, 0);
}
