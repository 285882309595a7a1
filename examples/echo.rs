//! An echo server, one thread per connection: every text or binary message
//! comes back as it was sent. It is the server the Autobahn conformance run
//! (`scripts/autobahn.sh`) drives.
//!
//! `boardcast::accept` over a `TcpStream` keeps the config's time limits
//! (handshake deadline, write timeout, keepalive, message deadline); the
//! cap on connections is this loop's own: past `max_connections`, a new
//! connection gets `503 Service Unavailable` and no thread.
//!
//! ```text
//! cargo run --release --example echo -- 127.0.0.1:9001 [--max-connections N]
//!     [--deflate-threshold BYTES]
//! ```
//!
//! Built with `--features deflate`, it agrees to permessage-deflate;
//! `--deflate-threshold 0` compresses every message, even those that would
//! not shrink (Autobahn's runner, kosoku 0.1.0, fails a case that gets an
//! uncompressed text message on a compressed connection, which RFC 7692
//! allows: `scripts/autobahn.sh` passes it).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use boardcast::{Config, Error, Message, Response};

#[path = "common/args.rs"]
mod args;

use args::Args;

fn main() -> std::io::Result<()> {
    env_logger::init();
    let mut args = Args::new(
        "echo",
        "[ADDR] [--max-connections N] [--deflate-threshold BYTES]",
    );
    // The benchmarks hold thousands of idle connections: they raise it.
    let max_connections = args.option("--max-connections", Config::default().max_connections);
    let deflate_threshold = args.option("--deflate-threshold", Config::default().deflate_threshold);
    let addr = args.address("127.0.0.1:9001");
    args.finish();
    let listener = TcpListener::bind(&addr)?;
    println!("echo server on ws://{}", listener.local_addr()?);
    // Autobahn's 9.x cases send messages of up to 16 MiB; the library's
    // defaults stay sized for a board.
    // Shared, not cloned per connection: a thread keeps every stack page it
    // touched, and the closure carrying a Config by value is moved through
    // several frames as the thread starts.
    let config = Arc::new(
        Config::default()
            .max_message_size(16 << 20)
            .max_frame_size(16 << 20)
            .max_connections(max_connections)
            .deflate_threshold(deflate_threshold),
    );
    let live = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                log::warn!("accept failed: {e}");
                continue;
            }
        };
        let Some(slot) = Slot::take(&live, config.max_connections) else {
            refuse(stream);
            continue;
        };
        let config = Arc::clone(&config);
        let spawned = thread::Builder::new()
            .name("echo-client".into())
            .stack_size(config.stack_size)
            .spawn(move || {
                let _slot = slot;
                let _ = stream.set_nodelay(true);
                if let Err(e) = echo(stream, &config) {
                    log::info!("connection ended: {e}");
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot spawn a connection thread: {e}");
        }
    }
    Ok(())
}

/// One of the `max_connections` places, given back when dropped (when the
/// connection's thread ends, or could not start).
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(live: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        live.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()?;
        Some(Slot(Arc::clone(live)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers 503 on the accepting thread and closes: the reply fits in the
/// new socket's empty buffer, so the write does not wait for the client.
fn refuse(mut stream: TcpStream) {
    let mut reply = Vec::new();
    Response::text(503, "server full, try again later")
        .header("Retry-After", "1")
        .write(true, &mut reply);
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(&reply);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Read what already arrived, so closing sends FIN rather than RST and
    // the client sees the reply.
    let mut sink = [0u8; 1024];
    while matches!(std::io::Read::read(&mut stream, &mut sink), Ok(n) if n > 0) {}
}

fn echo(stream: std::net::TcpStream, config: &Config) -> Result<(), Error> {
    let mut connection = boardcast::accept(stream, config)?;
    while let Some(message) = connection.recv()? {
        if let Message::Text(_) | Message::Binary(_) = message {
            connection.send(message)?;
        }
    }
    Ok(())
}
