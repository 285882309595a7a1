//! Servers on `127.0.0.1:0`: a [`boardcast::Server`] run on a thread of
//! its own ([`Running`]) with echo handlers, and a plain accept loop
//! ([`Server`]) handing each raw stream to a handler, for the
//! `boardcast::accept` path and for clients tested against a raw peer.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use boardcast::{Client, Config, Error, Hub, Message, ShutdownHandle, Stats};

use super::{close, connect, init_logging, next_text, send_text, TIMEOUT};

/// A server thread on an ephemeral loopback port that accepts a known
/// number of connections and runs a handler for each on its own thread.
pub struct Server<T> {
    addr: SocketAddr,
    results: mpsc::Receiver<T>,
}

impl<T: Send + 'static> Server<T> {
    /// Accepts `connections` connections and runs `handler` on each, on a
    /// thread of its own, with read and write timeouts of [`TIMEOUT`] set
    /// on the stream (clear them in the handler if the test needs to).
    /// What each handler returns is collected by [`result`](Self::result).
    pub fn spawn<F>(connections: usize, handler: F) -> Server<T>
    where
        F: Fn(TcpStream) -> T + Send + Sync + 'static,
    {
        init_logging();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let (tx, results) = mpsc::channel();
        let handler = Arc::new(handler);
        thread::Builder::new()
            .name("test-accept".into())
            .spawn(move || {
                for _ in 0..connections {
                    let Ok((stream, _)) = listener.accept() else {
                        return;
                    };
                    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
                    let (tx, handler) = (tx.clone(), handler.clone());
                    thread::Builder::new()
                        .name("test-connection".into())
                        .spawn(move || {
                            let _ = tx.send(handler(stream));
                        })
                        .unwrap();
                }
            })
            .unwrap();
        Server { addr, results }
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `ws://` URL of the server.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// What the next handler to finish returned; fails the test if none
    /// finishes within [`TIMEOUT`] (or a handler panicked).
    pub fn result(&self) -> T {
        self.results
            .recv_timeout(TIMEOUT)
            .expect("the server handler did not finish in time (or panicked)")
    }
}

/// A [`boardcast::Server`] on `127.0.0.1:0`.
pub fn server(config: Config) -> boardcast::Server {
    init_logging();
    boardcast::Server::bind("127.0.0.1:0", config).expect("bind 127.0.0.1:0")
}

/// A [`boardcast::Server::run`] on a thread of its own.
pub struct Running {
    pub addr: SocketAddr,
    pub hub: Hub,
    stop: ShutdownHandle,
    returned: mpsc::Receiver<io::Result<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Runs `server` with `handler` on a thread named `test-server`.
    pub fn start<F>(server: boardcast::Server, handler: F) -> Running
    where
        F: Fn(Client) + Send + Sync + 'static,
    {
        let addr = server.local_addr();
        let hub = server.hub();
        let stop = server.shutdown_handle();
        let (tx, returned) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let _ = tx.send(server.run(handler));
            })
            .expect("spawn the server thread");
        Running {
            addr,
            hub,
            stop,
            returned,
            thread: Some(thread),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.hub.stats()
    }

    /// A handle to shut the server down.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Shuts the server down and waits for `run` to return (at most
    /// `within`); returns how long that took.
    pub fn shutdown(mut self, within: Duration) -> Duration {
        let start = Instant::now();
        self.stop.shutdown();
        self.join(within);
        start.elapsed()
    }

    /// Waits for `run` to return (after a shutdown started elsewhere).
    pub fn join(&mut self, within: Duration) {
        let result = self
            .returned
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("Server::run did not return within {within:?}"));
        result.expect("Server::run failed");
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread panicked");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test still stops its server, within bounds.
        if self.thread.is_some() {
            self.stop.shutdown();
            let _ = self.returned.recv_timeout(TIMEOUT);
        }
    }
}

/// An echo handler: data messages go back as they came.
pub fn echo(mut client: Client) {
    while let Ok(Some(message)) = client.recv() {
        if message.is_data() {
            let _ = client.send(message);
        }
    }
}

/// How a served client's connection ended: what its handler received, and
/// what its last `recv` returned (`Ok(())` for `Ok(None)`).
#[derive(Debug)]
pub struct Served {
    pub messages: Vec<Message>,
    pub end: Result<(), Error>,
}

/// An echo handler that reports each connection's [`Served`] when it ends.
pub fn echo_reporting() -> (
    impl Fn(Client) + Send + Sync + 'static,
    mpsc::Receiver<Served>,
) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let handler = move |mut client: Client| {
        let mut messages = Vec::new();
        let end = loop {
            match client.recv() {
                Ok(Some(message)) => {
                    if message.is_data() {
                        let _ = client.send(message.clone());
                    }
                    messages.push(message);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let served = Served { messages, end };
        let _ = tx.lock().unwrap_or_else(|p| p.into_inner()).send(served);
    };
    (handler, rx)
}

/// Checks that a connection ended with the peer's reset.
pub fn assert_reset(end: &Result<(), Error>, what: &str) {
    match end {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{what}: {e}"),
        other => panic!("{what}: expected a reset, the handler saw {other:?}"),
    }
}

/// The next connection's report; fails the test after [`TIMEOUT`].
pub fn next_served(reports: &mpsc::Receiver<Served>) -> Served {
    reports
        .recv_timeout(TIMEOUT)
        .expect("no handler finished in time (or one panicked)")
}

/// Checks that the server still serves: a new client's text is echoed, and
/// it closes cleanly.
pub fn assert_served(addr: SocketAddr) {
    let mut ws = connect(addr, "/");
    send_text(&mut ws, "still served");
    assert_eq!(next_text(&mut ws), "still served");
    close(ws);
}

/// A handler that answers each text message with `echo <text> over
/// <transport>`, whatever the client's transport.
pub fn echo_over(mut client: Client) {
    while let Ok(Some(message)) = client.recv() {
        if let Message::Text(text) = message {
            let _ = client.send_text(&format!("echo {text} over {}", client.transport()));
        }
    }
}

/// Publishes `n<seq>` to a topic every `period`, on a thread of its own,
/// until stopped (two minutes at most): the load of the browser tests.
pub struct Ticker {
    running: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Ticker {
    pub fn start(hub: &Hub, topic: &'static str, period: Duration) -> Ticker {
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (hub, flag) = (hub.clone(), Arc::clone(&running));
        let thread = thread::Builder::new()
            .name("test-ticker".into())
            .spawn(move || {
                let start = Instant::now();
                let mut seq = 0;
                while flag.load(std::sync::atomic::Ordering::Relaxed)
                    && start.elapsed() < Duration::from_secs(120)
                {
                    seq = hub.last_seq(topic) + 1;
                    hub.publish_text(topic, &format!("n{seq}"));
                    // Pacing the load, not waiting for anything.
                    thread::sleep(period);
                }
                seq
            })
            .expect("spawn the ticker");
        Ticker {
            running,
            thread: Some(thread),
        }
    }

    /// Stops it; returns the last sequence number published.
    pub fn stop(mut self) -> u64 {
        self.running
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .map_or(0, |t| t.join().expect("the ticker panicked"))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.running
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
}
