//! Peers that misbehave over time rather than in a frame: a ping flood from
//! a client that never reads, a client that never reads its echoes, a
//! client that stops responding entirely (as a peer that vanished without a
//! FIN looks to the server), and a subscriber that resets the connection
//! while the hub writes to it. Each must cost the server bounded memory and
//! threads, end within bounded time where it must end, and never delay a
//! normal client.
//!
//! The tests take [`support::serial`]: they count the server's threads and
//! measure the process's memory.

mod support;

use std::io::Write;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use boardcast::{Config, Error, Policy};
use support::{Ending, Running, TIMEOUT};

const PINGS: u64 = 100_000;
/// The largest control payload: 13 MB of pings, and as much owed in pongs.
const PING_SIZE: usize = 125;

/// The flood: [`PINGS`] masked pings, each carrying its sequence number.
fn ping_flood() -> Vec<u8> {
    let mut wire = Vec::with_capacity(PINGS as usize * (PING_SIZE + 6));
    let mut payload = [b'p'; PING_SIZE];
    for seq in 0..PINGS {
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        wire.extend(support::client_frame(true, 0x9, &payload));
    }
    wire
}

/// The largest buffer the kernel gives a TCP socket (`tcp_rmem`,
/// `tcp_wmem`: min, default, max).
fn tcp_buffer_max(name: &str) -> usize {
    let path = format!("/proc/sys/net/ipv4/{name}");
    let values = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    values
        .split_whitespace()
        .nth(2)
        .and_then(|max| max.parse().ok())
        .unwrap_or_else(|| panic!("{path}: {values:?}"))
}

#[test]
fn ping_flood_from_a_client_that_never_reads_is_answered_with_the_latest_pong() {
    let _serial = support::serial();
    let running = Running::start(support::server(Config::default()), support::echo);
    let flood = ping_flood();
    let mut flooder = support::raw_upgrade(running.addr, "/");
    let rss_before = support::rss_kib();

    // The whole flood goes out without our reading a byte: the server keeps
    // reading pings while the pongs it owes cannot be written. (A server
    // that queued every pong, or stopped reading until it could write one,
    // would stall this write until it timed out.)
    let start = Instant::now();
    flooder.write_all(&flood).expect("the flood was not read");
    let flooded = start.elapsed();
    // Served meanwhile, while the flooder's pongs are stuck.
    support::assert_served(running.addr);
    let rss_flooded = support::rss_kib();

    // Now read: pongs in order, coalesced, ending with the latest ping's.
    let mut pongs = 0u64;
    let mut last = None;
    while last != Some(PINGS - 1) {
        assert!(pongs < PINGS, "more pongs than pings");
        let frame = support::read_frame(&mut flooder).expect("a pong before the end");
        assert_eq!(frame.opcode, 0xA, "expected a pong");
        assert_eq!(frame.payload.len(), PING_SIZE);
        let seq = u64::from_be_bytes(frame.payload[..8].try_into().unwrap());
        assert!(
            last.is_none_or(|last| seq > last),
            "pong {seq} after {last:?}"
        );
        last = Some(seq);
        pongs += 1;
    }
    let growth = rss_flooded.saturating_sub(rss_before);
    eprintln!(
        "{PINGS} pings sent in {flooded:?}; {pongs} pongs came back; \
         RSS {rss_before} -> {rss_flooded} KiB"
    );
    // Pongs owed to a client that does not read are replaced, not queued:
    // the server holds at most one, so what came back is what the kernel
    // buffers held (our receive buffer, the server's send buffer) and the
    // latest.
    let buffered = tcp_buffer_max("tcp_rmem") + tcp_buffer_max("tcp_wmem");
    let bound = (buffered / (PING_SIZE + 2)) as u64 + 100;
    eprintln!("kernel buffers hold at most {buffered} bytes: {bound} pongs");
    assert!(
        pongs <= bound.min(PINGS - 1),
        "{pongs} pongs for {PINGS} pings"
    );
    assert!(
        growth < 8 << 10,
        "RSS grew by {growth} KiB during the flood"
    );

    // The flooder's connection still works.
    flooder
        .write_all(&support::client_frame(true, 0x1, b"after the flood"))
        .expect("send a frame");
    let echo = support::read_frame(&mut flooder).expect("the echo");
    assert!(echo.fin, "fragmented server frame");
    assert_eq!(
        (echo.opcode, echo.payload.as_slice()),
        (0x1, &b"after the flood"[..])
    );
    assert_eq!(running.stats().disconnected_write, 0);
}

