//! The receiving half: bytes in, messages out, and every violation of
//! RFC 6455 reported as soon as the bytes that show it arrive.
//!
//! It owns its read buffer, so bytes are copied once, from the buffer into
//! the message being assembled, unmasked on the way:
//!
//! ```
//! use boardcast::protocol::{Inbound, Role};
//! use boardcast::{Config, Message};
//!
//! let mut inbound = Inbound::new(Role::Server, &Config::default());
//! // A masked ping with the payload "hi", as a client sends it.
//! let wire = [0x89, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
//! inbound.buffer()[..wire.len()].copy_from_slice(&wire);
//! inbound.commit(wire.len());
//! assert_eq!(inbound.next_message(), Ok(Some(Message::Ping(b"hi".to_vec()))));
//! assert_eq!(inbound.next_message(), Ok(None)); // all bytes used: read more
//! ```

use crate::config::Config;
use crate::error::ProtocolError;
use crate::extension::Extension;
use crate::frame::{self, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::message::{CloseCode, CloseFrame, Message};
use crate::protocol::Role;

/// The frame whose payload is arriving.
#[derive(Debug, Clone, Copy)]
struct Frame {
    fin: bool,
    opcode: OpCode,
    /// The key to unmask with; all zeros (a no-op) for a server's frames.
    mask: [u8; 4],
    mask_offset: usize,
    remaining: u64,
}

/// A text or binary message being reassembled from its fragments.
#[derive(Debug)]
struct Assembly {
    text: bool,
    /// The RSV bits of its first frame: non-zero when an extension
    /// transformed it, and must restore it before it is checked.
    rsv: u8,
    data: Vec<u8>,
    /// `data[..utf8_checked]` is known to be valid UTF-8.
    utf8_checked: usize,
}

/// The read buffer's size while the link is cold: room for a browser's
/// command, so an idle connection holds little memory.
const COLD_BUFFER: usize = 256;

/// The most read straight into a message at once.
const MAX_DIRECT_CHUNK: usize = 1 << 20;

/// A byte budget that the messages in progress of many connections share
/// (the server's [`Config::max_partial_bytes`]), so their sum is bounded
/// whatever the number of connections.
///
/// The receiving half takes from it before its message's storage grows,
/// and gives everything back when the message is complete, fails, or the
/// half is dropped. Implemented by the runtime (an atomic counter); the
/// core only calls it.
///
/// [`Config::max_partial_bytes`]: crate::Config#structfield.max_partial_bytes
pub trait MessageBudget: Send + Sync + std::fmt::Debug {
    /// Takes `bytes` from the budget; returns false, taking nothing, when
    /// fewer are left.
    fn take(&self, bytes: usize) -> bool;
    /// Gives back `bytes` taken earlier.
    fn give(&self, bytes: usize);
}

/// The receiving half of one connection's protocol, for either role.
#[derive(Debug)]
pub struct Inbound {
    role: Role,
    max_frame_size: usize,
    max_message_size: usize,
    /// The peer's close frame arrived, or the peer broke the protocol:
    /// nothing more is read.
    closed: bool,
    buf: Vec<u8>,
    buf_size: usize,
    cold: bool,
    start: usize,
    end: usize,
    /// Where in the message the last [`Inbound::buffer`] pointed, when it
    /// lent out the message itself for a large payload.
    direct: Option<usize>,
    /// The most offered to the next direct read (zeroed first): it doubles
    /// while reads fill it and shrinks to what arrives, so a trickling
    /// sender costs little zeroing. The offer is also never more than the
    /// message already holds (or a read buffer): a message's storage grows
    /// with the bytes that arrived, at most doubling per read, so a header
    /// alone commits no more than a read buffer.
    direct_chunk: usize,
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    frame: Option<Frame>,
    message: Option<Assembly>,
    control: Vec<u8>,
    /// The negotiated per-message extension, if any.
    extension: Option<Box<dyn Extension>>,
    /// The budget the message's storage is taken from, if any.
    budget: Option<Box<dyn MessageBudget>>,
    /// The bytes taken from `budget` for the message in progress: its
    /// storage's capacity beyond a read buffer.
    taken: usize,
    /// The budget refused the message room to grow: the next
    /// [`Inbound::next_message`] fails with [`ProtocolError::Overloaded`].
    refused: bool,
}

impl Drop for Inbound {
    fn drop(&mut self) {
        self.release();
    }
}

impl Inbound {
    /// The receiving half for `role`, with the limits and read buffer size
    /// of `config`. The read buffer is allocated on first use.
    pub fn new(role: Role, config: &Config) -> Self {
        Inbound {
            role,
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            closed: false,
            buf: Vec::new(),
            buf_size: config.read_buffer_size.max(1),
            cold: false,
            start: 0,
            end: 0,
            direct: None,
            direct_chunk: MAX_DIRECT_CHUNK,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message: None,
            control: Vec::new(),
            extension: None,
            budget: None,
            taken: 0,
            refused: false,
        }
    }

    /// A receiving half that starts with `bytes` already received: what
    /// followed the handshake in the same read.
    pub fn with_received(role: Role, config: &Config, bytes: &[u8]) -> Self {
        let mut inbound = Inbound::new(role, config);
        inbound.buf = bytes.to_vec();
        inbound.end = bytes.len();
        inbound
    }

    /// Gives meaning to the RSV bits of [`Extension::rsv`]: messages whose
    /// first frame carries them are restored by the extension.
    pub fn set_extension(&mut self, extension: Box<dyn Extension>) {
        self.extension = Some(extension);
    }

    /// Takes the storage of messages in progress from `budget`, beyond a
    /// read buffer's worth each (the connection's own, so small messages
    /// pass even when large ones hold the whole budget): past it,
    /// [`next_message`](Self::next_message) fails with
    /// [`ProtocolError::Overloaded`] (close code 1013, try again later).
    pub fn set_budget(&mut self, budget: Box<dyn MessageBudget>) {
        self.release();
        self.budget = Some(budget);
        self.taken = self
            .message
            .as_ref()
            .map_or(0, |m| m.data.capacity().saturating_sub(self.buf_size));
        if !self.budget.as_ref().is_some_and(|b| b.take(self.taken)) {
            self.taken = 0;
        }
    }

    /// The bytes the message in progress holds: the capacity of its
    /// storage (0 between messages). What it takes from a
    /// [budget](Self::set_budget) is this less a read buffer.
    pub fn partial_bytes(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.data.capacity())
    }

    /// Whether the peer's close frame arrived or the peer broke the
    /// protocol: nothing more will be returned.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether a frame or a message has begun to arrive and is not whole
    /// yet: the driver's clock for [`Config::message_timeout`] runs while it
    /// is (this half keeps no clock).
    ///
    /// [`Config::message_timeout`]: crate::Config#structfield.message_timeout
    pub fn is_receiving(&self) -> bool {
        !self.closed && (self.header_len > 0 || self.frame.is_some() || self.message.is_some())
    }

    /// Tells whether the link is cold (quiet for a while), so the next
    /// read needs only a small buffer: a cold connection holds 256 bytes
    /// instead of [`Config::read_buffer_size`]. Takes effect once the
    /// buffered bytes are used up.
    ///
    /// [`Config::read_buffer_size`]: crate::Config#structfield.read_buffer_size
    pub fn set_cold(&mut self, cold: bool) {
        self.cold = cold;
    }

    /// Where the next read should go; call [`commit`](Self::commit) with the
    /// number of bytes read into it.
    ///
    /// Usually the free part of the read buffer; for a large payload, the
    /// message itself, so its bytes are copied once, from the socket to the
    /// message. Never empty once [`next_message`](Self::next_message) has
    /// returned `Ok(None)`, which happens only when every byte was used.
    pub fn buffer(&mut self) -> &mut [u8] {
        if let (Some(at), Some(message)) = (self.direct.take(), &mut self.message) {
            // Offered before and not committed: those bytes did not arrive.
            message.data.truncate(at);
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if let Some(chunk) = self.direct_offer() {
                if self.reserve(chunk, self.frame_remaining()) {
                    let data = &mut self.message.as_mut().expect("a direct offer").data;
                    let at = data.len();
                    data.resize(at + chunk, 0);
                    self.direct = Some(at);
                    return &mut data[at..];
                }
                // Refused: read into the buffer; next_message fails.
                self.refused = true;
            }
            let size = if self.cold {
                COLD_BUFFER.min(self.buf_size)
            } else {
                self.buf_size
            };
            if self.buf.len() != size {
                self.buf = vec![0; size];
            }
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`buffer`](Self::buffer).
    pub fn commit(&mut self, n: usize) {
        let Some(at) = self.direct.take() else {
            self.end = (self.end + n).min(self.buf.len());
            return;
        };
        let (Some(frame), Some(message)) = (&mut self.frame, &mut self.message) else {
            return;
        };
        let chunk = message.data.len() - at;
        let n = n.min(chunk);
        message.data.truncate(at + n);
        self.direct_chunk = if n == chunk {
            (2 * chunk).min(MAX_DIRECT_CHUNK)
        } else {
            (2 * n).clamp(self.buf_size, MAX_DIRECT_CHUNK)
        };
        frame.mask_offset =
            frame::apply_mask(&mut message.data[at..], frame.mask, frame.mask_offset);
        frame.remaining -= n as u64;
    }

    /// The next complete message or control frame, `Ok(None)` when every
    /// byte received so far has been used and more must be read.
    ///
    /// A [`Message::Ping`] is owed a pong and a [`Message::Close`] a close
    /// reply (with the same code): [`Reply::to`](super::Reply::to) says
    /// which. After a close frame, or an error, the half is
    /// [closed](Self::is_closed) and nothing more is returned.
    ///
    /// # Errors
    ///
    /// The peer's violation, as soon as the bytes that show it arrive: a bad
    /// UTF-8 sequence fails even in the middle of a frame. Answer it with a
    /// close frame carrying [`ProtocolError::close_code`].
    pub fn next_message(&mut self) -> Result<Option<Message>, ProtocolError> {
        if self.closed {
            self.start = self.end;
            return Ok(None);
        }
        let result = self.advance();
        if result.is_err() {
            self.closed = true;
            self.message = None;
            self.release();
            self.start = self.end;
        }
        result
    }

    fn advance(&mut self) -> Result<Option<Message>, ProtocolError> {
        if self.refused {
            return Err(ProtocolError::Overloaded);
        }
        // Text read straight into the message is checked here.
        if let Some(message) = self.message.as_mut().filter(|m| m.text && m.rsv == 0) {
            check_utf8(message)?;
        }
        loop {
            let Some(frame) = self.frame else {
                if !self.read_header()? {
                    return Ok(None);
                }
                if let Some(message) = self.end_of_frame()? {
                    return Ok(Some(message));
                }
                continue;
            };
            if frame.remaining > 0 {
                if self.start == self.end {
                    // Take the next read's room from the budget now, so a
                    // refusal comes before the read, not after more bytes.
                    if let Some(chunk) = self.direct_offer() {
                        if !self.reserve(chunk, self.frame_remaining()) {
                            self.refused = true;
                            return Err(ProtocolError::Overloaded);
                        }
                    }
                    return Ok(None);
                }
                self.read_payload(frame)?;
            }
            if self.frame.is_some_and(|f| f.remaining == 0) {
                if let Some(message) = self.end_of_frame()? {
                    return Ok(Some(message));
                }
            }
        }
    }

    /// Gathers header bytes; returns whether a header is complete, and then
    /// checks it and makes its frame current.
    fn read_header(&mut self) -> Result<bool, ProtocolError> {
        let take = (MAX_HEADER_LEN - self.header_len).min(self.end - self.start);
        self.header[self.header_len..self.header_len + take]
            .copy_from_slice(&self.buf[self.start..self.start + take]);
        let had = self.header_len;
        self.header_len += take;
        match FrameHeader::decode(&self.header[..self.header_len])? {
            None => {
                self.start += take;
                Ok(false)
            }
            Some((header, used)) => {
                self.start += used - had;
                self.header_len = 0;
                self.begin_frame(header)?;
                Ok(true)
            }
        }
    }

    /// Enforces the per-frame rules of RFC 6455 §5 and the limits.
    fn begin_frame(&mut self, header: FrameHeader) -> Result<(), ProtocolError> {
        // §5.2: "If a nonzero value is received and none of the negotiated
        // extensions defines the meaning of such a nonzero value, the
        // receiving endpoint MUST _Fail the WebSocket Connection_." A
        // per-message extension's bits mark a message's first frame only.
        let allowed = match header.opcode {
            OpCode::Text | OpCode::Binary => self.extension.as_ref().map_or(0, |e| e.rsv()),
            _ => 0,
        };
        if header.rsv & !allowed != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let mask = match (self.role, header.mask) {
            (Role::Server, Some(key)) => key,
            // §5.1: "The server MUST close the connection upon receiving a
            // frame that is not masked."
            (Role::Server, None) => return Err(ProtocolError::UnmaskedFrame),
            // §5.1: "A client MUST close a connection if it detects a masked
            // frame."
            (Role::Client, Some(_)) => return Err(ProtocolError::MaskedFrame),
            (Role::Client, None) => [0; 4],
        };
        if header.opcode.is_control() {
            // §5.5: "All control frames MUST have a payload length of 125
            // bytes or less and MUST NOT be fragmented."
            if !header.fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if header.len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlTooLong);
            }
            self.control.clear();
        } else {
            // §5.4: fragments of one message are not interleaved with
            // another message's.
            match (header.opcode, &self.message) {
                (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Continuation, Some(_)) => {}
                (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
                (opcode, None) => {
                    self.message = Some(Assembly {
                        text: opcode == OpCode::Text,
                        rsv: header.rsv,
                        data: Vec::new(),
                        utf8_checked: 0,
                    });
                }
            }
            if header.len > self.max_frame_size as u64 {
                return Err(ProtocolError::FrameTooBig);
            }
            let so_far = self.message.as_ref().map_or(0, |m| m.data.len()) as u64;
            if so_far + header.len > self.max_message_size as u64 {
                return Err(ProtocolError::MessageTooBig);
            }
        }
        self.frame = Some(Frame {
            fin: header.fin,
            opcode: header.opcode,
            mask,
            mask_offset: 0,
            remaining: header.len,
        });
        Ok(())
    }

    /// Moves buffered payload bytes into the message or control frame,
    /// unmasking them, and checks new text as soon as it arrives.
    fn read_payload(&mut self, mut frame: Frame) -> Result<(), ProtocolError> {
        let remaining = usize::try_from(frame.remaining).unwrap_or(usize::MAX);
        let n = (self.end - self.start).min(remaining);
        if !frame.opcode.is_control() && !self.reserve(n, remaining) {
            self.refused = true;
            return Err(ProtocolError::Overloaded);
        }
        let bytes = &self.buf[self.start..self.start + n];
        self.start += n;
        frame.remaining -= n as u64;
        let target = match &mut self.message {
            Some(message) if !frame.opcode.is_control() => &mut message.data,
            _ => &mut self.control,
        };
        let at = target.len();
        target.extend_from_slice(bytes);
        frame.mask_offset = frame::apply_mask(&mut target[at..], frame.mask, frame.mask_offset);
        self.frame = Some(frame);
        if let Some(message) = self.message.as_mut().filter(|m| m.text && m.rsv == 0) {
            if !frame.opcode.is_control() {
                check_utf8(message)?;
            }
        }
        Ok(())
    }

    /// Called when the current frame's payload is complete.
    fn end_of_frame(&mut self) -> Result<Option<Message>, ProtocolError> {
        let Some(frame) = self.frame else {
            return Ok(None);
        };
        if frame.remaining > 0 {
            return Ok(None);
        }
        self.frame = None;
        let message = match frame.opcode {
            OpCode::Ping => Message::Ping(std::mem::take(&mut self.control)),
            OpCode::Pong => Message::Pong(std::mem::take(&mut self.control)),
            OpCode::Close => {
                let close = parse_close(&self.control)?;
                self.closed = true;
                Message::Close(close)
            }
            _ if !frame.fin => return Ok(None),
            _ => {
                let mut message = self
                    .message
                    .take()
                    .expect("a data frame belongs to a message");
                self.release();
                if message.rsv != 0 {
                    let extension = self
                        .extension
                        .as_mut()
                        .expect("RSV bits pass only with an extension");
                    message.data =
                        extension.decode(message.rsv, message.data, self.max_message_size)?;
                }
                if !message.text {
                    Message::Binary(message.data)
                } else {
                    // A sequence cut off by the end of the message.
                    let text =
                        String::from_utf8(message.data).map_err(|_| ProtocolError::InvalidUtf8)?;
                    Message::Text(text)
                }
            }
        };
        Ok(Some(message))
    }
}

