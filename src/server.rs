//! The server: a `std::net` listener, a thread per client, keepalive, a
//! connection cap and graceful shutdown.
//!
//! ```text
//!  accept thread (Server::run)
//!     |  one per connection; past max_connections: 503, no thread
//!     v
//!  connection thread "boardcast-conn"       writer thread "boardcast-write"
//!    handshake (deadline)                      parks until the client's
//!    your handler(Client):                     Outbox needs it:
//!      client.recv()  <- socket read side        writes (blocking) what the
//!      client.send()  --------------------->     socket would not take at
//!      pong / close replies  -------------->     once, handler sends, control
//!                                                 frames; pings when quiet;
//!                                                 closes unresponsive peers
//!  Hub::publish (any thread) -- frame encoded once --> every subscriber's
//!     queue, and the client onto the flusher's list
//!  flusher thread "boardcast-flush" (one per hub): each listed client's
//!     queue in one non-blocking writev; the rest to its writer thread
//!  a full queue: written out by the publisher (non-blocking); if the socket
//!     is full too, the topic's Policy drops or disconnects
//! ```

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::connection::{self, Duplex, Handshake, Received};
use crate::error::Error;
use crate::error::HandshakeError;
use crate::frame::{self, CloseCode, OpCode};
use crate::handshake::{Accept, Request, Response};
use crate::hub::{bump, Counters, Frame, Hub, Outbox};
use crate::message::Message;

