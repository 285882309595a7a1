//! Hostile frames over real sockets, against a `Server` and against the
//! plain `boardcast::accept` path: absurd length claims, a message in
//! 100,000 fragments, invalid UTF-8 at every position, a close followed by
//! silence or by more data, and resets in the middle of a frame. Each test
//! checks the exact reaction (close code, end of stream, what the handler
//! saw) within bounded time, and that a normal client is served after.
//!
//! A global allocator records the largest single allocation of the
//! process, so the length claims can show that nothing of the claimed size
//! was ever allocated.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use boardcast::{CloseCode, CloseFrame, Config, Error, Message, ProtocolError};
use support::{op, Ending, Running, Served, TIMEOUT};

struct Largest;

/// The largest allocation (or reallocation) asked for, in bytes.
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// record is an atomic, which never allocates.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

/// Four times the default message limit (256 KiB, which a server may
/// allocate for a message it is given): an allocation of anything near a
/// claim (1 GiB and more) is far above it. The one test that allocates more
/// on purpose (the 700 KB wire of the fragment test) is kept apart by
/// [`support::serial`] while the claims' test measures.
const ALLOCATION_BOUND: usize = 4 * (256 << 10);

/// A server running the reporting echo handler.
fn echo_server(config: Config) -> (Running, std::sync::mpsc::Receiver<Served>) {
    let (handler, reports) = support::echo_reporting();
    (Running::start(support::server(config), handler), reports)
}

/// The `boardcast::accept` path: `connections` connections, each upgraded
/// and echoed until it ends, reported like the server's.
fn accept_server(config: Config, connections: usize) -> support::Server<Served> {
    support::Server::spawn(connections, move |stream| {
        let mut messages = Vec::new();
        let end = (|| {
            let mut connection = boardcast::accept(stream, &config)?;
            while let Some(message) = connection.recv()? {
                if message.is_data() {
                    connection.send(message.clone())?;
                }
                messages.push(message);
            }
            Ok(())
        })();
        Served { messages, end }
    })
}

/// Reads a close frame and checks its code and reason.
fn expect_close(stream: &mut TcpStream, code: u16, reason: &str) {
    let frame = support::read_frame(stream).expect("a close frame before the end");
    assert_eq!(frame.close_code(), Some(code), "{frame:?}");
    assert_eq!(std::str::from_utf8(&frame.payload[2..]).unwrap(), reason);
}

fn assert_failed_with(served: &Served, expected: ProtocolError) {
    match &served.end {
        Err(Error::Protocol(e)) => assert_eq!(*e, expected),
        other => panic!("expected {expected:?}, the handler saw {other:?}"),
    }
}

#[test]
fn length_claims_of_2_pow_63_and_1_gib_get_1009_from_the_header_alone() {
    let _serial = support::serial();
    LARGEST.store(0, Ordering::Relaxed);
    let (running, reports) = echo_server(Config::default());
    let claims = [i64::MAX as u64, 1 << 30];
    let accepting = accept_server(Config::default(), claims.len());
    for addr in [running.addr, accepting.addr()] {
        for claim in claims {
            let mut stream = support::raw_upgrade(addr, "/");
            // Only the header, and the stream stays open: a server waiting
            // for the payload would not answer before our read timeout
            // (its own timeouts are longer), and one allocating for it
            // shows in the largest allocation below.
            stream
                .write_all(&support::frame_header(
                    true,
                    op::BINARY,
                    claim,
                    Some(support::MASK),
                ))
                .unwrap();
            expect_close(&mut stream, 1009, "frame larger than the limit");
            assert_eq!(support::read_to_end(&mut stream, 0).1, 0);
            let served = match addr == running.addr {
                true => support::next_served(&reports),
                false => accepting.result(),
            };
            assert_failed_with(&served, ProtocolError::FrameTooBig);
            assert_eq!(served.messages, []);
        }
    }

    // Frames allowed up to 2 GiB, messages not: the continuation's header
    // is what gives the message away.
    let config = Config::default().max_frame_size(2 << 30);
    let (big_frames, reports) = echo_server(config);
    let mut stream = support::raw_upgrade(big_frames.addr, "/");
    let mut wire = support::client_frame(false, op::BINARY, &[7; 100]);
    wire.extend(support::frame_header(
        true,
        op::CONTINUATION,
        1 << 30,
        Some(support::MASK),
    ));
    stream.write_all(&wire).unwrap();
    expect_close(&mut stream, 1009, "message larger than the limit");
    assert_eq!(support::read_to_end(&mut stream, 0).1, 0);
    assert_failed_with(
        &support::next_served(&reports),
        ProtocolError::MessageTooBig,
    );

    let largest = LARGEST.load(Ordering::Relaxed);
    eprintln!("largest allocation: {largest} bytes");
    assert!(
        largest < ALLOCATION_BOUND,
        "an allocation of {largest} bytes"
    );
    support::assert_served(running.addr);
    support::assert_served(big_frames.addr);
}

