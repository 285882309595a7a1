//! Fan-out of server pushes: publish once, every subscriber of the topic
//! receives it, and no client can slow the publisher or the others.
//!
//! A published message is encoded into one frame whose bytes all
//! subscribers share (server frames are unmasked, so they are identical for
//! every client). Each client has an outbox: a bounded
//! `crossbeam-channel` queue. Publishing never blocks: it offers the frame
//! to each queue and puts the client on the list of the hub's flusher, a
//! thread that writes each listed client's queued frames in one
//! non-blocking `writev`. Delivery thus costs no thread switch per client,
//! and under load each write carries more frames. What a socket will not
//! take at once goes to the client's own writer thread, which may block.
//!
//! A full queue is first written out by the publisher itself, without
//! blocking; only if the socket would not take it (the client is not
//! reading) does the topic's [`Policy`] decide what gives.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock, TryLockError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::frame::{self, CloseCode, OpCode};
use crate::message::Message;

/// What happens when a message is published to a client whose queue is
/// full, because the client (or its link) is slower than the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Close the client with code 1013 (try again later): it keeps every
    /// message it gets in order, or none. The default. Its queue is freed at
    /// once; the close frame follows the write in progress, and a client
    /// that reads nothing at all is cut at the write timeout.
    #[default]
    Disconnect,
    /// Drop the oldest queued message to make room: the client keeps up with
    /// the present and loses part of the past. Only published messages are
    /// dropped: while a message your handler sent waits in the queue, or for
    /// room in it, the new one is dropped instead, so the handler's are
    /// neither lost nor kept waiting by the publisher.
    DropOldest,
    /// Keep only the newest message of this topic waiting for the client: a
    /// new one replaces the one not yet sent. The right policy for sensor
    /// readings: a dashboard that fell behind wants the current value, not a
    /// backlog.
    KeepLatest,
}

/// The hub's and server's counters, read with [`Hub::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Clients connected now (after their handshake).
    pub clients: usize,
    /// Subscriptions now: (client, topic) pairs.
    pub subscriptions: usize,
    /// Messages published.
    pub published: u64,
    /// Published messages written to a client's socket, counted per client.
    pub delivered: u64,
    /// Messages dropped by [`Policy::DropOldest`].
    pub dropped_oldest: u64,
    /// Messages replaced by a newer one under [`Policy::KeepLatest`].
    pub dropped_superseded: u64,
    /// Clients disconnected by [`Policy::Disconnect`] for being too slow.
    pub disconnected_slow: u64,
    /// Clients disconnected for not answering the keepalive ping.
    pub disconnected_unresponsive: u64,
    /// Clients disconnected because a write failed or timed out.
    pub disconnected_write: u64,
    /// Connections refused with 503 because the server was full.
    pub rejected_full: u64,
    /// Handshakes that failed: refused, timed out, or broken off.
    pub handshake_failed: u64,
}

/// Shared counters; `Stats` is a snapshot of them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) clients: AtomicUsize,
    pub(crate) subscriptions: AtomicUsize,
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped_oldest: AtomicU64,
    pub(crate) dropped_superseded: AtomicU64,
    pub(crate) disconnected_slow: AtomicU64,
    pub(crate) disconnected_unresponsive: AtomicU64,
    pub(crate) disconnected_write: AtomicU64,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) handshake_failed: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            clients: self.clients.load(Ordering::Relaxed),
            subscriptions: self.subscriptions.load(Ordering::Relaxed),
            published: get(&self.published),
            delivered: get(&self.delivered),
            dropped_oldest: get(&self.dropped_oldest),
            dropped_superseded: get(&self.dropped_superseded),
            disconnected_slow: get(&self.disconnected_slow),
            disconnected_unresponsive: get(&self.disconnected_unresponsive),
            disconnected_write: get(&self.disconnected_write),
            rejected_full: get(&self.rejected_full),
            handshake_failed: get(&self.handshake_failed),
        }
    }
}

/// A complete server frame, encoded once, shared by every queue it is in.
///
/// One pointer wide, so a client's queue of 64 slots costs 1 KiB.
#[derive(Clone)]
pub(crate) struct Frame(Arc<FrameData>);

struct FrameData {
    /// The topic it was published to; `None` for a message sent to one
    /// client.
    topic: Option<Arc<str>>,
    bytes: Box<[u8]>,
}