type HttpFn = dyn Fn(&Request<'_>) -> Response + Send + Sync;
type UpgradeFn = dyn Fn(&Request<'_>) -> Result<Accept, Response> + Send + Sync;

/// The most frames written in one `writev`.
const MAX_BATCH: usize = 256;

/// A WebSocket server: accepts connections and runs your handler for each
/// client on its own thread.
///
/// ```no_run
/// use boardcast::{Config, Response, Server, Message};
///
/// # fn main() -> std::io::Result<()> {
/// let server = Server::bind("0.0.0.0:8080", Config::default())?
///     .on_http(|request| match request.path() {
///         "/" => Response::html("<script>new WebSocket(`ws://${location.host}/ws`)</script>"),
///         _ => Response::text(404, "not found"),
///     });
/// let stop = server.shutdown_handle();
/// ctrlc_like_hook(move || stop.shutdown());
/// server.run(|mut client| {
///     while let Ok(Some(message)) = client.recv() {
///         if let Message::Text(text) = message {
///             let _ = client.send_text(&text.to_uppercase());
///         }
///     }
/// })
/// # }
/// # fn ctrlc_like_hook(_: impl FnOnce()) {}
/// ```
pub struct Server {
    listener: TcpListener,
    config: Arc<Config>,
    shared: Arc<Shared>,
    on_http: Option<Arc<HttpFn>>,
    on_upgrade: Option<Arc<UpgradeFn>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// State shared by the accept loop, every connection and the handles.
#[derive(Debug)]
struct Shared {
    hub: Hub,
    counters: Arc<Counters>,
    stopping: AtomicBool,
    local_addr: SocketAddr,
    /// Every open connection's socket, to cut them at shutdown, and its
    /// outbox once upgraded.
    connections: Mutex<HashMap<u64, Live>>,
    next_id: AtomicU64,
    threads: Arc<Tracker>,
    /// The origin of the millisecond clocks below.
    epoch: Instant,
}

#[derive(Debug)]
struct Live {
    stream: Arc<TcpStream>,
    outbox: Option<Arc<Outbox>>,
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, HashMap<u64, Live>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// Counts running threads, so shutdown can wait for them all, and keeps
/// their handles, so it can join them: when [`Server::run`] returns, its
/// threads have exited, not merely finished their work.
#[derive(Debug, Default)]
struct Tracker {
    count: Mutex<usize>,
    zero: Condvar,
    /// The threads not yet joined. Those that finished are joined at each
    /// spawn, so this holds about as many as are running.
    handles: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl Tracker {
    fn enter(self: &Arc<Self>) -> ThreadGuard {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        ThreadGuard(Arc::clone(self))
    }

    /// Spawns a thread that counts as running until `work` returns. Not
    /// inlined: a connection thread calls it, and its frame would stay
    /// below the handler's for the connection's life.
    #[inline(never)]
    fn spawn<F>(self: &Arc<Self>, name: &str, stack_size: usize, work: F) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let guard = self.enter();
        let handle = thread::Builder::new()
            .name(name.into())
            .stack_size(stack_size)
            .spawn(move || {
                let _guard = guard;
                work();
            })?;
        let running = *self.count.lock().unwrap_or_else(|p| p.into_inner());
        let mut handles = self.handles();
        // Joining the finished threads now and then keeps the list about as
        // long as the running threads, at a constant cost per spawn.
        if handles.len() >= 2 * running + 32 {
            join_finished(&mut handles);
        }
        handles.push(handle);
        Ok(())
    }

    fn handles(&self) -> MutexGuard<'_, Vec<thread::JoinHandle<()>>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the threads that have finished; the others stay tracked.
    fn join_finished(&self) {
        join_finished(&mut self.handles());
    }

    /// Joins every thread.
    fn join_all(&self) {
        let handles = std::mem::take(&mut *self.handles());
        for handle in handles {
            let _ = handle.join();
        }
    }

    /// Waits until no thread runs, at most `timeout`; returns how many
    /// still do.
    fn wait(&self, timeout: Duration) -> usize {
        let count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let (count, _) = self
            .zero
            .wait_timeout_while(count, timeout, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        *count
    }
}

/// Joins, in place, the threads of `handles` that have finished.
fn join_finished(handles: &mut Vec<thread::JoinHandle<()>>) {
    let mut i = 0;
    while i < handles.len() {
        if handles[i].is_finished() {
            let _ = handles.swap_remove(i).join();
        } else {
            i += 1;
        }
    }
}

struct ThreadGuard(Arc<Tracker>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(|p| p.into_inner());
        *count -= 1;
        if *count == 0 {
            self.0.zero.notify_all();
        }
    }
}

impl Server {
    /// Binds a listener to `addr`.
    ///
    /// # Errors
    ///
    /// If the address cannot be bound.
    pub fn bind(addr: impl ToSocketAddrs, config: Config) -> io::Result<Server> {
        Server::from_listener(TcpListener::bind(addr)?, config)
    }

    /// Serves on a listener you bound yourself: a test's `127.0.0.1:0`, or
    /// one inherited through systemd socket activation.
    ///
    /// # Errors
    ///
    /// If the listener's address cannot be read.
    pub fn from_listener(listener: TcpListener, config: Config) -> io::Result<Server> {
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            hub: Hub::new(config.policy, Arc::clone(&counters)),
            counters,
            stopping: AtomicBool::new(false),
            local_addr: listener.local_addr()?,
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            threads: Arc::new(Tracker::default()),
            epoch: Instant::now(),
        });
        Ok(Server {
            listener,
            config: Arc::new(config),
            shared,
            on_http: None,
            on_upgrade: None,
        })
    }

    /// Answers requests that are not WebSocket upgrades (a browser asking
    /// for the page) with `respond`'s response. Without it they get `426
    /// Upgrade Required`.
    pub fn on_http<F>(mut self, respond: F) -> Self
    where
        F: Fn(&Request<'_>) -> Response + Send + Sync + 'static,
    {
        self.on_http = Some(Arc::new(respond));
        self
    }

    /// Decides on each valid upgrade request: `Ok` accepts it (choosing a
    /// subprotocol, adding headers), `Err` answers with that response
    /// instead (any status and body). Without it every upgrade is accepted, on any path.
    pub fn on_upgrade<F>(mut self, decide: F) -> Self
    where
        F: Fn(&Request<'_>) -> Result<Accept, Response> + Send + Sync + 'static,
    {
        self.on_upgrade = Some(Arc::new(decide));
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The hub whose topics clients subscribe to; clone it into publishers.
    pub fn hub(&self) -> Hub {
        self.shared.hub.clone()
    }

    /// A handle that shuts the server down from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Accepts connections until [`ShutdownHandle::shutdown`] is called,
    /// running `handler` for each upgraded client on the client's own
    /// thread. Then shuts down gracefully: stops accepting, sends close
    /// 1001 to every client, waits for their threads (at most
    /// [`shutdown_timeout`](Config#structfield.shutdown_timeout), then cuts
    /// the connections that remain), and returns.
    ///
    /// The handler should return once [`Client::recv`] returns `Ok(None)` or
    /// an error. A handler that never returns keeps its thread alive: after
    /// `shutdown_timeout` its connection is cut, and `run` returns
    /// `close_timeout` later without it.
    ///
    /// # Errors
    ///
    /// Only if the listener fails in a way that retrying cannot fix.
    pub fn run<F>(self, handler: F) -> io::Result<()>
    where
        F: Fn(Client) + Send + Sync + 'static,
    {
        let handler: Arc<dyn Fn(Client) + Send + Sync> = Arc::new(handler);
        let mut backoff = Duration::from_millis(5);
        log::info!("listening on {}", self.shared.local_addr);
        loop {
            let accepted = self.listener.accept();
            if self.shared.stopping.load(Ordering::Acquire) {
                break;
            }
            let (stream, peer) = match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(5);
                    accepted
                }
                Err(e) if is_transient(&e) => {
                    // The peer gave up before we accepted: nothing to serve.
                    log::debug!("accept: {e}");
                    continue;
                }
                Err(e) => {
                    // Out of file descriptors or memory: wait for some to
                    // be freed instead of spinning on the error.
                    log::warn!("accept failed: {e}; retrying in {backoff:?}");
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            self.spawn_connection(stream, peer, &handler);
        }
        self.shutdown_gracefully();
        self.shared.hub.stop_flusher();
        Ok(())
    }

    fn spawn_connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        handler: &Arc<dyn Fn(Client) + Send + Sync>,
    ) {
        let stream = Arc::new(stream);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut connections = self.shared.connections();
            if connections.len() >= self.config.max_connections {
                drop(connections);
                bump(&self.shared.counters.rejected_full);
                log::info!(
                    "refusing {peer}: {} connections",
                    self.config.max_connections
                );
                refuse_full(&stream);
                return;
            }
            connections.insert(
                id,
                Live {
                    stream: Arc::clone(&stream),
                    outbox: None,
                },
            );
        }
        let task = Task {
            id,
            peer,
            outbox: Arc::new(Outbox::new(
                self.config.queue_messages,
                self.config.queue_bytes,
                Some(Arc::clone(&stream)),
            )),
            stream,
            config: Arc::clone(&self.config),
            shared: Arc::clone(&self.shared),
            on_http: self.on_http.clone(),
            on_upgrade: self.on_upgrade.clone(),
            handler: Arc::clone(handler),
        };
        let spawned =
            self.shared
                .threads
                .spawn("boardcast-conn", self.config.stack_size, move || task.run());
        if let Err(e) = spawned {
            log::warn!("cannot spawn a connection thread: {e}");
            if let Some(live) = self.shared.connections().remove(&id) {
                refuse_full(&live.stream);
            }
        }
    }

    fn shutdown_gracefully(&self) {
        let live: Vec<(Arc<TcpStream>, Option<Arc<Outbox>>)> = self
            .shared
            .connections()
            .values()
            .map(|l| (Arc::clone(&l.stream), l.outbox.clone()))
            .collect();
        log::info!("shutting down: closing {} connections", live.len());
        for (stream, outbox) in &live {
            match outbox {
                Some(outbox) => {
                    outbox.close(Some(CloseCode::AWAY), "server shutting down");
                }
                // Still in its handshake (a browser's speculative
                // connection may never send a request): nothing to close
                // gracefully, and waiting would hold shutdown for the whole
                // shutdown_timeout. Cut it now.
                None => {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
        }
        let left = self.shared.threads.wait(self.config.shutdown_timeout);
        if left > 0 {
            log::info!("cutting {left} threads still running after the shutdown timeout");
            for live in self.shared.connections().values() {
                let _ = live.stream.shutdown(Shutdown::Both);
            }
            let left = self.shared.threads.wait(self.config.close_timeout);
            if left > 0 {
                log::warn!("{left} threads did not end; is a handler ignoring recv()?");
                // Joining those would block: leave them.
                self.shared.threads.join_finished();
                return;
            }
        }
        // Every thread is past its work; wait for each to exit.
        self.shared.threads.join_all();
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Answers 503 and closes, without a thread: the reply fits in an empty
/// socket buffer, so the non-blocking write completes.
fn refuse_full(stream: &TcpStream) {
    let mut out = Vec::new();
    Response::text(503, "server full, try again later")
        .header("Retry-After", "1")
        .write(true, &mut out);
    let _ = stream.set_nonblocking(true);
    let _ = (&*stream).write_all(&out);
    let _ = stream.shutdown(Shutdown::Write);
    // Read what already arrived, so closing sends FIN rather than RST and
    // the client sees the reply.
    let mut sink = [0u8; 1024];
    while matches!((&*stream).read(&mut sink), Ok(n) if n > 0) {}
}

/// Shuts a [`Server`] down from any thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl ShutdownHandle {
    /// Starts the graceful shutdown: [`Server::run`] stops accepting,
    /// closes every client with 1001 and returns when their threads have
    /// ended. Returns at once; calling it again does nothing.
    pub fn shutdown(&self) {
        if self.shared.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake the accept loop with a connection of our own.
        let mut addr = self.shared.local_addr;
        if addr.ip().is_unspecified() {
            let loopback: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            addr.set_ip(loopback);
        }
        if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            log::warn!("could not wake the accept loop: {e}");
        }
    }

    /// Whether shutdown has been asked for.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }
}

/// Everything a connection thread needs.
struct Task {
    id: u64,
    peer: SocketAddr,
    stream: Arc<TcpStream>,
    /// Made on the accept thread: building a channel takes a deep stack
    /// frame, and the pages it touches on a connection thread stay resident
    /// for the connection's life.
    outbox: Arc<Outbox>,
    config: Arc<Config>,
    shared: Arc<Shared>,
    on_http: Option<Arc<HttpFn>>,
    on_upgrade: Option<Arc<UpgradeFn>>,
    handler: Arc<dyn Fn(Client) + Send + Sync>,
}

impl Task {
    fn run(self) {
        let Some(client) = self.upgrade() else {
            return;
        };
        let writer = Writer {
            link: Arc::clone(&client.link),
            config: Arc::clone(&self.config),
            shared: Arc::clone(&self.shared),
        };
        let spawned =
            self.shared
                .threads
                .spawn("boardcast-write", self.config.stack_size, move || {
                    writer.run()
                });
        if let Err(e) = spawned {
            log::warn!("cannot spawn a writer thread: {e}");
            let _ = client.link.stream.shutdown(Shutdown::Both);
            return;
        }
        (self.handler)(client);
    }

    /// The upgraded client, or `None` when the request was plain HTTP or
    /// the handshake failed.
    ///
    /// Not inlined: the handshake's deep frames are gone before the handler
    /// runs, so the handler starts high on the stack. A connection thread
    /// keeps every stack page it ever touched resident, so its depth is
    /// memory.
    #[inline(never)]
    fn upgrade(&self) -> Option<Client> {
        match self.handshake() {
            Ok(Some(client)) => Some(client),
            Ok(None) => {
                self.shared.connections().remove(&self.id);
                None
            }
            Err(e) => {
                log::debug!("handshake with {} failed: {e}", self.peer);
                bump(&self.shared.counters.handshake_failed);
                self.shared.connections().remove(&self.id);
                None
            }
        }
    }

    /// Reads and answers the request; `Ok(None)` when it was plain HTTP.
    fn handshake(&self) -> Result<Option<Client>, Error> {
        let stream = &self.stream;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(self.config.write_timeout))?;
        let timed = Deadline {
            stream,
            deadline: Instant::now() + self.config.handshake_timeout,
        };
        let handshake = Handshake::read(timed, &self.config)?;
        let request = handshake.request();
        if !request.is_upgrade() {
            let response = match &self.on_http {
                Some(respond) => respond(&request),
                None => Response::refusal(HandshakeError::NotUpgrade),
            };
            handshake.respond(&response)?;
            return Ok(None);
        }
        let accept = match &self.on_upgrade {
            Some(decide) => match decide(&request) {
                Ok(accept) => accept,
                Err(response) => {
                    let status = response.status();
                    handshake.respond(&response)?;
                    return Err(Error::Rejected(status));
                }
            },
            None => Accept::new(),
        };
        let upgraded = handshake.upgrade(accept)?;
        stream.set_read_timeout(None)?;
        Ok(Some(self.connect(upgraded)))
    }

    /// The client of an accepted upgrade. Apart, and not inlined, so that
    /// its locals are not on the stack while the handshake runs: a thread
    /// keeps every stack page it touched resident for life.
    #[inline(never)]
    fn connect(&self, received: Box<Received>) -> Client {
        let stream = &self.stream;
        let outbox = Arc::clone(&self.outbox);
        let link = Arc::new(Link {
            id: self.id,
            shared: Arc::clone(&self.shared),
            stream: Arc::clone(stream),
            outbox: Arc::clone(&outbox),
            last_received: AtomicU64::new(self.shared.millis()),
            cold: AtomicBool::new(true),
            cut: OnceLock::new(),
        });
        if let Some(live) = self.shared.connections().get_mut(&self.id) {
            live.outbox = Some(Arc::clone(&outbox));
        }
        self.shared.counters.clients.fetch_add(1, Ordering::Relaxed);
        log::debug!("client {} connected from {}", self.id, self.peer);
        Client {
            id: self.id,
            peer: self.peer,
            link,
            state: received,
            done: false,
            config: Arc::clone(&self.config),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Reads with a deadline for the whole handshake, not per read, so a
/// client trickling one byte at a time cannot hold the thread.
struct Deadline<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake timed out",
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// What the connection thread and the writer thread of a client share.
#[derive(Debug)]
struct Link {
    /// The key of the client's entry in [`Shared::connections`].
    id: u64,
    shared: Arc<Shared>,
    stream: Arc<TcpStream>,
    outbox: Arc<Outbox>,
    /// When bytes last arrived, in the server's milliseconds.
    last_received: AtomicU64,
    /// Whether the last read came after a quiet spell: the link is cold,
    /// and the next read makes do with a small buffer.
    cold: AtomicBool,
    /// Why the writer cut the connection (keepalive, failed write), once it
    /// has: the end of the stream the reader then sees is this error for
    /// the handler, not a clean close, even though the outbox is closing.
    cut: OnceLock<(io::ErrorKind, String)>,
}

/// A read that comes this long after the previous one finds the link cold.
const COLD_AFTER_MS: u64 = 100;

impl Drop for Link {
    /// The client's handler and writer are both done with it: free its
    /// slot under `max_connections`, and the server's handle on its socket.
    fn drop(&mut self) {
        self.shared.connections().remove(&self.id);
    }
}

/// One connected client, handed to your handler on its own thread.
///
/// Receive with [`recv`](Self::recv); send with [`send`](Self::send) (or
/// from other threads through a [`sender`](Self::sender)); subscribe to hub
/// topics. Dropping it closes the connection (code 1000) if it is still
/// open.
pub struct Client {
    id: u64,
    peer: SocketAddr,
    link: Arc<Link>,
    /// On the heap: a `Client` is moved into your handler, and every copy
    /// on the connection thread's stack deepens the pages it keeps resident.
    state: Box<Received>,
    done: bool,
    config: Arc<Config>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("request", &self.request())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A number that identifies this client while the server runs.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The upgrade request: path, query, headers.
    pub fn request(&self) -> Request<'_> {
        Request::from_parts(&self.state.head, self.state.parts)
    }

    /// Receives the next message, as [`Connection::recv`](crate::Connection::recv)
    /// does: pings are answered, the peer's close is answered and returned
    /// as [`Message::Close`], then `Ok(None)`.
    ///
    /// # Errors
    ///
    /// As for [`Connection::recv`](crate::Connection::recv); also when the
    /// server cut the connection (keepalive, shutdown, slow consumer).
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        let mut io = ClientIo {
            link: &self.link,
            shared: &self.shared,
        };
        let result = connection::recv(&mut self.state.protocol, &mut self.done, &mut io);
        if self.done {
            self.finish_reading();
        }
        result
    }

    fn finish_reading(&self) {
        self.link.outbox.pending().reader_done = true;
        self.link.outbox.ring();
    }

    /// Queues a message for this client. Waits while its queue is full (in
    /// [`queue_messages`](Config#structfield.queue_messages) or
    /// [`queue_bytes`](Config#structfield.queue_bytes)), at most
    /// [`write_timeout`](Config#structfield.write_timeout): a handler that
    /// outpaces its client is slowed down, not buffered without bound.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the connection is closing,
    /// [`Error::ControlTooLong`] for a ping over 125 bytes, and `TimedOut`
    /// if the queue stayed full.
    pub fn send(&self, message: Message) -> Result<(), Error> {
        self.sender().send(message)
    }

    /// Queues a text message; see [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.sender().send_frame(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message; see [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.sender().send_frame(OpCode::Binary, data)
    }

    /// Starts the closing handshake; keep calling [`recv`](Self::recv) until
    /// it returns `Ok(None)`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if closing already started,
    /// [`Error::ControlTooLong`] for a reason over 123 bytes.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.sender().close(code, reason)
    }

    /// A handle to send to this client from other threads.
    pub fn sender(&self) -> Sender {
        Sender {
            outbox: Arc::clone(&self.link.outbox),
            timeout: self.config.write_timeout,
        }
    }

    /// Subscribes to a hub topic; returns false if already subscribed.
    pub fn subscribe(&self, topic: &str) -> bool {
        self.shared.hub.subscribe(topic, &self.link.outbox)
    }

    /// Unsubscribes from a hub topic; returns false if not subscribed.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        self.shared.hub.unsubscribe(topic, &self.link.outbox)
    }

    /// The server's hub.
    pub fn hub(&self) -> Hub {
        self.shared.hub.clone()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.hub.unsubscribe_all(&self.link.outbox);
        if !self.done {
            // Close, and wait (bounded) for the peer's answer so the close
            // is clean.
            let _ = self.link.outbox.close(Some(CloseCode::NORMAL), "");
            let deadline = Instant::now() + self.config.close_timeout;
            while !self.done {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || self.link.stream.set_read_timeout(Some(left)).is_err() {
                    break;
                }
                if self.recv().is_err() && !self.done {
                    break;
                }
            }
        }
        self.finish_reading();
        self.shared.counters.clients.fetch_sub(1, Ordering::Relaxed);
        log::debug!("client {} gone", self.id);
    }
}

struct ClientIo<'a> {
    link: &'a Link,
    shared: &'a Shared,
}

impl Duplex for ClientIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.link.outbox.read(&self.link.stream, buf)?;
        if n == 0 {
            if let Some((kind, why)) = self.link.cut.get() {
                return Err(io::Error::new(*kind, why.as_str()));
            }
        }
        let now = self.shared.millis();
        let before = self.link.last_received.swap(now, Ordering::Relaxed);
        let cold = now.saturating_sub(before) >= COLD_AFTER_MS;
        self.link.cold.store(cold, Ordering::Relaxed);
        Ok(n)
    }

    fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.link.outbox.pong(payload);
        Ok(())
    }

    fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<bool, Error> {
        Ok(self.link.outbox.close(code, reason))
    }

    fn is_closing(&self) -> bool {
        self.link.outbox.is_closing()
    }

    fn is_cold(&self) -> bool {
        self.link.cold.load(Ordering::Relaxed)
    }

    fn was_reset(&mut self) -> bool {
        connection::write_fails(&*self.link.stream)
    }
}

