//! What the hub sees of a subscriber, whatever its transport: a message is
//! offered under the topic's policy, and the subscriber says what became of
//! it. A WebSocket client implements it today; an SSE stream or a
//! long-poll cursor is another implementation of the same trait.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::frame::{Frame, OpCode};

/// What happens when a message is published to a subscriber whose queue is
/// full, because the subscriber (or its link) is slower than the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Close the client with code 1013 (try again later): it keeps every
    /// message it gets in order, or none. The default. Its queue is freed at
    /// once; the close frame follows the write in progress, and a client
    /// that reads nothing at all is cut at the write timeout.
    #[default]
    Disconnect,
    /// Drop the oldest queued message to make room: the client keeps up with
    /// the present and loses part of the past. Only published messages are
    /// dropped: while a message your handler sent waits in the queue, or for
    /// room in it, the new one is dropped instead, so the handler's are
    /// neither lost nor kept waiting by the publisher.
    DropOldest,
    /// Keep only the newest message of this topic waiting for the client: a
    /// new one replaces the one not yet sent. The right policy for sensor
    /// readings: a dashboard that fell behind wants the current value, not a
    /// backlog.
    KeepLatest,
}

/// A subscriber of hub topics, reached without knowing its transport.
///
/// [`offer`](Self::offer) is called on the publisher's thread, once per
/// published message, in the topic's sequence order: it must not block on
/// the subscriber's link (queue the message and return), so that no client
/// slows the publisher or the others.
pub trait Subscriber: Send + Sync + fmt::Debug {
    /// Offers a message published to one of the subscriber's topics, under
    /// that topic's policy.
    fn offer(&self, message: &Encoded, policy: Policy) -> Delivery;

    /// The subscriber left `topic`: nothing of it still waiting may be
    /// delivered after this returns.
    fn unsubscribed(&self, topic: &str) {
        let _ = topic;
    }

    /// Takes what a resume replays (see [`Hub::resume`]): the messages
    /// after the subscriber's position, oldest first, before any message
    /// published after them.
    ///
    /// The subscriber asked for these, so a transport should queue the
    /// whole backlog (it is bounded by the topic's [`Retention`]) rather
    /// than apply the policy to it. The default offers each message under
    /// `policy`, which suits subscribers that never drop.
    ///
    /// [`Hub::resume`]: super::Hub::resume
    /// [`Retention`]: super::Retention
    fn replay(&self, replay: &Replay<'_>, policy: Policy) {
        for message in replay.messages {
            let _ = self.offer(message, policy);
        }
    }
}

/// What a [`Hub::resume`](super::Hub::resume) replays to a subscriber.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Replay<'a> {
    /// The topic resumed.
    pub topic: &'a str,
    /// The messages after the subscriber's position, oldest first; or, if
    /// not [`recovered`](Self::recovered), the topic's latest kept message
    /// (if any).
    pub messages: &'a [Encoded],
    /// Whether `messages` are every message after the position. False when
    /// some were no longer kept, or the position was from another epoch:
    /// the subscriber should tell its client there was a gap.
    pub recovered: bool,
    /// The topic's last sequence number: the live messages that follow the
    /// replay start after it.
    pub last_seq: u64,
}

/// What became of a message offered to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for the subscriber.
    Queued,
    /// Queued in place of an older message of the same topic
    /// ([`Policy::KeepLatest`]).
    Superseded,
    /// Queued after dropping the oldest message, or dropped itself
    /// ([`Policy::DropOldest`]).
    DroppedOldest,
    /// Not queued: the subscriber was too slow and is being disconnected
    /// ([`Policy::Disconnect`]).
    Disconnected,
    /// Not queued: the subscriber is closing.
    Closed,
}

/// A message encoded once and shared by every queue it is in: its topic
/// and sequence number, and its bytes as a WebSocket frame (server frames
/// are unmasked, so they are the same for every client), from which the
/// payload is a slice. One pointer wide, so a queue of 32 costs 256 bytes.
///
/// Transports that write a message another way (the `boardcast.v1`
/// envelope, an SSE event) make that form once, on first use, and every
/// subscriber of that transport shares it too.
#[derive(Clone)]
pub struct Encoded(Arc<Inner>);

struct Inner {
    /// The topic it was published to; `None` for a message sent to one
    /// client.
    topic: Option<Arc<str>>,
    /// The epoch of the hub that numbered it (0 for a message sent to one
    /// client).
    epoch: u64,
    seq: u64,
    opcode: OpCode,
    header_len: u8,
    frame: Box<[u8]>,
    /// Its other forms, made on first use: a list that only grows, so a
    /// form, once made, stays where it is while the message lives.
    forms: OnceLock<Box<FormNode>>,
}

