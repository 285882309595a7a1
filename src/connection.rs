//! The blocking driver: the opening handshake and an open connection over
//! any `Read + Write` stream, and its split into a reader and writers that
//! work on different threads.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::Config;
use crate::error::{Error, HandshakeError};
use crate::frame::{self, CloseCode, OpCode, MAX_CONTROL_PAYLOAD};
use crate::handshake::{Accept, AcceptKey, Parts, Request, Response, Status};
use crate::message::{CloseFrame, Message};
use crate::protocol::Protocol;

/// Reads the opening handshake from `stream` and accepts it with the
/// configured subprotocols and origin policy.
///
/// A request that is not a valid upgrade gets its HTTP refusal (400, 403,
/// 405, 426 or 431, with a plain-text reason). To serve pages on the same
/// port, add headers or decide per request, use [`Handshake`].
///
/// # Errors
///
/// [`Error::Handshake`] after a refusal was sent, [`Error::Io`] if the
/// stream fails or ends first.
pub fn accept<S: Read + Write>(stream: S, config: &Config) -> Result<Connection<S>, Error> {
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
}

impl<'c, S: Read + Write> Handshake<'c, S> {
    /// Reads a request head from `stream`, at most
    /// [`Config::max_request_size`](Config#structfield.max_request_size)
    /// bytes. Set a read timeout on the stream first to drop clients that
    /// trickle their request.
    ///
    /// # Errors
    ///
    /// [`Error::Handshake`] for a malformed or oversized request, after its
    /// 400 or 431 reply was sent; [`Error::Io`] if the stream fails or ends.
    pub fn read(mut stream: S, config: &'c Config) -> Result<Self, Error> {
        let limit = config.max_request_size.max(1);
        // 2 KiB holds a browser's request. Being over glibc's per-thread
        // cache limit (1 KiB), it goes back to the shared heap when freed
        // instead of staying parked with this thread for its lifetime.
        let mut buf = vec![0; limit.min(2048)];
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                buf.resize((buf.len() * 2).min(limit), 0);
            }
            let n = match stream.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "stream ended before the request head",
                    )
                    .into())
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            filled += n;
            match Request::parse(&buf[..filled], config) {
                Ok(Status::Partial) => {}
                Ok(Status::Complete(request)) => {
                    let parts = request.parts();
                    return Ok(Handshake {
                        stream,
                        config,
                        buf,
                        filled,
                        parts,
                    });
                }
                Err(e) => return Err(refuse(&mut stream, e)),
            }
        }
    }

    /// The request.
    pub fn request(&self) -> Request<'_> {
        Request::from_parts(&self.buf[..self.filled], self.parts)
    }

    /// Accepts the upgrade: checks it (RFC 6455 §4.2.1 and the origin
    /// allow-list), selects a subprotocol unless `accept` names one, and
    /// sends `101 Switching Protocols` with `accept`'s headers.
    ///
    /// # Errors
    ///
    /// [`Error::Handshake`] if the request is not a valid upgrade, after its
    /// refusal was sent; [`Error::Io`] if writing fails.
    pub fn accept(mut self, accept: Accept) -> Result<Connection<S>, Error> {
        let key = self.check()?;
        let protocol = Protocol::with_received(self.config, self.after_head());
        Ok(Connection {
            stream: self.switch(accept, &key)?,
            protocol,
            tx: Tx::default(),
            done: false,
        })
    }

    /// Accepts as [`accept`](Self::accept) does, for a server that keeps
    /// its own handle on the stream: returns the protocol (holding any bytes
    /// that followed the request) and a copy of the request head.
    pub(crate) fn upgrade(mut self, accept: Accept) -> Result<Box<Received>, Error> {
        let key = self.check()?;
        let received = self.received();
        self.switch(accept, &key)?;
        Ok(received)
    }

    /// Not inlined: its temporaries are not on the stack below `switch`.
    #[inline(never)]
    fn received(&self) -> Box<Received> {
        Box::new(Received {
            protocol: Protocol::with_received(self.config, self.after_head()),
            head: self.buf[..self.request().len()].to_vec(),
            parts: self.parts,
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
            Err(e) => Err(refuse(&mut self.stream, e)),
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

    /// The stream, for requests the application answers itself.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// What an accepted upgrade has received: the request head, and the
/// protocol holding any bytes that followed it. Boxed, so the server moves
/// a pointer rather than a few hundred bytes through its connection
/// thread's stack.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) protocol: Protocol,
    pub(crate) head: Vec<u8>,
    pub(crate) parts: Parts,
}

/// Sends the refusal for `error` and returns it as an [`Error`].
fn refuse<W: Write>(stream: &mut W, error: HandshakeError) -> Error {
    log::info!("refusing handshake: {error}");
    let mut out = Vec::new();
    Response::refusal(error).write(true, &mut out);
    if let Err(e) = write_all(stream, &out) {
        log::debug!("could not send the refusal: {e}");
    }
    Error::Handshake(error)
}

fn write_all<W: Write>(stream: &mut W, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

/// An open WebSocket connection over a stream, used from one thread.
///
/// Receiving answers pings and close frames for you. To receive on one
/// thread while sending from others, [`split`](Self::split) it.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    protocol: Protocol,
    tx: Tx,
    done: bool,
}

impl<S: Read + Write> Connection<S> {
    /// Wraps a stream whose opening handshake is already done elsewhere.
    pub fn from_upgraded(stream: S, config: &Config) -> Self {
        Connection {
            stream,
            protocol: Protocol::new(config),
            tx: Tx::default(),
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
            tx: &mut self.tx,
        };
        recv(&mut self.protocol, &mut self.done, &mut io)
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
        self.tx.send_message(&mut self.stream, &message)
    }

    /// Sends a text message.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.tx
            .send(&mut self.stream, OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.tx.send(&mut self.stream, OpCode::Binary, data)
    }

    /// Sends a ping; the pong comes back through [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.tx.send(&mut self.stream, OpCode::Ping, payload)
    }

    /// Starts the closing handshake with this code and reason (at most 123
    /// bytes). Keep calling [`recv`](Self::recv) until it returns `Ok(None)`.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.tx.send_close(&mut self.stream, code, reason)
    }

    /// Whether our close frame has been sent.
    pub fn is_closing(&self) -> bool {
        self.tx.close_sent
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

impl<S: Socket> Connection<S> {
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
    ///
    /// # Errors
    ///
    /// If the stream cannot be cloned.
    pub fn split(self) -> io::Result<(Reader<S>, Writer<S>)> {
        let write_half = self.stream.try_clone()?;
        let close_sent = Arc::new(AtomicBool::new(self.tx.close_sent));
        let mut tx = self.tx;
        tx.close_flag = Some(Arc::clone(&close_sent));
        let writer = Writer {
            shared: Arc::new(Mutex::new(WriteHalf {
                stream: write_half,
                tx,
            })),
            close_sent,
        };
        let reader = Reader {
            stream: self.stream,
            protocol: self.protocol,
            writer: writer.clone(),
            done: self.done,
        };
        Ok((reader, writer))
    }
}

/// A stream whose directions can be used from two threads at once, and
/// shut down from either: [`TcpStream`], and Unix domain sockets.
pub trait Socket: Read + Write + Sized {
    /// Another handle to the same stream.
    ///
    /// # Errors
    ///
    /// If the operating system cannot duplicate the handle.
    fn try_clone(&self) -> io::Result<Self>;

    /// Shuts down one or both directions for every handle.
    ///
    /// # Errors
    ///
    /// If the stream is already disconnected.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
}

#[cfg(unix)]
impl Socket for std::os::unix::net::UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::os::unix::net::UnixStream::try_clone(self)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }
}

