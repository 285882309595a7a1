//! A small process-wide pool of compressors, so that a connection that
//! keeps no compression context holds none between messages, and a message
//! does not pay for a new one (zlib-rs zeroes a 128 KiB hash table for
//! each).

use std::fmt;
use std::sync::{Mutex, MutexGuard};

use zlib_rs::{Deflate, DeflateConfig};

/// The most idle compressors kept. A thread compressing a message holds
/// one; beyond this many idle at once, they are freed. Two cover a
/// server's usual case (its flusher and a handler); each is about
/// 140-260 KiB, depending on the window and `memLevel`.
const IDLE: usize = 2;

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

/// Idle compressors, each reset, with what they were made with.
pub(crate) struct Pool {
    idle: Mutex<Vec<(Key, Deflate)>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.lock().len())
            .finish()
    }
}

/// The pool every connection without server context takeover shares.
pub(crate) static DEFLATERS: Pool = Pool {
    idle: Mutex::new(Vec::new()),
};

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Vec<(Key, Deflate)>> {
        // A panic while holding the lock leaves the list whole.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle compressor made with `key`, or a new one.
    pub(crate) fn take(&self, key: Key) -> Deflate {
        let found = {
            let mut idle = self.lock();
            idle.iter()
                .rposition(|(k, _)| *k == key)
                .map(|i| idle.swap_remove(i).1)
        };
        found.unwrap_or_else(|| key.make())
    }

    /// Gives back a compressor taken with `key`, which must have been
    /// reset; it is freed if the pool is full.
    pub(crate) fn give(&self, key: Key, deflate: Deflate) {
        let mut idle = self.lock();
        if idle.len() < IDLE {
            idle.push((key, deflate));
        }
    }
}