impl Frame {
    pub(crate) fn encode(opcode: OpCode, payload: &[u8], topic: Option<Arc<str>>) -> Frame {
        let (header, len) = frame::server_header(opcode, payload.len());
        let mut bytes = Vec::with_capacity(len + payload.len());
        bytes.extend_from_slice(&header[..len]);
        bytes.extend_from_slice(payload);
        Frame(Arc::new(FrameData {
            topic,
            bytes: bytes.into_boxed_slice(),
        }))
    }

    /// The frame as it goes on the wire.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    pub(crate) fn topic(&self) -> Option<&Arc<str>> {
        self.0.topic.as_ref()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("len", &self.0.bytes.len())
            .field("topic", &self.0.topic)
            .finish()
    }
}

/// Everything waiting to be written to one client, and the client's socket.
///
/// Data frames queue in a bounded channel. They leave it only to be
/// written, by whoever holds [`Wire`]:
/// - the hub's flusher, for published frames: it visits each client with
///   frames queued and writes them without blocking, many clients per
///   wake-up, so a publish costs no thread switch per client (and so does
///   a publisher that finds the queue full, before it applies the policy);
/// - the client's own writer thread, which may block (up to the write
///   timeout): for what the socket would not take at once, for a handler's
///   sends, and for control frames.
///
/// Control frames owed by the reader (pong, close) and the newest frame of
/// [`Policy::KeepLatest`] topics wait in [`Pending`], coalesced, so they are
/// bounded too and never stuck behind a full queue; `rung` tells the writer
/// to look at them.
///
/// The writer sleeps in `thread::park`; whoever needs it unparks it. A
/// wake-up is one futex call, where crossbeam's blocking `recv` spins and
/// yields first, which with hundreds of writers on one core costs more
/// than the writes.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: Sender<Frame>,
    pub(crate) rx: Receiver<Frame>,
    /// The client's socket; `None` in unit tests.
    stream: Option<Arc<TcpStream>>,
    /// The writer thread, once it runs.
    writer: OnceLock<Thread>,
    /// Whether [`Pending`] may hold work for the writer.
    rung: AtomicBool,
    /// Whether the client is in the flusher's list.
    dirty: AtomicBool,
    wire: Mutex<Wire>,
    /// Whether the writer thread holds [`Wire`], or waits for it.
    writer_active: AtomicBool,
    /// Whether the socket is non-blocking. The flusher writes without
    /// blocking and leaves it so; the connection thread's reads and the
    /// writer thread's writes block, and switch it back when they find it
    /// non-blocking. A subscriber that only listens thus costs no mode
    /// switch per write. Switched under this lock only.
    nonblocking: Mutex<bool>,
    /// How many switches began or ended: odd while one is under way. A read
    /// that fails with `WouldBlock` while this stayed even and the socket
    /// blocking timed out; otherwise it met the flusher's mode, and is
    /// tried again. See [`read`](Self::read).
    switches: AtomicU64,
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    closing: AtomicBool,
    pending: Mutex<Pending>,
    /// Signalled when frames are taken and a handler waits for room
    /// (`waiting` of them).
    space: Condvar,
    waiting: AtomicUsize,
    /// How many of the queued frames a handler sent (not published): under
    /// [`Policy::DropOldest`] those are never dropped.
    direct: AtomicUsize,
}

/// The right to write to the client's socket, and what a write left over.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    /// Frames the socket did not take, in order; `offset` bytes of the
    /// first are out. They go before anything else.
    pub(crate) unsent: Vec<Frame>,
    pub(crate) offset: usize,
    /// A write of the flusher's failed: the writer thread ends the
    /// connection with this error (the kernel reports a reset only once).
    pub(crate) failed: Option<io::Error>,
}

/// What waits beside the queue; the writer takes it all at each wake-up.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The latest ping payload to answer (older ones are superseded).
    pub(crate) pong: Option<Vec<u8>>,
    /// A close frame to send: code (none for an empty close) and reason.
    pub(crate) close: Option<(Option<CloseCode>, String)>,
    /// The newest frame per [`Policy::KeepLatest`] topic that found the
    /// queue full, or whose topic already had one waiting.
    pub(crate) latest: Vec<Frame>,
    /// The reader is finished: no more replies will be owed.
    pub(crate) reader_done: bool,
    /// The topics this client subscribes to.
    pub(crate) topics: Vec<Arc<str>>,
}

/// What became of a frame offered to a client.
enum Offer {
    Queued,
    Superseded,
    DroppedOldest,
    Disconnect,
    Closed,
}

/// What the flusher did with one client.
enum Flushed {
    /// Nothing left for the flusher, or the writer has it.
    Done,
    /// Frames remain queued: visit again.
    More,
}