/// The receiving half of a split [`Connection`].
#[derive(Debug)]
pub struct Reader<S> {
    stream: S,
    protocol: Protocol,
    writer: Writer<S>,
    done: bool,
}

impl<S: Socket> Reader<S> {
    /// Receives the next message, as [`Connection::recv`] does; replies go
    /// out through the shared writer. When the connection is over (closed
    /// cleanly, failed, or the stream ended), the socket is shut down in
    /// both directions, which also wakes writers blocked on it.
    ///
    /// # Errors
    ///
    /// As for [`Connection::recv`].
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        let mut io = Split {
            stream: &mut self.stream,
            writer: &self.writer,
        };
        let result = recv(&mut self.protocol, &mut self.done, &mut io);
        if self.done {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
        result
    }

    /// A writer for this connection.
    pub fn writer(&self) -> Writer<S> {
        self.writer.clone()
    }
}

/// A sending handle of a split [`Connection`]; clone it for each thread
/// that sends. Frames are written whole, one at a time.
#[derive(Debug)]
pub struct Writer<S> {
    shared: Arc<Mutex<WriteHalf<S>>>,
    close_sent: Arc<AtomicBool>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Writer {
            shared: Arc::clone(&self.shared),
            close_sent: Arc::clone(&self.close_sent),
        }
    }
}

