//! The blocking driver: an open connection over any `Read + Write` stream,
//! its opening handshake ([`accept`], [`Handshake`]), and its split into a
//! reader and writers that work on different threads.

use std::io::{self, Read, Write};
use std::time::Duration;

use crate::config::Config;
use crate::connection::clock::Time;
use crate::connection::driver::{recv, write_frame, Duplex};
use crate::error::Error;
use crate::frame::OpCode;
use crate::message::{CloseCode, Message};
use crate::protocol::{Inbound, Outbound, Reply, Role, State};
use crate::socket::Socket;

mod accept;
pub(crate) mod clock;
pub(crate) mod driver;
mod split;
mod timeouts;

pub(crate) use accept::Received;
pub use accept::{accept, Handshake};
pub use split::{Reader, Writer};
pub use timeouts::Timeouts;

/// An open WebSocket connection over a stream, used from one thread.
///
/// Receiving answers pings and close frames for you. To receive on one
/// thread while sending from others, [`split`](Self::split) it.
///
/// # Time limits
///
/// A connection made by [`accept`] or [`Handshake`] over a stream that
/// takes [`Timeouts`] (a `TcpStream`) keeps [`Config`]'s time limits as
/// the [`Server`](crate::Server) does, while [`recv`](Self::recv) blocks:
///
/// - after [`ping_interval`](Config#structfield.ping_interval) with nothing
///   received it sends a ping, and when nothing at all arrives within
///   [`pong_timeout`](Config#structfield.pong_timeout) after it, `recv`
///   fails with a `TimedOut` [`Error::Io`] ("no answer to the keepalive
///   ping");
/// - a message that takes longer than
///   [`message_timeout`](Config#structfield.message_timeout) to arrive
///   fails the connection with close code 1008 and
///   [`ProtocolError::MessageTooSlow`](crate::ProtocolError::MessageTooSlow);
/// - after our close frame, `recv` waits at most
///   [`close_timeout`](Config#structfield.close_timeout) for the peer's,
///   then returns `Ok(None)`;
/// - every write, the pongs `recv` sends included, fails after
///   [`write_timeout`](Config#structfield.write_timeout) on a peer that
///   does not read: the connection is then over (part of a frame may have
///   gone out).
///
/// To do that, `recv` owns the stream's read timeout: it sets it before it
/// reads, and a read timing out is a deadline to check, not an error. To
/// have `recv` give up waiting for a message after a while (to send
/// something from the same thread, say), use the connection's own
/// [`set_read_timeout`](Self::set_read_timeout), not the stream's.
///
/// A connection made with [`from_upgraded`](Self::from_upgraded) keeps no
/// time limits and leaves the stream's read timeout to you: one you set
/// makes `recv` return its `WouldBlock` or `TimedOut` error, and the
/// connection stays usable.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    inbound: Inbound,
    outbound: Outbound,
    done: bool,
    time: Time,
    /// `<S as Timeouts>::set_read_timeout`, taken where the stream was known
    /// to take timeouts; a no-op when the clock is off.
    set_read_timeout: fn(&S, Option<Duration>) -> io::Result<()>,
}

impl<S: Read + Write> Connection<S> {
    /// Wraps a stream whose opening handshake is already done elsewhere,
    /// at either end: `role` says which. The connection keeps no time
    /// limits (see [Time limits](#time-limits)): set the stream's timeouts
    /// yourself, and ping from your own loop.
    pub fn from_upgraded(stream: S, role: Role, config: &Config) -> Self {
        Connection {
            stream,
            inbound: Inbound::new(role, config),
            outbound: Outbound::new(role),
            done: false,
            time: Time::Off,
            set_read_timeout: |_, _| Ok(()),
        }
    }

    /// A connection that keeps `config`'s time limits, over a stream that
    /// takes timeouts.
    pub(crate) fn timed(stream: S, inbound: Inbound, role: Role, config: &Config) -> Self
    where
        S: Timeouts,
    {
        Connection {
            stream,
            inbound,
            outbound: Outbound::new(role),
            done: false,
            time: Time::keepalive(config),
            set_read_timeout: <S as Timeouts>::set_read_timeout,
        }
    }

