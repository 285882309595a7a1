//! permessage-deflate (RFC 7692 §7): the codec, on top of zlib-rs.
//!
//! A compressed message is a raw DEFLATE stream (no zlib header) flushed
//! with a sync flush, less the flush's final `0x00 0x00 0xff 0xff`, sent
//! with RSV1 on its first frame (§7.2.1). The receiver appends the four
//! bytes back and decompresses (§7.2.2). Control frames are never
//! compressed.
//!
//! ```
//! use boardcast::extension::deflate::{Deflater, Inflater};
//! use boardcast::extension::negotiate::negotiate;
//! use boardcast::extension::{Encoder, Extension};
//! use boardcast::{Config, ContextTakeover};
//!
//! let config = Config::default().deflate(true).deflate_threshold(0);
//! // With the server's context takeover: without, a message that does not
//! // shrink (as "Hello" does not) is sent as it is.
//! let params = negotiate(["permessage-deflate"], &config, ContextTakeover::Both).unwrap();
//! let deflater = Deflater::new(&params, &config);
//! let (rsv, wire) = deflater.encode(b"Hello").unwrap();
//! // RFC 7692 §7.2.3.1: "Hello", compressed, RSV1 set.
//! assert_eq!((rsv, &wire[..]), (0b100, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..]));
//!
//! let mut inflater = Inflater::new(&params);
//! assert_eq!(inflater.decode(rsv, wire, 1024).unwrap(), b"Hello");
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status};

use crate::config::Config;
use crate::error::ProtocolError;
use crate::extension::negotiate::Params;
use crate::extension::pool::{self, Key, DEFLATERS};
use crate::extension::{Encoder, Extension};

/// RSV1, the bit permessage-deflate gives meaning to (§6).
pub const RSV1: u8 = 0b100;

/// What a sync flush ends with, stripped by the sender and appended back
/// by the receiver (§7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The compression level: zlib's default, the usual balance.
const LEVEL: i32 = 6;

/// The receiving side: restores the messages that arrive with RSV1.
///
/// With the client's context takeover, it keeps its decompressor (and its
/// window) from one message to the next; without, it holds nothing
/// between messages.
pub struct Inflater {
    window_bits: u8,
    takeover: bool,
    kept: Option<Inflate>,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater")
            .field("window_bits", &self.window_bits)
            .field("takeover", &self.takeover)
            .field("kept", &self.kept.is_some())
            .finish()
    }
}

impl Inflater {
    /// The decompressor of a connection that agreed to `params` (the
    /// server's side: it restores what the client compressed).
    pub fn new(params: &Params) -> Self {
        Inflater {
            window_bits: params.client_window(),
            takeover: !params.client_no_context_takeover,
            kept: None,
        }
    }

    /// Whether it holds a decompressor between messages.
    pub fn holds_state(&self) -> bool {
        self.kept.is_some()
    }
}

impl Inflater {
    /// The decompressor to keep for the next message, after one that
    /// restored `out` and `ended` its stream or not.
    fn continued(
        &self,
        mut inflate: Inflate,
        out: &[u8],
        ended: bool,
    ) -> Result<Inflate, ProtocolError> {
        if ended {
            // The sender ended its stream with a final block (§7.2.3.4
            // allows it) and starts a new one, which may still refer to
            // what came before: the decompressor, reset, given the last
            // window of output as its dictionary.
            inflate.reset(false);
            let window = 1usize << self.window_bits;
            inflate
                .set_dictionary(&out[out.len().saturating_sub(window)..])
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
        }
        Ok(inflate)
    }
}

impl Extension for Inflater {
    fn rsv(&self) -> u8 {
        RSV1
    }

    fn decode(
        &mut self,
        _rsv: u8,
        payload: Vec<u8>,
        max_size: usize,
    ) -> Result<Vec<u8>, ProtocolError> {
        // The kept decompressor, or one from the pool (given back, reset,
        // after the message, unless the client's context is to be kept).
        let Some(mut inflate) = self.kept.take() else {
            let mut taken = pool::take_inflate();
            let (out, ended) = inflate_message(&mut taken, &payload, max_size)?;
            if self.takeover {
                self.kept = Some(self.continued(taken.keep(), &out, ended)?);
            }
            return Ok(out);
        };
        let (out, ended) = inflate_message(&mut inflate, &payload, max_size)?;
        self.kept = Some(self.continued(inflate, &out, ended)?);
        Ok(out)
    }
}

/// Decompresses one message's payload and the tail it lacks, into at most
/// `max_size` bytes; returns them, and whether the stream ended with a
/// final block.
///
/// The output grows as it fills (doubling, from a little more than the
/// payload), and is never given more than `max_size + 1` bytes of room: a
/// message that would be larger fails with
/// [`ProtocolError::MessageTooBig`] as soon as that byte is produced, so a
/// compression bomb costs at most `max_size` bytes.
fn inflate_message(
    inflate: &mut Inflate,
    payload: &[u8],
    max_size: usize,
) -> Result<(Vec<u8>, bool), ProtocolError> {
    let limit = max_size.saturating_add(1);
    let mut out = Vec::new();
    let mut len = 0;
    for input in [payload, &TAIL[..]] {
        let mut used = 0;
        loop {
            if len == out.len() {
                if len >= limit {
                    return Err(ProtocolError::MessageTooBig);
                }
                let room = (2 * len).max(payload.len() + payload.len() / 2 + 64);
                out.resize(room.min(limit), 0);
            }
            let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
            let status = inflate
                .decompress(&input[used..], &mut out[len..], InflateFlush::NoFlush)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            let consumed = (inflate.total_in() - in_before) as usize;
            let produced = (inflate.total_out() - out_before) as usize;
            used += consumed;
            len += produced;
            if len > max_size {
                return Err(ProtocolError::MessageTooBig);
            }
            if status == Status::StreamEnd {
                // The sender ended with a final block (§7.2.3.4): what
                // follows it (the tail appended here, the padding byte of
                // the RFC's example) is not part of the stream.
                out.truncate(len);
                return Ok((out, true));
            }
            if used == input.len() && len < out.len() {
                break;
            }
            if consumed == 0 && produced == 0 {
                // Room and input, and no progress: not a DEFLATE stream
                // zlib-rs can continue.
                return Err(ProtocolError::InvalidCompressedData);
            }
        }
    }
    out.truncate(len);
    Ok((out, false))
}