impl Outbox {
    pub(crate) fn new(
        max_messages: usize,
        max_bytes: usize,
        stream: Option<Arc<TcpStream>>,
    ) -> Outbox {
        let (tx, rx) = crossbeam_channel::bounded(max_messages.max(1));
        Outbox {
            tx,
            rx,
            stream,
            writer: OnceLock::new(),
            rung: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            wire: Mutex::default(),
            writer_active: AtomicBool::new(false),
            nonblocking: Mutex::new(false),
            switches: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
            closing: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            space: Condvar::new(),
            waiting: AtomicUsize::new(0),
            direct: AtomicUsize::new(0),
        }
    }

    pub(crate) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The right to write to the socket, for the writer thread, which may
    /// block holding it; [`release_wire`](Self::release_wire) when done.
    pub(crate) fn wire(&self) -> MutexGuard<'_, Wire> {
        // Set first, so that whoever finds the wire taken knows it may wait
        // long.
        self.writer_active.store(true, Ordering::Release);
        self.wire.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives the wire back after [`wire`](Self::wire).
    pub(crate) fn release_wire(&self, wire: MutexGuard<'_, Wire>) {
        drop(wire);
        self.writer_active.store(false, Ordering::Release);
    }

    /// Tells the writer to look at [`Pending`].
    pub(crate) fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        self.wake();
    }

    /// Whether [`ring`](Self::ring) was called since the last call; the
    /// writer calls it before it looks at [`Pending`].
    pub(crate) fn take_rung(&self) -> bool {
        self.rung.swap(false, Ordering::AcqRel)
    }

    /// Makes the calling thread the one [`park`](Self::park) parks.
    pub(crate) fn attach_writer(&self) {
        let _ = self.writer.set(thread::current());
    }

    /// Unparks the writer. Cheap when it is awake: the token makes its next
    /// park return at once, so no wake-up is lost between its last look for
    /// work and its park.
    pub(crate) fn wake(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    /// The writer waits at most `timeout` for work, or until woken.
    pub(crate) fn park(&self, timeout: Duration) {
        if !self.rung.load(Ordering::Acquire) && self.rx.is_empty() {
            thread::park_timeout(timeout);
        }
    }

    /// The next frame in the queue, without waiting.
    pub(crate) fn try_take(&self) -> Option<Frame> {
        let frame = self.rx.try_recv().ok()?;
        self.queued_bytes
            .fetch_sub(frame.bytes().len(), Ordering::SeqCst);
        if frame.topic().is_none() {
            self.direct.fetch_sub(1, Ordering::AcqRel);
        }
        Some(frame)
    }

    /// Whether a close frame has been queued: nothing more is accepted.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    fn has_room_for(&self, frame: &Frame) -> bool {
        self.queued_bytes.load(Ordering::Relaxed) + frame.bytes().len() <= self.max_bytes
    }

    fn try_queue(&self, frame: Frame) -> Result<(), Frame> {
        if !self.has_room_for(&frame) {
            return Err(frame);
        }
        self.try_push(frame)
    }

    /// Queues if a message slot is free, whatever the bytes queued.
    fn try_push(&self, frame: Frame) -> Result<(), Frame> {
        let len = frame.bytes().len();
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(frame) | TrySendError::Disconnected(frame)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                Err(frame)
            }
        }
    }

    /// Queues a message for this client alone, waiting while the queue is
    /// full, in messages or in bytes (a message larger than the byte bound
    /// waits for an empty queue): a handler that sends faster than its
    /// client reads is slowed down, not buffered without bound. Gives up
    /// after `timeout`. The writer thread sends it.
    pub(crate) fn send(&self, frame: Frame, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let len = frame.bytes().len();
        let mut frame = Some(frame);
        // Counted from before the first look for room, so that a frame
        // taken meanwhile notifies: no wake-up is lost. Under the lock, which
        // a drop-oldest publisher holds to evict, so it never evicts ours.
        let mut pending = self.pending();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let queued = loop {
            if self.is_closing() {
                break false;
            }
            let queued = self.queued_bytes.load(Ordering::SeqCst);
            if queued == 0 || queued + len <= self.max_bytes {
                self.direct.fetch_add(1, Ordering::AcqRel);
                match self.try_push(frame.take().expect("not queued yet")) {
                    Ok(()) => break true,
                    Err(back) => {
                        self.direct.fetch_sub(1, Ordering::AcqRel);
                        frame = Some(back);
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            pending = self
                .space
                .wait_timeout(pending, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        drop(pending);
        if queued {
            self.wake();
        }
        queued
    }

    /// Wakes handlers waiting in [`send`](Self::send) for room; called after
    /// taking frames, with no lock held.
    pub(crate) fn notify_space(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders this after a waiter's check.
            drop(self.pending());
            self.space.notify_all();
        }
    }

    /// Queues our close frame (at most once); returns whether one had
    /// already been queued.
    pub(crate) fn close(&self, code: Option<CloseCode>, reason: &str) -> bool {
        let mut pending = self.pending();
        if self.closing.swap(true, Ordering::AcqRel) {
            return true;
        }
        pending.close = Some((code, reason.to_owned()));
        drop(pending);
        self.ring();
        self.space.notify_all();
        false
    }

    /// Queues a pong, replacing one not yet sent.
    pub(crate) fn pong(&self, payload: &[u8]) {
        if self.is_closing() {
            return;
        }
        self.pending().pong = Some(payload.to_vec());
        self.ring();
    }

    /// Reads from the client's socket (the connection thread's reads),
    /// blocking.
    ///
    /// A read that finds the socket left non-blocking by the flusher fails
    /// with `WouldBlock` at once: it switches the socket back and is tried
    /// again. `WouldBlock` in blocking mode is a read timeout, and is
    /// returned.
    pub(crate) fn read(&self, stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let switches = self.switches.load(Ordering::SeqCst);
            match (&*stream).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut nonblocking = self.nonblocking();
                    let switched =
                        switches % 2 == 1 || self.switches.load(Ordering::SeqCst) != switches;
                    if !*nonblocking && !switched {
                        return Err(e);
                    }
                    self.switch(stream, &mut nonblocking, false)?;
                }
                result => return result,
            }
        }
    }

    /// Makes the socket blocking, for the writer thread's writes.
    pub(crate) fn block(&self, stream: &TcpStream) -> io::Result<()> {
        self.switch(stream, &mut self.nonblocking(), false)
    }

    fn nonblocking(&self) -> MutexGuard<'_, bool> {
        self.nonblocking.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts the socket in the mode asked for, unless it is in it; with
    /// [`nonblocking`](Self::nonblocking) held.
    fn switch(&self, stream: &TcpStream, current: &mut bool, nonblocking: bool) -> io::Result<()> {
        if *current == nonblocking {
            return Ok(());
        }
        self.switches.fetch_add(1, Ordering::SeqCst);
        let result = stream.set_nonblocking(nonblocking);
        if result.is_ok() {
            *current = nonblocking;
        }
        self.switches.fetch_add(1, Ordering::SeqCst);
        result
    }

    /// The flusher's visit: writes queued frames without blocking. What the
    /// socket does not take, and anything that may need to wait, is left to
    /// the writer thread.
    fn flush(&self, frames: &mut Vec<Frame>, delivered: &AtomicU64) -> Flushed {
        let Some(stream) = &self.stream else {
            self.wake();
            return Flushed::Done;
        };
        // The flusher and publishers hold the wire only for a non-blocking
        // write: wait for them. The writer thread may block: leave it the
        // queue, which it looks at again after its write.
        let mut wire = loop {
            match self.wire.try_lock() {
                Ok(wire) => break wire,
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) if self.writer_active.load(Ordering::Acquire) => {
                    self.wake();
                    return Flushed::Done;
                }
                Err(TryLockError::WouldBlock) => thread::yield_now(),
            }
        };
        if !wire.unsent.is_empty() || self.is_closing() {
            drop(wire);
            self.wake();
            return Flushed::Done;
        }
        while frames.len() < FLUSH_BATCH {
            match self.try_take() {
                Some(frame) => frames.push(frame),
                None => break,
            }
        }
        if frames.is_empty() {
            return Flushed::Done;
        }
        let mut slices = [IoSlice::new(&[]); FLUSH_BATCH];
        for (slice, frame) in slices.iter_mut().zip(frames.iter()) {
            *slice = IoSlice::new(frame.bytes());
        }
        let (written, failed) = self.write_now(stream, &mut slices[..frames.len()]);
        // Count and drop the frames that went out whole; keep the rest.
        let mut left = written;
        let whole = frames
            .iter()
            .take_while(|f| {
                let fits = f.bytes().len() <= left;
                if fits {
                    left -= f.bytes().len();
                }
                fits
            })
            .count();
        let published = frames[..whole]
            .iter()
            .filter(|f| f.topic().is_some())
            .count();
        if published > 0 {
            delivered.fetch_add(published as u64, Ordering::Relaxed);
        }
        frames.drain(..whole);
        let result = if frames.is_empty() {
            match self.rx.is_empty() {
                true => Flushed::Done,
                false => Flushed::More,
            }
        } else {
            // The socket is full (or failed): the writer thread takes over,
            // blocking, and fails the connection if it must.
            wire.unsent.append(frames);
            wire.offset = left;
            wire.failed = failed;
            drop(wire);
            self.wake();
            Flushed::Done
        };
        self.notify_space();
        result
    }

    /// Writes what the socket takes now: how many bytes, and the error that
    /// stopped it, for the writer thread to end the connection with.
    fn write_now(
        &self,
        stream: &TcpStream,
        mut slices: &mut [IoSlice<'_>],
    ) -> (usize, Option<io::Error>) {
        // Held while writing, so that no thread makes the socket block
        // under the flusher's write. It stays non-blocking after.
        let mut nonblocking = self.nonblocking();
        if self.switch(stream, &mut nonblocking, true).is_err() {
            // The writer thread writes it, blocking.
            return (0, None);
        }
        let mut written = 0;
        while !slices.is_empty() {
            match (&*stream).write_vectored(slices) {
                Ok(0) => break,
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut slices, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return (written, Some(e)),
            }
        }
        (written, None)
    }

    /// Offers a published frame under `policy`.
    ///
    /// A full queue may only mean the flusher is behind: the frames are
    /// first written without blocking, here, and the policy applies only if
    /// the socket would not take them (the client is slow) or the writer
    /// thread has them.
    fn offer(&self, frame: &Frame, policy: Policy, delivered: &AtomicU64) -> Offer {
        if self.is_closing() {
            return Offer::Closed;
        }
        let try_queue = |frame: Frame| {
            self.try_queue(frame).or_else(|frame| {
                if self.rx.is_full() {
                    self.flush(&mut Vec::with_capacity(FLUSH_BATCH), delivered);
                }
                self.try_queue(frame)
            })
        };
        match policy {
            Policy::Disconnect => match try_queue(frame.clone()) {
                Ok(()) => Offer::Queued,
                Err(_) => {
                    self.close(Some(CloseCode::TRY_AGAIN_LATER), "client too slow");
                    // What is queued will not be sent: free it now.
                    while self.try_take().is_some() {}
                    Offer::Disconnect
                }
            },
            Policy::DropOldest => {
                let Err(mut frame) = try_queue(frame.clone()) else {
                    return Offer::Queued;
                };
                // Handlers queue under this lock: while it is held, a queue
                // with none of their frames in it gets none.
                let _queuing = self.pending();
                if self.direct.load(Ordering::Acquire) > 0
                    || self.waiting.load(Ordering::SeqCst) > 0
                {
                    // The handler's messages go first, and are never
                    // dropped: drop this one instead of the oldest.
                    return Offer::DroppedOldest;
                }
                let mut dropped = false;
                loop {
                    match self.try_take() {
                        Some(_) => dropped = true,
                        // Emptied by the writer meanwhile, or larger than
                        // the whole queue: drop the new one.
                        None if self.rx.is_empty() && !self.has_room_for(&frame) => {
                            return Offer::DroppedOldest
                        }
                        None => {}
                    }
                    match self.try_queue(frame) {
                        Ok(()) => break,
                        Err(back) => frame = back,
                    }
                }
                if dropped {
                    Offer::DroppedOldest
                } else {
                    Offer::Queued
                }
            }
            Policy::KeepLatest => {
                // Under the lock, so the writer cannot take the slots between
                // a full queue and the slot being filled.
                let mut pending = self.pending();
                let topic = frame.topic();
                if let Some(slot) = pending.latest.iter_mut().find(|f| f.topic() == topic) {
                    *slot = frame.clone();
                    return Offer::Superseded;
                }
                if let Err(frame) = self.try_queue(frame.clone()) {
                    pending.latest.push(frame);
                    drop(pending);
                    self.ring();
                }
                Offer::Queued
            }
        }
    }
}

