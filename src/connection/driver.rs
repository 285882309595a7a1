//! What every driver of a connection shares (the plain [`Connection`],
//! the split [`Reader`], the server's clients): the receive loop, which
//! sends what [`Reply`] says a received frame is owed and keeps the
//! [`Clock`]'s deadlines, and the writing of a frame.
//!
//! [`Connection`]: super::Connection
//! [`Reader`]: super::Reader

use std::io::{self, IoSlice, Write};
use std::time::{Duration, Instant};

use crate::connection::clock::{Clock, Due, Timekeeper};
use crate::error::{Error, ProtocolError};
use crate::frame::Frame;
use crate::message::Message;
use crate::protocol::{Inbound, Reply};
use crate::socket::{self, Socket};

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
    /// Sends a keepalive ping (only asked of a driver whose [`Clock`]
    /// pings).
    fn ping(&mut self) -> Result<(), Error>;
    /// Sets how long a read may block (only asked of a driver whose
    /// [`Clock`] has deadlines).
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
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

/// The receive loop of every driver ([`Connection`], [`Reader`], the
/// server's clients): reads until a message is complete, sends what
/// [`Reply`] says it is owed, and keeps the `clock`'s deadlines through the
/// stream's read timeout: a keepalive ping after a quiet spell, the
/// connection cut (`TimedOut`) when nothing answers it, failed with
/// [`ProtocolError::MessageTooSlow`] when a message takes too long, and a
/// `WouldBlock` error, the connection still usable, when the caller's read
/// timeout passes with no message.
pub(crate) fn recv(
    inbound: &mut Inbound,
    done: &mut bool,
    time: &mut impl Timekeeper,
    io: &mut impl Duplex,
) -> Result<Option<Message>, Error> {
    if let Some(clock) = time.made() {
        clock.start(Instant::now());
    }
    loop {
        if *done {
            return Ok(None);
        }
        match inbound.next_message() {
            Ok(Some(message)) => {
                if let Some(reply) = Reply::to(&message) {
                    let closing = matches!(message, Message::Close(_));
                    *done |= closing;
                    let sent = match io.reply(&reply) {
                        Ok(sent) => sent,
                        Err(e) => {
                            // A write that failed or timed out may have left
                            // part of a frame: nothing more can follow it.
                            *done = true;
                            return Err(e);
                        }
                    };
                    if closing {
                        log::debug!(
                            "close {} by peer: {message:?}",
                            if sent { "started" } else { "answered" }
                        );
                    }
                }
                // The next message's deadline starts with its own first
                // byte.
                if let Some(clock) = time.made() {
                    clock.receiving(inbound.is_receiving());
                }
                return Ok(Some(message));
            }
            Ok(None) => {}
            Err(violation) => return Err(fail(violation, done, io)),
        }
        if let Some(clock) = time.clock() {
            clock.receiving(inbound.is_receiving());
            if let Some(end) = keep_time(clock, done, io) {
                return end;
            }
        }
        inbound.set_cold(io.is_cold());
        let read = io.read(inbound.buffer());
        if read.is_err() {
            // Give back the part of a message the buffer lent for the read.
            inbound.commit(0);
        }
        let n = match read {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The timeout the clock set: a deadline has passed. (A read
            // timeout of the clock's never ends before its deadline, so a
            // timeout with none due is someone else's, or a socket left
            // non-blocking: the caller's, as below.)
            Err(e)
                if socket::is_timeout(&e)
                    && time.made().is_some_and(|clock| {
                        clock.is_armed() && clock.due(Instant::now(), io.is_closing()).is_some()
                    }) =>
            {
                continue
            }
            // A read timeout of the caller's leaves the connection usable:
            // the caller may ping and call again.
            Err(e) if socket::is_timeout(&e) => return Err(e.into()),
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
        if let Some(clock) = time.made() {
            clock.received(Instant::now());
        }
        inbound.commit(n);
    }
}

/// Acts on the deadlines that have passed, then sets the read timeout for
/// the next read; returns what `recv` returns if the connection is over
/// or the caller's read timeout passed.
///
/// Not inlined: its rare paths' temporaries would deepen `recv`'s frame,
/// and an idle connection thread keeps every stack page it ever touched.
#[inline(never)]
fn keep_time(
    clock: &mut Clock,
    done: &mut bool,
    io: &mut impl Duplex,
) -> Option<Result<Option<Message>, Error>> {
    let now = Instant::now();
    match clock.due(now, io.is_closing()) {
        None => {}
        Some(Due::Message) => return Some(Err(fail(ProtocolError::MessageTooSlow, done, io))),
        Some(Due::Pong) => {
            *done = true;
            log::info!("closing a connection that did not answer a ping");
            return Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no answer to the keepalive ping",
            )
            .into()));
        }
        Some(Due::Close) => {
            *done = true;
            log::debug!("no close frame in answer to ours: giving up");
            return Some(Ok(None));
        }
        Some(Due::ReadTimeout) => {
            return Some(Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "no message within the read timeout",
            )
            .into()))
        }
        Some(Due::Ping) => {
            if let Err(e) = io.ping() {
                *done = true;
                return Some(Err(e));
            }
            clock.pinged(now);
        }
    }
    if let Some(wait) = clock.arm(now) {
        if let Err(e) = io.set_read_timeout(wait) {
            *done = true;
            return Some(Err(e.into()));
        }
    }
    None
}

/// Fails the connection for the peer's `violation`: the one place a close
/// frame with its code is sent (§7.1.7), whether the protocol found it or
/// the clock did.
fn fail(violation: ProtocolError, done: &mut bool, io: &mut impl Duplex) -> Error {
    *done = true;
    log::info!("failing connection: {violation}");
    if let Err(e) = io.reply(&Reply::to_violation(violation)) {
        log::debug!("could not send the close frame: {e}");
    }
    Error::Protocol(violation)
}