const FRAGMENTS: usize = 100_000;
/// Pings sent between the fragments, the last just before the final one.
const PINGS: usize = 10;

/// A text message of [`FRAGMENTS`] bytes in as many one-byte fragments;
/// returns the wire and the text.
fn hundred_thousand_fragments() -> (Vec<u8>, String) {
    let text: String = (0..FRAGMENTS)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut wire = Vec::with_capacity(FRAGMENTS * 7);
    for (i, byte) in text.bytes().enumerate() {
        let opcode = if i == 0 { op::TEXT } else { op::CONTINUATION };
        wire.extend(support::client_frame(i == FRAGMENTS - 1, opcode, &[byte]));
    }
    (wire, text)
}

/// Inserts the pings: ping `k` goes before fragment
/// `(k + 1) * FRAGMENTS / PINGS - 1`, so the last one precedes the final
/// fragment.
fn with_pings(fragments: &[u8]) -> Vec<u8> {
    const FRAME: usize = 7;
    let mut wire = Vec::with_capacity(fragments.len() + PINGS * FRAME);
    let mut at = 0;
    for k in 0..PINGS {
        let before = ((k + 1) * FRAGMENTS / PINGS - 1) * FRAME;
        wire.extend_from_slice(&fragments[at..before]);
        wire.extend(support::client_frame(true, op::PING, &[k as u8]));
        at = before;
    }
    wire.extend_from_slice(&fragments[at..]);
    wire
}

#[test]
fn hundred_thousand_one_byte_fragments_are_reassembled_and_echoed() {
    // Its wire is larger than the claims' test's allocation bound.
    let _serial = support::serial();
    let (fragments, text) = hundred_thousand_fragments();
    let wire = with_pings(&fragments);
    let (running, reports) = echo_server(Config::default());
    let accepting = accept_server(Config::default(), 1);
    for (addr, coalesced) in [(running.addr, true), (accepting.addr(), false)] {
        let mut stream = support::raw_upgrade(addr, "/");
        let mut sender = stream.try_clone().unwrap();
        let wire = wire.clone();
        let start = Instant::now();
        // Sent from another thread: the server's pongs could fill this
        // socket's buffers if nobody read them. How long it takes is
        // printed, not asserted: the reads' timeouts bound it.
        let sending = support::bounded("test-fragments", move || sender.write_all(&wire));
        let mut pongs = Vec::new();
        let echoed = loop {
            let frame = support::read_frame(&mut stream).expect("the echo before the end");
            match frame.opcode {
                0xA => pongs.push(frame.payload[0]),
                0x1 => {
                    assert!(frame.fin, "fragmented server frame");
                    break frame.payload;
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
        };
        sending.join().expect("sending the fragments");
        let took = start.elapsed();
        eprintln!(
            "{FRAGMENTS} fragments echoed in {took:?} with {} pongs (coalesced: {coalesced})",
            pongs.len()
        );
        assert!(echoed == text.as_bytes(), "the echo differs");
        // Every ping answered in order, or (on the server, where owed pongs
        // are coalesced) at least the latest one.
        assert!(pongs.windows(2).all(|w| w[0] < w[1]), "pongs {pongs:?}");
        assert_eq!(pongs.last(), Some(&(PINGS as u8 - 1)), "pongs {pongs:?}");
        if !coalesced {
            assert_eq!(pongs.len(), PINGS);
        }
        stream.write_all(&support::client_close(1000, "")).unwrap();
        expect_close(&mut stream, 1000, "");
        assert_eq!(support::read_to_end(&mut stream, 0), (Ending::Eof, 0));
        let served = match coalesced {
            true => support::next_served(&reports),
            false => accepting.result(),
        };
        served.end.expect("a clean close");
        assert_eq!(
            served.messages.len(),
            PINGS + 2,
            "pings, the text, the close"
        );
        assert_eq!(served.messages[PINGS], Message::Text(text.clone()));
    }
    support::assert_served(running.addr);
}

/// Text with one-, two-, three- and four-byte characters.
const TEXT: &str = "héllo, wörld: κόσμε 日本 🎉 ok";

#[test]
fn invalid_utf8_at_every_position_fails_with_1007_as_soon_as_it_arrives() {
    let bytes = TEXT.as_bytes();
    let cuts = [0, bytes.len() / 3, 2 * bytes.len() / 3, bytes.len()];
    let (running, reports) = echo_server(Config::default());
    let accepting = accept_server(Config::default(), bytes.len());
    for at in 0..bytes.len() {
        let mut bad = bytes.to_vec();
        bad[at] = 0xFF;
        for addr in [running.addr, accepting.addr()] {
            let mut stream = support::raw_upgrade(addr, "/");
            // One fragment at a time; the one with the bad byte is the last
            // sent: the server must not wait for the end of the message.
            for (i, piece) in cuts.windows(2).enumerate() {
                let opcode = if i == 0 { op::TEXT } else { op::CONTINUATION };
                let fragment = &bad[piece[0]..piece[1]];
                stream
                    .write_all(&support::client_frame(i == 2, opcode, fragment))
                    .unwrap();
                if (piece[0]..piece[1]).contains(&at) {
                    break;
                }
            }
            expect_close(&mut stream, 1007, "invalid utf-8 in text");
            assert_eq!(support::read_to_end(&mut stream, 0).1, 0, "at {at}");
            let served = match addr == running.addr {
                true => support::next_served(&reports),
                false => accepting.result(),
            };
            assert_failed_with(&served, ProtocolError::InvalidUtf8);
            assert_eq!(served.messages, [], "at {at}");
        }
    }
    // A character cut off by the end of the message fails at the end.
    let mut stream = support::raw_upgrade(running.addr, "/");
    let cut = &bytes[..bytes.len() - 4];
    assert!(std::str::from_utf8(cut).is_err());
    stream
        .write_all(&support::client_frame(true, op::TEXT, cut))
        .unwrap();
    expect_close(&mut stream, 1007, "invalid utf-8 in text");
    assert_failed_with(&support::next_served(&reports), ProtocolError::InvalidUtf8);
    support::assert_served(running.addr);
}

/// A timeout the tests never reach: waiting for it fails a read (each has
/// a timeout of [`TIMEOUT`]) instead of passing slowly.
const LONGER_THAN_THE_TEST: Duration = Duration::from_secs(3600);

fn normal_close(reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::NORMAL,
        reason: reason.into(),
    }))
}

