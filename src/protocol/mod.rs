//! The protocol of an open connection (RFC 6455 §5–§7) as a sans-I/O state
//! machine, for both roles, in two halves that may live on different
//! threads: [`Inbound`] turns received bytes into messages, [`Outbound`]
//! turns messages into frames. Neither does I/O; the drivers
//! ([`Connection`](crate::Connection), the server's client threads) move
//! bytes between them and a stream.
//!
//! A thread-per-connection server reads on one thread and sends from
//! others (the handler, publishers, a writer thread), so the halves are
//! apart, and the close handshake is their meeting point:
//!
//! ```text
//!                    Outbound::close (ours)
//!   +--------+  ------------------------------->  +---------+
//!   |  OPEN  |                                    | CLOSING |  wait for the
//!   +--------+                                    +---------+  peer's close
//!       |  Inbound: the peer's close,                  |       (or its FIN,
//!       |  or a violation -> Reply::to / to_violation  |       or a timeout)
//!       |  -> Outbound::reply sends our close          |  Inbound: the
//!       v                                              v  peer's close
//!   +-----------------------------------------------------+
//!   |                      CLOSED                          |
//!   |  the server closes the TCP connection (§7.1.1)       |
//!   +-----------------------------------------------------+
//! ```
//!
//! - [`Inbound`] is closed once the peer's close frame arrived or the peer
//!   broke the protocol; it reads nothing after (§5.5.1).
//! - [`Outbound`] is closing once our close frame was made; it makes no
//!   frame after it (§5.5.1: "the endpoint MUST NOT send any more data
//!   frames"). Its state is one atomic flag, so any thread may ask.
//! - What a received frame is owed (a pong, a close reply with the same
//!   code, a close with the violation's code) is decided in one place,
//!   [`Reply`], and made into a frame in one place, [`Outbound::reply`].
//! - Every frame is encoded by [`Frame`](crate::frame::Frame), masked by
//!   the client role only (§5.3).

mod inbound;
mod outbound;
mod state;

pub use inbound::{Inbound, MessageBudget};
pub use outbound::{Outbound, Reply};
pub use state::State;

/// Which end of the connection this is. A client masks what it sends and
/// refuses masked frames; a server does the reverse (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that accepted the opening handshake.
    Server,
    /// The end that sent the opening handshake.
    Client,
}
