//! The outbox as the hub's subscriber: a published message offered under
//! its topic's policy, what is queued whole for a resume, and the bounds
//! a resuming client is held to.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Kind, Outbox, Queued};
use crate::hub::{Delivery, Encoded, Policy, Replay, Subscriber};
use crate::message::CloseCode;
use crate::server::flusher::FLUSH_BATCH;
use crate::wire::Notice;

impl Outbox {
    /// Offers a published frame under `policy`.
    ///
    /// A full queue may only mean the flusher is behind: the frames are
    /// first written without blocking, here, and the policy applies only if
    /// the socket would not take them (the client is slow) or the writer
    /// thread has them.
    fn offer_under(&self, frame: &Encoded, policy: Policy) -> Delivery {
        if self.is_closing() {
            return Delivery::Closed;
        }
        let try_queue = |frame: Encoded| {
            self.try_queue(frame).or_else(|frame| {
                if self.is_full() {
                    self.flush_now(&mut Vec::with_capacity(FLUSH_BATCH));
                }
                self.try_queue(frame)
            })
        };
        match policy {
            Policy::Disconnect => match try_queue(frame.clone()) {
                Ok(()) => Delivery::Queued,
                Err(_) => {
                    let _ = self.close(Some(CloseCode::TRY_AGAIN_LATER), "client too slow");
                    // What is queued will not be sent: free it now.
                    self.discarding.store(true, Ordering::SeqCst);
                    while self.try_take().is_some() {}
                    Delivery::Disconnected
                }
            },
            Policy::DropOldest => {
                let Err(mut frame) = try_queue(frame.clone()) else {
                    return Delivery::Queued;
                };
                // Handlers queue under this lock: while it is held, a queue
                // with none of their frames in it gets none.
                let _queuing = self.pending();
                if self.direct.load(Ordering::Acquire) > 0
                    || self.waiting.load(Ordering::SeqCst) > 0
                {
                    // The handler's messages go first, and are never
                    // dropped: drop this one instead of the oldest.
                    return Delivery::DroppedOldest;
                }
                let mut dropped = false;
                loop {
                    match self.try_take() {
                        Some(_) => dropped = true,
                        // Emptied by the writer meanwhile, or larger than
                        // the whole queue: drop the new one.
                        None if self.rx.is_empty() && !self.has_room_for(&frame) => {
                            return Delivery::DroppedOldest
                        }
                        None => {}
                    }
                    match self.try_queue(frame) {
                        Ok(()) => break,
                        Err(back) => frame = back,
                    }
                }
                if dropped {
                    Delivery::DroppedOldest
                } else {
                    Delivery::Queued
                }
            }
            Policy::KeepLatest => {
                // Under the lock, so the writer cannot take the slots between
                // a full queue and the slot being filled.
                let mut pending = self.pending();
                let topic = frame.topic();
                if let Some(slot) = pending.latest.iter_mut().find(|f| f.topic() == topic) {
                    *slot = frame.clone();
                    return Delivery::Superseded;
                }
                if let Err(frame) = self.try_queue(frame.clone()) {
                    pending.latest.push(frame);
                    drop(pending);
                    self.ring();
                }
                Delivery::Queued
            }
        }
    }
}

impl Subscriber for Outbox {
    fn offer(&self, message: &Encoded, policy: Policy) -> Delivery {
        let delivery = self.offer_under(message, policy);
        if matches!(delivery, Delivery::Queued | Delivery::DroppedOldest) {
            self.schedule();
        }
        delivery
    }

    fn unsubscribed(&self, topic: &str) {
        // A newest value still waiting must not arrive after this.
        self.pending()
            .latest
            .retain(|f| f.topic().is_some_and(|t| &**t != topic));
    }

    /// Queues the whole replay, after what is queued and before what is
    /// published next (the hub publishes nothing meanwhile), outside the
    /// queue's bounds: the client asked for it, and it is bounded by the
    /// topic's retention. A `boardcast.v1` client gets the answer to its
    /// subscribe first.
    fn replay(&self, replay: &Replay<'_>, _policy: Policy) {
        if self.is_closing() {
            return;
        }
        let answer = Notice::Subscribed {
            topic: replay.topic,
            recovered: replay.recovered,
            last: replay.last_seq,
        };
        if let Some(answer) = self.notice(&answer) {
            self.push_unbounded(answer);
        }
        for message in replay.messages {
            // Made here, on the publisher's side, as for a live message.
            self.bytes(message);
            self.push_unbounded(message.clone());
        }
        self.schedule();
    }
}

impl Outbox {
    /// Queues a frame outside the bounds: a replay (see
    /// [`Subscriber::replay`]) or the protocol's welcome.
    pub(crate) fn push_unbounded(&self, frame: Encoded) {
        let len = self.bytes(&frame).len();
        self.unbounded_bytes.fetch_add(len, Ordering::SeqCst);
        let _ = self.tx.try_send(Queued {
            frame,
            kind: Kind::Unbounded,
        });
    }

    /// Waits, at most `timeout`, until the replays queued hold fewer bytes
    /// than the queue's byte bound: a client that subscribes again and
    /// again without reading is slowed down, not buffered without bound.
    /// Returns false if they still do, or the client is closing.
    pub(crate) fn wait_for_replay_room(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, || {
            self.unbounded_bytes.load(Ordering::SeqCst) < self.max_bytes
        })
    }
}