/// Sends to one client from any thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sender {
    outbox: Arc<Outbox>,
    timeout: Duration,
}

impl Sender {
    /// Queues a message; see [`Client::send`].
    ///
    /// # Errors
    ///
    /// As for [`Client::send`].
    pub fn send(&self, message: Message) -> Result<(), Error> {
        match message {
            Message::Text(text) => self.send_frame(OpCode::Text, text.as_bytes()),
            Message::Binary(data) => self.send_frame(OpCode::Binary, &data),
            Message::Ping(data) => self.send_frame(OpCode::Ping, &data),
            Message::Pong(data) => self.send_frame(OpCode::Pong, &data),
            Message::Close(None) => match self.outbox.close(None, "") {
                true => Err(Error::Closed),
                false => Ok(()),
            },
            Message::Close(Some(frame)) => self.close(frame.code, &frame.reason),
        }
    }

    fn send_frame(&self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        if opcode.is_control() && payload.len() > frame::MAX_CONTROL_PAYLOAD {
            return Err(Error::ControlTooLong);
        }
        if self.outbox.is_closing() {
            return Err(Error::Closed);
        }
        if self
            .outbox
            .send(Frame::encode(opcode, payload, None), self.timeout)
        {
            Ok(())
        } else if self.outbox.is_closing() {
            Err(Error::Closed)
        } else {
            Err(io::Error::new(io::ErrorKind::TimedOut, "client queue stayed full").into())
        }
    }

