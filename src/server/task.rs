//! A connection thread: the handshake under its deadline, routing (pages,
//! refusals, upgrades), then the handler with its client.

use std::cell::Cell;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::connection::{Handshake, Received};
use crate::error::{Error, HandshakeError};
use crate::frame::{Frame, OpCode};
use crate::handshake::{Accept, Request, Response};
use crate::hub::{bump, Encoded};
use crate::server::client::{Client, Link};
use crate::server::forms;
use crate::server::outbox::Outbox;
use crate::server::shared::Shared;
use crate::server::writer::Writer;
use crate::socket::{Io, Socket};
use crate::wire::v1;

/// Answers a request that is not an upgrade (see [`Server::on_http`]).
///
/// [`Server::on_http`]: super::Server::on_http
pub(super) type HttpFn = dyn Fn(&Request<'_>) -> Response + Send + Sync;
/// Decides on an upgrade (see [`Server::on_upgrade`]).
///
/// [`Server::on_upgrade`]: super::Server::on_upgrade
pub(super) type UpgradeFn = dyn Fn(&Request<'_>) -> Result<Accept, Response> + Send + Sync;
/// The application's handler of each client.
pub(super) type Handler = dyn Fn(Client) + Send + Sync;

/// Everything a connection thread needs.
pub(super) struct Task {
    pub(super) id: u64,
    pub(super) peer: SocketAddr,
    pub(super) stream: Arc<dyn Socket>,
    /// Made on the accept thread: building a channel takes a deep stack
    /// frame, and the pages it touches on a connection thread stay resident
    /// for the connection's life.
    pub(super) outbox: Arc<Outbox>,
    pub(super) config: Arc<Config>,
    pub(super) shared: Arc<Shared>,
    pub(super) on_http: Option<Arc<HttpFn>>,
    pub(super) on_upgrade: Option<Arc<UpgradeFn>>,
    pub(super) handler: Arc<Handler>,
}

impl Task {
    pub(super) fn run(self) {
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
        // Under the handshake deadline, with the write timeout set.
        let handshake = Handshake::read(Io(&**stream), &self.config)?;
        let request = handshake.request();
        if !request.is_upgrade() {
            // What `accept` would answer: 405 for a method other than GET,
            // 426 for a GET without the upgrade headers.
            let refusal = request
                .validate(&self.config)
                .err()
                .unwrap_or(HandshakeError::NotUpgrade);
            // A request naming `Upgrade: websocket` asks for a WebSocket,
            // with the wrong method or without `Connection: upgrade`: it
            // gets the same refusal as from `accept`, never a page.
            if request.asks_websocket() {
                handshake.respond(&Response::refusal(refusal))?;
                return Err(Error::Handshake(refusal));
            }
            let response = match &self.on_http {
                Some(respond) => respond(&request),
                None => Response::refusal(refusal),
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
        let accept = self.select_protocol(accept, &request);
        let speaks_v1 = accept.selected_protocol() == Some(v1::PROTOCOL);
        let upgraded = handshake.upgrade(accept)?;
        stream.set_read_timeout(None)?;
        Ok(Some(self.connect(upgraded, speaks_v1)))
    }

    /// The subprotocol the application chose, or else the first configured
    /// one the client offers, or else `boardcast.v1` if it offers that.
    fn select_protocol(&self, accept: Accept, request: &Request<'_>) -> Accept {
        if accept.selected_protocol().is_some() {
            return accept;
        }
        match request.select_protocol(&self.config.protocols) {
            Some(protocol) => accept.protocol(protocol),
            None if request.protocols().any(|p| p == v1::PROTOCOL) => accept.protocol(v1::PROTOCOL),
            None => accept,
        }
    }

    /// The client of an accepted upgrade. Apart, and not inlined, so that
    /// its locals are not on the stack while the handshake runs: a thread
    /// keeps every stack page it touched resident for life.
    #[inline(never)]
    fn connect(&self, mut received: Box<Received>, speaks_v1: bool) -> Client {
        received
            .inbound
            .set_budget(Box::new(Arc::clone(&self.shared.partial)));
        if let Some(encoder) = received.encoder.take() {
            self.outbox.outbound.set_encoder(encoder);
        }
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
        if let Some(form) = forms::form(speaks_v1, received.deflate_window) {
            outbox.set_form(form);
        }
        if speaks_v1 {
            outbox.set_v1();
            let welcome = v1::welcome(self.shared.hub.epoch());
            let frame = Frame::new(OpCode::Text, welcome.as_bytes(), None);
            outbox.push_unbounded(Encoded::new(None, 0, &frame));
        }
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
            subscriptions: Cell::new(0),
        }
    }
}
