//! A connection split between a thread that reads and threads that send.

use std::io;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::connection::clock::Time;
use crate::connection::driver::{recv, write_fails, write_frame, Duplex};
use crate::error::Error;
use crate::frame::{Frame, OpCode};
use crate::message::{CloseCode, Message};
use crate::protocol::{Inbound, Outbound, Reply};
use crate::socket::{Io, Socket};

/// What the reader and the writers share: the stream, the sending half of
/// the protocol, and the lock that keeps frames whole.
#[derive(Debug)]
struct Shared<S> {
    stream: S,
    outbound: Outbound,
    /// Held while a frame is made and written, so frames never interleave
    /// and none follows our close.
    writing: Mutex<()>,
}

pub(super) fn split<S: Socket>(
    stream: S,
    inbound: Inbound,
    outbound: Outbound,
    done: bool,
    time: Time,
) -> (Reader<S>, Writer<S>) {
    let writer = Writer {
        shared: Arc::new(Shared {
            stream,
            outbound,
            writing: Mutex::new(()),
        }),
    };
    let reader = Reader {
        inbound,
        writer: writer.clone(),
        done,
        time,
    };
    (reader, writer)
}

/// The receiving half of a split [`Connection`](crate::Connection).
#[derive(Debug)]
pub struct Reader<S> {
    inbound: Inbound,
    writer: Writer<S>,
    done: bool,
    time: Time,
}

impl<S: Socket> Reader<S> {
    /// Receives the next message, as [`Connection::recv`] does; replies go
    /// out through the shared writer. When the connection is over (closed
    /// cleanly, failed, or the stream ended), the socket is shut down in
    /// both directions, which also wakes writers blocked on it.
    ///
    /// [`Connection::recv`]: crate::Connection::recv
    ///
    /// # Errors
    ///
    /// As for [`Connection::recv`].
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        let result = recv(
            &mut self.inbound,
            &mut self.done,
            &mut self.time,
            &mut SplitIo(&self.writer),
        );
        if self.done {
            let _ = self.writer.shared.stream.shutdown(Shutdown::Both);
        }
        result
    }

    /// A writer for this connection.
    pub fn writer(&self) -> Writer<S> {
        self.writer.clone()
    }
}

/// A sending handle of a split [`Connection`](crate::Connection); clone it
/// for each thread that sends. Frames are written whole, one at a time.
#[derive(Debug)]
pub struct Writer<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Writer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: Socket> Writer<S> {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // A panic while writing leaves at worst a torn frame, and the
        // connection is failed by the peer: keep going.
        self.shared
            .writing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes a frame and writes it, under the lock: a frame made before our
    /// close cannot be written after it.
    fn write<'a>(
        &self,
        make: impl FnOnce(&Outbound) -> Result<Frame<'a>, Error>,
    ) -> Result<(), Error> {
        self.write_if(|out| make(out).map(Some)).map(drop)
    }

    /// As [`write`](Self::write), for a frame that may be owed nothing;
    /// returns whether one was written.
    fn write_if<'a>(
        &self,
        make: impl FnOnce(&Outbound) -> Result<Option<Frame<'a>>, Error>,
    ) -> Result<bool, Error> {
        let _writing = self.lock();
        match make(&self.shared.outbound)? {
            Some(frame) => write_frame(Io(&self.shared.stream), &frame).map(|()| true),
            None => Ok(false),
        }
    }

    /// Sends a message, as [`Connection::send`](crate::Connection::send)
    /// does.
    ///
    /// # Errors
    ///
    /// As for [`Connection::send`](crate::Connection::send).
    pub fn send(&self, message: Message) -> Result<(), Error> {
        self.write(|out| out.message(&message))
    }

    /// Sends a text message.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.write(|out| out.frame(OpCode::Text, text.as_bytes()))
    }

    /// Sends a binary message.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.write(|out| out.frame(OpCode::Binary, data))
    }

    /// Sends a ping.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        self.write(|out| out.frame(OpCode::Ping, payload))
    }

    /// Starts the closing handshake; the reader finishes it.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.write(|out| out.close(Some(code), reason))
    }

    /// Whether our close frame has been sent.
    pub fn is_closing(&self) -> bool {
        // Not under the lock: a writer blocked on a peer that does not read
        // may hold it until its write fails, and the reader asks this when
        // the stream ends, before it shuts the socket down to wake it.
        self.shared.outbound.is_closing()
    }
}

struct SplitIo<'a, S>(&'a Writer<S>);

impl<S: Socket> Duplex for SplitIo<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.shared.stream.read(buf)
    }

    fn reply(&mut self, reply: &Reply<'_>) -> Result<bool, Error> {
        self.0.write_if(|out| Ok(out.reply(reply)))
    }

    fn ping(&mut self) -> Result<(), Error> {
        self.0.ping(b"")
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.shared.stream.set_read_timeout(timeout)
    }

    fn is_closing(&self) -> bool {
        self.0.is_closing()
    }

    fn was_reset(&mut self) -> bool {
        write_fails(&self.0.shared.stream)
    }
}