    /// Starts the closing handshake; see [`Client::close`].
    ///
    /// # Errors
    ///
    /// As for [`Client::close`].
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if reason.len() > frame::MAX_CONTROL_PAYLOAD - 2 {
            return Err(Error::ControlTooLong);
        }
        match self.outbox.close(Some(code), reason) {
            true => Err(Error::Closed),
            false => Ok(()),
        }
    }

    /// Whether the connection is closing: nothing more will be sent.
    pub fn is_closing(&self) -> bool {
        self.outbox.is_closing()
    }
}

/// The writer thread of one client.
struct Writer {
    link: Arc<Link>,
    config: Arc<Config>,
    shared: Arc<Shared>,
}

/// Why a writer stopped.
enum End {
    /// The closing handshake is over, or the reader finished.
    Done,
    /// The peer did not answer the keepalive ping.
    Unresponsive,
    /// A write failed or timed out.
    Write(io::Error),
}

impl Writer {
    fn run(self) {
        let counters = &self.shared.counters;
        let cut = match self.serve() {
            End::Done => None,
            End::Unresponsive => {
                log::info!("closing a client that did not answer a ping");
                bump(&counters.disconnected_unresponsive);
                Some((
                    io::ErrorKind::TimedOut,
                    "no answer to the keepalive ping".into(),
                ))
            }
            End::Write(e) => {
                log::info!("closing a client after a failed write: {e}");
                if !self.link.outbox.is_closing() {
                    bump(&counters.disconnected_write);
                }
                Some((e.kind(), e.to_string()))
            }
        };
        if let Some(cut) = cut {
            let _ = self.link.cut.set(cut);
        }
        // The server closes the TCP connection (RFC 6455 §7.1.1); this also
        // wakes the connection thread if it is blocked reading.
        let _ = self.link.stream.shutdown(Shutdown::Both);
        self.link.outbox.close(None, "");
        while self.link.outbox.try_take().is_some() {}
    }

