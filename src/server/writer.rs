//! A client's writer thread: it sleeps until the client's outbox needs it,
//! then writes, blocking up to the write timeout, what the socket would not
//! take at once, the handler's sends and the control frames; it pings a
//! quiet client and closes one that does not answer.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::frame::OpCode;
use crate::hub::{bump, bump_by, Encoded};
use crate::server::client::Link;
use crate::server::framing::Framing;
use crate::server::shared::Shared;
use crate::socket;
use crate::wire::{sse, v1};

/// The most frames written in one `writev`.
const MAX_BATCH: usize = 256;

/// The writer thread of one client.
pub(super) struct Writer {
    pub(super) link: Arc<Link>,
    pub(super) config: Arc<Config>,
    pub(super) shared: Arc<Shared>,
}

/// Why a writer stopped.
enum End {
    /// The closing handshake is over, or the reader finished.
    Done,
    /// The peer did not answer the keepalive ping.
    Unresponsive,
    /// A write failed or timed out.
    Write(io::Error),
}

impl Writer {
    pub(super) fn run(self) {
        let counters = &self.shared.counters;
        let cut = match self.serve() {
            End::Done => None,
            End::Unresponsive => {
                log::info!("closing a client that did not answer a ping");
                bump(&counters.disconnected_unresponsive);
                Some((
                    io::ErrorKind::TimedOut,
                    "no answer to the keepalive ping".into(),
                ))
            }
            End::Write(e) => {
                log::info!("closing a client after a failed write: {e}");
                if !self.link.outbox.is_closing() {
                    bump(&counters.disconnected_write);
                }
                Some((e.kind(), e.to_string()))
            }
        };
        if let Some(cut) = cut {
            let _ = self.link.cut.set(cut);
        }
        // An SSE stream's session ends with it: its handler's recv returns
        // None.
        if let Some(session) = &self.link.session {
            session.close();
        }
        // The server closes the TCP connection (RFC 6455 §7.1.1); this also
        // wakes the connection thread if it is blocked reading.
        let _ = self.link.stream.shutdown(Shutdown::Both);
        let _ = self.link.outbox.close(None, "");
        while self.link.outbox.try_take().is_some() {}
    }

    fn serve(&self) -> End {
        let outbox = &self.link.outbox;
        // An SSE stream: no frames, so no pings and no close frame; a
        // heartbeat event instead, and no peer's close to wait for.
        let events = outbox.framing() == Some(Framing::EventStream);
        let beats = self.heartbeat_interval();
        let mut last_beat = self.shared.millis();
        outbox.attach_writer();
        let mut batch: Vec<Encoded> = Vec::new();
        let mut control = Vec::new();
        let mut ping_sent: Option<u64> = None;
        let mut close_sent_at: Option<Instant> = None;
        loop {
            // Wait for work, or for the next keepalive or close deadline.
            // An idle client keeps no batch buffer.
            if batch.capacity() > 16 {
                batch = Vec::new();
            }
            let wake = match events {
                true => self.next_beat(last_beat, beats),
                false => self
                    .next_wake(ping_sent, close_sent_at)
                    .min(self.next_beat(last_beat, beats)),
            };
            outbox.park(wake);
            // Frames leave the queue only with the wire held, so the
            // flusher cannot write a later one first.
            let mut wire = outbox.wire();
            if let Some(e) = wire.failed.take() {
                outbox.release_wire(wire);
                return End::Write(e);
            }
            while batch.len() < MAX_BATCH {
                match outbox.try_take() {
                    Some(frame) => batch.push(frame),
                    None => break,
                }
            }
            outbox.take_rung();
            let (pong, latest, close, reader_done) = {
                let mut pending = outbox.pending();
                if !pending.latest.is_empty() {
                    // Whatever is queued now is older than the newest frames
                    // waiting beside the queue: keep-latest publishers queue
                    // under this lock, and only while their topic has no
                    // frame waiting. Take it all, to write it first.
                    while let Some(frame) = outbox.try_take() {
                        batch.push(frame);
                    }
                }
                (
                    pending.pong.take(),
                    std::mem::take(&mut pending.latest),
                    pending.close.take(),
                    pending.reader_done,
                )
            };
            if let Some(at) = close_sent_at {
                // Our close is out: nothing more is written; wait for the
                // reader to see the peer's close, or give up.
                batch.clear();
                outbox.release_wire(wire);
                if reader_done || at.elapsed() >= self.config.close_timeout {
                    return End::Done;
                }
                continue;
            }

            let now = self.shared.millis();
            control.clear();
            let beat_due =
                beats.is_some_and(|i| now.saturating_sub(last_beat) >= i.as_millis() as u64);
            let close_at = if events {
                // An SSE stream: a heartbeat when due, after a look for a
                // client that left; no pongs or pings, and no close frame.
                if beat_due {
                    if self.peer_left() {
                        outbox.release_wire(wire);
                        return End::Write(io::ErrorKind::ConnectionReset.into());
                    }
                    control.extend_from_slice(sse::HEARTBEAT);
                    last_beat = now;
                }
                control.len()
            } else {
                // Keepalive: anything received since our ping answers it.
                let last = self.link.last_received.load(Ordering::Relaxed);
                if ping_sent.is_some_and(|sent| last >= sent) {
                    ping_sent = None;
                }
                if let Some(sent) = ping_sent {
                    if now.saturating_sub(sent) >= self.config.pong_timeout.as_millis() as u64 {
                        outbox.release_wire(wire);
                        return End::Unresponsive;
                    }
                }

                // Pongs and pings were owed before our close, if one is made:
                // they go ahead of it in this write.
                let outbound = &outbox.outbound;
                if let Some(payload) = &pong {
                    outbound
                        .encode(OpCode::Pong, payload)
                        .write_to(&mut control);
                }
                if let (None, Some(interval)) = (ping_sent, self.config.ping_interval) {
                    if now.saturating_sub(last) >= interval.as_millis() as u64 && close.is_none() {
                        outbound.encode(OpCode::Ping, b"").write_to(&mut control);
                        ping_sent = Some(now);
                    }
                }
                // A boardcast.v1 page's heartbeat: browsers hide pings.
                if beat_due && close.is_none() {
                    outbound
                        .encode(OpCode::Text, v1::HEARTBEAT)
                        .write_to(&mut control);
                    last_beat = now;
                }
                let close_at = control.len();
                if let Some(frame) = &close {
                    frame.write_to(&mut control);
                }
                close_at
            };
            outbox.notify_space();
            let (pings, closing) = control.split_at(close_at);
            let unsent = std::mem::take(&mut wire.unsent);
            let delivered = unsent
                .iter()
                .chain(&batch)
                .chain(&latest)
                .filter(|f| f.topic().is_some())
                .count();
            let parts = Parts {
                unsent: &unsent,
                offset: std::mem::take(&mut wire.offset),
                pings,
                batch: &batch,
                latest: &latest,
                closing,
            };
            let written = self.write(&parts);
            outbox.release_wire(wire);
            if let Err(e) = written {
                return End::Write(e);
            }
            batch.clear();
            bump_by(&self.shared.counters.delivered, delivered);
            if events {
                // Closed (by the handler, a shutdown, a slow-consumer cut):
                // what was queued before is out; the stream ends.
                if close.is_some() || (reader_done && outbox.rx.is_empty()) {
                    return End::Done;
                }
                continue;
            }
            if close.is_some() {
                close_sent_at = Some(Instant::now());
                if reader_done {
                    return End::Done;
                }
            } else if reader_done && outbox.rx.is_empty() {
                // The peer hung up, or the handler is gone without a
                // close to send.
                return End::Done;
            }
        }
    }

