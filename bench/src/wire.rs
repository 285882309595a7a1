//! The client's side of RFC 6455: the opening handshake, masked frames built
//! once, and server frame headers.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use boardcast::frame::{Frame, FrameHeader, OpCode, MAX_HEADER_LEN};

/// The key of RFC 6455 §1.3's example; the server must answer [`ACCEPT`].
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The `Sec-WebSocket-Accept` value for [`KEY`].
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opcodes the generator handles.
pub mod opcode {
    /// A continuation frame.
    pub const CONTINUATION: u8 = 0x0;
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// A close frame.
    pub const CLOSE: u8 = 0x8;
    /// A ping frame.
    pub const PING: u8 = 0x9;
    /// A pong frame.
    pub const PONG: u8 = 0xA;
}

/// The protocol spoken to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// WebSocket: handshake, masked binary frames out, unmasked frames back.
    Ws,
    /// Raw TCP: no handshake, no framing; the server echoes bytes.
    Tcp,
}

impl std::str::FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Proto, String> {
        match s {
            "ws" => Ok(Proto::Ws),
            "tcp" => Ok(Proto::Tcp),
            _ => Err(format!("unknown protocol {s:?} (ws or tcp)")),
        }
    }
}

/// Connects with `TCP_NODELAY` and, for WebSocket, completes the opening
/// handshake. Returns the stream (blocking, no timeouts) and any bytes the
/// server sent after its response head (frames already on their way).
pub fn connect(
    addr: SocketAddr,
    proto: Proto,
    timeout: Duration,
) -> io::Result<(TcpStream, Vec<u8>)> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    if proto == Proto::Tcp {
        return Ok((stream, Vec::new()));
    }
    upgrade(stream, addr, timeout, None)
}

/// Connects with `TCP_NODELAY` and completes a WebSocket opening handshake
/// offering the subprotocol `protocol` (`Sec-WebSocket-Protocol`), which the
/// server must select. Returns as [`connect`] does.
pub fn connect_subprotocol(
    addr: SocketAddr,
    protocol: &str,
    timeout: Duration,
) -> io::Result<(TcpStream, Vec<u8>)> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    upgrade(stream, addr, timeout, Some(protocol))
}

/// The opening handshake on a connected stream, offering `protocol` if
/// given.
fn upgrade(
    stream: TcpStream,
    addr: SocketAddr,
    timeout: Duration,
    protocol: Option<&str>,
) -> io::Result<(TcpStream, Vec<u8>)> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let offer = protocol.map_or(String::new(), |p| {
        format!("Sec-WebSocket-Protocol: {p}\r\n")
    });
    let request = format!(
        "GET /bench HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    (&stream).write_all(request.as_bytes())?;
    let mut buf = vec![0u8; 1024];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() >= 16 << 10 {
                return Err(invalid("response head over 16 KiB"));
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = (&stream).read(&mut buf[filled..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during the handshake",
            ));
        }
        filled += n;
        if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
            let head = &buf[..end + 4];
            if !head.starts_with(b"HTTP/1.1 101") {
                let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                return Err(invalid(&format!(
                    "handshake refused: {}",
                    String::from_utf8_lossy(line)
                )));
            }
            if find(head, ACCEPT.as_bytes()).is_none() {
                return Err(invalid("wrong Sec-WebSocket-Accept"));
            }
            if let Some(p) = protocol {
                let selected = format!("sec-websocket-protocol: {p}\r\n");
                if find(&head.to_ascii_lowercase(), selected.as_bytes()).is_none() {
                    return Err(invalid(&format!("subprotocol {p} not selected")));
                }
            }
            stream.set_read_timeout(None)?;
            stream.set_write_timeout(None)?;
            return Ok((stream, buf[end + 4..filled].to_vec()));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An `InvalidData` error.
pub fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A complete client frame (FIN set), masked with `mask`: boardcast's own
/// encoder in the client role.
pub fn masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    Frame::new(known(opcode), payload, Some(mask)).to_vec()
}

/// The header of an unmasked server frame with FIN set and this payload
/// length: what an echo of a binary message must start with.
pub fn server_header(opcode: u8, len: usize) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: known(opcode),
        mask: None,
        len: len as u64,
    };
    let mut out = [0; MAX_HEADER_LEN];
    let used = header.encode(&mut out);
    out[..used].to_vec()
}

fn known(opcode: u8) -> OpCode {
    OpCode::from_u8(opcode).expect("the generator sends defined opcodes only")
}

/// A server frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The opcode.
    pub opcode: u8,
    /// Whether FIN is set.
    pub fin: bool,
    /// Bytes of header.
    pub len: usize,
    /// Bytes of payload.
    pub payload: usize,
}

/// Decodes a server frame header: `Ok(None)` if more bytes are needed.
///
/// # Errors
///
/// A masked server frame (RFC 6455 §5.1), or a length over 2^48.
pub fn parse_header(buf: &[u8]) -> io::Result<Option<Header>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & 0x80 != 0 {
        return Err(invalid("masked frame from the server"));
    }
    let (len, payload) = match buf[1] & 0x7F {
        126 if buf.len() < 4 => return Ok(None),
        126 => (4, u16::from_be_bytes([buf[2], buf[3]]) as u64),
        127 if buf.len() < 10 => return Ok(None),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (10, u64::from_be_bytes(b))
        }
        n => (2, n as u64),
    };
    if payload > 1 << 48 {
        return Err(invalid("absurd frame length"));
    }
    Ok(Some(Header {
        opcode: buf[0] & 0x0F,
        fin: buf[0] & 0x80 != 0,
        len,
        payload: payload as usize,
    }))
}

/// Closes the socket with a reset instead of a FIN (`SO_LINGER` 0), so that
/// thousands of closed connections leave no `TIME_WAIT` behind to exhaust
/// the ephemeral ports between runs.
pub fn set_reset_on_close<S: std::os::fd::AsFd>(stream: &S) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_their_headers() {
        for len in [0, 125, 126, 65535, 65536] {
            let head = server_header(opcode::BINARY, len);
            let h = parse_header(&head).unwrap().unwrap();
            assert_eq!(
                (h.opcode, h.fin, h.len, h.payload),
                (2, true, head.len(), len)
            );
        }
        let frame = masked_frame(opcode::BINARY, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        // RFC 6455 §5.7, with the binary opcode.
        assert_eq!(
            frame,
            [0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        assert!(parse_header(&frame).is_err());
        assert_eq!(parse_header(&[0x82, 126, 0]).unwrap(), None);
    }
}
