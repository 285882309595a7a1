//! A WebSocket client's outbox: everything waiting to be written to it, its
//! socket, and its side of the hub ([`Subscriber`]).
//!
//! A full queue is first written out by the publisher itself, without
//! blocking; only if the socket would not take it (the client is not
//! reading) does the topic's [`Policy`](crate::hub::Policy) decide what gives.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, TryLockError, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::error::Error;
use crate::frame::Frame;
use crate::hub::{bump_by, Counters, Encoded, Form};
use crate::message::CloseCode;
use crate::protocol::{Outbound, Role};
use crate::server::flusher::{Flush, Flusher, FLUSH_BATCH};
use crate::server::framing::Framing;
use crate::socket::Socket;
use crate::wire::Notice;

/// Everything waiting to be written to one client, and the client's socket.
///
/// Data frames queue in a channel, bounded in messages and bytes for what
/// is published or sent (a replay the client asked for is queued whole,
/// outside the bounds). They leave it only to be written, by whoever holds
/// [`Wire`]:
/// - the server's flusher, for published frames: it visits each client with
///   frames queued and writes them without blocking, many clients per
///   wake-up, so a publish costs no thread switch per client (and so does
///   a publisher that finds the queue full, before it applies the policy);
/// - the client's own writer thread, which may block (up to the write
///   timeout): for what the socket would not take at once, for a handler's
///   sends, and for control frames.
///
/// Control frames owed by the reader (pong, close) and the newest frame of
/// [`Policy::KeepLatest`](crate::hub::Policy::KeepLatest) topics wait in [`Pending`], coalesced, so they are
/// bounded too and never stuck behind a full queue; `rung` tells the writer
/// to look at them.
///
/// The writer sleeps in `thread::park`; whoever needs it unparks it. A
/// wake-up is one futex call, where crossbeam's blocking `recv` spins and
/// yields first, which with hundreds of writers on one core costs more
/// than the writes.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// This outbox, for the flusher's list.
    me: Weak<Outbox>,
    tx: Sender<Queued>,
    pub(crate) rx: Receiver<Queued>,
    /// How the client's messages are written: as plain WebSocket frames
    /// (unset), or in a protocol of `wire` (the `boardcast.v1` envelope, SSE
    /// events); set once, before anything is queued.
    framing: OnceLock<Framing>,
    /// The form published messages are written in when it is not the
    /// framing's own: a compressed one, for a client that agreed to
    /// permessage-deflate.
    form: OnceLock<Form>,
    /// The client's socket; `None` in unit tests.
    stream: Option<Arc<dyn Socket>>,
    /// The server's flusher; `None` in unit tests.
    flusher: Option<Arc<Flusher>>,
    counters: Arc<Counters>,
    /// The writer thread, once it runs.
    writer: OnceLock<Thread>,
    /// Who else waits for frames (a long-poll session's held request).
    waker: OnceLock<Arc<dyn Wake>>,
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
    /// The published and sent frames queued, in messages and bytes.
    queued: AtomicUsize,
    queued_bytes: AtomicUsize,
    /// The bytes queued outside the bounds (replays).
    unbounded_bytes: AtomicUsize,
    max_messages: usize,
    max_bytes: usize,
    /// The sending half of the protocol: whether our close was made, and
    /// the frames of the writer thread's pongs, pings and close.
    pub(crate) outbound: Outbound,
    pending: Mutex<Pending>,
    /// Signalled when frames are taken and a handler waits for room
    /// (`waiting` of them).
    space: Condvar,
    waiting: AtomicUsize,
    /// How many of the queued frames a handler sent (not published): under
    /// [`Policy::DropOldest`](crate::hub::Policy::DropOldest) those are never dropped.
    direct: AtomicUsize,
    /// The client is being cut as too slow: what is queued is dropped, not
    /// written, so that what it got is a prefix of what was queued (a
    /// resume after its last message then loses nothing).
    discarding: AtomicBool,
}

/// Something besides the writer thread that waits for an outbox's frames.
pub(crate) trait Wake: Send + Sync + std::fmt::Debug {
    /// Frames (or a close) are there.
    fn wake(&self);
}

/// A frame in the queue, and what it is.
#[derive(Debug)]
pub(crate) struct Queued {
    frame: Encoded,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Published to a topic.
    Published,
    /// Sent by the handler, to this client alone.
    Direct,
    /// Replayed, or the protocol's own lines: outside the queue's bounds,
    /// counted apart.
    Unbounded,
}

/// The right to write to the client's socket, and what a write left over.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    /// Frames the socket did not take, in order; `offset` bytes of the
    /// first are out. They go before anything else.
    pub(crate) unsent: Vec<Encoded>,
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
    /// Our close frame, to be sent after everything queued before it.
    pub(crate) close: Option<Frame<'static>>,
    /// The newest frame per [`Policy::KeepLatest`](crate::hub::Policy::KeepLatest) topic that found the
    /// queue full, or whose topic already had one waiting.
    pub(crate) latest: Vec<Encoded>,
    /// The reader is finished: no more replies will be owed.
    pub(crate) reader_done: bool,
}

