//! `boardcast.v1`, the browser protocol (`docs/protocol.md`): what the
//! server writes (the envelope of published messages, the control lines)
//! and what it reads (the client's commands).
//!
//! Every frame starts with a one-letter verb; its first line ends at the
//! first `\n`. A published message is `m <topic> <seq>\n<payload>`, in a
//! frame of the message's own type, made once per publish.

use std::fmt;
use std::time::Duration;

use crate::frame::Frame;
use crate::hub::{Encoded, Form, Position, Since};
use crate::wire::Notice;
use crate::wire::{parse_epoch, parse_seq};

/// The subprotocol's name, as offered in `Sec-WebSocket-Protocol`.
pub const PROTOCOL: &str = "boardcast.v1";

/// The longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 64;

/// The most topics one client may subscribe to.
pub const MAX_SUBSCRIPTIONS: usize = 256;

/// Whether `name` is a topic name the protocol carries: 1 to
/// [`MAX_TOPIC_LEN`] bytes of `A-Z a-z 0-9 . _ - : /`, so that it never
/// holds a space, a line break or anything a URL or JSON must escape.
pub fn is_topic(name: &str) -> bool {
    (1..=MAX_TOPIC_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b))
}

/// The envelope of a published message, `m <topic> <seq>\n<payload>`: a
/// form of the hub's message, made once for all its `boardcast.v1`
/// subscribers.
pub(crate) const ENVELOPE: Form = Form::new(0, envelope);

fn envelope(message: &Encoded) -> Vec<u8> {
    let topic = message.topic().map_or("", |t| &**t);
    let line = format!("m {topic} {}\n", message.seq());
    let mut payload = Vec::with_capacity(line.len() + message.payload().len());
    payload.extend_from_slice(line.as_bytes());
    payload.extend_from_slice(message.payload());
    Frame::new(message.opcode(), &payload, None).to_vec()
}

/// A notice as the frame's payload (a text frame, or for a binary direct
/// message a binary one).
pub(crate) fn notice(notice: &Notice<'_>) -> Vec<u8> {
    match *notice {
        Notice::Welcome {
            epoch, heartbeat, ..
        } => welcome(epoch, heartbeat).into_bytes(),
        Notice::Subscribed {
            topic,
            recovered,
            last,
        } => subscribed(topic, recovered, last).into_bytes(),
        Notice::Unsubscribed { topic } => unsubscribed(topic).into_bytes(),
        Notice::Refused { reason } => format!("e {reason}").into_bytes(),
        Notice::Direct { payload, .. } => direct(payload),
    }
}

/// The first frame after the handshake, `w <epoch> [<heartbeat ms>]`.
pub(crate) fn welcome(epoch: u64, heartbeat: Option<Duration>) -> String {
    match heartbeat {
        Some(interval) => format!("w {epoch:016x} {}", interval.as_millis()),
        None => format!("w {epoch:016x}"),
    }
}

/// The answer to a subscribe, `r <topic> <recovered> <last>`.
pub(crate) fn subscribed(topic: &str, recovered: bool, last_seq: u64) -> String {
    format!("r {topic} {} {last_seq}", u8::from(recovered))
}

/// The answer to an unsubscribe, `u <topic>`.
pub(crate) fn unsubscribed(topic: &str) -> String {
    format!("u {topic}")
}

/// The heartbeat frame's payload: `h`.
pub(crate) const HEARTBEAT: &[u8] = b"h";

/// A message for one client, `d\n<payload>`.
pub(crate) fn direct(payload: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(2 + payload.len());
    data.extend_from_slice(b"d\n");
    data.extend_from_slice(payload);
    data
}