impl Inbound {
    /// Makes room for `additional` more bytes in the message in progress,
    /// whose current frame has `remaining` bytes to come, taking the growth
    /// from the budget first. The capacity at most doubles, stays within
    /// twice the bytes that arrived plus a read buffer (offers are at most
    /// what the message holds, or a read buffer) and never passes the end
    /// of the frame, so the storage follows the bytes that arrived.
    /// Returns false, allocating nothing, when the budget refuses.
    fn reserve(&mut self, additional: usize, remaining: usize) -> bool {
        let Some(message) = &mut self.message else {
            return true;
        };
        let len = message.data.len();
        let needed = len + additional;
        let capacity = message.data.capacity();
        if needed <= capacity {
            return true;
        }
        // Never more than twice what arrived plus a read buffer.
        let target = (2 * capacity)
            .min(2 * len + self.buf_size)
            .min(len.saturating_add(remaining))
            .max(needed);
        if let Some(budget) = &self.budget {
            // A read buffer's worth of each message is the connection's
            // own (counted per connection, like its read buffer): small
            // messages pass even when large ones hold the whole budget.
            let grow = target
                .saturating_sub(self.buf_size)
                .saturating_sub(self.taken);
            if !budget.take(grow) {
                return false;
            }
            self.taken += grow;
        }
        message.data.reserve_exact(target - len);
        true
    }