#[derive(Debug)]
struct WriteHalf<S> {
    stream: S,
    tx: Tx,
}

impl<S: Write> Writer<S> {
    fn lock(&self) -> MutexGuard<'_, WriteHalf<S>> {
        // A panic while writing leaves at worst a torn frame, and the
        // connection is failed by the peer: keep going.
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends a message, as [`Connection::send`] does.
    ///
    /// # Errors
    ///
    /// As for [`Connection::send`].
    pub fn send(&self, message: Message) -> Result<(), Error> {
        let half = &mut *self.lock();
        half.tx.send_message(&mut half.stream, &message)
    }

    /// Sends a text message.
    ///
    /// # Errors
    ///
    /// As for [`Connection::send`].
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        let half = &mut *self.lock();
        half.tx
            .send(&mut half.stream, OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message.
    ///
    /// # Errors
    ///
    /// As for [`Connection::send`].
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        let half = &mut *self.lock();
        half.tx.send(&mut half.stream, OpCode::Binary, data)
    }

    /// Sends a ping.
    ///
    /// # Errors
    ///
    /// As for [`Connection::send`].
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        let half = &mut *self.lock();
        half.tx.send(&mut half.stream, OpCode::Ping, payload)
    }

    /// Starts the closing handshake; the reader finishes it.
    ///
    /// # Errors
    ///
    /// As for [`Connection::send`].
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let half = &mut *self.lock();
        half.tx.send_close(&mut half.stream, code, reason)
    }

    /// Whether our close frame has been sent.
    pub fn is_closing(&self) -> bool {
        // Not under the lock: a writer blocked on a peer that does not read
        // may hold it until its write fails, and the reader asks this when
        // the stream ends, before it shuts the socket down to wake it.
        self.close_sent.load(Ordering::Acquire)
    }
}

/// The send side's only state: whether our close frame went out, after
/// which nothing may follow (§5.5.1).
#[derive(Debug, Default)]
struct Tx {
    close_sent: bool,
    /// A split connection's copy of `close_sent`, read without the lock.
    close_flag: Option<Arc<AtomicBool>>,
}

impl Tx {
    fn send<W: Write>(
        &mut self,
        stream: &mut W,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), Error> {
        if self.close_sent {
            return Err(Error::Closed);
        }
        if opcode.is_control() && payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::ControlTooLong);
        }
        if opcode == OpCode::Close {
            self.close_sent = true;
            if let Some(flag) = &self.close_flag {
                flag.store(true, Ordering::Release);
            }
        }
        let (header, len) = frame::server_header(opcode, payload.len());
        write_frame(stream, &header[..len], payload)?;
        Ok(())
    }

    fn send_close<W: Write>(
        &mut self,
        stream: &mut W,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), Error> {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = close_payload(&mut payload, code, reason)?;
        self.send(stream, OpCode::Close, &payload[..len])
    }

    fn send_message<W: Write>(&mut self, stream: &mut W, message: &Message) -> Result<(), Error> {
        match message {
            Message::Text(text) => self.send(stream, OpCode::Text, text.as_bytes()),
            Message::Binary(data) => self.send(stream, OpCode::Binary, data),
            Message::Ping(data) => self.send(stream, OpCode::Ping, data),
            Message::Pong(data) => self.send(stream, OpCode::Pong, data),
            Message::Close(None) => self.send(stream, OpCode::Close, &[]),
            Message::Close(Some(CloseFrame { code, reason })) => {
                self.send_close(stream, *code, reason)
            }
        }
    }
}

/// Fills `out` with a close payload: the code, then the reason.
fn close_payload(
    out: &mut [u8; MAX_CONTROL_PAYLOAD],
    code: CloseCode,
    reason: &str,
) -> Result<usize, Error> {
    let len = 2 + reason.len();
    if len > out.len() {
        return Err(Error::ControlTooLong);
    }
    out[..2].copy_from_slice(&code.0.to_be_bytes());
    out[2..len].copy_from_slice(reason.as_bytes());
    Ok(len)
}