/// Publishes messages to topics; every client subscribed to a topic receives
/// each message published to it, in order (under [`Policy::Disconnect`]
/// and [`Policy::DropOldest`] with room in its queue).
///
/// Cheap to clone: all clones are the same hub. Get it from
/// [`Server::hub`](crate::Server::hub).
///
/// ```no_run
/// use boardcast::{Config, Server, hub::Policy};
///
/// # fn main() -> std::io::Result<()> {
/// let server = Server::bind("0.0.0.0:8080", Config::default())?;
/// let hub = server.hub();
/// hub.set_policy("temperature", Policy::KeepLatest);
/// std::thread::spawn(move || loop {
///     hub.publish_text("temperature", r#"{"celsius":41.2}"#);
///     std::thread::sleep(std::time::Duration::from_millis(100));
/// });
/// server.run(|mut client| {
///     client.subscribe("temperature");
///     while let Ok(Some(_)) = client.recv() {}
/// })
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    default_policy: Policy,
    topics: RwLock<HashMap<Arc<str>, Topic>>,
    counters: Arc<Counters>,
    /// The flusher, started by the first publish (`None` if it could not
    /// be).
    flusher: OnceLock<Option<Flusher>>,
}

/// The flusher thread's list of clients with published frames queued, and
/// its handle.
#[derive(Debug)]
struct Flusher {
    list: Sender<Visit>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

/// An entry in the flusher's list; `None` stops it.
type Visit = Option<Arc<Outbox>>;

/// Frames the flusher writes to one client per visit: one `writev`.
const FLUSH_BATCH: usize = 64;

impl Drop for HubInner {
    fn drop(&mut self) {
        if let Some(Some(flusher)) = self.flusher.get() {
            let _ = flusher.list.send(None);
        }
    }
}

/// The flusher thread: visits the clients in its list in turn, and writes
/// each one's queued frames in one non-blocking `writev`. While it works
/// through the list, more frames queue, so under load each visit carries
/// more of them: the cost per message falls as the load grows.
fn flush(list: &Receiver<Visit>, again: &Sender<Visit>, counters: &Counters) {
    let mut frames = Vec::with_capacity(FLUSH_BATCH);
    while let Ok(Some(outbox)) = list.recv() {
        // A swap, not a store: it reads the publisher's mark, so the frames
        // queued before it are seen.
        outbox.dirty.swap(false, Ordering::SeqCst);
        if let Flushed::More = outbox.flush(&mut frames, &counters.delivered) {
            if !outbox.dirty.swap(true, Ordering::SeqCst) {
                let _ = again.send(Some(outbox));
            }
        }
    }
}

#[derive(Debug, Default)]
struct Topic {
    policy: Option<Policy>,
    subscribers: Vec<Arc<Outbox>>,
}

impl Hub {
    pub(crate) fn new(default_policy: Policy, counters: Arc<Counters>) -> Hub {
        Hub {
            inner: Arc::new(HubInner {
                default_policy,
                topics: RwLock::new(HashMap::new()),
                counters,
                flusher: OnceLock::new(),
            }),
        }
    }