/// What the flusher did with one client.
enum Flushed {
    /// Nothing left for the flusher, or the writer has it.
    Done,
    /// Frames remain queued: visit again.
    More,
}

impl Outbox {
    /// An outbox for the client on `stream`, whose published frames
    /// `flusher` writes (`None` for both in unit tests).
    pub(crate) fn new(
        max_messages: usize,
        max_bytes: usize,
        stream: Option<Arc<dyn Socket>>,
        flusher: Option<Arc<Flusher>>,
        counters: Arc<Counters>,
    ) -> Arc<Outbox> {
        let (tx, rx) = crossbeam_channel::unbounded();
        Arc::new_cyclic(|me| Outbox {
            me: Weak::clone(me),
            tx,
            rx,
            framing: OnceLock::new(),
            form: OnceLock::new(),
            stream,
            flusher,
            counters,
            writer: OnceLock::new(),
            waker: OnceLock::new(),
            rung: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            wire: Mutex::default(),
            writer_active: AtomicBool::new(false),
            nonblocking: Mutex::new(false),
            switches: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            unbounded_bytes: AtomicUsize::new(0),
            max_messages: max_messages.max(1),
            max_bytes,
            outbound: Outbound::new(Role::Server),
            pending: Mutex::new(Pending::default()),
            space: Condvar::new(),
            waiting: AtomicUsize::new(0),
            direct: AtomicUsize::new(0),
            discarding: AtomicBool::new(false),
        })
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
        if let Some(waker) = self.waker.get() {
            waker.wake();
        }
    }

    /// Makes [`wake`](Self::wake) also wake `waker`.
    pub(crate) fn set_waker(&self, waker: Arc<dyn Wake>) {
        let _ = self.waker.set(waker);
    }

    /// The writer waits at most `timeout` for work, or until woken.
    pub(crate) fn park(&self, timeout: Duration) {
        if !self.rung.load(Ordering::Acquire) && self.rx.is_empty() {
            thread::park_timeout(timeout);
        }
    }

    /// Writes the client's messages in `framing` from now on.
    pub(crate) fn set_framing(&self, framing: Framing) {
        let _ = self.framing.set(framing);
    }

    /// How the client's messages are written; `None`: plain WebSocket
    /// frames, no protocol.
    pub(crate) fn framing(&self) -> Option<Framing> {
        self.framing.get().copied()
    }

    /// Writes the client's published messages in `form` from now on,
    /// instead of its framing's.
    pub(crate) fn set_form(&self, form: Form) {
        let _ = self.form.set(form);
    }

