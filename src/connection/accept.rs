//! The opening handshake over a stream: read the request, then accept it
//! as a WebSocket or answer it with a page or a refusal.

use std::io::{self, Read, Write};
use std::time::Instant;

use crate::config::{Config, ContextTakeover};
use crate::connection::clock::Clock;
use crate::connection::{Connection, Timeouts};
use crate::error::{Error, HandshakeError};
use crate::extension::{self, Encoder};
use crate::handshake::{Accept, AcceptKey, Parts, Request, Response, Status};
use crate::protocol::{Inbound, Role};
use crate::socket;

/// Reads the opening handshake from `stream` and accepts it with the
/// configured subprotocols and origin policy.
///
/// A request that is not a valid upgrade gets its HTTP refusal (400, 403,
/// 405, 417, 421, 426 or 431, with a plain-text reason). To serve pages on
/// the same port, add headers or decide per request, use [`Handshake`].
///
/// Over a stream that takes [`Timeouts`] (a `TcpStream`), the connection
/// keeps every time limit of `config` as the [`Server`](crate::Server)
/// does: the whole request must arrive within
/// [`handshake_timeout`](Config#structfield.handshake_timeout), writes
/// block at most [`write_timeout`](Config#structfield.write_timeout), and
/// [`Connection::recv`] pings a quiet peer, cuts one that does not answer
/// and fails a message that arrives too slowly (see the connection's [time
/// limits](Connection#time-limits)). A stream whose [`Timeouts`] do
/// nothing gets none of them.
///
/// `accept` does not bound how many connections are served at once: cap
/// them yourself (the crate's echo example shows how), or use the
/// [`Server`](crate::Server), which does.
///
/// # Errors
///
/// [`Error::Handshake`] after a refusal was sent, [`Error::Io`] if the
/// stream fails, ends or times out first.
pub fn accept<S: Read + Write + Timeouts>(
    stream: S,
    config: &Config,
) -> Result<Connection<S>, Error> {
    Handshake::read(stream, config)?.accept(Accept::new())
}

/// An HTTP request read from a new stream, waiting for the application's
/// answer: accept it as a WebSocket, or respond with a page or a refusal.
///
/// ```no_run
/// use boardcast::{Config, Handshake, Response, handshake::Accept};
///
/// # fn main() -> Result<(), boardcast::Error> {
/// let listener = std::net::TcpListener::bind("127.0.0.1:8080")?;
/// let config = Config::default();
/// let (stream, _) = listener.accept()?;
/// let handshake = Handshake::read(stream, &config)?;
/// let request = handshake.request();
/// if !request.is_upgrade() {
///     return handshake.respond(&Response::html("<h1>hello</h1>"));
/// }
/// if request.path() != "/ws" {
///     return handshake.respond(&Response::text(404, "not found"));
/// }
/// let mut connection = handshake.accept(Accept::new().header("X-Board", "pi"))?;
/// connection.send_text("welcome")?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Handshake<'c, S> {
    stream: S,
    config: &'c Config,
    buf: Vec<u8>,
    filled: usize,
    parts: Parts,
    /// When the request (and its body) must have arrived.
    deadline: Instant,
    /// The bytes of the body read so far, past the head.
    body: usize,
}

impl<'c, S: Read + Write + Timeouts> Handshake<'c, S> {
    /// Reads a request head from `stream`, at most
    /// [`Config::max_request_size`](Config#structfield.max_request_size)
    /// bytes, within
    /// [`handshake_timeout`](Config#structfield.handshake_timeout) of this
    /// call: a deadline for the whole request, not for each read, so a
    /// client that trickles its request (slowloris) is dropped when it runs
    /// out. Sets the stream's write timeout to
    /// [`write_timeout`](Config#structfield.write_timeout). A stream whose
    /// [`Timeouts`] do nothing can take as long as it likes.
    ///
    /// Every request's `Host` is checked ([`Request::check_host`], with the
    /// machine's hostname): a page or upgrade for a name that is not this
    /// server's is refused here, before the application sees it.
    ///
    /// # Errors
    ///
    /// [`Error::Handshake`] for a malformed or oversized request, or one
    /// for another host, after its 400, 421 or 431 reply was sent;
    /// [`Error::Io`] if the stream fails or ends, or `TimedOut` when the
    /// deadline passes first.
    pub fn read(stream: S, config: &'c Config) -> Result<Self, Error> {
        Handshake::read_after(stream, config, &[])
    }