    fn serve(&self) -> End {
        let outbox = &self.link.outbox;
        outbox.attach_writer();
        let mut batch: Vec<Frame> = Vec::new();
        let mut control = Vec::new();
        let mut ping_sent: Option<u64> = None;
        let mut close_sent_at: Option<Instant> = None;
        loop {
            // Wait for work, or for the next keepalive or close deadline.
            // An idle client keeps no batch buffer.
            if batch.capacity() > 16 {
                batch = Vec::new();
            }
            outbox.park(self.next_wake(ping_sent, close_sent_at));
            // Frames leave the queue only with the wire held, so the
            // flusher cannot write a later one first.
            let mut wire = outbox.wire();
            if let Some(e) = wire.failed.take() {
                outbox.release_wire(wire);
                return End::Write(e);
            }
            while batch.len() < MAX_BATCH {
                match outbox.try_take() {
                    Some(frame) => batch.push(frame),
                    None => break,
                }
            }
            outbox.take_rung();
            let (pong, latest, close, reader_done) = {
                let mut pending = outbox.pending();
                if !pending.latest.is_empty() {
                    // Whatever is queued now is older than the newest frames
                    // waiting beside the queue: keep-latest publishers queue
                    // under this lock, and only while their topic has no
                    // frame waiting. Take it all, to write it first.
                    while let Some(frame) = outbox.try_take() {
                        batch.push(frame);
                    }
                }
                (
                    pending.pong.take(),
                    std::mem::take(&mut pending.latest),
                    pending.close.take(),
                    pending.reader_done,
                )
            };
            if let Some(at) = close_sent_at {
                // Our close is out: nothing more is written; wait for the
                // reader to see the peer's close, or give up.
                batch.clear();
                outbox.release_wire(wire);
                if reader_done || at.elapsed() >= self.config.close_timeout {
                    return End::Done;
                }
                continue;
            }

            // Keepalive: anything received since our ping answers it.
            let now = self.shared.millis();
            let last = self.link.last_received.load(Ordering::Relaxed);
            if ping_sent.is_some_and(|sent| last >= sent) {
                ping_sent = None;
            }
            if let Some(sent) = ping_sent {
                if now.saturating_sub(sent) >= self.config.pong_timeout.as_millis() as u64 {
                    outbox.release_wire(wire);
                    return End::Unresponsive;
                }
            }

            control.clear();
            if let Some(payload) = &pong {
                encode_into(&mut control, OpCode::Pong, payload);
            }
            if let (None, Some(interval)) = (ping_sent, self.config.ping_interval) {
                if now.saturating_sub(last) >= interval.as_millis() as u64 && close.is_none() {
                    encode_into(&mut control, OpCode::Ping, b"");
                    ping_sent = Some(now);
                }
            }
            let close_at = control.len();
            if let Some((code, reason)) = &close {
                let mut payload = Vec::with_capacity(2 + reason.len());
                if let Some(code) = code {
                    payload.extend_from_slice(&code.0.to_be_bytes());
                    payload.extend_from_slice(reason.as_bytes());
                }
                encode_into(&mut control, OpCode::Close, &payload);
            }
            outbox.notify_space();
            let (pings, closing) = control.split_at(close_at);
            let unsent = std::mem::take(&mut wire.unsent);
            let delivered = unsent
                .iter()
                .chain(&batch)
                .chain(&latest)
                .filter(|f| f.topic().is_some())
                .count();
            let parts = Parts {
                unsent: &unsent,
                offset: std::mem::take(&mut wire.offset),
                pings,
                batch: &batch,
                latest: &latest,
                closing,
            };
            let written = self.write(&parts);
            outbox.release_wire(wire);
            if let Err(e) = written {
                return End::Write(e);
            }
            batch.clear();
            bump_by(&self.shared.counters.delivered, delivered);
            if close.is_some() {
                close_sent_at = Some(Instant::now());
                if reader_done {
                    return End::Done;
                }
            } else if reader_done && outbox.rx.is_empty() {
                // The peer hung up, or the handler is gone without a
                // close to send.
                return End::Done;
            }
        }
    }

