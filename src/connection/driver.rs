//! What every driver of a connection shares (the plain [`Connection`],
//! the split [`Reader`], the server's clients): the receive loop, which
//! sends what [`Reply`] says a received frame is owed, and the writing of
//! a frame.
//!
//! [`Connection`]: super::Connection
//! [`Reader`]: super::Reader

use std::io::{self, IoSlice, Write};

use crate::error::Error;
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
