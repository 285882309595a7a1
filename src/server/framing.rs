//! How a client's messages are written when it speaks a protocol of
//! `wire` (the `boardcast.v1` envelope, SSE events, long-poll JSON): the
//! form of its published messages and of what it is told besides.

use crate::frame::{Frame, OpCode};
use crate::hub::{Encoded, Form};
use crate::wire::{json, sse, v1, Notice};

/// How a client's messages are written, when it speaks a protocol of
/// `wire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `boardcast.v1` over WebSocket: enveloped frames.
    V1,
    /// Server-Sent Events: events on an HTTP stream, no frames.
    EventStream,
    /// Long polling: JSON events, taken by the client's polls.
    Poll,
}

impl Framing {
    /// The form of published messages.
    pub(crate) fn form(self) -> Option<Form> {
        Some(match self {
            Framing::V1 => v1::ENVELOPE,
            Framing::EventStream => sse::EVENT,
            Framing::Poll => json::EVENT,
        })
    }

    /// A notice, written for this client alone.
    pub(crate) fn notice(self, notice: &Notice<'_>) -> Encoded {
        match self {
            Framing::V1 => {
                let opcode = match notice {
                    Notice::Direct { text: false, .. } => OpCode::Binary,
                    _ => OpCode::Text,
                };
                Encoded::direct(&Frame::new(opcode, &v1::notice(notice), None))
            }
            Framing::EventStream => Encoded::raw(sse::notice(notice)),
            Framing::Poll => Encoded::raw(json::notice(notice)),
        }
    }
}
