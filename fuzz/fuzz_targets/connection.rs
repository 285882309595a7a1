//! The blocking connection over an in-memory stream: arbitrary client bytes,
//! arriving in arbitrary pieces, interleaved with sends. Whatever happens,
//! everything written is a well-formed unmasked server frame, nothing
//! follows our close frame, a peer's close is answered with its own code,
//! and a violation is answered with its close code.
#![no_main]

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use boardcast::frame::{FrameHeader, OpCode};
use boardcast::protocol::Role;
use boardcast::{CloseCode, Config, Connection, Error, Message};
use libfuzzer_sys::fuzz_target;

/// Reads hand out queued pieces, then end of stream; writes are recorded.
#[derive(Default)]
struct Pipe {
    incoming: VecDeque<Vec<u8>>,
    written: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(piece) = self.incoming.front_mut() else { return Ok(0) };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        piece.drain(..n);
        if piece.is_empty() {
            self.incoming.pop_front();
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The frames written, decoded strictly.
fn frames(mut wire: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let (header, used) = FrameHeader::decode(wire).unwrap().expect("whole header");
        assert!(header.fin && header.rsv == 0 && header.mask.is_none());
        let end = used + header.len as usize;
        out.push((header.opcode, wire[used..end].to_vec()));
        wire = &wire[end..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // Layout: ops (one byte each) until a 0xFF, then the client's bytes.
    let split = data.iter().position(|&b| b == 0xFF).unwrap_or(data.len());
    let (ops, client) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let mut pipe = Pipe::default();
    let mut rest = client;
    for (i, op) in ops.iter().enumerate() {
        let size = (usize::from(*op) + i) % 32 + 1;
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        pipe.incoming.push_back(piece.to_vec());
        rest = tail;
    }
    pipe.incoming.push_back(rest.to_vec());

    let config = Config::default().max_message_size(4096).max_frame_size(2048);
    let mut connection = Connection::from_upgraded(pipe, Role::Server, &config);
    let mut received_close = None;
    let mut violation = None;
    for op in ops.iter().chain(&[0, 0, 0, 0]) {
        let sent_before = connection.is_closing();
        let result = match op % 4 {
            0 => match connection.recv() {
                Ok(Some(Message::Close(frame))) => {
                    if !sent_before {
                        received_close = Some(frame.map(|f| f.code));
                    }
                    Ok(())
                }
                Ok(_) => Ok(()),
                Err(Error::Protocol(e)) => {
                    if !sent_before {
                        violation = Some(e.close_code());
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            },
            1 => connection.send_text("hello"),
            2 => connection.ping(&[*op; 3]),
            _ => connection.close(CloseCode::NORMAL, "bye"),
        };
        if sent_before {
            assert!(matches!(result, Ok(()) | Err(Error::Closed) | Err(Error::Io(_))) || *op % 4 == 0);
        }
    }

    let written = frames(&connection.get_ref().written);
    if let Some(at) = written.iter().position(|(op, _)| *op == OpCode::Close) {
        assert_eq!(at, written.len() - 1, "nothing after our close frame");
        let payload = &written[at].1;
        let code = (payload.len() >= 2).then(|| CloseCode(u16::from_be_bytes([payload[0], payload[1]])));
        if let Some(expected) = violation {
            assert_eq!(code, Some(expected));
        } else if let Some(peer_code) = received_close {
            assert_eq!(code, peer_code, "close answered with the peer's code");
        }
    } else {
        assert!(violation.is_none() && received_close.is_none(), "owed close was sent");
    }
});