    /// Receives the next message, blocking until it is complete.
    ///
    /// Pings are answered with a pong and returned; the peer's close frame
    /// is answered with the same code and returned as [`Message::Close`].
    /// Returns `Ok(None)` once the connection is closed cleanly. Keeps the
    /// [time limits](#time-limits) of a connection that has them.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] when the peer breaks RFC 6455 or sends a message
    /// too slowly (a close frame with the matching code has been sent, and
    /// the connection is over); [`Error::Io`] when the stream fails, times
    /// out (a ping unanswered, a write blocked past the write timeout, or
    /// your own read timeout), or ends without a close frame
    /// (`UnexpectedEof`).
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        let mut io = Single {
            stream: &mut self.stream,
            outbound: &self.outbound,
            set_read_timeout: self.set_read_timeout,
        };
        recv(&mut self.inbound, &mut self.done, &mut self.time, &mut io)
    }

    /// Sends a message. Sending [`Message::Close`] starts the closing
    /// handshake; keep calling [`recv`](Self::recv) until it returns
    /// `Ok(None)` to finish it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after our close frame was sent,
    /// [`Error::ControlTooLong`] for a control payload over 125 bytes,
    /// [`Error::Io`] when writing fails.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        let frame = self.outbound.message(&message)?;
        write_frame(&mut self.stream, &frame)
    }

    /// Sends a text message.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_frame(OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_frame(OpCode::Binary, data)
    }

    /// Sends a ping; the pong comes back through [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_frame(OpCode::Ping, payload)
    }

    fn send_frame(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        let frame = self.outbound.frame(opcode, payload)?;
        write_frame(&mut self.stream, &frame)
    }

    /// Starts the closing handshake with this code and reason (at most 123
    /// bytes). Keep calling [`recv`](Self::recv) until it returns `Ok(None)`.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let frame = self.outbound.close(Some(code), reason)?;
        write_frame(&mut self.stream, &frame)
    }

    /// Whether our close frame has been sent.
    pub fn is_closing(&self) -> bool {
        self.outbound.is_closing()
    }

    /// Where the connection stands in its closing handshake.
    pub fn state(&self) -> State {
        State::of(&self.inbound, &self.outbound)
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, e.g. to set its options. Reading or writing it directly
    /// breaks the framing; a connection with [time limits](#time-limits)
    /// sets the read timeout itself.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream, with any bytes already received and not yet decoded lost.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: Read + Write + Timeouts> Connection<S> {
    /// Sets how long [`recv`](Self::recv) waits for a message before it
    /// returns an [`Error::Io`] of kind `WouldBlock`, after which the
    /// connection is still usable: call `recv` again. `None` (the default)
    /// waits until a message comes. The [time limits](#time-limits) run on
    /// across such returns: a ping still goes out after `ping_interval` of
    /// silence, however many `recv` calls it spans.
    ///
    /// Use this rather than the stream's own read timeout, which `recv`
    /// sets for its deadlines. A `Duration::ZERO` counts as a millisecond,
    /// so that `recv` always reads.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), boardcast::Error> {
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let (stream, _) = listener.accept()?;
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// let mut connection = boardcast::accept(stream, &boardcast::Config::default())?;
    /// connection.set_read_timeout(Some(Duration::from_millis(100)));
    /// loop {
    ///     match connection.recv() {
    ///         Ok(Some(message)) => println!("{message:?}"),
    ///         Ok(None) => break,
    ///         Err(boardcast::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
    ///             connection.send_text("tick")?;
    ///         }
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.time.set_read_timeout(timeout);
        // Known to take timeouts here, whichever way it was made.
        self.set_read_timeout = <S as Timeouts>::set_read_timeout;
    }
}

impl<S: Socket + Read + Write> Connection<S> {
    /// Splits the connection so that one thread can block in
    /// [`Reader::recv`] while others send through [`Writer`]s, with no
    /// polling.
    ///
    /// Every frame is written whole under one lock, so the pongs and close
    /// replies the reader owes never interleave with the writers' frames.
    /// It follows that the reader waits for a writer's frame to go out
    /// before it answers a ping or a close: set a write timeout on the
    /// stream if a peer may stop reading, or a writer blocked on it holds
    /// the reader too. (An end of stream does not wait: the reader shuts
    /// the socket down, which fails the blocked write.) [`Server`] always
    /// sets one, and so do [`accept`] and [`Handshake`].
    ///
    /// The reader keeps the connection's [time limits](#time-limits), if it
    /// has them; its keepalive pings go out through the writers' lock.
    ///
    /// [`Server`]: crate::Server
    pub fn split(self) -> (Reader<S>, Writer<S>) {
        split::split(
            self.stream,
            self.inbound,
            self.outbound,
            self.done,
            self.time,
        )
    }
}

struct Single<'a, S> {
    stream: &'a mut S,
    outbound: &'a Outbound,
    set_read_timeout: fn(&S, Option<Duration>) -> io::Result<()>,
}

impl<S: Read + Write> Duplex for Single<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }

    fn reply(&mut self, reply: &Reply<'_>) -> Result<bool, Error> {
        match self.outbound.reply(reply) {
            Some(frame) => write_frame(&mut *self.stream, &frame).map(|()| true),
            None => Ok(false),
        }
    }

    fn ping(&mut self) -> Result<(), Error> {
        let frame = self.outbound.frame(OpCode::Ping, b"")?;
        write_frame(&mut *self.stream, &frame)
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (self.set_read_timeout)(self.stream, timeout)
    }

    fn is_closing(&self) -> bool {
        self.outbound.is_closing()
    }
}