    /// Reads the next request from a connection kept alive, `buffered`
    /// holding what was read past the previous one.
    pub(crate) fn read_after(
        mut stream: S,
        config: &'c Config,
        buffered: &[u8],
    ) -> Result<Self, Error> {
        let deadline = start(&stream, config)?;
        let limit = config.max_request_size.max(1);
        // 2 KiB holds a browser's request. Being over glibc's per-thread
        // cache limit (1 KiB), it goes back to the shared heap when freed
        // instead of staying parked with this thread for its lifetime.
        let mut buf = vec![0; limit.min(2048).max(buffered.len())];
        buf[..buffered.len()].copy_from_slice(buffered);
        let mut filled = buffered.len();
        let mut parse_first = filled > 0;
        loop {
            if filled == buf.len() {
                buf.resize((buf.len() * 2).min(limit), 0);
            }
            if parse_first {
                parse_first = false;
            } else {
                filled += read_some(&mut stream, &mut buf[filled..], deadline)?;
            }
            match Request::parse(&buf[..filled], config) {
                Ok(Status::Partial) => {}
                Ok(Status::Complete(request)) => {
                    if let Err(e) = request.check_host(config, hostname(&mut [0; 64])) {
                        if e == HandshakeError::HostRefused {
                            log::info!(
                                "Host {:?} is not one of this server's names \
                                 (add it to Config::allowed_hosts if it should be)",
                                request.host().unwrap_or("")
                            );
                        }
                        return Err(refuse(&mut stream, e, &buf));
                    }
                    let parts = request.parts();
                    return Ok(Handshake {
                        stream,
                        config,
                        buf,
                        filled,
                        parts,
                        deadline,
                        body: 0,
                    });
                }
                Err(e) => return Err(refuse(&mut stream, e, &buf[..filled])),
            }
        }
    }

