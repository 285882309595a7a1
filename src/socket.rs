//! The streams the blocking layer serves: anything that can be read and
//! written from two threads at once, shut down from either, and given
//! timeouts. [`TcpStream`] and Unix domain sockets are; a TLS stream will
//! be (its own type, with reads outside its lock), and the server serves it
//! without the hub knowing.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// A full-duplex stream shared between threads: one blocks reading while
/// others write, and any of them may shut it down (which wakes the others).
///
/// Every method takes `&self`, as `&TcpStream` reads and writes do.
pub trait Socket: Send + Sync + std::fmt::Debug + 'static {
    /// Reads into `buf`, as [`Read::read`].
    ///
    /// # Errors
    ///
    /// As [`Read::read`]: a timeout is `WouldBlock` or `TimedOut`.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes from `bufs` in one system call where the stream allows, as
    /// [`Write::write_vectored`].
    ///
    /// # Errors
    ///
    /// As [`Write::write_vectored`].
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Writes from `buf`, as [`Write::write`]. A zero-length write tells a
    /// reset stream (it fails) from one the peer merely finished (it does
    /// not).
    ///
    /// # Errors
    ///
    /// As [`Write::write`].
    fn write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Shuts down one or both directions for every handle.
    ///
    /// # Errors
    ///
    /// If the stream is already disconnected.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;

    /// Sets how long a read may block (`None`: forever).
    ///
    /// # Errors
    ///
    /// If the stream cannot take a timeout.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Sets how long a write may block (`None`: forever).
    ///
    /// # Errors
    ///
    /// If the stream cannot take a timeout.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Makes reads and writes fail with `WouldBlock` instead of blocking.
    ///
    /// # Errors
    ///
    /// If the mode cannot be changed.
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()>;
}

macro_rules! socket_for {
    ($ty:ty) => {
        impl Socket for $ty {
            fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
                Read::read(&mut &*self, buf)
            }

            fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                Write::write_vectored(&mut &*self, bufs)
            }

            fn write(&self, buf: &[u8]) -> io::Result<usize> {
                Write::write(&mut &*self, buf)
            }

            fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                <$ty>::shutdown(self, how)
            }

            fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                <$ty>::set_read_timeout(self, timeout)
            }

            fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                <$ty>::set_write_timeout(self, timeout)
            }

            fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
                <$ty>::set_nonblocking(self, nonblocking)
            }
        }
    };
}

socket_for!(TcpStream);
#[cfg(unix)]
socket_for!(std::os::unix::net::UnixStream);

/// A shared socket as a `Read + Write` value, for code written for streams.
#[derive(Debug)]
pub(crate) struct Io<'a, S: ?Sized>(pub(crate) &'a S);

impl<S: Socket + ?Sized> Read for Io<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Socket + ?Sized> Write for Io<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes every slice, in as few `writev` calls as the stream allows;
/// empty slices (nothing at all, even) are fine.
pub(crate) fn write_all_vectored<W: Write>(
    mut stream: W,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    // Drops leading empty slices, so an empty write is no write.
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