#[test]
fn client_that_closes_and_keeps_tcp_open_is_hung_up_on() {
    // The server must not wait for the close timeout, the closing
    // handshake being complete once it has answered: with one far beyond
    // our read timeout, a server that waited would fail the read below.
    let config = Config::default().close_timeout(LONGER_THAN_THE_TEST);
    let (running, reports) = echo_server(config.clone());
    let accepting = accept_server(config, 1);
    for addr in [running.addr, accepting.addr()] {
        let mut stream = support::raw_upgrade(addr, "/");
        stream
            .write_all(&support::client_close(1000, "bye"))
            .unwrap();
        expect_close(&mut stream, 1000, "");
        // We never close our side: the server ends the TCP connection.
        assert_eq!(support::read_to_end(&mut stream, 0), (Ending::Eof, 0));
        let served = match addr == running.addr {
            true => support::next_served(&reports),
            false => accepting.result(),
        };
        served.end.expect("a clean close");
        assert_eq!(served.messages, [normal_close("bye")]);
    }
    support::assert_served(running.addr);
}

#[test]
fn peer_that_never_answers_our_close_is_cut_after_the_close_timeout() {
    let close_timeout = Duration::from_millis(300);
    let config = Config::default().close_timeout(close_timeout);
    let (tx, ended) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let running = Running::start(support::server(config), move |mut client| {
        client.close(CloseCode::AWAY, "going").unwrap();
        let end = loop {
            match client.recv() {
                Ok(Some(_)) => {}
                other => break other.map(|_| ()),
            }
        };
        let _ = tx.lock().unwrap().send(end.map_err(|e| e.to_string()));
    });
    // The clock starts before the request, so before the server's (which
    // starts when its close is written): the lower bound proves the wait.
    let requested = Instant::now();
    let mut stream = support::raw_upgrade(running.addr, "/");
    expect_close(&mut stream, 1001, "going");
    // Neither a close reply nor a hang-up from us.
    assert_eq!(support::read_to_end(&mut stream, 0), (Ending::Eof, 0));
    let took = requested.elapsed();
    eprintln!("unanswered close: EOF {took:?} after the request");
    assert!(
        took >= close_timeout && took < close_timeout + TIMEOUT,
        "EOF {took:?} after the request, close_timeout {close_timeout:?}"
    );
    let end = ended.recv_timeout(TIMEOUT).expect("the handler ended");
    assert_eq!(end, Ok(()), "recv after an unanswered close");
}