    /// The request.
    pub fn request(&self) -> Request<'_> {
        Request::from_parts(&self.buf[..self.filled], self.parts)
    }

    /// Accepts the upgrade: checks it (RFC 6455 §4.2.1 and the origin
    /// allow-list), selects a subprotocol unless `accept` names one, and
    /// sends `101 Switching Protocols` with `accept`'s headers. The
    /// connection keeps the configuration's [time
    /// limits](Connection#time-limits).
    ///
    /// # Errors
    ///
    /// [`Error::Handshake`] if the request is not a valid upgrade, after its
    /// refusal was sent; [`Error::Io`] if writing fails.
    pub fn accept(mut self, accept: Accept) -> Result<Connection<S>, Error> {
        let key = self.check()?;
        let mut inbound = Inbound::with_received(Role::Server, self.config, self.after_head());
        let (accept, encoder) = self.agree(accept, &mut inbound, self.config.deflate_takeover);
        let config = self.config;
        let connection =
            Connection::timed(self.switch(accept, &key)?, inbound, Role::Server, config);
        if let Some((encoder, _)) = encoder {
            connection.outbound.set_encoder(encoder);
        }
        Ok(connection)
    }

    /// Negotiates the extensions the request offers (permessage-deflate,
    /// with the `deflate` feature), with the context takeover `takeover`
    /// allows: gives the receiving side to `inbound`, adds the response
    /// header to `accept`, and returns the sending side. Nothing is
    /// negotiated when the application's `accept` answers the offers
    /// itself.
    #[inline(never)]
    fn agree(
        &self,
        accept: Accept,
        inbound: &mut Inbound,
        takeover: ContextTakeover,
    ) -> (Accept, Option<Sending>) {
        if accept.has_header(EXTENSIONS) {
            return (accept, None);
        }
        match extension::agree(self.request().extensions(), self.config, takeover) {
            Some(agreed) => {
                inbound.set_extension(agreed.extension);
                let accept = accept.header(EXTENSIONS, agreed.response);
                (accept, Some((agreed.encoder, agreed.window_bits)))
            }
            None => (accept, None),
        }
    }

    /// Accepts as [`accept`](Self::accept) does, for a server that keeps
    /// its own handle on the stream: returns the receiving half (holding any
    /// bytes that followed the request) and a copy of the request head.
    ///
    /// The server's own compression context is never kept
    /// ([`ContextTakeover::Both`] counts as `Client`): a published message
    /// is compressed once for every subscriber, and frames are made on
    /// several threads.
    pub(crate) fn upgrade(mut self, accept: Accept) -> Result<Box<Received>, Error> {
        let key = self.check()?;
        let mut received = self.received();
        let takeover = match self.config.deflate_takeover {
            ContextTakeover::Both => ContextTakeover::Client,
            takeover => takeover,
        };
        let (accept, agreed) = self.agree(accept, &mut received.inbound, takeover);
        if let Some((encoder, window_bits)) = agreed {
            received.encoder = Some(encoder);
            received.deflate_window = Some(window_bits);
        }
        self.switch(accept, &key)?;
        Ok(received)
    }

    /// Not inlined: its temporaries are not on the stack below `switch`.
    #[inline(never)]
    fn received(&self) -> Box<Received> {
        Box::new(Received {
            inbound: Inbound::with_received(Role::Server, self.config, self.after_head()),
            head: self.buf[..self.request().len()].to_vec(),
            parts: self.parts,
            clock: Clock::message_only(self.config),
            encoder: None,
            deflate_window: None,
        })
    }

    /// The bytes that followed the request head in the same reads.
    fn after_head(&self) -> &[u8] {
        &self.buf[self.request().len()..self.filled]
    }

    /// The request's accept key; a refusal is sent if it is not a valid
    /// upgrade. Not inlined, so that hashing the key runs beside the callers'
    /// frames rather than below them: a server thread keeps every stack page
    /// it ever touched resident.
    #[inline(never)]
    fn check(&mut self) -> Result<AcceptKey, Error> {
        match self.request().validate(self.config) {
            Ok(key) => Ok(key),
            Err(e) => Err(refuse(&mut self.stream, e, &self.buf[..self.filled])),
        }
    }

    /// Selects the subprotocol and answers `101 Switching Protocols`, in the
    /// request's buffer (the request is no longer needed); returns the
    /// stream.
    #[inline(never)]
    fn switch(mut self, mut accept: Accept, key: &AcceptKey) -> Result<S, Error> {
        let request = self.request();
        if accept.selected_protocol().is_none() {
            if let Some(protocol) = request.select_protocol(&self.config.protocols) {
                accept = accept.protocol(protocol);
            }
        }
        log::debug!(
            "accepting {} {} (protocol {:?})",
            request.method(),
            request.target(),
            accept.selected_protocol()
        );
        let mut response = self.buf;
        response.clear();
        accept.write_response(key, &mut response);
        write_all(&mut self.stream, &response)?;
        Ok(self.stream)
    }

    /// Answers with a plain HTTP response (a page, a redirect, a refusal of
    /// the application's own) instead of upgrading. The stream is then done:
    /// drop it to close the connection.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if writing fails.
    pub fn respond(mut self, response: &Response) -> Result<(), Error> {
        let mut out = Vec::new();
        response.write(self.request().method() != "HEAD", &mut out);
        log::debug!(
            "{} {} -> {}",
            self.request().method(),
            self.request().target(),
            response.status()
        );
        write_all(&mut self.stream, &out)?;
        Ok(())
    }

    /// The stream, for requests the application answers itself. It keeps
    /// the timeouts [`read`](Self::read) set.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Reads the request's body of `len` bytes (its `Content-Length`),
    /// within the request's deadline.
    pub(crate) fn read_body(&mut self, len: usize) -> Result<Vec<u8>, Error> {
        let start = self.request().len();
        let mut body = Vec::with_capacity(len);
        let buffered = &self.buf[start..self.filled];
        body.extend_from_slice(&buffered[..len.min(buffered.len())]);
        while body.len() < len {
            let have = body.len();
            body.resize(len, 0);
            let n = read_some(&mut self.stream, &mut body[have..], self.deadline)?;
            body.truncate(have + n);
        }
        self.body = len;
        Ok(body)
    }

    /// Answers with `response`, keeping the connection open for the next
    /// request: returns the stream and what was read past this request.
    pub(crate) fn respond_and_keep(mut self, response: &Response) -> Result<(S, Vec<u8>), Error> {
        let mut out = Vec::new();
        let with_body = self.request().method() != "HEAD";
        // Said a second short of what the next request's read allows, so
        // that the client does not send on a connection about to close.
        let idle = self
            .config
            .handshake_timeout
            .as_secs()
            .saturating_sub(1)
            .max(1);
        response.write_head_and_body(with_body, Some(idle), &mut out);
        write_all(&mut self.stream, &out)?;
        let used = (self.request().len() + self.body).min(self.filled);
        let rest = self.buf[used..self.filled].to_vec();
        Ok((self.stream, rest))
    }

    /// Starts a streamed answer (Server-Sent Events): writes `head` and
    /// returns the stream.
    pub(crate) fn respond_streaming(mut self, head: &[u8]) -> Result<S, Error> {
        write_all(&mut self.stream, head)?;
        Ok(self.stream)
    }
}

