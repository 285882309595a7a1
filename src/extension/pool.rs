//! Small process-wide pools of compressors and decompressors, so that a
//! connection that keeps no compression context holds none between
//! messages, and a message does not pay for a new one: zlib-rs zeroes a
//! 128 KiB hash table for each compressor, and allocates each compressor
//! and decompressor as one block aligned to 64 bytes.
//!
//! Reuse matters for memory as much as for time. glibc (before 2.38)
//! hardly ever reuses a freed block for an aligned allocation
//! (`posix_memalign`), so a burst in which hundreds of connections each
//! made and freed a decompressor (42 KiB) left about 22 KiB per connection
//! resident, and the next burst as much again, up to about 150 KiB per
//! connection (measured with 200 Python clients, each echoing 16 KiB
//! messages: BENCHMARKS.md). From the pool, a burst makes only as many as
//! are in use at once.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use zlib_rs::{Deflate, DeflateConfig, Inflate};

/// How many compressors, and how many decompressors, a process holds at
/// most outside the connections that keep a context: 4, the cores of the
/// larger boards (more at once would not compress faster). A thread that
/// needs one while all are in use waits for one (they are held only while
/// a message is compressed or restored, never while waiting for
/// anything), so a burst of many connections reuses the same few instead
/// of making one each. A compressor is about 140-260 KiB, depending on
/// the window and `memLevel`; a decompressor 42 KiB. (A fixed number: the
/// core names no threads, so it does not ask how many cores there are.)
const LIMIT: usize = 4;

fn limit() -> usize {
    LIMIT
}

/// The LZ77 window a decompressor is made with: the largest, because
/// zlib-rs allocates a 32 KiB window whatever it is told, and a reset
/// decompressor takes this one. A client that agreed to a smaller
/// `client_max_window_bits` and refers further back is not caught: what
/// it sends still decodes within the message limit.
pub(crate) const INFLATE_WINDOW_BITS: u8 = 15;

/// What a compressor was made with: only an idle one made alike is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) level: i32,
    pub(crate) window_bits: u8,
    pub(crate) mem_level: u8,
}

impl Key {
    /// A new compressor of raw deflate (no zlib header, RFC 7692 §7.2.1).
    pub(crate) fn make(self) -> Deflate {
        Deflate::new_with_config(DeflateConfig {
            level: self.level,
            window_bits: -i32::from(self.window_bits.clamp(9, 15)),
            mem_level: i32::from(self.mem_level.clamp(1, 9)),
            ..DeflateConfig::default()
        })
    }
}

/// Codecs, each idle and reset or out with a thread, at most
/// [`limit`] of them.
pub(crate) struct Pool<K, T> {
    state: Mutex<State<K, T>>,
    returned: Condvar,
    reset: fn(&mut T),
}

struct State<K, T> {
    idle: Vec<(K, T)>,
    out: usize,
}

impl<K: Copy + PartialEq, T> fmt::Debug for Pool<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Pool")
            .field("idle", &state.idle.len())
            .field("out", &state.out)
            .finish()
    }
}

/// The compressors every connection without server context takeover
/// shares, and the published messages compressed once.
pub(crate) static DEFLATERS: Pool<Key, Deflate> = Pool::new(Deflate::reset);

/// The decompressors of raw deflate with a 32 KiB window: every
/// connection's, between the messages that do not keep one.
pub(crate) static INFLATERS: Pool<(), Inflate> = Pool::new(|inflate| inflate.reset(false));

impl<K: Copy + PartialEq, T> Pool<K, T> {
    const fn new(reset: fn(&mut T)) -> Self {
        Pool {
            state: Mutex::new(State {
                idle: Vec::new(),
                out: 0,
            }),
            returned: Condvar::new(),
            reset,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K, T>> {
        // A panic while holding the lock leaves the state whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle codec made with `key`, or a new one from `make`, once
    /// fewer than [`limit`] are out; back in the pool, reset, when the
    /// guard drops.
    pub(crate) fn take(&self, key: K, make: impl FnOnce(K) -> T) -> Taken<'_, K, T> {
        let limit = limit();
        let mut state = self.lock();
        while state.out >= limit {
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.out += 1;
        let found = state
            .idle
            .iter()
            .rposition(|(k, _)| *k == key)
            .map(|i| state.idle.swap_remove(i).1);
        // Room for a new one: an idle one made otherwise goes.
        let evicted = (found.is_none() && state.idle.len() + state.out > limit)
            .then(|| state.idle.swap_remove(0));
        drop(state);
        drop(evicted);
        Taken {
            pool: self,
            key,
            codec: Some(found.unwrap_or_else(|| make(key))),
        }
    }
}

/// A codec out of a [`Pool`]: back in it, reset, when dropped.
pub(crate) struct Taken<'a, K: Copy + PartialEq, T> {
    pool: &'a Pool<K, T>,
    key: K,
    codec: Option<T>,
}

impl<K: Copy + PartialEq, T> Taken<'_, K, T> {
    /// The codec, kept by the caller (a connection that keeps its
    /// context): it no longer counts against the pool's limit.
    pub(crate) fn keep(mut self) -> T {
        let codec = self.codec.take().expect("a taken codec");
        let mut state = self.pool.lock();
        state.out -= 1;
        drop(state);
        self.pool.returned.notify_one();
        codec
    }
}

impl<K: Copy + PartialEq, T> Deref for Taken<'_, K, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.codec.as_ref().expect("a taken codec")
    }
}

impl<K: Copy + PartialEq, T> DerefMut for Taken<'_, K, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.codec.as_mut().expect("a taken codec")
    }
}

impl<K: Copy + PartialEq, T> Drop for Taken<'_, K, T> {
    fn drop(&mut self) {
        let Some(mut codec) = self.codec.take() else {
            return;
        };
        (self.pool.reset)(&mut codec);
        let mut state = self.pool.lock();
        state.out -= 1;
        // Reserved once: the list never reallocates.
        state.idle.reserve_exact(limit());
        state.idle.push((self.key, codec));
        drop(state);
        self.pool.returned.notify_one();
    }
}

/// A decompressor of raw deflate from the pool, reset.
pub(crate) fn take_inflate() -> Taken<'static, (), Inflate> {
    INFLATERS.take((), |()| Inflate::new(false, INFLATE_WINDOW_BITS))
}