    /// The size of the next read straight into the message, when the read
    /// buffer is empty and a data frame's payload of at least a read buffer
    /// is to come: at most what the message holds (or a read buffer), so
    /// its storage grows with the bytes that arrived.
    fn direct_offer(&self) -> Option<usize> {
        let (Some(frame), Some(message)) = (self.frame, &self.message) else {
            return None;
        };
        let remaining = self.frame_remaining();
        if frame.opcode.is_control() || remaining < self.buf_size || self.refused {
            return None;
        }
        let held = message.data.len();
        let chunk = remaining
            .min(self.direct_chunk.max(self.buf_size))
            .min(held.max(self.buf_size));
        // A tail shorter than a read buffer would come through the read
        // buffer and grow the storage once more (a copy of all of it):
        // offer it now, while the storage stays within its bound, unless
        // the sender trickles.
        if held >= self.buf_size && self.direct_chunk >= held && remaining - chunk < self.buf_size {
            return Some(remaining);
        }
        Some(chunk)
    }

    /// The payload bytes of the current frame still to come.
    fn frame_remaining(&self) -> usize {
        self.frame
            .map_or(0, |f| usize::try_from(f.remaining).unwrap_or(usize::MAX))
    }

    /// Gives back to the budget what the message in progress took.
    fn release(&mut self) {
        if let Some(budget) = &self.budget {
            if self.taken > 0 {
                budget.give(self.taken);
            }
        }
        self.taken = 0;
    }
}

/// Validates the text that arrived since the last check. A sequence cut off
/// at the end is left for later; an impossible one fails at once (§8.1:
/// "MUST _Fail the WebSocket Connection_" on invalid UTF-8).
fn check_utf8(message: &mut Assembly) -> Result<(), ProtocolError> {
    match std::str::from_utf8(&message.data[message.utf8_checked..]) {
        Ok(_) => message.utf8_checked = message.data.len(),
        Err(e) if e.error_len().is_some() => return Err(ProtocolError::InvalidUtf8),
        Err(e) => message.utf8_checked += e.valid_up_to(),
    }
    Ok(())
}

/// The payload of a close frame: empty, or a sendable code and a UTF-8
/// reason (§5.5.1, §7.4).
fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [high, low, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*high, *low]));
            if !code.is_sendable() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

#[cfg(test)]
mod tests;