/// Reads what arrives, at least a byte, before `deadline`.
fn read_some<S: Read + Timeouts>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, Error> {
    loop {
        wait_until(stream, deadline)?;
        return match stream.read(buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ended before the request",
            )
            .into()),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if socket::is_timeout(&e) && Instant::now() >= deadline => Err(timed_out()),
            Err(e) => Err(e.into()),
        };
    }
}

/// What an accepted upgrade has received: the request head, and the
/// receiving half holding any bytes that followed it. Boxed, so the server moves
/// a pointer rather than a few hundred bytes through its connection
/// thread's stack.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) inbound: Inbound,
    pub(crate) head: Vec<u8>,
    pub(crate) parts: Parts,
    /// The message deadline (the server's writer thread keeps the others).
    pub(crate) clock: Clock,
    /// The sending side of a negotiated extension, for the client's
    /// [`Outbound`](crate::protocol::Outbound).
    pub(crate) encoder: Option<Box<dyn Encoder>>,
    /// The window a published message compressed for this client may use
    /// (as a power of two), when it agreed to permessage-deflate.
    pub(crate) deflate_window: Option<u8>,
}

/// The sending side of an agreed extension, and the window (as a power of
/// two) a message compressed once for many clients may use for this one.
type Sending = (Box<dyn Encoder>, u8);

/// The response header naming the agreed extensions (RFC 6455 §9.1).
const EXTENSIONS: &str = "Sec-WebSocket-Extensions";

/// Sends the refusal for `error` to the request that starts `received`
/// (without a body if it is `HEAD`), and returns it as an [`Error`].
fn refuse<W: Write>(stream: &mut W, error: HandshakeError, received: &[u8]) -> Error {
    log::info!("refusing handshake: {error}");
    let mut out = Vec::new();
    Response::refusal(error).write(!received.starts_with(b"HEAD "), &mut out);
    if let Err(e) = write_all(stream, &out) {
        log::debug!("could not send the refusal: {e}");
    }
    Error::Handshake(error)
}

/// The machine's hostname, read into `buf` (`HOST_NAME_MAX` is 64): one
/// small read per request, so a name changed while the server runs counts
/// at once. `None` where there is no `/proc` or the name is not UTF-8.
fn hostname(buf: &mut [u8; 64]) -> Option<&str> {
    let mut file = std::fs::File::open("/proc/sys/kernel/hostname").ok()?;
    let n = file.read(buf).ok()?;
    std::str::from_utf8(&buf[..n]).ok().map(str::trim_ascii_end)
}

/// Sets the write timeout; returns the handshake's deadline. Not inlined,
/// as the helpers below: a connection thread keeps every stack page it
/// touched, and these calls' frames stay beside the request parser's.
#[inline(never)]
fn start<S: Timeouts>(stream: &S, config: &Config) -> Result<Instant, Error> {
    stream.set_write_timeout(Some(config.write_timeout))?;
    Ok(Instant::now() + config.handshake_timeout)
}

/// Lets the next read wait until `deadline`, or fails if it has passed.
#[inline(never)]
fn wait_until<S: Timeouts>(stream: &S, deadline: Instant) -> Result<(), Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out());
    }
    stream.set_read_timeout(Some(left))?;
    Ok(())
}

#[cold]
fn timed_out() -> Error {
    io::Error::new(io::ErrorKind::TimedOut, "handshake timed out").into()
}

fn write_all<W: Write>(stream: &mut W, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostname_is_the_kernels() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(super::hostname(&mut [0; 64]), Some(kernel.trim_end()));
    }
}