    /// How long to wait before the next keepalive or close deadline.
    fn next_wake(&self, ping_sent: Option<u64>, close_sent_at: Option<Instant>) -> Duration {
        if let Some(at) = close_sent_at {
            return self
                .config
                .close_timeout
                .saturating_sub(at.elapsed())
                .max(Duration::from_millis(1));
        }
        let now = self.shared.millis();
        let due = match (ping_sent, self.config.ping_interval) {
            (Some(sent), _) => sent + self.config.pong_timeout.as_millis() as u64,
            (None, Some(interval)) => {
                self.link.last_received.load(Ordering::Relaxed) + interval.as_millis() as u64
            }
            // No keepalive: wake only for work.
            (None, None) => return Duration::from_secs(3600),
        };
        Duration::from_millis(due.saturating_sub(now).max(1))
    }

    /// Writes, in as few `writev` calls as the kernel allows: what the
    /// flusher left unsent, control frames, the queued data, then a close
    /// frame.
    fn write(&self, parts: &Parts<'_>) -> io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> =
            Vec::with_capacity(3 + parts.unsent.len() + parts.batch.len() + parts.latest.len());
        if let Some((first, rest)) = parts.unsent.split_first() {
            slices.push(IoSlice::new(&first.bytes()[parts.offset..]));
            slices.extend(rest.iter().map(|f| IoSlice::new(f.bytes())));
        }
        slices.push(IoSlice::new(parts.pings));
        slices.extend(
            parts
                .batch
                .iter()
                .chain(parts.latest)
                .map(|f| IoSlice::new(f.bytes())),
        );
        slices.push(IoSlice::new(parts.closing));
        // The flusher may have left the socket non-blocking.
        self.link.outbox.block(&self.link.stream)?;
        connection::write_all_vectored(&*self.link.stream, &mut slices)
    }
}

/// What one write of the writer thread carries, in this order.
struct Parts<'a> {
    unsent: &'a [Frame],
    /// Bytes of the first unsent frame already out.
    offset: usize,
    pings: &'a [u8],
    batch: &'a [Frame],
    latest: &'a [Frame],
    closing: &'a [u8],
}

fn bump_by(counter: &AtomicU64, n: usize) {
    if n > 0 {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn encode_into(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let (header, len) = frame::server_header(opcode, payload.len());
    out.extend_from_slice(&header[..len]);
    out.extend_from_slice(payload);
}
