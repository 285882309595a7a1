//! Streams that can take timeouts, which is what lets [`accept`] bound the
//! time a peer can hold its thread.
//!
//! [`accept`]: crate::accept

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use crate::socket::{Io, Socket};

/// A stream whose reads and writes can be given timeouts, as
/// [`TcpStream::set_read_timeout`] and [`TcpStream::set_write_timeout`].
///
/// [`accept`](crate::accept) and [`Handshake::read`](crate::Handshake::read)
/// use them to enforce, over such a stream, every time limit of
/// [`Config`](crate::Config) that the [`Server`](crate::Server) enforces:
/// the handshake deadline, the write timeout, keepalive pings with their
/// pong deadline, the closing handshake's timeout and the message deadline.
///
/// Implemented for [`TcpStream`], [`UnixStream`] and references to them.
/// Both methods do nothing by default, so a stream that cannot take
/// timeouts (an in-memory pipe in a test) says so with an empty
/// implementation, `impl boardcast::Timeouts for Pipe {}`; a connection
/// over it then has none of those limits, and a peer can hold it as long as
/// it likes. For a stream type of another crate (a TLS stream), implement
/// it on a newtype that forwards to the socket underneath.
///
/// [`UnixStream`]: std::os::unix::net::UnixStream
pub trait Timeouts {
    /// Sets how long a read may block (`None`: forever). Does nothing by
    /// default.
    ///
    /// # Errors
    ///
    /// If the stream cannot take the timeout.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Sets how long a write may block (`None`: forever). Does nothing by
    /// default.
    ///
    /// # Errors
    ///
    /// If the stream cannot take the timeout.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }
}

macro_rules! timeouts_for {
    ($ty:ty) => {
        impl Timeouts for $ty {
            fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                <$ty>::set_read_timeout(self, timeout)
            }

            fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                <$ty>::set_write_timeout(self, timeout)
            }
        }
    };
}

timeouts_for!(TcpStream);
#[cfg(unix)]
timeouts_for!(std::os::unix::net::UnixStream);

impl<T: Timeouts + ?Sized> Timeouts for &T {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
}

impl<T: Timeouts + ?Sized> Timeouts for &mut T {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
}

impl<T: Timeouts + ?Sized> Timeouts for Box<T> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
}

/// The server's shared sockets, read through [`Io`] during the handshake.
impl<S: Socket + ?Sized> Timeouts for Io<'_, S> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(timeout)
    }
}
