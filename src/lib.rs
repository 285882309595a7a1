//! boardcast: a blocking, thread-per-connection WebSocket (RFC 6455) server
//! for small Linux boards.
//!
//! A program on a Raspberry Pi class board serves live readings to
//! dashboards in browsers, and receives their commands, without an async
//! runtime: a `std::net` listener, a thread per client, and plain blocking
//! reads and writes.
//!
//! # Why blocking
//!
//! A board serves tens to hundreds of clients, not a hundred thousand. At
//! that scale a thread per client, with a small stack, costs 14 to 22 KiB
//! of memory per idle client (measured: see [Threads and
//! memory](#threads-and-memory)) and buys code that is easy to follow, to
//! debug and to trust: no runtime, no executor, no colored functions, and a
//! binary that stays small.
//!
//! # Scope
//!
//! In scope:
//!
//! - an RFC 6455 server: the opening handshake, framing, fragmentation,
//!   UTF-8 checks and the closing handshake, over TCP or any stream you
//!   bring;
//! - subprotocol selection; same-origin WebSockets and a `Host` check
//!   against DNS rebinding by default, with allow-lists;
//! - a [`Hub`] that fans published messages out to a topic's subscribers,
//!   with a [`Policy`] for clients that fall behind;
//! - keepalive pings, and a [`Config`] limit on everything a peer can make
//!   the board hold, in memory and in time, on a [`Server`] and on a plain
//!   [`accept`] alike;
//! - graceful shutdown, and a few plain HTTP routes on the same port (the
//!   dashboard's page, a script).
//!
//! With the `deflate` feature (off by default): permessage-deflate
//! compression (RFC 7692), in pure Rust, its memory bounded: see
//! [`Config::deflate_takeover`](Config#structfield.deflate_takeover).
//!
//! Planned, each in its own issue: server-sent events, long polling and
//! polling as other transports of the hub; message history and resume
//! after a reconnect; a blocking client; TLS; a Redis bridge.
//!
//! Out of scope: async runtimes; WebSockets over HTTP/2 (RFC 8441) or
//! HTTP/3; serving arbitrary static files, or anything else of a general
//! web server beyond a few routes.
//!
//! # Quick start
//!
//! ```no_run
//! use boardcast::{Config, Message, Policy, Server};
//!
//! fn main() -> std::io::Result<()> {
//!     let server = Server::bind("0.0.0.0:8080", Config::default())?;
//!     let hub = server.hub();
//!     hub.set_policy("temperature", Policy::KeepLatest);
//!     std::thread::spawn(move || loop {
//!         hub.publish_text("temperature", r#"{"celsius":41.2}"#);
//!         std::thread::sleep(std::time::Duration::from_millis(100));
//!     });
//!     server.run(|mut client| {
//!         client.subscribe("temperature");
//!         while let Ok(Some(message)) = client.recv() {
//!             if let Message::Text(command) = message {
//!                 let _ = client.send_text(&format!("ack {command}"));
//!             }
//!         }
//!     })
//! }
//! ```
//!
//! # Threads and memory
//!
//! [`Server::run`] accepts on the calling thread and gives each connection
//! two threads with small stacks ([`Config::stack_size`], 64 KiB by
//! default): one runs the handshake and then your handler, which reads
//! with [`Client::recv`]; the other sleeps until the client has something
//! to send that may have to wait (its handler's sends, control frames, what
//! its socket would not take at once). A [`Hub`] publish encodes a frame
//! once and queues it for every subscriber without blocking; the server's
//! one flusher thread writes those queues out without blocking, many
//! clients per wake-up. When a client falls behind, the topic's [`Policy`] decides
//! what gives. Every per-client buffer is bounded by a
//! [`Config`] limit, so the memory a client can make the board hold is
//! bounded too.
//!
//! What an idle client costs, measured with the default [`Config`] on an
//! x86-64 Linux VM with 1000 and 5000 idle clients (`BENCHMARKS.md` in the
//! repository; `tests/footprint.rs` repeats the first figure):
//!
//! - a hub subscriber of a [`Server`] (`examples/broadcast`): about 22 KiB
//!   of resident memory, of which 16 KiB are the touched stack pages of its
//!   two threads and 6 KiB heap;
//! - a [`Connection`] on one thread of its own (`examples/echo`): about
//!   14 KiB, of which 8 KiB stack.
//!
//! A thread's whole [`Config::stack_size`] is reserved as address space,
//! but only the pages it touches are resident.
//!
//! # Layers
//!
//! Each layer uses only the ones below it; `tests/layering.rs` fails the
//! build's tests when an import points upward or two files import each
//! other.
//!
//! - **The sans-I/O core**: [`frame`] (the codec, and the one frame
//!   encoder), [`handshake`] (the upgrade request and its responses),
//!   [`protocol`] (an open connection in both roles, in two halves:
//!   [`Inbound`](protocol::Inbound) receives, [`Outbound`](protocol::Outbound)
//!   sends and owns the closing state), [`extension`] (the seam for
//!   per-message extensions, and permessage-deflate), [`Message`],
//!   [`Error`] and [`Config`]. Pure
//!   functions and state machines over byte slices: no sockets, threads or
//!   channels, tested with byte literals.
//! - **The hub**: topics, policies, sequence numbers and an epoch, each
//!   topic's recent history and resume, with no transport; it reaches each
//!   subscriber through the [`Subscriber`](hub::Subscriber) trait. Beside
//!   it, [`wire`]: the `boardcast.v1` browser protocol, the JSON of
//!   `GET /latest`, and `boardcast.js`.
//! - **The blocking layer**: [`Connection`] drives the core over any
//!   `Read + Write` stream (a `TcpStream`, a TLS stream you bring, a pipe in
//!   a test), keeping the configured time limits over one that takes
//!   [`Timeouts`]; [`Connection::split`] lets one thread block reading while
//!   others send, over any [`Socket`].
//! - **The runtime**: [`Server`] and its [`Client`]s: the accept loop, a
//!   thread per client, the WebSocket subscriber of the hub (a bounded
//!   outbox, the flusher, a writer thread), keepalive and shutdown; and the
//!   HTTP transports ([`Server::transports`]: Server-Sent Events, long
//!   polling, polling), whose sessions the same handler gets as
//!   [`Client`]s.
//!
//! # Example: an echo server over plain connections
//!
//! [`accept`] over a `TcpStream` keeps every time limit of the [`Config`]
//! as [`Server`] does: the handshake deadline, the write timeout, keepalive
//! pings and the message deadline (see [`Connection`'s time
//! limits](Connection#time-limits)). What only [`Server`] does is cap the
//! connections, shut down gracefully and fan out through a [`Hub`]; a
//! plain accept loop caps its connections (its threads) itself:
//!
//! ```no_run
//! use std::net::{TcpListener, TcpStream};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use std::thread;
//!
//! use boardcast::{Config, Error};
//!
//! fn main() -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:9001")?;
//!     // Shared, not cloned into each thread: a thread keeps every stack
//!     // page it touched, and a Config moved by value deepens its start.
//!     let config = Arc::new(Config::default());
//!     let live = Arc::new(AtomicUsize::new(0));
//!     for stream in listener.incoming() {
//!         let Ok(stream) = stream else { continue };
//!         if live.fetch_add(1, Ordering::SeqCst) >= config.max_connections {
//!             // Full: dropping the stream closes it. (`examples/echo`
//!             // answers 503 first.)
//!             live.fetch_sub(1, Ordering::SeqCst);
//!             continue;
//!         }
//!         let (live, config) = (Arc::clone(&live), Arc::clone(&config));
//!         thread::Builder::new()
//!             .stack_size(config.stack_size)
//!             .spawn(move || {
//!                 let _ = echo(stream, &config);
//!                 live.fetch_sub(1, Ordering::SeqCst);
//!             })?;
//!     }
//!     Ok(())
//! }
//!
//! fn echo(stream: TcpStream, config: &Config) -> Result<(), Error> {
//!     let mut connection = boardcast::accept(stream, config)?;
//!     while let Some(message) = connection.recv()? {
//!         if message.is_data() {
//!             connection.send(message)?;
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Logging
//!
//! The library logs through the [`log`] facade and never prints: `warn`
//! for trouble on the server itself (accept failing, threads that will not
//! end), `info` for refused handshakes, failed connections and clients
//! disconnected by a policy or the keepalive, `debug` for each accepted
//! handshake, close and HTTP response.
//!
//! # Minimum Rust version
//!
//! The library builds with Rust 1.82 or later (`rust-version` in
//! `Cargo.toml`); its tests' dev-dependencies need 1.88.
//!
//! [`Config::stack_size`]: Config#structfield.stack_size

// `deny`, not `forbid`: `socket::sys::set_int_option` alone allows it, for
// the one `setsockopt` std has no safe setter for (SO_SNDBUF, which bounds
// the kernel's memory per client that does not read; see SECURITY.md).
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod config;
mod connection;
mod error;
pub mod extension;
pub mod frame;
pub mod handshake;
pub mod hub;
mod message;
pub mod protocol;
mod server;
mod socket;
pub mod wire;

pub use config::{Config, ContextTakeover};
pub use connection::{accept, Connection, Handshake, Reader, Timeouts, Writer};
pub use error::{Error, HandshakeError, ProtocolError};
pub use handshake::{Accept, Request, Response};
pub use hub::{Hub, Policy, Published, Stats};
pub use message::{CloseCode, CloseFrame, Message};
pub use server::{Client, Sender, Server, ShutdownHandle, Transports};
pub use socket::Socket;
