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
//! that scale a thread per client, with a small stack, costs a few
//! kilobytes of memory and buys code that is easy to follow, to debug and
//! to trust: no runtime, no executor, no colored functions, and a binary
//! that stays small.
//!
//! # Layers
//!
//! - [`frame`], [`handshake`] and [`protocol`] are the sans-I/O core: pure
//!   functions and state machines over byte slices, tested with byte
//!   literals.
//! - [`Connection`] drives them over any `Read + Write` stream (a
//!   `TcpStream`, a TLS stream you bring, a pipe in a test), and
//!   [`Connection::split`] lets one thread block reading while others send.
//!
//! # Example: an echo server
//!
//! ```no_run
//! use std::net::TcpListener;
//! use boardcast::{Config, Message};
//!
//! fn main() -> Result<(), boardcast::Error> {
//!     let listener = TcpListener::bind("127.0.0.1:9001")?;
//!     let config = Config::default();
//!     for stream in listener.incoming() {
//!         let (stream, config) = (stream?, config.clone());
//!         std::thread::spawn(move || -> Result<(), boardcast::Error> {
//!             let mut connection = boardcast::accept(stream, &config)?;
//!             while let Some(message) = connection.recv()? {
//!                 if message.is_data() {
//!                     connection.send(message)?;
//!                 }
//!             }
//!             Ok(())
//!         });
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Logging
//!
//! The library logs through the [`log`] facade and never prints: `info`
//! for refused handshakes and failed connections, `debug` for each accepted
//! handshake, close and HTTP response.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod config;
mod connection;
mod error;
pub mod frame;
pub mod handshake;
pub mod hub;
mod message;
pub mod protocol;
mod server;

pub use config::Config;
pub use connection::{accept, Connection, Handshake, Reader, Socket, Writer};
pub use error::{Error, HandshakeError, ProtocolError};
pub use frame::CloseCode;
pub use handshake::{Accept, Request, Response};
pub use hub::{Hub, Policy, Stats};
pub use message::{CloseFrame, Message};
pub use server::{Client, Sender, Server, ShutdownHandle};
