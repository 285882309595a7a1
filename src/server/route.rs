//! A connection thread: the handshake under its deadline, routing (the
//! HTTP transports, pages, refusals, upgrades), then the handler with its
//! client.

use std::cell::Cell;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::connection::{Handshake, Received};
use crate::error::{Error, HandshakeError};
use crate::handshake::{Accept, Request, Response};
use crate::hub::bump;
use crate::server::client::{Client, Link, Via};
use crate::server::forms;
use crate::server::framing::Framing;
use crate::server::http::{self, Next};
use crate::server::task::Task;
use crate::server::transports::Endpoint;
use crate::server::writer::Writer;
use crate::server::{poll, sse};
use crate::socket::{Io, Socket};
use crate::wire::{self, v1, Notice};

impl Task {
    pub(super) fn run(self) {
        let Some(client) = self.upgrade() else {
            return;
        };
        let Some(link) = client.link() else {
            return;
        };
        let writer = Writer {
            link: Arc::clone(link),
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
            let _ = self.stream.shutdown(Shutdown::Both);
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

    /// Reads and answers the request (and, for the HTTP transports, those
    /// that follow on a connection kept alive); `Ok(None)` when it was
    /// plain HTTP. An SSE stream's client is returned as an upgraded
    /// WebSocket's is.
    fn handshake(&self) -> Result<Option<Client>, Error> {
        let stream = &self.stream;
        let mut buffered = Vec::new();
        let mut first = true;
        loop {
            // Under the handshake deadline, with the write timeout set.
            let handshake = match Handshake::read_after(Io(&**stream), &self.config, &buffered) {
                Ok(handshake) => handshake,
                // A connection kept alive that the client closed, or left
                // idle: nothing failed.
                Err(Error::Io(e)) if !first && buffered.is_empty() => {
                    log::debug!("keep-alive connection from {} ends: {e}", self.peer);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            first = false;
            let request = handshake.request();
            if !request.is_upgrade()
                && !request.asks_websocket()
                && self.shared.transports().route(request.path()).is_some()
            {
                match self.transport(handshake)? {
                    Next::Close => return Ok(None),
                    Next::KeepAlive(rest) => buffered = rest,
                    Next::Stream(client) => return Ok(Some(client)),
                }
                continue;
            }
            return self.answer(handshake);
        }
    }

    /// Answers a request for one of the HTTP transports (an SSE stream
    /// becomes a client for the handler).
    fn transport(&self, handshake: Handshake<'_, Io<'_, dyn Socket>>) -> Result<Next, Error> {
        let transports = self.shared.transports();
        let request = handshake.request();
        let Some(endpoint) = transports.route(request.path()) else {
            return http::answer(handshake, &Response::text(404, "not found"), false);
        };
        let keep_alive = http::wants_keep_alive(&request);
        match endpoint {
            Endpoint::Sse => Ok(match sse::start(self, handshake)? {
                Some(client) => Next::Stream(client),
                None => Next::Close,
            }),
            Endpoint::Poll => poll::serve(self, handshake, keep_alive),
            Endpoint::Send => http::send(self, handshake, keep_alive),
            Endpoint::Latest => {
                let response = http::latest(&self.shared.hub, &request);
                http::answer(handshake, &response, keep_alive)
            }
            Endpoint::Script => {
                let response = match request.method() {
                    "GET" | "HEAD" => wire::script(),
                    _ => http::not_allowed("GET, HEAD"),
                };
                http::answer(handshake, &response, keep_alive)
            }
        }
    }

    /// Answers a request that is not for the HTTP transports: a page (or a
    /// refusal) from `on_http`, or an upgrade.
    fn answer(
        &self,
        handshake: Handshake<'_, Io<'_, dyn Socket>>,
    ) -> Result<Option<Client>, Error> {
        let stream = &self.stream;
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
            session: None,
        });
        if let Some(form) = forms::form(speaks_v1, received.deflate_window) {
            outbox.set_form(form);
        }
        if speaks_v1 {
            outbox.set_framing(Framing::V1);
            let welcome = Framing::V1.notice(&Notice::Welcome {
                epoch: self.shared.hub.epoch(),
                session: None,
                heartbeat: self.config.heartbeat_interval,
            });
            outbox.push_unbounded(welcome);
        }
        if let Some(live) = self.shared.connections().get_mut(&self.id) {
            live.outbox = Some(Arc::clone(&outbox));
        }
        self.shared.counters.clients.fetch_add(1, Ordering::Relaxed);
        log::debug!("client {} connected from {}", self.id, self.peer);
        Client {
            id: self.id,
            peer: self.peer,
            outbox,
            via: Via::WebSocket {
                link,
                state: received,
            },
            done: false,
            config: Arc::clone(&self.config),
            shared: Arc::clone(&self.shared),
            subscriptions: Cell::new(0),
        }
    }
}
