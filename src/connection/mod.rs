//! The blocking driver: an open connection over any `Read + Write` stream,
//! its opening handshake ([`accept`], [`Handshake`]), and its split into a
//! reader and writers that work on different threads.

use std::io::{self, IoSlice, Read, Write};

use crate::config::Config;
use crate::error::Error;
use crate::frame::{Frame, OpCode};
use crate::message::{CloseCode, Message};
use crate::protocol::{Inbound, Outbound, Reply, Role, State};
use crate::socket::{self, Socket};

mod accept;
mod split;

pub(crate) use accept::Received;
pub use accept::{accept, Handshake};
pub use split::{Reader, Writer};

/// An open WebSocket connection over a stream, used from one thread.
///
/// Receiving answers pings and close frames for you. To receive on one
/// thread while sending from others, [`split`](Self::split) it.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    inbound: Inbound,
    outbound: Outbound,
    done: bool,
}

impl<S: Read + Write> Connection<S> {
    /// Wraps a stream whose opening handshake is already done elsewhere,
    /// at either end: `role` says which.
    pub fn from_upgraded(stream: S, role: Role, config: &Config) -> Self {
        Connection::new(stream, Inbound::new(role, config), role)
    }

    pub(crate) fn new(stream: S, inbound: Inbound, role: Role) -> Self {
        Connection {
            stream,
            inbound,
            outbound: Outbound::new(role),
            done: false,
        }
    }

    /// Receives the next message, blocking until it is complete.
    ///
    /// Pings are answered with a pong and returned; the peer's close frame
    /// is answered with the same code and returned as [`Message::Close`].
    /// Returns `Ok(None)` once the connection is closed cleanly.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] when the peer breaks RFC 6455 (a close frame with
    /// the matching code has been sent, and the connection is over);
    /// [`Error::Io`] when the stream fails, times out, or ends without a
    /// close frame (`UnexpectedEof`).
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        let mut io = Single {
            stream: &mut self.stream,
            outbound: &self.outbound,
        };
        recv(&mut self.inbound, &mut self.done, &mut io)
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

    /// The stream, e.g. to set timeouts. Reading or writing it directly
    /// breaks the framing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream, with any bytes already received and not yet decoded lost.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: Socket + Read + Write> Connection<S> {
    /// Splits the connection so that one thread can block in
    /// [`Reader::recv`] while others send through [`Writer`]s, with no
    /// polling and no read timeouts.
    ///
    /// Every frame is written whole under one lock, so the pongs and close
    /// replies the reader owes never interleave with the writers' frames.
    /// It follows that the reader waits for a writer's frame to go out
    /// before it answers a ping or a close: set a write timeout on the
    /// stream if a peer may stop reading, or a writer blocked on it holds
    /// the reader too. (An end of stream does not wait: the reader shuts
    /// the socket down, which fails the blocked write.) [`Server`] always
    /// sets one.
    ///
    /// [`Server`]: crate::Server
    pub fn split(self) -> (Reader<S>, Writer<S>) {
        split::split(self.stream, self.inbound, self.outbound, self.done)
    }
}

/// Writes a frame's header and payload with as few system calls as the
/// stream allows (one `writev` on a socket), then flushes.
pub(crate) fn write_frame<W: Write>(mut stream: W, frame: &Frame<'_>) -> Result<(), Error> {
    socket::write_all_vectored(
        &mut stream,
        &mut [IoSlice::new(frame.header()), IoSlice::new(frame.payload())],
    )?;
    stream.flush()?;
    Ok(())
}

/// What the receive loop needs from the stream: bytes in, and a way to
/// send the replies the receiving half owes.
pub(crate) trait Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sends a reply; returns whether one went out: none does when our
    /// close frame already had (a pong is then dropped, and a close reply
    /// finishes the handshake).
    fn reply(&mut self, reply: &Reply<'_>) -> Result<bool, Error>;
    /// Whether our close frame has gone out.
    fn is_closing(&self) -> bool;
    /// Whether the link has been quiet, so the next read may use a small
    /// buffer (see [`Inbound::set_cold`]).
    fn is_cold(&self) -> bool {
        false
    }
    /// Whether an end of stream was a reset. The kernel reports a reset
    /// once, to whichever call comes first; where another thread writes,
    /// its write may have taken it, and the reader sees a bare end of
    /// stream. A write after a reset still fails; after the peer's FIN it
    /// passes.
    fn was_reset(&mut self) -> bool {
        false
    }
}

/// Whether a zero-length write fails: see [`Duplex::was_reset`].
pub(crate) fn write_fails(stream: &(impl Socket + ?Sized)) -> bool {
    stream.write(&[]).is_err()
}

struct Single<'a, S> {
    stream: &'a mut S,
    outbound: &'a Outbound,
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

    fn is_closing(&self) -> bool {
        self.outbound.is_closing()
    }
}

/// The receive loop of every driver ([`Connection`], [`Reader`], the
/// server's clients): reads until a message is complete, and sends what
/// [`Reply`] says it is owed.
pub(crate) fn recv(
    inbound: &mut Inbound,
    done: &mut bool,
    io: &mut impl Duplex,
) -> Result<Option<Message>, Error> {
    loop {
        if *done {
            return Ok(None);
        }
        match inbound.next_message() {
            Ok(Some(message)) => {
                if let Some(reply) = Reply::to(&message) {
                    let closing = matches!(message, Message::Close(_));
                    *done |= closing;
                    let sent = io.reply(&reply)?;
                    if closing {
                        log::debug!(
                            "close {} by peer: {message:?}",
                            if sent { "started" } else { "answered" }
                        );
                    }
                }
                return Ok(Some(message));
            }
            Ok(None) => {}
            Err(violation) => {
                *done = true;
                log::info!("failing connection: {violation}");
                if let Err(e) = io.reply(&Reply::to_violation(violation)) {
                    log::debug!("could not send the close frame: {e}");
                }
                return Err(Error::Protocol(violation));
            }
        }
        inbound.set_cold(io.is_cold());
        let n = match io.read(inbound.buffer()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A read timeout leaves the connection usable: the caller may
            // ping and call again.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(e.into())
            }
            Err(e) => {
                *done = true;
                return Err(e.into());
            }
        };
        if n == 0 {
            *done = true;
            // After our close frame, the peer may just hang up.
            if io.is_closing() {
                return Ok(None);
            }
            if io.was_reset() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "connection reset by peer",
                )
                .into());
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection ended without a close frame",
            )
            .into());
        }
        inbound.commit(n);
    }
}
