//! The server: a `std::net` listener, a thread per client, keepalive, a
//! connection cap and graceful shutdown.
//!
//! ```text
//!  accept thread (Server::run)
//!     |  one per connection; past max_connections (or
//!     |  max_connections_per_ip from one address): 503, no thread
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
//!  flusher thread "boardcast-flush" (one per server): each listed client's
//!     queue in one non-blocking writev; the rest to its writer thread
//!  a full queue: written out by the publisher (non-blocking); if the socket
//!     is full too, the topic's Policy drops or disconnects
//! ```

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::handshake::{Accept, Request, Response};
use crate::hub::{bump, Counters, Hub};
use crate::message::CloseCode;
use crate::socket::{self, Socket};

mod client;
mod flusher;
mod forms;
mod framing;
mod http;
mod outbox;
mod poll;
mod route;
mod session;
mod shared;
mod sse;
mod task;
mod tracker;
mod transports;
mod writer;

pub use client::{Client, Sender};
pub use transports::Transports;

use crate::server::outbox::Outbox;
use crate::server::shared::{Connections, IpKey, Live, PartialBudget, Shared};
use crate::server::task::{Handler, HttpFn, Task, UpgradeFn};
use crate::server::tracker::Tracker;

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
            hub: Hub::with_counters(Arc::clone(&counters)),
            counters,
            flusher: Arc::default(),
            stopping: AtomicBool::new(false),
            local_addr: listener.local_addr()?,
            connections: Mutex::new(Connections::default()),
            next_id: AtomicU64::new(1),
            threads: Arc::new(Tracker::default()),
            started: Instant::now(),
            partial: Arc::new(PartialBudget::new(config.max_partial_bytes)),
            transports: Mutex::new(Arc::new(Transports::none())),
            sessions: Default::default(),
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

    /// Serves the HTTP transports beside WebSocket (`docs/transports.md`):
    /// Server-Sent Events, long polling, their `POST`s, `/latest` and
    /// `boardcast.js`, at the paths `transports` gives
    /// ([`Transports::default`]: `/sse`, `/poll`, `/send`, `/latest`,
    /// `/boardcast.js`). Their clients are sessions your handler gets as
    /// [`Client`]s like the WebSocket ones ([`Client::transport`] says
    /// which). Requests for those paths never reach `on_http`.
    pub fn transports(self, transports: Transports) -> Self {
        *self
            .shared
            .transports
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(transports);
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
        let handler: Arc<Handler> = Arc::new(handler);
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
        self.shared.flusher.stop();
        Ok(())
    }

    fn spawn_connection(&self, stream: TcpStream, peer: SocketAddr, handler: &Arc<Handler>) {
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("set_nodelay: {e}");
        }
        if let Some(bytes) = self.config.send_buffer_size {
            if let Err(e) = socket::set_send_buffer_size(&stream, bytes) {
                log::debug!("SO_SNDBUF: {e}");
            }
        }
        let stream: Arc<dyn Socket> = Arc::new(stream);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let ip = (self.config.limit_loopback || !peer.ip().to_canonical().is_loopback())
            .then(|| IpKey::of(peer.ip()));
        {
            let mut connections = self.shared.connections();
            let full = connections.len() >= self.config.max_connections;
            let host_full =
                ip.is_some_and(|ip| connections.count_of(ip) >= self.config.max_connections_per_ip);
            if full || host_full {
                drop(connections);
                bump(&self.shared.counters.rejected_full);
                if full {
                    log::info!(
                        "refusing {peer}: {} connections",
                        self.config.max_connections
                    );
                } else {
                    log::info!(
                        "refusing {peer}: {} connections from its address",
                        self.config.max_connections_per_ip
                    );
                }
                refuse_full(&*stream);
                return;
            }
            connections.insert(
                id,
                Live {
                    stream: Arc::clone(&stream),
                    outbox: None,
                    ip,
                },
            );
        }
        let task = Task {
            id,
            peer,
            outbox: Outbox::new(
                self.config.queue_messages,
                self.config.queue_bytes,
                Some(Arc::clone(&stream)),
                Some(Arc::clone(&self.shared.flusher)),
                Arc::clone(&self.shared.counters),
            ),
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
                refuse_full(&*live.stream);
            }
        }
    }

    fn shutdown_gracefully(&self) {
        // Long-poll sessions end (their handlers' recv returns None, held
        // polls answer); SSE streams are closed with their connections.
        for session in self.shared.sessions.all() {
            session.close();
        }
        let live: Vec<Live> = self.shared.connections().values().cloned().collect();
        log::info!("shutting down: closing {} connections", live.len());
        for Live { stream, outbox, .. } in &live {
            match outbox {
                Some(outbox) => {
                    let _ = outbox.close(Some(CloseCode::AWAY), "server shutting down");
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
fn refuse_full(stream: &dyn Socket) {
    let mut out = Vec::new();
    Response::text(503, "server full, try again later")
        .header("Retry-After", "1")
        .write(true, &mut out);
    let _ = stream.set_nonblocking(true);
    let _ = socket::write_all_vectored(socket::Io(stream), &mut [IoSlice::new(&out)]);
    let _ = stream.shutdown(Shutdown::Write);
    // Read what already arrived, so closing sends FIN rather than RST and
    // the client sees the reply.
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
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