#[test]
fn client_that_never_reads_its_echoes_is_cut_while_others_are_served() {
    let _serial = support::serial();
    let write_timeout = Duration::from_millis(500);
    let running = Running::start(
        support::server(Config::default().write_timeout(write_timeout)),
        support::echo,
    );
    let mut healthy = support::connect(running.addr, "/");
    let rss_before = support::rss_kib();

    // Megabytes of messages, never reading a byte of their echoes.
    let stalled = support::raw_upgrade(running.addr, "/");
    let mut sender = stalled.try_clone().unwrap();
    let (done, sent) = mpsc::channel();
    let start = Instant::now();
    thread::Builder::new()
        .name("test-stalled".into())
        .spawn(move || {
            let frame = support::client_frame(true, 0x2, &[0x5A; 64 << 10]);
            let mut frames = 0;
            // 64 MB at most: far more than all the buffers on the way hold.
            while frames < 1000 && sender.write_all(&frame).is_ok() {
                frames += 1;
            }
            let _ = done.send(frames);
        })
        .unwrap();

    // The healthy client is echoed all along.
    let mut echoed = 0;
    let mut rss_peak = rss_before;
    let frames = loop {
        if echoed % 64 == 0 {
            rss_peak = rss_peak.max(support::rss_kib());
        }
        match sent.try_recv() {
            Ok(frames) => break frames,
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => panic!("the stalled sender panicked"),
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "the stalled client was never cut"
        );
        let text = format!("healthy {echoed}");
        support::send_text(&mut healthy, &text);
        assert_eq!(support::next_text(&mut healthy), text);
        echoed += 1;
    };
    let cut_after = start.elapsed();
    let growth = rss_peak.saturating_sub(rss_before);
    eprintln!(
        "stalled client cut after {frames} frames of 64 KiB and {cut_after:?}; \
         {echoed} echoes to the healthy client meanwhile; RSS peak +{growth} KiB"
    );
    assert!(frames < 1000, "the stalled client was never cut");
    // What waits for it is bounded by its queue (32 echoes of 64 KiB) and
    // the message being read; the rest is in kernel buffers.
    assert!(
        growth < 16 << 10,
        "RSS grew by {growth} KiB for the stalled client"
    );
    assert!(echoed > 0, "the healthy client was not served meanwhile");
    support::wait_until(TIMEOUT, "the cut counted", || {
        running.stats().disconnected_write == 1
    });
    support::wait_until(TIMEOUT, "the stalled client's threads end", || {
        support::server_threads() == 2
    });
    support::send_text(&mut healthy, "still here");
    assert_eq!(support::next_text(&mut healthy), "still here");
    support::close(healthy);
    support::assert_served(running.addr);
    drop(stalled);
}

#[test]
fn client_that_stops_responding_is_detected_by_the_keepalive() {
    let _serial = support::serial();
    let (interval, pong_timeout) = (Duration::from_millis(200), Duration::from_millis(300));
    let config = Config::default()
        .ping_interval(Some(interval))
        .pong_timeout(pong_timeout);
    let (tx, ended) = mpsc::channel::<(Result<(), String>, Instant)>();
    let tx = std::sync::Mutex::new(tx);
    let running = Running::start(support::server(config), move |mut client| {
        let end = loop {
            match client.recv() {
                Ok(Some(message)) if message.is_data() => {
                    let _ = client.send(message);
                }
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(Error::Io(e)) => break Err(e.to_string()),
                Err(e) => panic!("not an I/O error: {e}"),
            }
        };
        let _ = tx.lock().unwrap().send((end, Instant::now()));
    });
    // Completes the handshake, then neither reads nor writes nor closes:
    // the kernel still acknowledges the server's pings, as it would for a
    // peer whose network vanished until the retransmissions gave up. The
    // clock starts before the request, so it cannot start after the
    // server's (which starts once it has read the request).
    let connected = Instant::now();
    let mut silent = support::raw_upgrade(running.addr, "/");
    let (end, at) = ended
        .recv_timeout(TIMEOUT)
        .expect("the handler's recv ended");
    let took = at.saturating_duration_since(connected);
    eprintln!("silent peer cut after {took:?}: recv returned {end:?}");
    assert_eq!(end, Err("no answer to the keepalive ping".to_string()));
    // The server counts whole milliseconds: allow one for each of the
    // two waits.
    assert!(
        took + Duration::from_millis(2) >= interval + pong_timeout,
        "cut after {took:?}, before the ping was due to be answered"
    );
    assert!(
        took < interval + pong_timeout + TIMEOUT,
        "cut after {took:?}"
    );
    support::wait_until(TIMEOUT, "the cut counted", || {
        running.stats().disconnected_unresponsive == 1
    });
    support::wait_until(TIMEOUT, "the silent client's threads end", || {
        support::server_threads() == 0
    });
    // What it would have seen: one ping, then the end.
    let ping = support::read_frame(&mut silent).expect("the keepalive ping");
    assert_eq!(ping.opcode, 0x9);
    assert_eq!(support::read_to_end(&mut silent, 0), (Ending::Eof, 0));
    support::assert_served(running.addr);
}

/// Whichever thread meets the reset first (the connection thread reading,
/// the hub's flusher, a publisher or the client's writer), the kernel tells
/// only that one; the handler must still learn it was a reset, not a close
/// or a bare end of stream.
#[test]
fn subscriber_that_resets_mid_publish_ends_its_handler_with_a_reset() {
    let _serial = support::serial();
    let (echo, reports) = support::echo_reporting();
    let running = Running::start(support::server(Config::default()), move |client| {
        client.subscribe("t");
        echo(client);
    });
    // Under the default policy, a queue that fills behind the dead socket
    // would have the hub close the client as too slow, which its handler
    // rightly sees as a closed connection. Dropping the oldest frames
    // instead leaves the reset as the only way the connection ends.
    running.hub.set_policy("t", Policy::DropOldest);
    for round in 0..5 {
        let stream = support::raw_upgrade(running.addr, "/");
        support::wait_until(TIMEOUT, "subscribed", || running.hub.subscribers("t") == 1);
        running.hub.publish_text("t", "unread");
        // With that frame unread in our buffer, closing sends a reset.
        let mut byte = [0u8; 1];
        assert_eq!(stream.peek(&mut byte).expect("a published frame"), 1);
        drop(stream);
        let deadline = Instant::now() + TIMEOUT;
        let served = loop {
            if let Ok(served) = reports.try_recv() {
                break served;
            }
            assert!(Instant::now() < deadline, "round {round}: recv never ended");
            running.hub.publish_text("t", "more");
            thread::yield_now();
        };
        support::assert_reset(&served.end, &format!("round {round}"));
        support::wait_until(TIMEOUT, "the subscriber's threads end", || {
            support::client_threads() == 0
        });
    }
    support::assert_served(running.addr);
}