#[test]
fn peer_that_answers_our_close_is_not_kept_waiting_for_the_close_timeout() {
    // A close timeout far beyond our read timeout: a server that waited
    // for it after the answer would fail `finish_close`.
    let config = Config::default().close_timeout(LONGER_THAN_THE_TEST);
    let running = Running::start(support::server(config), |mut client| {
        client.close(CloseCode::AWAY, "going").unwrap();
        while let Ok(Some(_)) = client.recv() {}
    });
    let mut ws = support::connect(running.addr, "/");
    assert_eq!(support::read_close(&mut ws), Some(1001));
    support::finish_close(&mut ws);
    support::wait_until(TIMEOUT, "the handler returned", || {
        running.stats().clients == 0
    });
}

#[test]
fn data_after_the_close_frame_is_ignored_and_the_server_still_closes() {
    let (running, reports) = echo_server(Config::default());
    let accepting = accept_server(Config::default(), 1);
    for addr in [running.addr, accepting.addr()] {
        let mut stream = support::raw_upgrade(addr, "/");
        // The close, then more frames and garbage in the same write.
        let mut wire = support::client_close(1000, "");
        wire.extend(support::client_frame(true, op::TEXT, b"after the close"));
        wire.extend(support::client_frame(true, op::PING, b"ping after"));
        wire.extend_from_slice(&[0xFF; 64]);
        stream.write_all(&wire).unwrap();
        // And keep sending, paced, from another thread, until the server
        // has hung up (or a bounded number of frames went out).
        let mut sender = stream.try_clone().unwrap();
        let sending = support::bounded("test-late-data", move || {
            let late = support::client_frame(true, op::TEXT, b"still talking");
            for sent in 0..2000 {
                if sender.write_all(&late).is_err() {
                    return sent;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            2000
        });
        // Exactly one frame comes back, the close reply, then the end.
        expect_close(&mut stream, 1000, "");
        let (_, extra) = support::read_to_end(&mut stream, 0);
        assert_eq!(extra, 0, "bytes after the close reply");
        let sent = sending.join();
        eprintln!("{sent} frames sent after the close before the write failed");
        let served = match addr == running.addr {
            true => support::next_served(&reports),
            false => accepting.result(),
        };
        served.end.expect("a clean close");
        assert_eq!(
            served.messages,
            [normal_close("")],
            "nothing after the close"
        );
    }
    support::assert_served(running.addr);
}

/// Sends `before` and a ping, waits until the server's answers are in our
/// receive buffer (so the server has read `before`), sends `partial` and
/// closes: with those answers unread, the kernel resets the connection
/// instead of ending it with a FIN.
fn reset_after(mut stream: TcpStream, before: &[u8], partial: &[u8]) {
    let mut wire = before.to_vec();
    wire.extend(support::client_frame(true, op::PING, b"x"));
    stream.write_all(&wire).unwrap();
    let mut byte = [0u8; 1];
    // Blocks (within the read timeout) until an answer is here, unread.
    assert_eq!(stream.peek(&mut byte).expect("an answer"), 1);
    stream.write_all(partial).unwrap();
    drop(stream);
}

#[test]
fn resets_in_the_middle_of_a_frame_end_the_connection_quietly() {
    let header = support::frame_header(true, op::BINARY, 1000, Some(support::MASK));
    let whole = support::client_frame(true, op::TEXT, b"whole");
    let cases: [(&str, Vec<u8>, Vec<u8>); 4] = [
        (
            "mid-header",
            Vec::new(),
            support::frame_header(true, op::BINARY, 1 << 20, Some(support::MASK))[..3].to_vec(),
        ),
        ("after the header", Vec::new(), header.clone()),
        (
            "mid-payload",
            Vec::new(),
            [header.clone(), vec![1; 500]].concat(),
        ),
        ("after a whole frame", whole, header[..5].to_vec()),
    ];
    let (running, reports) = echo_server(Config::default());
    let accepting = accept_server(Config::default(), cases.len());
    for (what, before, partial) in &cases {
        for addr in [running.addr, accepting.addr()] {
            reset_after(support::raw_upgrade(addr, "/"), before, partial);
            let served = match addr == running.addr {
                true => support::next_served(&reports),
                false => accepting.result(),
            };
            support::assert_reset(&served.end, what);
            let data: Vec<_> = served.messages.iter().filter(|m| m.is_data()).collect();
            match *what {
                "after a whole frame" => assert_eq!(data, [&Message::Text("whole".into())]),
                _ => assert!(data.is_empty(), "{what}: {data:?}"),
            }
        }
    }
    support::wait_until(TIMEOUT, "every reset client gone", || {
        running.stats().clients == 0
    });
    support::assert_served(running.addr);
}
