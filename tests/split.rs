//! `Connection::split` over a `TcpStream`: one thread blocks in
//! `Reader::recv` while others send, with no read timeouts on the server.
//! The client parses every frame strictly, so a frame torn or interleaved
//! with another (a pong written in the middle of a message) fails the test.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;

use boardcast::{CloseCode, CloseFrame, Config, Error, Message, Reader, Writer};
use support::{bounded, client_close, client_frame, op, raw_upgrade, read_frame, Server};

const WRITERS: usize = 2;
const PER_WRITER: usize = 500;
const MESSAGES: usize = WRITERS * PER_WRITER;
/// A ping after every tenth message the client receives.
const PINGS: usize = MESSAGES / 10;

/// The `seq`-th message of writer `w`: text for writer 0, binary for the
/// others; it starts with `w:seq:` and crosses every length class.
fn message(w: usize, seq: usize) -> (u8, Vec<u8>) {
    let len = match seq % 10 {
        9 => 70_000,
        8 => 65_535,
        7 => 126,
        _ => (seq * 37) % 500 + 10,
    };
    let mut payload = format!("{w}:{seq}:").into_bytes();
    let opcode = if w == 0 { op::TEXT } else { op::BINARY };
    let mut i = payload.len();
    while payload.len() < len {
        let byte = if opcode == op::TEXT {
            b'a' + ((i + seq) % 26) as u8
        } else {
            (i * 7 + seq * 13 + w) as u8
        };
        payload.push(byte);
        i += 1;
    }
    (opcode, payload)
}

/// The `w:seq:` prefix of a message.
fn tag(payload: &[u8]) -> (usize, usize) {
    let mut fields = payload.splitn(3, |&b| b == b':');
    let mut number = || {
        let field = fields.next()?;
        std::str::from_utf8(field).ok()?.parse().ok()
    };
    match (number(), number()) {
        (Some(w), Some(seq)) => (w, seq),
        _ => panic!("not a message: {:02x?}", &payload[..payload.len().min(16)]),
    }
}

/// How the server side of the test ended.
#[derive(Debug)]
struct ServerEnd {
    /// What `Reader::recv` returned, up to `Ok(None)`.
    received: Vec<Message>,
    /// What each writer thread sent before its first error, and the error.
    writers: Vec<(usize, Option<Error>)>,
    /// A send on a writer clone after the reader was done.
    after: Result<(), Error>,
}

fn receive_all(mut reader: Reader<TcpStream>) -> Result<Vec<Message>, Error> {
    let mut received = Vec::new();
    // Bounded: the pings, the close, and a margin.
    for _ in 0..PINGS + 10 {
        match reader.recv()? {
            Some(message) => received.push(message),
            None => return Ok(received),
        }
    }
    panic!("recv did not end: {} messages", received.len());
}

fn send_all(writer: Writer<TcpStream>, w: usize) -> (usize, Option<Error>) {
    for seq in 0..PER_WRITER {
        let (opcode, payload) = message(w, seq);
        let result = if opcode == op::TEXT {
            writer.send_text(std::str::from_utf8(&payload).unwrap())
        } else {
            writer.send_binary(&payload)
        };
        if let Err(e) = result {
            return (seq, Some(e));
        }
    }
    (PER_WRITER, None)
}