/// The sending side: compresses messages of at least a threshold, and
/// marks them with RSV1.
///
/// Without the server's context takeover it holds no compressor: each
/// message takes one from a small shared pool and gives it back reset. A
/// message that would not shrink is then sent as it is (unless the
/// threshold is 0).
pub struct Deflater {
    key: Key,
    threshold: usize,
    /// The compressor kept between messages, with the server's context
    /// takeover; unused without.
    kept: Option<Mutex<Option<Deflate>>>,
}

impl fmt::Debug for Deflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflater")
            .field("key", &self.key)
            .field("threshold", &self.threshold)
            .field("takeover", &self.kept.is_some())
            .finish()
    }
}

impl Deflater {
    /// The compressor of a connection that agreed to `params`, with
    /// `config`'s `memLevel` and threshold.
    pub fn new(params: &Params, config: &Config) -> Self {
        Deflater {
            key: Key {
                level: LEVEL,
                window_bits: params.server_window(),
                mem_level: config.deflate_mem_level,
            },
            threshold: config.deflate_threshold,
            kept: (!params.server_no_context_takeover).then(|| Mutex::new(None)),
        }
    }

    /// Whether it holds a compressor between messages.
    pub fn holds_state(&self) -> bool {
        self.kept.as_ref().is_some_and(|kept| {
            kept.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some()
        })
    }
}

impl Encoder for Deflater {
    fn encode(&self, payload: &[u8]) -> Option<(u8, Vec<u8>)> {
        if payload.len() < self.threshold {
            return None;
        }
        let Some(kept) = &self.kept else {
            let compressed = deflate_message(&mut DEFLATERS.take(self.key, Key::make), payload);
            // Threshold 0: every message compressed, shrinking or not.
            return compressed
                .filter(|c| c.len() < payload.len() || self.threshold == 0)
                .map(|c| (RSV1, c));
        };
        // Context takeover: the caller sends the frames in the order they
        // are made (a connection's writes are serialized), so the peer's
        // window follows ours.
        let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
        // Its own, for the connection's lifetime: not the pool's.
        let deflate = kept.get_or_insert_with(|| self.key.make());
        match deflate_message(deflate, payload) {
            Some(compressed) => Some((RSV1, compressed)),
            None => {
                // Sent as it is instead; a new compressor starts with an
                // empty window, which the peer's decompressor needs not
                // know about.
                *kept = None;
                None
            }
        }
    }
}

/// Published messages compressed once for all their permessage-deflate
/// subscribers, in this process: see [`compress_shared`].
static SHARED: AtomicU64 = AtomicU64::new(0);

/// Compresses a published message's payload once for every subscriber
/// that agreed to permessage-deflate without the server's context
/// takeover (a [`Server`](crate::Server)'s always is), with an LZ77
/// window of `window_bits` (9 to 15; no larger than any of those
/// subscribers agreed to) and `memLevel` 5, from the shared pool. `None`
/// when it would not shrink: the message then goes as it is. Counted by
/// [`shared_count`].
pub fn compress_shared(payload: &[u8], window_bits: u8) -> Option<Vec<u8>> {
    let key = Key {
        level: LEVEL,
        window_bits: window_bits.clamp(9, 15),
        mem_level: 5,
    };
    let compressed = deflate_message(&mut DEFLATERS.take(key, Key::make), payload);
    SHARED.fetch_add(1, Ordering::Relaxed);
    compressed.filter(|c| c.len() < payload.len())
}

/// How many published messages [`compress_shared`] compressed in this
/// process (one per message and window, whatever the number of
/// subscribers it went to).
pub fn shared_count() -> u64 {
    SHARED.load(Ordering::Relaxed)
}

/// Compresses `payload` with a sync flush and strips the flush's tail.
fn deflate_message(deflate: &mut Deflate, payload: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0; payload.len() / 2 + 64];
    let (mut used, mut len) = (0, 0);
    loop {
        let (in_before, out_before) = (deflate.total_in(), deflate.total_out());
        deflate
            .compress(&payload[used..], &mut out[len..], DeflateFlush::SyncFlush)
            .ok()?;
        used += (deflate.total_in() - in_before) as usize;
        len += (deflate.total_out() - out_before) as usize;
        // The flush is complete once all input is in and room is left.
        if used == payload.len() && len < out.len() {
            break;
        }
        out.resize(2 * out.len(), 0);
    }
    out.truncate(len);
    if out.ends_with(&TAIL) {
        out.truncate(len - TAIL.len());
    }
    Some(out)
}

#[cfg(test)]
mod tests;
