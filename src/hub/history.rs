//! The recent past of each topic: a bounded ring of its last messages, the
//! very [`Encoded`] values the live fan-out shares (no copy), from which a
//! subscriber that comes back after a dropped link is replayed what it
//! missed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::hub::Encoded;

/// How much of a topic's past the hub keeps, in messages, in bytes and
/// (optionally) in age; whichever bound is reached first trims the oldest.
///
/// The default keeps up to 1024 messages and 128 KiB per topic, whichever
/// is reached first, and 2 MiB for all topics together (the hub's budget,
/// [`Hub::set_history_budget`](super::Hub::set_history_budget)). Each kept
/// message costs its frame, [`ENTRY_OVERHEAD`], and the forms its
/// subscribers' transports made of it: measured with 80-byte JSON
/// readings, 210 bytes a message with plain WebSocket subscribers (624
/// messages a topic, a minute at ten readings a second), 350 with a
/// `boardcast.v1` (browser) subscriber (374 messages, 37 s). Bytes bound a
/// topic first unless its messages are tiny. Set a longer history for the
/// topics a page charts (`Hub::set_retention`), and a larger budget if the
/// board has the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// The most messages kept. 0 keeps none (a [`Policy::KeepLatest`] topic
    /// still keeps its latest).
    ///
    /// [`Policy::KeepLatest`]: super::Policy::KeepLatest
    pub messages: usize,
    /// The most bytes kept, counting each message's frame, the other forms
    /// its subscribers' transports had made of it when it was published
    /// (a `boardcast.v1` envelope is about the frame's size again), and
    /// [`ENTRY_OVERHEAD`] of bookkeeping.
    pub bytes: usize,
    /// Messages this old are dropped (at each publish and each read of the
    /// history); `None` keeps them until a count or size bound trims them.
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            messages: 1024,
            bytes: 128 << 10,
            max_age: None,
        }
    }
}

impl Retention {
    /// Keeps nothing (a [`Policy::KeepLatest`](super::Policy::KeepLatest)
    /// topic still keeps its latest message).
    pub fn none() -> Self {
        Retention {
            messages: 0,
            bytes: 0,
            max_age: None,
        }
    }

    /// Sets [`messages`](Self::messages).
    pub fn messages(mut self, count: usize) -> Self {
        self.messages = count;
        self
    }

    /// Sets [`bytes`](Self::bytes).
    pub fn bytes(mut self, bytes: usize) -> Self {
        self.bytes = bytes;
        self
    }

    /// Sets [`max_age`](Self::max_age).
    pub fn max_age(mut self, age: Option<Duration>) -> Self {
        self.max_age = age;
        self
    }
}

/// What one kept message costs besides its frame and forms: the shared
/// message's allocation (its header and fields), the frame's allocation
/// header, and its slot in the ring (with its time and cost).
pub const ENTRY_OVERHEAD: usize = 128;

/// A topic's numbering and its kept messages, under the topic's lock.
#[derive(Debug, Default)]
pub(super) struct Log {
    /// The last sequence number given.
    pub(super) seq: u64,
    entries: VecDeque<Entry>,
    /// The cost of `entries`.
    bytes: usize,
}

/// A kept message, when it was kept, and what it cost then: its frame, the
/// forms made of it so far (for its subscribers' transports), and
/// [`ENTRY_OVERHEAD`].
#[derive(Debug)]
struct Entry {
    message: Encoded,
    at: Instant,
    cost: usize,
}

impl Log {
    /// Keeps `message` (the newest), then trims to `retention`, keeping at
    /// least `floor` messages (1 for a keep-latest topic). Returns the bytes
    /// added (the message) and freed (what was trimmed).
    pub(super) fn keep(
        &mut self,
        message: Encoded,
        now: Instant,
        retention: &Retention,
        floor: usize,
    ) -> (usize, usize) {
        let added = message.size() + ENTRY_OVERHEAD;
        self.bytes += added;
        self.entries.push_back(Entry {
            message,
            at: now,
            cost: added,
        });
        let freed = self.trim(now, retention, floor);
        (added, freed)
    }

