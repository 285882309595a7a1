//! A client of the server, as its handler sees it: receive on the
//! client's own thread, send from any thread, subscribe to hub topics. A
//! WebSocket client, or a session of an HTTP transport (SSE, long
//! polling): the handler need not know which.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::connection::driver::{self, Duplex};
use crate::connection::Received;
use crate::error::Error;
use crate::frame::{Frame, OpCode};
use crate::handshake::Request;
use crate::hub::{Encoded, Hub, Resumed, Since, Subscriber};
use crate::message::{CloseCode, Message};
use crate::protocol::Reply;
use crate::server::outbox::Outbox;
use crate::server::session::Session;
use crate::server::shared::Shared;
use crate::socket::Socket;
use crate::wire::v1::{self, Command, CommandError};
use crate::wire::Notice;

/// What the connection thread and the writer thread of a client share.
#[derive(Debug)]
pub(super) struct Link {
    /// The key of the client's entry in [`Shared::connections`].
    pub(super) id: u64,
    pub(super) shared: Arc<Shared>,
    pub(super) stream: Arc<dyn Socket>,
    pub(super) outbox: Arc<Outbox>,
    /// When bytes last arrived, in the server's milliseconds.
    pub(super) last_received: AtomicU64,
    /// Whether the last read came after a quiet spell: the link is cold,
    /// and the next read makes do with a small buffer.
    pub(super) cold: AtomicBool,
    /// Why the writer cut the connection (keepalive, failed write), once it
    /// has: the end of the stream the reader then sees is this error for
    /// the handler, not a clean close, even though the outbox is closing.
    pub(super) cut: OnceLock<(io::ErrorKind, String)>,
    /// The session of an SSE stream, ended with the stream.
    pub(super) session: Option<Arc<Session>>,
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
///
/// A client is a WebSocket, or a session of the HTTP transports (see
/// [`Server::transports`](super::Server::transports)): a Server-Sent Events
/// stream whose page sends with `POST`, or a long-polling page. The same
/// handler serves them all.
pub struct Client {
    pub(super) id: u64,
    pub(super) peer: SocketAddr,
    /// Where sends go; for a WebSocket and an SSE stream, also the hub's
    /// subscriber.
    pub(super) outbox: Arc<Outbox>,
    pub(super) via: Via,
    pub(super) done: bool,
    pub(super) config: Arc<Config>,
    pub(super) shared: Arc<Shared>,
    /// How many topics it is subscribed to.
    pub(super) subscriptions: Cell<usize>,
}

/// How a client is reached.
pub(super) enum Via {
    /// A WebSocket: its link and its receiving half.
    WebSocket {
        link: Arc<Link>,
        /// On the heap: a `Client` is moved into your handler, and every
        /// copy on the connection thread's stack deepens the pages it keeps
        /// resident.
        state: Box<Received>,
    },
    /// A Server-Sent Events stream (its link) and its session.
    Stream {
        link: Arc<Link>,
        session: Arc<Session>,
    },
    /// A long-polling session.
    Poll { session: Arc<Session> },
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("transport", &self.transport())
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

    /// The request that opened it (the upgrade, the SSE request, the first
    /// poll): path, query, headers.
    pub fn request(&self) -> Request<'_> {
        match &self.via {
            Via::WebSocket { state, .. } => Request::from_parts(&state.head, state.parts),
            Via::Stream { session, .. } | Via::Poll { session } => session.request(),
        }
    }

    /// The socket and writer of a WebSocket or an SSE stream.
    pub(super) fn link(&self) -> Option<&Arc<Link>> {
        match &self.via {
            Via::WebSocket { link, .. } | Via::Stream { link, .. } => Some(link),
            Via::Poll { .. } => None,
        }
    }