    /// How often this client gets a heartbeat: a `boardcast.v1` page every
    /// `heartbeat_interval`; an SSE stream then too, or else every
    /// `ping_interval` (its writer looks for a client that left at each);
    /// a raw WebSocket client never (it has pings).
    fn heartbeat_interval(&self) -> Option<Duration> {
        match self.link.outbox.framing() {
            Some(Framing::V1) => self.config.heartbeat_interval,
            Some(Framing::EventStream) => {
                self.config.heartbeat_interval.or(self.config.ping_interval)
            }
            _ => None,
        }
    }

    /// How long to wait before the next heartbeat.
    fn next_beat(&self, last_beat: u64, interval: Option<Duration>) -> Duration {
        match interval {
            Some(interval) => {
                let due = last_beat + interval.as_millis() as u64;
                Duration::from_millis(due.saturating_sub(self.shared.millis()).max(1))
            }
            None => Duration::from_secs(3600),
        }
    }

    /// Whether an SSE client closed its end: it sends nothing on the stream,
    /// so a read finds the end (or an error) if it left, and nothing to
    /// read (the stream's short read timeout, or the flusher's non-blocking
    /// mode) if it is there.
    fn peer_left(&self) -> bool {
        let mut scratch = [0; 64];
        match self.link.stream.read(&mut scratch) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !socket::is_timeout(&e) && e.kind() != io::ErrorKind::Interrupted,
        }
    }

    /// How long to wait before the next keepalive or close deadline.
    fn next_wake(&self, ping_sent: Option<u64>, close_sent_at: Option<Instant>) -> Duration {
        if let Some(at) = close_sent_at {
            return self
                .config
                .close_timeout
                .saturating_sub(at.elapsed())
                .max(Duration::from_millis(1));
        }
        let now = self.shared.millis();
        let due = match (ping_sent, self.config.ping_interval) {
            (Some(sent), _) => sent + self.config.pong_timeout.as_millis() as u64,
            (None, Some(interval)) => {
                self.link.last_received.load(Ordering::Relaxed) + interval.as_millis() as u64
            }
            // No keepalive: wake only for work.
            (None, None) => return Duration::from_secs(3600),
        };
        Duration::from_millis(due.saturating_sub(now).max(1))
    }

    /// Writes, in as few `writev` calls as the kernel allows: what the
    /// flusher left unsent, control frames, the queued data, then a close
    /// frame.
    fn write(&self, parts: &Parts<'_>) -> io::Result<()> {
        let outbox = &self.link.outbox;
        let mut slices: Vec<IoSlice<'_>> =
            Vec::with_capacity(3 + parts.unsent.len() + parts.batch.len() + parts.latest.len());
        if let Some((first, rest)) = parts.unsent.split_first() {
            slices.push(IoSlice::new(&outbox.bytes(first)[parts.offset..]));
            slices.extend(rest.iter().map(|f| IoSlice::new(outbox.bytes(f))));
        }
        slices.push(IoSlice::new(parts.pings));
        slices.extend(
            parts
                .batch
                .iter()
                .chain(parts.latest)
                .map(|f| IoSlice::new(outbox.bytes(f))),
        );
        slices.push(IoSlice::new(parts.closing));
        // The flusher may have left the socket non-blocking.
        self.link.outbox.block(&*self.link.stream)?;
        socket::write_all_vectored(socket::Io(&*self.link.stream), &mut slices)
    }
}

/// What one write of the writer thread carries, in this order.
struct Parts<'a> {
    unsent: &'a [Encoded],
    /// Bytes of the first unsent frame already out.
    offset: usize,
    pings: &'a [u8],
    batch: &'a [Encoded],
    latest: &'a [Encoded],
    closing: &'a [u8],
}