    /// Drops the oldest messages past `retention`, keeping `floor`;
    /// returns the bytes freed.
    pub(super) fn trim(&mut self, now: Instant, retention: &Retention, floor: usize) -> usize {
        let too_old = |at: Instant| {
            retention
                .max_age
                .is_some_and(|age| now.saturating_duration_since(at) >= age)
        };
        let mut freed = 0;
        while self.entries.len() > floor {
            let over = self.entries.len() > retention.messages
                || self.bytes > retention.bytes
                || too_old(self.entries[0].at);
            if !over {
                break;
            }
            freed += self.drop_oldest();
        }
        freed
    }

    /// Drops the oldest message; returns the bytes freed (0 if none).
    pub(super) fn drop_oldest(&mut self) -> usize {
        match self.entries.pop_front() {
            Some(entry) => {
                self.bytes -= entry.cost;
                entry.cost
            }
            None => 0,
        }
    }

    /// Counts again what the `newest` kept messages hold (forms made since
    /// they were kept: a replay's are made of the newest messages only);
    /// returns the bytes added. Costs what was replayed, not what is kept.
    pub(super) fn recount(&mut self, newest: usize) -> usize {
        let mut added = 0;
        for entry in self.entries.iter_mut().rev().take(newest) {
            let cost = entry.message.size() + ENTRY_OVERHEAD;
            if cost > entry.cost {
                added += cost - entry.cost;
                entry.cost = cost;
            }
        }
        self.bytes += added;
        added
    }

    /// How many messages are kept.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The newest kept message.
    pub(super) fn latest(&self) -> Option<&Encoded> {
        self.entries.back().map(|e| &e.message)
    }

    /// The kept messages published within `past` of `now`, or the latest
    /// if none is that recent.
    pub(super) fn within(&self, now: Instant, past: Duration) -> Vec<Encoded> {
        let recent = self
            .entries
            .iter()
            .rev()
            .take_while(|e| now.saturating_duration_since(e.at) <= past)
            .count()
            .max(usize::from(!self.entries.is_empty()));
        self.entries
            .iter()
            .skip(self.entries.len() - recent)
            .map(|e| e.message.clone())
            .collect()
    }

    /// The kept messages after sequence number `after`, if every one of them
    /// is still kept (the one right after `after` included); `None` if some
    /// were trimmed, or `after` is ahead of the last number given.
    pub(super) fn since(&self, after: u64) -> Option<Vec<Encoded>> {
        if after > self.seq {
            return None;
        }
        if after == self.seq {
            return Some(Vec::new());
        }
        let oldest = self.entries.front()?.message.seq();
        if oldest > after + 1 {
            return None;
        }
        let skip = (after + 1 - oldest) as usize;
        Some(
            self.entries
                .iter()
                .skip(skip)
                .map(|e| e.message.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, OpCode};

    fn message(seq: u64) -> Encoded {
        let frame = Frame::new(OpCode::Text, b"x", None);
        Encoded::new(Some("t".into()), 1, seq, &frame)
    }

    #[test]
    fn within_gives_the_recent_messages_or_at_least_the_latest() {
        let start = Instant::now();
        let keep_all = Retention::default().messages(usize::MAX);
        let mut log = Log::default();
        assert!(log.within(start, Duration::from_secs(60)).is_empty());
        // One message a second, for ten seconds.
        for seq in 1..=10 {
            log.seq = seq;
            log.keep(message(seq), start + Duration::from_secs(seq), &keep_all, 0);
        }
        let seqs = |past: u64, at: u64| -> Vec<u64> {
            let now = start + Duration::from_secs(at);
            let messages = log.within(now, Duration::from_secs(past));
            messages.iter().map(Encoded::seq).collect()
        };
        assert_eq!(seqs(3, 10), [7, 8, 9, 10]);
        assert_eq!(seqs(60, 10), (1..=10).collect::<Vec<_>>());
        assert_eq!(seqs(0, 10), [10]);
        // Nothing that recent: the latest all the same.
        assert_eq!(seqs(3, 100), [10]);
    }
}