    /// How it is reached: `"websocket"`, `"sse"` or `"poll"`.
    pub fn transport(&self) -> &'static str {
        match self.via {
            Via::WebSocket { .. } => "websocket",
            Via::Stream { .. } => "sse",
            Via::Poll { .. } => "poll",
        }
    }

    /// Receives the next message, as [`Connection::recv`](crate::Connection::recv)
    /// does: pings are answered, the peer's close is answered and returned
    /// as [`Message::Close`], then `Ok(None)`.
    ///
    /// With a client that speaks `boardcast.v1` (see
    /// [`speaks_v1`](Self::speaks_v1)), its subscribes and unsubscribes are
    /// served here, and only its messages are returned: the text of its
    /// `d` frames, and its binary messages. A session of the HTTP
    /// transports speaks it too: its messages are what its page POSTs, and
    /// `Ok(None)` comes when its stream ends or it stops polling.
    ///
    /// # Errors
    ///
    /// As for [`Connection::recv`](crate::Connection::recv); also when the
    /// server cut the connection (keepalive, shutdown, slow consumer), and
    /// `TimedOut` when a `boardcast.v1` client sends commands but does not
    /// read their answers.
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        loop {
            let message = self.recv_message()?;
            if !self.speaks_v1() {
                return Ok(message);
            }
            match message {
                Some(Message::Text(mut text)) => {
                    if text.starts_with("d\n") {
                        text.drain(..2);
                        return Ok(Some(Message::Text(text)));
                    }
                    self.command(&text)?;
                }
                other => return Ok(other),
            }
        }
    }

    /// Serves a `boardcast.v1` command.
    fn command(&self, text: &str) -> Result<(), Error> {
        let refused;
        let answer = match v1::parse(text) {
            Ok(Command::Subscribe { topic, since }) => {
                let outbox = &self.outbox;
                if !outbox.wait_for_replay_room(self.config.write_timeout) {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client does not read its replays",
                    )
                    .into());
                }
                let error = if self.subscriptions.get() >= v1::MAX_SUBSCRIPTIONS {
                    CommandError::TooManySubscriptions
                } else if self.resume(topic, since).is_none() {
                    CommandError::AlreadySubscribed(topic.into())
                } else {
                    // The replay queued its answer before its messages.
                    return Ok(());
                };
                refused = error.to_string();
                Notice::Refused { reason: &refused }
            }
            Ok(Command::Unsubscribe { topic }) => {
                self.unsubscribe(topic);
                Notice::Unsubscribed { topic }
            }
            Ok(Command::Data(_)) => unreachable!("d frames are messages"),
            Err(e) => {
                refused = e.to_string();
                Notice::Refused { reason: &refused }
            }
        };
        match self.outbox.notice(&answer) {
            Some(answer) => self.sender().queue_encoded(answer),
            None => Ok(()),
        }
    }

    fn recv_message(&mut self) -> Result<Option<Message>, Error> {
        if self.done {
            return Ok(None);
        }
        let result = match &mut self.via {
            Via::WebSocket { link, state } => {
                let mut io = ClientIo {
                    link,
                    shared: &self.shared,
                };
                let state = &mut **state;
                driver::recv(
                    &mut state.inbound,
                    &mut self.done,
                    &mut state.clock,
                    &mut io,
                )
            }
            Via::Stream { session, .. } => {
                let message = session_recv(session, None);
                self.done = message.is_none();
                Ok(message)
            }
            Via::Poll { session } => {
                let expiry = self.shared.transports().session_timeout;
                let message = session_recv(session, Some(expiry));
                self.done = message.is_none();
                Ok(message)
            }
        };
        if self.done {
            self.finish_reading();
        }
        result
    }

    fn finish_reading(&self) {
        self.outbox.pending().reader_done = true;
        self.outbox.ring();
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
        self.sender().send_text(text)
    }

    /// Queues a binary message; see [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.sender().send_binary(data)
    }

    /// Queues a ping; the client's pong comes back through
    /// [`recv`](Self::recv). (The server pings quiet clients by itself: see
    /// [`ping_interval`](Config#structfield.ping_interval).)
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send).
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        self.sender().ping(payload)
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
            outbox: Arc::clone(&self.outbox),
            timeout: self.config.write_timeout,
        }
    }

    /// The client as a hub subscriber.
    fn subscriber(&self) -> Arc<dyn Subscriber> {
        self.outbox.clone()
    }

    /// Subscribes to a hub topic; returns false if already subscribed.
    /// Messages published from now on are sent to the client.
    pub fn subscribe(&self, topic: &str) -> bool {
        let subscribed = self.shared.hub.subscribe(topic, &self.subscriber());
        self.count(subscribed, 1)
    }

    /// Subscribes to a hub topic after sending what the client missed
    /// since its last message's position, if it has one: every message
    /// after it, or, if some are no longer kept or the position is from
    /// another epoch, the latest kept message, or those of
    /// [`Since::past`](crate::hub::Since::past) (see [`Hub::resume`]). Then
    /// the live messages follow, with no gap and no duplicate. Returns
    /// `None` if already subscribed.
    ///
    /// The replay is queued whole, beside the client's queue bounds: it is
    /// bounded by the topic's [`Retention`](crate::hub::Retention).
    pub fn resume(&self, topic: &str, since: impl Into<Since>) -> Option<Resumed> {
        let resumed = self.shared.hub.resume(topic, &self.subscriber(), since);
        self.count(resumed.is_some(), 1);
        resumed
    }

    /// Unsubscribes from a hub topic; returns false if not subscribed.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        let unsubscribed = self.shared.hub.unsubscribe(topic, &self.subscriber());
        self.count(unsubscribed, -1)
    }

    fn count(&self, changed: bool, by: isize) -> bool {
        if changed {
            let count = self.subscriptions.get();
            self.subscriptions.set(count.saturating_add_signed(by));
        }
        changed
    }

    /// Whether the client negotiated the `boardcast.v1` subprotocol
    /// (`docs/protocol.md`): its published messages carry their topic and
    /// sequence number, it subscribes and resumes by itself (served in
    /// [`recv`](Self::recv)), and what you send it is framed as the
    /// protocol's `d` messages.
    pub fn speaks_v1(&self) -> bool {
        self.outbox.framing().is_some()
    }

    /// The server's hub.
    pub fn hub(&self) -> Hub {
        self.shared.hub.clone()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.hub.unsubscribe_all(&self.subscriber());
        if let Via::Stream { session, .. } | Via::Poll { session } = &self.via {
            // A session ends with its handler: its stream is closed, and
            // its page's next POST or poll finds it gone.
            session.close();
            self.shared.sessions.remove(&session.id);
            let _ = self.outbox.close(None, "");
            self.done = true;
        }
        if !self.done {
            // Close, and wait (bounded) for the peer's answer so the close
            // is clean.
            let _ = self.outbox.close(Some(CloseCode::NORMAL), "");
            let deadline = Instant::now() + self.config.close_timeout;
            while !self.done {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                if let Via::WebSocket { state, .. } = &mut self.via {
                    state.clock.set_read_timeout(Some(left));
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
        let n = self.link.outbox.read(&*self.link.stream, buf)?;
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

    fn reply(&mut self, reply: &Reply<'_>) -> Result<bool, Error> {
        // Queued for the writer thread, which writes pongs and our close.
        Ok(match reply {
            Reply::Pong(payload) => self.link.outbox.pong(payload),
            Reply::Close { code, reason } => self.link.outbox.close(*code, reason).is_ok(),
        })
    }

    fn ping(&mut self) -> Result<(), Error> {
        // Its clock does not ping: the writer thread does.
        Ok(())
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.link.stream.set_read_timeout(timeout)
    }

    fn is_closing(&self) -> bool {
        self.link.outbox.is_closing()
    }

    fn is_cold(&self) -> bool {
        self.link.cold.load(Ordering::Relaxed)
    }

    fn was_reset(&mut self) -> bool {
        driver::write_fails(&*self.link.stream)
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
        match &message {
            Message::Close(frame) => self.outbox.close(
                frame.as_ref().map(|f| f.code),
                frame.as_ref().map_or("", |f| &f.reason),
            ),
            Message::Text(text) => self.send_data(OpCode::Text, text.as_bytes()),
            Message::Binary(data) => self.send_data(OpCode::Binary, data),
            _ => self.queue(&self.outbox.outbound.message(&message)?),
        }
    }

    /// Queues a text message; see [`Client::send`].
    ///
    /// # Errors
    ///
    /// As for [`Client::send`].
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.send_data(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message; see [`Client::send`].
    ///
    /// # Errors
    ///
    /// As for [`Client::send`].
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.send_data(OpCode::Binary, data)
    }

    /// Queues a data message, as the protocol's `d` message to a
    /// `boardcast.v1` client.
    fn send_data(&self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        let direct = Notice::Direct {
            text: opcode == OpCode::Text,
            payload,
        };
        match self.outbox.notice(&direct) {
            Some(message) => self.queue_encoded(message),
            None => self.queue(&self.outbox.outbound.frame(opcode, payload)?),
        }
    }

    /// Queues a ping; see [`Client::ping`].
    ///
    /// # Errors
    ///
    /// As for [`Client::send`].
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        self.queue(&self.outbox.outbound.frame(OpCode::Ping, payload)?)
    }

    fn queue(&self, frame: &Frame<'_>) -> Result<(), Error> {
        self.queue_encoded(Encoded::direct(frame))
    }

    fn queue_encoded(&self, message: Encoded) -> Result<(), Error> {
        if self.outbox.send(message, self.timeout) {
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
        self.outbox.close(Some(code), reason)
    }

    /// Whether the connection is closing: nothing more will be sent.
    pub fn is_closing(&self) -> bool {
        self.outbox.is_closing()
    }
}

/// The next message of a session's page, or `None` once the session is
/// over: an SSE session when its stream ends; a long-poll session also when
/// its page has not polled for `expiry` (and no poll is held).
fn session_recv(session: &Session, expiry: Option<Duration>) -> Option<Message> {
    loop {
        let wait = match expiry {
            None => Duration::from_secs(3600),
            Some(expiry) => {
                let state = session.state();
                if !state.closed && state.polling == 0 && state.last_poll.elapsed() >= expiry {
                    drop(state);
                    log::debug!("session {} expired", session.id);
                    session.close();
                    // What its page sent before, then the end.
                    return session.recv(Duration::ZERO).unwrap_or(None);
                }
                expiry
                    .saturating_sub(state.last_poll.elapsed())
                    .max(Duration::from_millis(10))
            }
        };
        if let Ok(message) = session.recv(wait) {
            return message;
        }
    }
}