    /// The flusher's list, starting the flusher on first use.
    fn flusher(&self) -> Option<&Sender<Visit>> {
        let flusher = self.inner.flusher.get_or_init(|| {
            let (tx, rx) = crossbeam_channel::unbounded();
            let again = tx.clone();
            let counters = Arc::clone(&self.inner.counters);
            thread::Builder::new()
                .name("boardcast-flush".into())
                .stack_size(64 * 1024)
                .spawn(move || flush(&rx, &again, &counters))
                .map_err(|e| log::warn!("cannot start the hub's flusher: {e}"))
                .ok()
                .map(|thread| Flusher {
                    list: tx,
                    thread: Mutex::new(Some(thread)),
                })
        });
        flusher.as_ref().map(|f| &f.list)
    }

    /// Stops the flusher and waits for it to end, when the server stops:
    /// the hub may outlive it, but should not keep a thread for it. Clients
    /// left over are written by their own writer threads.
    pub(crate) fn stop_flusher(&self) {
        if let Some(Some(flusher)) = self.inner.flusher.get() {
            let _ = flusher.list.send(None);
            let thread = flusher
                .thread
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
    }

    /// Puts a client with frames queued on the flusher's list, once; without
    /// a flusher its writer thread writes them.
    fn schedule(outbox: &Arc<Outbox>, flusher: Option<&Sender<Visit>>) {
        if outbox.dirty.swap(true, Ordering::SeqCst) {
            return;
        }
        if flusher.is_none_or(|f| f.send(Some(Arc::clone(outbox))).is_err()) {
            outbox.dirty.store(false, Ordering::SeqCst);
            outbox.wake();
        }
    }

    fn topics_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Topic>> {
        self.inner.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn topics_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, Topic>> {
        self.inner.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the slow-consumer policy of one topic, overriding the hub's
    /// default ([`Config::policy`](crate::Config#structfield.policy)).
    pub fn set_policy(&self, topic: &str, policy: Policy) {
        let mut topics = self.topics_write();
        match topics.get_mut(topic) {
            Some(t) => t.policy = Some(policy),
            None => {
                let topic_name: Arc<str> = topic.into();
                topics.insert(
                    topic_name,
                    Topic {
                        policy: Some(policy),
                        subscribers: Vec::new(),
                    },
                );
            }
        }
    }

    /// Publishes a text or binary message to every subscriber of `topic`,
    /// and returns how many it was queued for (ping, pong and close
    /// messages are not published: 0).
    ///
    /// Never blocks on a client: the frame is encoded once and offered to
    /// each client's queue under the topic's [`Policy`].
    pub fn publish(&self, topic: &str, message: &Message) -> usize {
        match message {
            Message::Text(text) => self.publish_frame(topic, OpCode::Text, text.as_bytes()),
            Message::Binary(data) => self.publish_frame(topic, OpCode::Binary, data),
            _ => 0,
        }
    }

    /// Publishes a text message; see [`publish`](Self::publish).
    pub fn publish_text(&self, topic: &str, text: &str) -> usize {
        self.publish_frame(topic, OpCode::Text, text.as_bytes())
    }

    /// Publishes a binary message; see [`publish`](Self::publish).
    pub fn publish_binary(&self, topic: &str, data: &[u8]) -> usize {
        self.publish_frame(topic, OpCode::Binary, data)
    }

    fn publish_frame(&self, topic: &str, opcode: OpCode, payload: &[u8]) -> usize {
        let counters = &self.inner.counters;
        bump(&counters.published);
        let topics = self.topics_read();
        let Some((name, entry)) = topics.get_key_value(topic) else {
            return 0;
        };
        if entry.subscribers.is_empty() {
            return 0;
        }
        let frame = Frame::encode(opcode, payload, Some(Arc::clone(name)));
        let policy = entry.policy.unwrap_or(self.inner.default_policy);
        let flusher = self.flusher();
        let mut queued = 0;
        for outbox in &entry.subscribers {
            match outbox.offer(&frame, policy, &counters.delivered) {
                Offer::Queued => {
                    queued += 1;
                    Self::schedule(outbox, flusher);
                }
                Offer::Superseded => {
                    queued += 1;
                    bump(&counters.dropped_superseded);
                }
                Offer::DroppedOldest => {
                    queued += 1;
                    bump(&counters.dropped_oldest);
                    Self::schedule(outbox, flusher);
                }
                Offer::Disconnect => {
                    log::info!("disconnecting a client too slow for topic {topic:?}");
                    bump(&counters.disconnected_slow);
                }
                Offer::Closed => {}
            }
        }
        queued
    }

    /// The number of clients subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.topics_read()
            .get(topic)
            .map_or(0, |t| t.subscribers.len())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Subscribes a client's outbox; returns false if it already was.
    pub(crate) fn subscribe(&self, topic: &str, outbox: &Arc<Outbox>) -> bool {
        let mut topics = self.topics_write();
        let name: Arc<str> = match topics.get_key_value(topic) {
            Some((name, _)) => Arc::clone(name),
            None => topic.into(),
        };
        let entry = topics.entry(Arc::clone(&name)).or_default();
        if entry.subscribers.iter().any(|o| Arc::ptr_eq(o, outbox)) {
            return false;
        }
        entry.subscribers.push(Arc::clone(outbox));
        outbox.pending().topics.push(name);
        self.inner
            .counters
            .subscriptions
            .fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Unsubscribes a client's outbox; returns false if it was not.
    pub(crate) fn unsubscribe(&self, topic: &str, outbox: &Arc<Outbox>) -> bool {
        let mut topics = self.topics_write();
        let Some(entry) = topics.get_mut(topic) else {
            return false;
        };
        let Some(at) = entry
            .subscribers
            .iter()
            .position(|o| Arc::ptr_eq(o, outbox))
        else {
            return false;
        };
        entry.subscribers.swap_remove(at);
        if entry.subscribers.is_empty() && entry.policy.is_none() {
            topics.remove(topic);
        }
        let mut pending = outbox.pending();
        pending.topics.retain(|t| &**t != topic);
        // A newest value still waiting must not arrive after this.
        pending
            .latest
            .retain(|f| f.topic().is_some_and(|t| &**t != topic));
        self.inner
            .counters
            .subscriptions
            .fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Removes a departing client from all its topics.
    pub(crate) fn unsubscribe_all(&self, outbox: &Arc<Outbox>) {
        let topics = std::mem::take(&mut outbox.pending().topics);
        for topic in topics {
            let _ = self.unsubscribe(&topic, outbox);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Frame {
        Frame::encode(OpCode::Binary, &vec![0; len], None)
    }

    #[test]
    fn handler_sends_are_bounded_in_bytes() {
        let outbox = Outbox::new(32, 1000, None);
        let short = Duration::from_millis(20);
        assert!(outbox.send(frame(400), short));
        assert!(outbox.send(frame(400), short));
        // 800 + 404 > 1000: no room, however many message slots are free.
        assert!(!outbox.send(frame(400), short));
        // Taking one frame makes room for a sender that waits.
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| outbox.send(frame(400), Duration::from_secs(10)));
            assert!(outbox.try_take().is_some());
            outbox.notify_space();
            // A wake-up that came before the waiter slept is not lost: it
            // checks for room under the lock first.
            assert!(waiter.join().unwrap());
        });
    }

    fn published(tag: u8) -> Frame {
        Frame::encode(OpCode::Binary, &[tag], Some(Arc::from("t")))
    }

    fn direct(tag: u8) -> Frame {
        Frame::encode(OpCode::Binary, &[tag], None)
    }

    /// The last payload byte of each queued frame, in order.
    fn drain(outbox: &Outbox) -> Vec<u8> {
        std::iter::from_fn(|| outbox.try_take())
            .map(|f| *f.bytes().last().unwrap())
            .collect()
    }

    #[test]
    fn drop_oldest_drops_published_messages_only() {
        let outbox = Outbox::new(4, 1 << 20, None);
        let delivered = AtomicU64::new(0);
        let offer = |tag| outbox.offer(&published(tag), Policy::DropOldest, &delivered);
        assert!(matches!(offer(1), Offer::Queued));
        assert!(outbox.send(direct(2), Duration::from_millis(20)));
        assert!(matches!(offer(3), Offer::Queued));
        assert!(matches!(offer(4), Offer::Queued));
        // Full, with the handler's message in it: the new one gives way.
        assert!(matches!(offer(5), Offer::DroppedOldest));
        assert_eq!(drain(&outbox), [1, 2, 3, 4]);
        // Full of published messages: the oldest gives way.
        for tag in 6..=9 {
            assert!(matches!(offer(tag), Offer::Queued));
        }
        assert!(matches!(offer(10), Offer::DroppedOldest));
        assert_eq!(drain(&outbox), [7, 8, 9, 10]);
    }

    #[test]
    fn drop_oldest_leaves_freed_room_to_a_waiting_handler() {
        let outbox = Outbox::new(2, 1 << 20, None);
        let delivered = AtomicU64::new(0);
        let offer = |tag| outbox.offer(&published(tag), Policy::DropOldest, &delivered);
        offer(1);
        offer(2);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| outbox.send(direct(100), Duration::from_secs(10)));
            let deadline = Instant::now() + Duration::from_secs(10);
            while outbox.waiting.load(Ordering::SeqCst) == 0 {
                assert!(Instant::now() < deadline, "the handler never waited");
                thread::yield_now();
            }
            // The publisher goes on while the handler waits: it does not
            // take the room it makes by evicting.
            for tag in 3..50 {
                assert!(matches!(offer(tag), Offer::DroppedOldest));
            }
            assert!(outbox.try_take().is_some());
            outbox.notify_space();
            assert!(waiter.join().unwrap(), "the handler's send timed out");
        });
        assert_eq!(drain(&outbox), [2, 100]);
    }

    #[test]
    fn a_message_larger_than_the_bound_waits_for_an_empty_queue() {
        let outbox = Outbox::new(32, 1000, None);
        let short = Duration::from_millis(20);
        assert!(outbox.send(frame(5000), short));
        assert!(!outbox.send(frame(10), short));
        assert!(outbox.try_take().is_some());
        assert!(outbox.send(frame(5000), short));
    }

    #[test]
    fn closing_releases_a_waiting_sender() {
        let outbox = Outbox::new(32, 100, None);
        assert!(outbox.send(frame(90), Duration::from_millis(20)));
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| outbox.send(frame(90), Duration::from_secs(60)));
            outbox.close(Some(CloseCode::NORMAL), "");
            assert!(!waiter.join().unwrap());
        });
    }
}
