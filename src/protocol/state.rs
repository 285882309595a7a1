//! Where a connection stands, from its two halves.

use crate::protocol::{Inbound, Outbound};

/// Where a connection stands in its closing handshake (RFC 6455 §7), from
/// its two halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Both directions are open.
    Open,
    /// Our close frame went out; the peer's has not arrived.
    Closing,
    /// The peer's close frame arrived (and was answered), or the peer broke
    /// the protocol: the connection is over.
    Closed,
}

impl State {
    /// The state of a connection whose halves are `inbound` and `outbound`.
    pub fn of(inbound: &Inbound, outbound: &Outbound) -> State {
        match (inbound.is_closed(), outbound.is_closing()) {
            (true, _) => State::Closed,
            (false, true) => State::Closing,
            (false, false) => State::Open,
        }
    }
}
