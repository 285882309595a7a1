//! `Handshake::read` over a stream that delivers the input in pieces of
//! sizes the input chooses (as the network does), then `accept`: never
//! panics, never reads more than `max_request_size`, allocates no more than
//! the limit allows, agrees with `Request::parse` on the bytes it read, and
//! writes exactly one well-formed reply (a 101, or the refusal its error
//! names) or, when the stream ends first, nothing.
//!
//! Input: the first byte picks the piece sizes (1 to 16 bytes, cycling
//! through the next four bytes), the rest is what the peer sends.
#![no_main]

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};

use boardcast::handshake::{Request, Status};
use boardcast::{Accept, Config, Error, Handshake};
use libfuzzer_sys::fuzz_target;

#[path = "alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// Reads come from `input` in pieces of `sizes` (cycled); writes are kept.
/// The counts are shared: the handshake owns the stream.
struct Stream<'a> {
    input: &'a [u8],
    read: &'a Cell<usize>,
    sizes: Vec<usize>,
    reads: usize,
    written: &'a RefCell<Vec<u8>>,
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.sizes[self.reads % self.sizes.len()];
        self.reads += 1;
        let at = self.read.get();
        let n = size.min(buf.len()).min(self.input.len() - at);
        buf[..n].copy_from_slice(&self.input[at..at + n]);
        self.read.set(at + n);
        Ok(n)
    }
}

/// In memory: no time limits apply.
impl boardcast::Timeouts for Stream<'_> {}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The status code of a reply, which must be one whole head that says the
/// connection closes (a refusal) or upgrades (a 101).
fn status_of(reply: &[u8]) -> u16 {
    let text = std::str::from_utf8(reply).expect("a UTF-8 reply");
    let (head, _body) = text.split_once("\r\n\r\n").expect("a reply head");
    let status: u16 = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head:?}"));
    let connection = head
        .lines()
        .find_map(|line| line.strip_prefix("Connection: "))
        .unwrap_or_else(|| panic!("no Connection header: {head:?}"));
    match status {
        101 => assert_eq!(connection, "Upgrade"),
        _ => assert_eq!(connection, "close"),
    }
    status
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (sizes, input) = rest.split_at(rest.len().min(4));
    let mut sizes: Vec<usize> = sizes
        .iter()
        .map(|b| 1 + usize::from((b ^ pick) % 16))
        .collect();
    if sizes.is_empty() || pick & 0x80 != 0 {
        // Or all at once, as far as the buffer takes it.
        sizes = vec![usize::MAX];
    }
    let config = Config::default()
        .max_request_size(1024)
        .max_headers(16)
        .protocols(["chat", "sensors.v1"]);
    let (read, written) = (Cell::new(0), RefCell::new(Vec::new()));
    let stream = Stream {
        input,
        read: &read,
        sizes,
        reads: 0,
        written: &written,
    };
    alloc::reset();
    let result = Handshake::read(stream, &config);
    let read = read.get();
    assert!(
        read <= config.max_request_size,
        "read {read} bytes, limit {}",
        config.max_request_size
    );
    assert!(
        alloc::largest() <= 4 * config.max_request_size,
        "an allocation of {} bytes",
        alloc::largest()
    );
    let parsed = Request::parse(&input[..read], &config);
    match result {
        Ok(handshake) => {
            let Ok(Status::Complete(request)) = parsed else {
                panic!("read a request that parse() does not see: {parsed:?}");
            };
            assert_eq!(handshake.request().len(), request.len());
            assert_eq!(handshake.request().target(), request.target());
            let valid = request.validate(&config);
            assert!(written.borrow().is_empty(), "a reply before the decision");
            let accepted = handshake.accept(Accept::new());
            let status = status_of(&written.borrow());
            match (accepted, valid) {
                (Ok(_), Ok(_)) => assert_eq!(status, 101),
                (Err(Error::Handshake(e)), Err(expected)) => {
                    assert_eq!(e, expected);
                    assert_eq!(status, e.status());
                }
                (accepted, valid) => panic!(
                    "accept gave {:?}, validate {valid:?}",
                    accepted.map(|_| "a connection")
                ),
            }
        }
        Err(Error::Handshake(e)) => {
            // Refused by the parser, or (a whole request) by the Host check
            // that `Handshake::read` runs with the machine's hostname.
            let expected = match &parsed {
                Ok(Status::Complete(request)) => request
                    .check_host(&config, hostname().as_deref())
                    .err(),
                _ => parsed.err(),
            };
            assert_eq!(expected, Some(e), "parse() and check_host() on the bytes read");
            assert_eq!(status_of(&written.borrow()), e.status());
        }
        Err(Error::Io(e)) => {
            // Only the end of the stream, before a complete head.
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
            assert_eq!(read, input.len(), "ended with bytes left");
            assert!(matches!(parsed, Ok(Status::Partial)), "{parsed:?}");
            assert!(written.borrow().is_empty(), "a reply to a request never read");
        }
        Err(e) => panic!("unexpected error {e}"),
    }
});

/// The machine's hostname, as `Handshake::read` reads it.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim_end().to_owned())
}