#[test]
fn writers_and_pongs_never_tear_frames() {
    let server = Server::spawn(1, |stream| -> Result<ServerEnd, Error> {
        // The reader blocks in recv with no timeout: the close wakes it.
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        let connection = boardcast::accept(stream, &Config::default())?;
        let (reader, writer) = connection.split();
        let reading = bounded("reader", move || receive_all(reader));
        let sending: Vec<_> = (0..WRITERS)
            .map(|w| {
                let writer = writer.clone();
                bounded("writer", move || send_all(writer, w))
            })
            .collect();
        let writers = sending.into_iter().map(|s| s.join()).collect();
        let received = reading.join()?;
        let after = writer.send_text("after the close");
        Ok(ServerEnd {
            received,
            writers,
            after,
        })
    });

    let mut stream = raw_upgrade(server.addr(), "/");
    // The client's frames go out from one thread, on request.
    let (requests, pending) = mpsc::channel::<Vec<u8>>();
    let mut out = stream.try_clone().unwrap();
    let client_writer = bounded("client-writer", move || {
        for frame in pending {
            out.write_all(&frame).expect("client write");
        }
    });

    let mut next_seq = [0usize; WRITERS];
    let (mut data, mut pongs) = (0, 0);
    while data < MESSAGES || pongs < PINGS {
        let frame = read_frame(&mut stream).expect("a frame");
        assert!(frame.fin, "fragmented frame from the server");
        match frame.opcode {
            op::TEXT | op::BINARY => {
                let (w, seq) = tag(&frame.payload);
                assert!(w < WRITERS, "writer {w}");
                assert_eq!(seq, next_seq[w], "writer {w}'s messages out of order");
                let (opcode, payload) = message(w, seq);
                assert_eq!(frame.opcode, opcode, "message {w}:{seq}");
                assert!(frame.payload == payload, "message {w}:{seq} differs");
                next_seq[w] += 1;
                if data % 10 == 0 {
                    let ping = format!("ping {}", data / 10);
                    requests
                        .send(client_frame(true, op::PING, ping.as_bytes()))
                        .unwrap();
                }
                data += 1;
            }
            op::PONG => {
                assert_eq!(frame.payload, format!("ping {pongs}").as_bytes());
                pongs += 1;
            }
            other => panic!("unexpected frame {other:#x}: {frame:?}"),
        }
        assert!(data <= MESSAGES && pongs <= PINGS, "{data} {pongs}");
    }

    requests.send(client_close(1000, "enough")).unwrap();
    drop(requests);
    client_writer.join();
    let close = read_frame(&mut stream).expect("a frame");
    assert_eq!(close.close_code(), Some(1000));
    // The reader shuts the socket down once the close handshake is over.
    support::expect_eof(&mut stream);

    let end = server.result().expect("server");
    for (sent, error) in &end.writers {
        assert_eq!(*sent, PER_WRITER, "{error:?}");
    }
    let (close, pings) = end.received.split_last().expect("a close");
    assert_eq!(
        close,
        &Message::Close(Some(CloseFrame {
            code: CloseCode::NORMAL,
            reason: "enough".into()
        }))
    );
    assert_eq!(pings.len(), PINGS);
    for (k, ping) in pings.iter().enumerate() {
        assert_eq!(ping, &Message::Ping(format!("ping {k}").into_bytes()));
    }
    assert!(matches!(end.after, Err(Error::Closed)), "{:?}", end.after);
}

/// A writer blocked on a client that does not read holds the write lock;
/// a reader that then sees the stream end must not wait for that lock, but
/// shut the socket down, which wakes the writer with an error.
#[test]
fn end_of_stream_wakes_a_writer_blocked_on_a_client_that_does_not_read() {
    use std::io::Read;
    // Larger than any loopback socket buffers, so the write blocks.
    const HUGE: usize = 64 << 20;
    let server = Server::spawn(1, |stream| -> Result<_, Error> {
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        let connection = boardcast::accept(stream, &Config::default())?;
        let (mut reader, writer) = connection.split();
        let sending = bounded("writer", move || writer.send_binary(&vec![0; HUGE]));
        let reading = bounded("reader", move || reader.recv());
        Ok((reading.join(), sending.join()))
    });
    let mut stream = raw_upgrade(server.addr(), "/");
    // Once the frame's first bytes are here, the writer is inside its
    // write, holding the lock, and cannot finish.
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(head, [0x82, 127]);
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (read, sent) = server.result().expect("server");
    match read {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("reader: {other:?}"),
    }
    assert!(matches!(sent, Err(Error::Io(_))), "writer: {sent:?}");
}

/// The kernel reports a reset once, to the first call on the socket: here
/// often a writer's, before the reader's. The reader must still tell a
/// reset from the peer ending the stream.
#[test]
fn a_reset_taken_by_a_writer_is_still_a_reset_to_the_reader() {
    const ROUNDS: usize = 5;
    let server = Server::spawn(ROUNDS, |stream| -> Result<_, Error> {
        stream.set_read_timeout(None)?;
        let connection = boardcast::accept(stream, &Config::default())?;
        let (mut reader, writer) = connection.split();
        // Bounded: the peer resets after the first frame arrives.
        let sending = bounded("writer", move || {
            (0..1_000_000).find_map(|_| writer.send_text("flood").err())
        });
        let reading = bounded("reader", move || reader.recv());
        Ok((reading.join(), sending.join()))
    });
    for round in 0..ROUNDS {
        let stream = raw_upgrade(server.addr(), "/");
        // With frames unread in our buffer, closing sends a reset.
        let mut byte = [0u8; 1];
        assert_eq!(stream.peek(&mut byte).expect("a frame"), 1);
        drop(stream);
        let (read, sent) = server.result().expect("server");
        match read {
            Err(Error::Io(e)) => assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset,
                "round {round}: {e}"
            ),
            other => panic!("round {round}: reader: {other:?}"),
        }
        assert!(
            matches!(sent, Some(Error::Io(_))),
            "round {round}: writer: {sent:?}"
        );
    }
}
