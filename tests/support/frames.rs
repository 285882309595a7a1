//! Frames built and read by hand: one masked client-frame builder, one
//! bare header (for claims the payload never follows), one close, and one
//! strict reader of server frames.

use std::io::{self, Read};

use boardcast::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};

/// Opcodes as numbers, for frames built and checked by hand.
pub mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// The mask of every client frame built here.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The largest payload [`read_frame`] accepts from a server: a frame that
/// claims more fails the test before anything of its size is allocated.
pub const MAX_PAYLOAD: u64 = 16 << 20;

/// A frame header with the shortest length encoding, masked with `mask`
/// (a client frame) or not, claiming `len` payload bytes that the caller
/// may or may not send. Made by the crate's own encoder; a reserved
/// `opcode` is written into the first byte as it is.
pub fn frame_header(fin: bool, opcode: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode: OpCode::from_u8(opcode).unwrap_or(OpCode::Binary),
        mask,
        len,
    };
    let mut out = [0; MAX_HEADER_LEN];
    let used = header.encode(&mut out);
    out[0] = (out[0] & 0xF0) | opcode;
    out[..used].to_vec()
}

/// A whole masked client frame of any length, as a browser sends it: the
/// crate's encoder in the client role, with a fixed key.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let known = OpCode::from_u8(opcode).unwrap_or(OpCode::Binary);
    let mut out = boardcast::frame::Frame::with_header(fin, 0, known, payload, Some(MASK)).to_vec();
    out[0] = (out[0] & 0xF0) | opcode;
    out
}

/// A masked close frame with a code and reason.
pub fn client_close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    client_frame(true, op::CLOSE, &payload)
}

/// A frame as a strict client reads it from the server.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The code of a close frame (which this must be).
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, op::CLOSE, "{self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Whether the server ended the stream, waiting up to the stream's read
/// timeout to see it (the wait paces a caller's trickle); fails the test if
/// the server answered instead.
pub fn is_closed(stream: &mut impl Read) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server answered a partial request"),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            false
        }
        Err(_) => true,
    }
}

/// The next server frame that is not a keepalive ping (pings may cross
/// what the test waits for); fails the test if the stream ends first.
pub fn read_past_pings(stream: &mut impl Read, what: &str) -> Frame {
    loop {
        let frame = read_frame(stream).unwrap_or_else(|| panic!("the stream ended before {what}"));
        if frame.opcode != op::PING {
            return frame;
        }
    }
}

/// Reads one server frame; `None` if the stream ended (EOF or reset)
/// before it began. Fails on anything a server must not send: RSV bits, a
/// mask, a reserved opcode, a non-minimal length, a control frame that is
/// fragmented or longer than 125 bytes; and on a payload over
/// [`MAX_PAYLOAD`], before allocating for it. The payload buffer grows as
/// bytes arrive, never to what the header claims up front.
pub fn read_frame(stream: &mut impl Read) -> Option<Frame> {
    let mut head = [0u8; 2];
    loop {
        match stream.read(&mut head[..1]) {
            Ok(0) => return None,
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading a frame: {e}"),
        }
    }
    stream
        .read_exact(&mut head[1..])
        .expect("read frame header");
    let fin = head[0] & 0x80 != 0;
    assert_eq!(head[0] & 0x70, 0, "RSV bits set: {head:02x?}");
    let opcode = head[0] & 0x0F;
    assert!(
        matches!(opcode, 0x0..=0x2 | 0x8..=0xA),
        "reserved opcode {opcode:#x}"
    );
    assert_eq!(head[1] & 0x80, 0, "server frame is masked");
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).expect("read 16-bit length");
            let len = u64::from(u16::from_be_bytes(b));
            assert!(len >= 126, "16-bit length {len} should be 7-bit");
            len
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).expect("read 64-bit length");
            let len = u64::from_be_bytes(b);
            assert!(len > 0xFFFF && len >> 63 == 0, "bad 64-bit length {len}");
            len
        }
        short => u64::from(short),
    };
    if opcode >= 0x8 {
        assert!(fin, "fragmented control frame");
        assert!(len <= 125, "control frame of {len} bytes");
    }
    assert!(
        len <= MAX_PAYLOAD,
        "frame of {len} bytes (at most {MAX_PAYLOAD} read)"
    );
    let mut payload = Vec::new();
    stream
        .by_ref()
        .take(len)
        .read_to_end(&mut payload)
        .expect("read payload");
    assert_eq!(
        payload.len() as u64,
        len,
        "the stream ended in a payload of {len} bytes"
    );
    Some(Frame {
        fin,
        opcode,
        payload,
    })
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The peer's FIN.
    Eof,
    /// A reset.
    Reset,
}

/// Reads and discards until the stream ends, at most `limit` bytes, and
/// tells how it ended and after how many bytes; panics if more arrive, or
/// if it does not end within the read timeout.
pub fn read_to_end(stream: &mut impl Read, limit: usize) -> (Ending, usize) {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    while total <= limit {
        match stream.read(&mut buf) {
            Ok(0) => return (Ending::Eof, total),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (Ending::Reset, total),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("the stream did not end: {e} after {total} bytes"),
        }
    }
    panic!("{total} bytes (more than {limit}) and the stream is still open");
}

/// Reads until the server ends the stream (EOF, or a reset of a connection
/// it failed); fails if any byte arrives.
pub fn expect_eof(stream: &mut impl Read) {
    read_to_end(stream, 0);
}
