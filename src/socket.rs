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

/// Whether a read failed because its timeout passed: `WouldBlock` on Unix
/// (as a non-blocking socket's), `TimedOut` elsewhere.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
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

/// Sets the kernel's send buffer of `stream` (`SO_SNDBUF`) to `bytes`, as
/// [`Config::send_buffer_size`] asks; Linux doubles it for its bookkeeping.
/// Setting it also turns off the kernel's autotuning of that buffer, which
/// otherwise grows it up to `net.ipv4.tcp_wmem`'s maximum (4 MiB by
/// default) for a peer that does not read.
///
/// std has no setter, so this calls libc's `setsockopt` (linked by std
/// already): the crate's one `unsafe` block. On other systems it does
/// nothing.
///
/// # Errors
///
/// If the kernel refuses the option.
///
/// [`Config::send_buffer_size`]: crate::Config#structfield.send_buffer_size
pub(crate) fn set_send_buffer_size(stream: &TcpStream, bytes: usize) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
        sys::set_int_option(stream.as_raw_fd(), sys::SOL_SOCKET, sys::SO_SNDBUF, bytes)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (stream, bytes);
        Ok(())
    }
}

/// The one call into libc, kept small enough to check by eye.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod sys {
    use std::ffi::{c_int, c_void};
    use std::io;
    use std::os::fd::RawFd;

    // <asm-generic/socket.h>; MIPS, SPARC and Alpha number them otherwise.
    const MIPS_OR_SPARC: bool = cfg!(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ));
    pub(super) const SOL_SOCKET: c_int = if MIPS_OR_SPARC { 0xffff } else { 1 };
    pub(super) const SO_SNDBUF: c_int = if MIPS_OR_SPARC { 0x1001 } else { 7 };

    extern "C" {
        #[cfg(test)]
        fn getsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            value: *mut c_void,
            len: *mut u32,
        ) -> c_int;
        fn setsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            value: *const c_void,
            len: u32,
        ) -> c_int;
    }

    /// `setsockopt(fd, level, name, &value, sizeof(int))`.
    #[allow(unsafe_code)]
    pub(super) fn set_int_option(
        fd: RawFd,
        level: c_int,
        name: c_int,
        value: c_int,
    ) -> io::Result<()> {
        let len = std::mem::size_of::<c_int>() as u32;
        // SAFETY: `value` is a live c_int for the whole call and `len` is
        // its size; the kernel only reads it. `fd` is borrowed from an open
        // socket. An invalid fd or option is an error return, not UB.
        let result = unsafe { setsockopt(fd, level, name, (&value as *const c_int).cast(), len) };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// `getsockopt(fd, level, name, &value, &sizeof(int))`: for tests only.
    #[cfg(test)]
    #[allow(unsafe_code)]
    pub(super) fn int_option(fd: RawFd, level: c_int, name: c_int) -> io::Result<c_int> {
        let mut value: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as u32;
        // SAFETY: the kernel writes at most `len` bytes into `value`, a
        // live c_int, and `len` back.
        let result =
            unsafe { getsockopt(fd, level, name, (&mut value as *mut c_int).cast(), &mut len) };
        if result == 0 {
            Ok(value)
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    use super::sys;

    #[test]
    fn the_send_buffer_is_set_and_autotuning_off() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let size = |s: &TcpStream| sys::int_option(s.as_raw_fd(), sys::SOL_SOCKET, sys::SO_SNDBUF);
        super::set_send_buffer_size(&server, 64 << 10).unwrap();
        // Linux doubles what it is given, for its bookkeeping.
        assert_eq!(size(&server).unwrap(), 128 << 10);
    }
}