/// A client's text frame, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `s <topic> [<epoch> <seq>] [past=<seconds>]`: subscribe, from the
    /// latest kept message (or those of the last `seconds`), or resuming
    /// after a position.
    Subscribe {
        /// The topic.
        topic: &'a str,
        /// Where the client left off, if it says, and how much of the
        /// recent past it wants when that cannot be recovered.
        since: Since,
    },
    /// `x <topic>`: unsubscribe.
    Unsubscribe {
        /// The topic.
        topic: &'a str,
    },
    /// `d\n<payload>`: a text message for the application.
    Data(&'a str),
}

/// Why a client's text frame was refused; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// Not a verb this protocol knows (or a frame with no verb).
    UnknownVerb,
    /// A command whose fields are not as the protocol says.
    Malformed,
    /// A topic name that [`is_topic`] refuses.
    BadTopic,
    /// A subscribe of a topic already subscribed.
    AlreadySubscribed(String),
    /// A subscribe past [`MAX_SUBSCRIPTIONS`].
    TooManySubscriptions,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::UnknownVerb => f.write_str("unknown verb"),
            CommandError::Malformed => f.write_str("malformed command"),
            CommandError::BadTopic => f.write_str("bad topic name"),
            CommandError::AlreadySubscribed(topic) => write!(f, "already subscribed {topic}"),
            CommandError::TooManySubscriptions => {
                write!(f, "too many subscriptions (at most {MAX_SUBSCRIPTIONS})")
            }
        }
    }
}

impl std::error::Error for CommandError {}

/// The longest past a subscribe may ask for: a day, far beyond what a
/// board keeps.
pub const MAX_PAST: Duration = Duration::from_secs(24 * 60 * 60);

/// Reads a `past=` field: whole seconds, at most [`MAX_PAST`].
pub(crate) fn parse_past(seconds: &str) -> Option<Duration> {
    let seconds = parse_seq(seconds)?;
    Some(Duration::from_secs(seconds).min(MAX_PAST))
}

