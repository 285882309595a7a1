//! Cursors: positions in several topics at once (`docs/transports.md`),
//! `<epoch>~<topic>~<seq>~<topic>~<seq>…`, as SSE event ids, SSE's
//! `Last-Event-ID`, and long polling's `after`.

use std::fmt::Write as _;

use crate::hub::Position;
use crate::wire::v1::{is_topic, MAX_SUBSCRIPTIONS};
use crate::wire::{parse_epoch, parse_seq};

/// Positions in several topics, all of one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// The epoch of every position.
    pub epoch: u64,
    /// Each topic's last sequence number seen, at most one per topic.
    pub positions: Vec<(String, u64)>,
}

/// A cursor that does not read as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCursor;

impl std::fmt::Display for BadCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bad cursor")
    }
}

impl std::error::Error for BadCursor {}

impl Cursor {
    /// A cursor of `epoch` with no position.
    pub fn new(epoch: u64) -> Cursor {
        Cursor {
            epoch,
            positions: Vec::new(),
        }
    }

    /// Reads a cursor: an epoch of 16 lowercase hex digits, then at most
    /// 256 `~<topic>~<seq>` pairs of distinct, valid topics.
    ///
    /// # Errors
    ///
    /// [`BadCursor`] for anything else.
    pub fn parse(text: &str) -> Result<Cursor, BadCursor> {
        let mut fields = text.split('~');
        let epoch = fields.next().and_then(parse_epoch).ok_or(BadCursor)?;
        let mut cursor = Cursor::new(epoch);
        while let Some(topic) = fields.next() {
            let seq = fields.next().and_then(parse_seq).ok_or(BadCursor)?;
            if !is_topic(topic)
                || cursor.positions.len() == MAX_SUBSCRIPTIONS
                || cursor.seq(topic).is_some()
            {
                return Err(BadCursor);
            }
            cursor.positions.push((topic.to_string(), seq));
        }
        Ok(cursor)
    }

    /// The position of `topic`, if the cursor has one.
    pub fn seq(&self, topic: &str) -> Option<u64> {
        self.positions
            .iter()
            .find_map(|(t, seq)| (t == topic).then_some(*seq))
    }

    /// Where to resume `topic` from: its position, if it has one.
    pub fn position(&self, topic: &str) -> Option<Position> {
        self.seq(topic).map(|seq| Position {
            epoch: self.epoch,
            seq,
        })
    }

    /// Sets the position of `topic`.
    pub fn set(&mut self, topic: &str, seq: u64) {
        match self.positions.iter_mut().find(|(t, _)| t == topic) {
            Some((_, at)) => *at = seq,
            None => self.positions.push((topic.to_string(), seq)),
        }
    }

    /// Forgets the position of `topic`.
    pub fn remove(&mut self, topic: &str) {
        self.positions.retain(|(t, _)| t != topic);
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.epoch)?;
        for (topic, seq) in &self.positions {
            write!(f, "~{topic}~{seq}")?;
        }
        Ok(())
    }
}

/// The cursor of one message: its topic and sequence number in `epoch`
/// (an SSE event's id).
pub(crate) fn of_message(epoch: u64, topic: &str, seq: u64) -> String {
    let mut id = String::with_capacity(20 + topic.len() + 20);
    let _ = write!(id, "{epoch:016x}~{topic}~{seq}");
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_and_write_back() {
        let text = "00000000000000ff~temperature~47~sensors/cpu~12";
        let cursor = Cursor::parse(text).unwrap();
        assert_eq!(cursor.epoch, 255);
        assert_eq!(cursor.seq("temperature"), Some(47));
        assert_eq!(
            cursor.position("sensors/cpu"),
            Some(Position {
                epoch: 255,
                seq: 12
            })
        );
        assert_eq!(cursor.seq("other"), None);
        assert_eq!(cursor.to_string(), text);
        assert_eq!(Cursor::parse("00000000000000ff"), Ok(Cursor::new(255)));
        assert_eq!(of_message(255, "t", 3), "00000000000000ff~t~3");

        let mut cursor = cursor;
        cursor.set("temperature", 48);
        cursor.set("new", 1);
        cursor.remove("sensors/cpu");
        assert_eq!(cursor.to_string(), "00000000000000ff~temperature~48~new~1");
    }

    #[test]
    fn bad_cursors_are_refused() {
        let too_many: String = (0..257).map(|i| format!("~t{i}~1")).collect();
        for bad in [
            "",
            "ff",
            "00000000000000FF",
            "00000000000000ff~",
            "00000000000000ff~t",
            "00000000000000ff~t~",
            "00000000000000ff~t~-1",
            "00000000000000ff~t~1~t~2",
            "00000000000000ff~a b~1",
            "00000000000000ff~t~1~",
            &format!("00000000000000ff{too_many}"),
        ] {
            assert_eq!(Cursor::parse(bad), Err(BadCursor), "{bad:?}");
        }
    }
}