/// One form of a message, and the next one made.
struct FormNode {
    slot: usize,
    bytes: Box<[u8]>,
    next: OnceLock<Box<FormNode>>,
}

/// How many other forms a message may have (see [`Form`]). The slots in
/// use: 0 the `boardcast.v1` envelope, 1 the SSE event, 2 the long-poll
/// JSON (`wire`), 3 to 6 the permessage-deflate frames (`server/forms.rs`).
const FORMS: usize = 7;

/// Another way to write a published message on the wire, made from it at
/// most once and kept with it: a transport names its forms as constants,
/// each with a slot of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Form {
    slot: usize,
    make: fn(&Encoded) -> Vec<u8>,
}

impl Form {
    /// A form kept in `slot` (below [`FORMS`], one per form), made by
    /// `make`.
    pub(crate) const fn new(slot: usize, make: fn(&Encoded) -> Vec<u8>) -> Form {
        assert!(slot < FORMS, "no such form slot");
        Form { slot, make }
    }
}

impl Encoded {
    /// Keeps `frame` (a server's, unmasked): published to `topic` as its
    /// message number `seq` of `epoch`, or (`topic` `None`) sent to one
    /// client.
    pub(crate) fn new(topic: Option<Arc<str>>, epoch: u64, seq: u64, frame: &Frame<'_>) -> Self {
        Encoded(Arc::new(Inner {
            topic,
            epoch,
            seq,
            opcode: frame.opcode(),
            header_len: frame.header().len() as u8,
            frame: frame.to_vec().into_boxed_slice(),
            forms: OnceLock::new(),
        }))
    }

    /// Keeps `bytes` as they go on the wire, a message for one client on a
    /// transport without frames (an SSE event).
    pub(crate) fn raw(bytes: Vec<u8>) -> Self {
        Encoded(Arc::new(Inner {
            topic: None,
            epoch: 0,
            seq: 0,
            opcode: OpCode::Text,
            header_len: 0,
            frame: bytes.into_boxed_slice(),
            forms: OnceLock::new(),
        }))
    }

    /// Keeps `frame` (a server's, unmasked), a message for one client.
    pub(crate) fn direct(frame: &Frame<'_>) -> Self {
        Encoded::new(None, 0, 0, frame)
    }

    /// The topic it was published to; `None` for a message sent to one
    /// client.
    pub fn topic(&self) -> Option<&Arc<str>> {
        self.0.topic.as_ref()
    }

    /// The epoch of the hub that published it (0 for a message sent to
    /// one client): with [`seq`](Self::seq), its position.
    pub fn epoch(&self) -> u64 {
        self.0.epoch
    }

    /// Its sequence number in its topic: 1 for the first message published
    /// to the topic since the hub started, one more for each after.
    pub fn seq(&self) -> u64 {
        self.0.seq
    }

    /// Its opcode: text or binary.
    pub(crate) fn opcode(&self) -> OpCode {
        self.0.opcode
    }

    /// Whether it is a text message (else binary).
    pub fn is_text(&self) -> bool {
        self.0.opcode == OpCode::Text
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.0.frame[usize::from(self.0.header_len)..]
    }

    /// The whole WebSocket frame, as it goes on the wire.
    pub fn frame(&self) -> &[u8] {
        &self.0.frame
    }

    /// The message written as `form`, made now if no one has yet.
    pub(crate) fn form(&self, form: Form) -> &[u8] {
        let mut link = &self.0.forms;
        let mut made: Option<Box<[u8]>> = None;
        loop {
            let node = match link.get() {
                Some(node) => node,
                None => {
                    let bytes = made
                        .take()
                        .unwrap_or_else(|| (form.make)(self).into_boxed_slice());
                    // Another thread may append first: then ours is
                    // dropped, and the walk goes on past its node.
                    link.get_or_init(|| {
                        Box::new(FormNode {
                            slot: form.slot,
                            bytes,
                            next: OnceLock::new(),
                        })
                    })
                }
            };
            if node.slot == form.slot {
                return &node.bytes;
            }
            link = &node.next;
        }
    }

    /// The bytes it holds: its frame, and each form made so far with its
    /// bookkeeping.
    pub(crate) fn size(&self) -> usize {
        let mut size = self.0.frame.len();
        let mut link = &self.0.forms;
        while let Some(node) = link.get() {
            size += node.bytes.len() + std::mem::size_of::<FormNode>();
            link = &node.next;
        }
        size
    }
}

impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoded")
            .field("topic", &self.0.topic)
            .field("seq", &self.0.seq)
            .field("len", &self.payload().len())
            .finish()
    }
}