/// Reads a client's text frame.
///
/// # Errors
///
/// [`CommandError`] for a frame that is not a command of the protocol: the
/// server answers it with an `e` frame and goes on.
pub fn parse(text: &str) -> Result<Command<'_>, CommandError> {
    if let Some(payload) = text.strip_prefix("d\n") {
        return Ok(Command::Data(payload));
    }
    let mut fields = text.split(' ');
    let verb = fields.next().unwrap_or("");
    fn topic(name: Option<&str>) -> Result<&str, CommandError> {
        match name {
            Some(name) if is_topic(name) => Ok(name),
            Some(_) => Err(CommandError::BadTopic),
            None => Err(CommandError::Malformed),
        }
    }
    let command = match verb {
        "s" => {
            let topic = topic(fields.next())?;
            let mut rest: Vec<&str> = fields.by_ref().take(3).collect();
            let past = match rest.last().and_then(|last| last.strip_prefix("past=")) {
                Some(seconds) => {
                    let seconds = parse_past(seconds).ok_or(CommandError::Malformed)?;
                    rest.pop();
                    Some(seconds)
                }
                None => None,
            };
            let after = match rest[..] {
                [] => None,
                [epoch, seq] => Some(Position {
                    epoch: parse_epoch(epoch).ok_or(CommandError::Malformed)?,
                    seq: parse_seq(seq).ok_or(CommandError::Malformed)?,
                }),
                _ => return Err(CommandError::Malformed),
            };
            Command::Subscribe {
                topic,
                since: Since { after, past },
            }
        }
        "x" => Command::Unsubscribe {
            topic: topic(fields.next())?,
        },
        _ => return Err(CommandError::UnknownVerb),
    };
    match fields.next() {
        Some(_) => Err(CommandError::Malformed),
        None => Ok(command),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::frame::OpCode;

    #[test]
    fn topics_are_short_and_plain() {
        assert!(is_topic("sensors/cpu.temp_1:a-b"));
        assert!(is_topic(&"a".repeat(64)));
        for bad in [
            "",
            "a b",
            "a\nb",
            "é",
            "a,b",
            "a?b",
            "a\"b",
            &"a".repeat(65),
        ] {
            assert!(!is_topic(bad), "{bad:?}");
        }
    }

    #[test]
    fn commands() {
        let subscribe = |after, past| {
            Ok(Command::Subscribe {
                topic: "temp",
                since: Since { after, past },
            })
        };
        let position = Some(Position {
            epoch: 255,
            seq: 44,
        });
        let minutes = Some(Duration::from_secs(120));
        assert_eq!(parse("s temp"), subscribe(None, None));
        assert_eq!(
            parse("s temp 00000000000000ff 44"),
            subscribe(position, None)
        );
        assert_eq!(parse("s temp past=120"), subscribe(None, minutes));
        assert_eq!(
            parse("s temp 00000000000000ff 44 past=120"),
            subscribe(position, minutes)
        );
        assert_eq!(
            parse("s temp past=99999999999"),
            subscribe(None, Some(MAX_PAST))
        );
        assert_eq!(parse("x temp"), Ok(Command::Unsubscribe { topic: "temp" }));
        assert_eq!(parse("d\nhello\nworld"), Ok(Command::Data("hello\nworld")));
        assert_eq!(parse("d\n"), Ok(Command::Data("")));
    }

    #[test]
    fn bad_commands_are_refused_not_guessed() {
        let malformed = [
            "s",
            "s temp 00000000000000ff",
            "s temp 00000000000000FF 1",
            "s temp ff 1",
            "s temp 00000000000000ff -1",
            "s temp 00000000000000ff +1",
            "s temp 00000000000000ff 18446744073709551616",
            "s temp 00000000000000ff 1 extra",
            "s temp past=",
            "s temp past=-1",
            "s temp past=1.5",
            "s temp past=99999999999999999999999",
            "s temp past=1 00000000000000ff 1",
            "s temp 00000000000000ff past=1",
            "s temp 00000000000000ff 1 past=1 extra",
            "s temp past=1 past=2",
            "s  temp",
            "x",
            "x temp extra",
        ];
        for text in malformed {
            assert!(parse(text).is_err(), "{text:?}");
        }
        assert_eq!(parse("s a\tb"), Err(CommandError::BadTopic));
        assert_eq!(parse("q temp"), Err(CommandError::UnknownVerb));
        assert_eq!(parse(""), Err(CommandError::UnknownVerb));
        assert_eq!(parse("d"), Err(CommandError::UnknownVerb));
        assert_eq!(parse("s\ntemp"), Err(CommandError::UnknownVerb));
    }

    #[test]
    fn envelope_is_a_frame_of_the_message_type() {
        let text = Frame::new(OpCode::Text, b"{\"c\":41}", None);
        let message = Encoded::new(Some(Arc::from("temp")), 1, 42, &text);
        let bytes = message.form(ENVELOPE);
        assert_eq!(bytes[0], 0x81);
        assert_eq!(&bytes[2..], b"m temp 42\n{\"c\":41}");
        assert_eq!(usize::from(bytes[1]), bytes.len() - 2);
        // Made once: the same bytes every time.
        assert_eq!(message.form(ENVELOPE).as_ptr(), bytes.as_ptr());

        let binary = Frame::new(OpCode::Binary, &[0, 255], None);
        let message = Encoded::new(Some(Arc::from("cam")), 1, 1, &binary);
        assert_eq!(message.form(ENVELOPE), b"\x82\x0am cam 1\n\x00\xff");
    }

    #[test]
    fn control_lines() {
        assert_eq!(welcome(0x9f1c, None), "w 0000000000009f1c");
        assert_eq!(
            welcome(0x9f1c, Some(Duration::from_secs(5))),
            "w 0000000000009f1c 5000"
        );
        assert_eq!(subscribed("t", true, 47), "r t 1 47");
        assert_eq!(subscribed("t", false, 0), "r t 0 0");
        assert_eq!(unsubscribed("t"), "u t");
        assert_eq!(direct(b"hi"), b"d\nhi");
    }
}