    /// What goes on the wire for `frame`: its form for this client if it is
    /// a published message and the client has one, else the frame itself.
    pub(crate) fn bytes<'f>(&self, frame: &'f Encoded) -> &'f [u8] {
        let form = self.form.get().copied();
        match (
            form.or_else(|| self.framing().and_then(Framing::form)),
            frame.topic(),
        ) {
            (Some(form), Some(_)) => frame.form(form),
            _ => frame.frame(),
        }
    }

    /// `notice` as this client's protocol writes it; `None` for a plain
    /// WebSocket client, which has no protocol.
    pub(crate) fn notice(&self, notice: &Notice<'_>) -> Option<Encoded> {
        self.framing().map(|framing| framing.notice(notice))
    }

    /// The next frame in the queue, without waiting; `None` once the
    /// client is being cut as too slow.
    pub(crate) fn try_take(&self) -> Option<Encoded> {
        loop {
            let Queued { frame, kind } = self.rx.try_recv().ok()?;
            let len = self.bytes(&frame).len();
            if kind == Kind::Unbounded {
                self.unbounded_bytes.fetch_sub(len, Ordering::SeqCst);
            } else {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                self.queued_bytes.fetch_sub(len, Ordering::SeqCst);
            }
            if kind == Kind::Direct {
                self.direct.fetch_sub(1, Ordering::AcqRel);
            }
            // Frames taken before the flag was set are all older than those
            // taken after: writers still write a prefix of the queue.
            if !self.discarding.load(Ordering::SeqCst) {
                return Some(frame);
            }
        }
    }

    /// Whether the queue holds its most messages.
    fn is_full(&self) -> bool {
        self.queued.load(Ordering::SeqCst) >= self.max_messages
    }

    /// Whether a close frame has been queued: nothing more is accepted.
    pub(crate) fn is_closing(&self) -> bool {
        self.outbound.is_closing()
    }

    fn has_room_for(&self, frame: &Encoded) -> bool {
        self.queued_bytes.load(Ordering::Relaxed) + self.bytes(frame).len() <= self.max_bytes
    }

    fn try_queue(&self, frame: Encoded) -> Result<(), Encoded> {
        if !self.has_room_for(&frame) {
            return Err(frame);
        }
        self.try_push(frame, Kind::Published)
    }

    /// Queues if a message slot is free, whatever the bytes queued.
    fn try_push(&self, frame: Encoded, kind: Kind) -> Result<(), Encoded> {
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.max_messages {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(frame);
        }
        let len = self.bytes(&frame).len();
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if kind == Kind::Direct {
            self.direct.fetch_add(1, Ordering::AcqRel);
        }
        match self.tx.try_send(Queued { frame, kind }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(queued) | TrySendError::Disconnected(queued)) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                if kind == Kind::Direct {
                    self.direct.fetch_sub(1, Ordering::AcqRel);
                }
                Err(queued.frame)
            }
        }
    }

    /// Queues a message for this client alone, waiting while the queue is
    /// full, in messages or in bytes (a message larger than the byte bound
    /// waits for an empty queue): a handler that sends faster than its
    /// client reads is slowed down, not buffered without bound. Gives up
    /// after `timeout`. The writer thread sends it.
    pub(crate) fn send(&self, frame: Encoded, timeout: Duration) -> bool {
        let len = self.bytes(&frame).len();
        let mut frame = Some(frame);
        // Tried under the lock a drop-oldest publisher holds to evict, so it
        // never evicts ours.
        let queued = self.wait_for(timeout, || {
            let queued = self.queued_bytes.load(Ordering::SeqCst);
            if queued == 0 || queued + len <= self.max_bytes {
                match self.try_push(frame.take().expect("not queued yet"), Kind::Direct) {
                    Ok(()) => return true,
                    Err(back) => frame = Some(back),
                }
            }
            false
        });
        if queued {
            self.wake();
        }
        queued
    }

    /// Waits until `ready` (tried under the lock a drop-oldest publisher
    /// holds to evict, and again each time frames are taken) holds, at most
    /// `timeout`; false if it did not, or the client is closing.
    fn wait_for(&self, timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        // Counted from before the first try, so that a frame taken
        // meanwhile notifies: no wake-up is lost.
        let mut pending = self.pending();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let done = loop {
            if self.is_closing() {
                break false;
            }
            if ready() {
                break true;
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
        done
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

    /// Queues our close frame, after everything queued before it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if ours was already queued;
    /// [`Error::ControlTooLong`] for a reason over 123 bytes.
    pub(crate) fn close(&self, code: Option<CloseCode>, reason: &str) -> Result<(), Error> {
        let mut pending = self.pending();
        pending.close = Some(self.outbound.close(code, reason)?);
        drop(pending);
        self.ring();
        self.space.notify_all();
        Ok(())
    }

    /// Queues a pong, replacing one not yet sent; returns false (and
    /// queues nothing) once closing.
    pub(crate) fn pong(&self, payload: &[u8]) -> bool {
        if self.is_closing() {
            return false;
        }
        self.pending().pong = Some(payload.to_vec());
        self.ring();
        true
    }

    /// Reads from the client's socket (the connection thread's reads),
    /// blocking.
    ///
    /// A read that finds the socket left non-blocking by the flusher fails
    /// with `WouldBlock` at once: it switches the socket back and is tried
    /// again. `WouldBlock` in blocking mode is a read timeout, and is
    /// returned.
    pub(crate) fn read(&self, stream: &dyn Socket, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let switches = self.switches.load(Ordering::SeqCst);
            match stream.read(buf) {
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
    pub(crate) fn block(&self, stream: &dyn Socket) -> io::Result<()> {
        self.switch(stream, &mut self.nonblocking(), false)
    }

    fn nonblocking(&self) -> MutexGuard<'_, bool> {
        self.nonblocking.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts the socket in the mode asked for, unless it is in it; with
    /// [`nonblocking`](Self::nonblocking) held.
    fn switch(&self, stream: &dyn Socket, current: &mut bool, nonblocking: bool) -> io::Result<()> {
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
    fn flush_now(&self, frames: &mut Vec<Encoded>) -> Flushed {
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
            *slice = IoSlice::new(self.bytes(frame));
        }
        let (written, failed) = self.write_now(&**stream, &mut slices[..frames.len()]);
        // Count and drop the frames that went out whole; keep the rest.
        let mut left = written;
        let whole = frames
            .iter()
            .take_while(|f| {
                let len = self.bytes(f).len();
                let fits = len <= left;
                if fits {
                    left -= len;
                }
                fits
            })
            .count();
        let published = frames[..whole]
            .iter()
            .filter(|f| f.topic().is_some())
            .count();
        bump_by(&self.counters.delivered, published);
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
        stream: &dyn Socket,
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
            match stream.write_vectored(slices) {
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
}

impl Flush for Outbox {
    fn listed(&self) -> &AtomicBool {
        &self.dirty
    }

    fn flush(&self, scratch: &mut Vec<Encoded>) -> bool {
        matches!(self.flush_now(scratch), Flushed::More)
    }
}

impl Outbox {
    /// Puts the client on the flusher's list, once; without a flusher its
    /// writer thread writes the queue.
    fn schedule(&self) {
        if self.dirty.swap(true, Ordering::SeqCst) {
            return;
        }
        let listed = match (&self.flusher, self.me.upgrade()) {
            (Some(flusher), Some(me)) => flusher.list(me),
            _ => false,
        };
        if !listed {
            self.dirty.store(false, Ordering::SeqCst);
            self.wake();
        }
    }
}

mod policy;
#[cfg(test)]
mod tests;