/// Writes a header and payload with as few system calls as the stream
/// allows (one `writev` on a socket), then flushes.
fn write_frame<W: Write>(stream: &mut W, header: &[u8], payload: &[u8]) -> io::Result<()> {
    write_all_vectored(
        &mut *stream,
        &mut [IoSlice::new(header), IoSlice::new(payload)],
    )?;
    stream.flush()
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

/// What the receive loop needs from the stream: bytes in, and a way to
/// send the replies it owes.
pub(crate) trait Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sends an owed pong, unless our close frame has gone out.
    fn pong(&mut self, payload: &[u8]) -> Result<(), Error>;
    /// Sends our close frame unless it has gone out; returns whether it had.
    fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<bool, Error>;
    /// Whether our close frame has gone out.
    fn is_closing(&self) -> bool;
    /// Whether the link has been quiet, so the next read may use a small
    /// buffer (see [`Protocol::set_cold`]).
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
pub(crate) fn write_fails(mut stream: impl Write) -> bool {
    stream.write(&[]).is_err()
}

struct Single<'a, S> {
    stream: &'a mut S,
    tx: &'a mut Tx,
}

impl<S: Read + Write> Duplex for Single<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }

    fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        if self.tx.close_sent {
            return Ok(());
        }
        self.tx.send(self.stream, OpCode::Pong, payload)
    }

    fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<bool, Error> {
        reply_close(self.tx, self.stream, code, reason)
    }

    fn is_closing(&self) -> bool {
        self.tx.close_sent
    }
}

struct Split<'a, S> {
    stream: &'a mut S,
    writer: &'a Writer<S>,
}

impl<S: Socket> Duplex for Split<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }

    fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        let half = &mut *self.writer.lock();
        if half.tx.close_sent {
            return Ok(());
        }
        half.tx.send(&mut half.stream, OpCode::Pong, payload)
    }

    fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<bool, Error> {
        let half = &mut *self.writer.lock();
        reply_close(&mut half.tx, &mut half.stream, code, reason)
    }

    fn is_closing(&self) -> bool {
        self.writer.is_closing()
    }

    fn was_reset(&mut self) -> bool {
        write_fails(&mut *self.stream)
    }
}

fn reply_close<W: Write>(
    tx: &mut Tx,
    stream: &mut W,
    code: Option<CloseCode>,
    reason: &str,
) -> Result<bool, Error> {
    if tx.close_sent {
        return Ok(true);
    }
    match code {
        Some(code) => tx.send_close(stream, code, reason)?,
        None => tx.send(stream, OpCode::Close, &[])?,
    }
    Ok(false)
}

/// The receive loop shared by [`Connection`] and [`Reader`]; the one place
/// where a peer's violation becomes a close frame.
pub(crate) fn recv(
    protocol: &mut Protocol,
    done: &mut bool,
    io: &mut impl Duplex,
) -> Result<Option<Message>, Error> {
    loop {
        if *done {
            return Ok(None);
        }
        match protocol.next_message() {
            Ok(Some(message)) => {
                match &message {
                    Message::Ping(payload) => io.pong(payload)?,
                    Message::Close(frame) => {
                        *done = true;
                        // §5.5.1: reply with the code received.
                        let code = frame.as_ref().map(|f| f.code);
                        let had_sent = io.close(code, "")?;
                        log::debug!(
                            "close {} by peer: {:?}",
                            if had_sent { "answered" } else { "started" },
                            frame
                        );
                    }
                    _ => {}
                }
                return Ok(Some(message));
            }
            Ok(None) => {}
            Err(violation) => {
                *done = true;
                log::info!("failing connection: {violation}");
                // The reason is our error's text, well under 123 bytes.
                let mut reason = violation.to_string();
                reason.truncate(MAX_CONTROL_PAYLOAD - 2);
                if let Err(e) = io.close(Some(violation.close_code()), &reason) {
                    log::debug!("could not send the close frame: {e}");
                }
                return Err(Error::Protocol(violation));
            }
        }
        protocol.set_cold(io.is_cold());
        let n = match io.read(protocol.buffer()) {
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
        protocol.commit(n);
    }
}
