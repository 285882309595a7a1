//! What a connection thread is given (`route.rs` runs it): its socket, an
//! outbox made ahead, the server's state and the application's callbacks.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::handshake::{Accept, Request, Response};
use crate::server::client::Client;
use crate::server::outbox::Outbox;
use crate::server::shared::Shared;
use crate::socket::Socket;

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
