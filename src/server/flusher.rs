//! The flusher: one thread per server that writes published frames to
//! their clients without blocking, many clients per wake-up, so a publish
//! costs no thread switch per client. What a socket will not take at once
//! is left to the client's own writer thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use crossbeam_channel::{Receiver, Sender};

use crate::hub::Encoded;

/// Frames the flusher writes to one client per visit: one `writev`.
pub(crate) const FLUSH_BATCH: usize = 64;

/// A client the flusher visits (a WebSocket client's outbox).
pub(crate) trait Flush: Send + Sync {
    /// Whether the client is on the flusher's list, so it is listed once.
    fn listed(&self) -> &AtomicBool;

    /// Writes what the client's socket takes now, at most [`FLUSH_BATCH`]
    /// frames, with `scratch` to hold them; returns whether frames remain
    /// for another visit.
    fn flush(&self, scratch: &mut Vec<Encoded>) -> bool;
}

/// An entry in the flusher's list; `None` stops it.
type Visit = Option<Arc<dyn Flush>>;

/// The flusher thread's list of clients with published frames queued, and
/// its handle. The thread starts with the first client listed.
#[derive(Debug, Default)]
pub(crate) struct Flusher {
    /// `None` if the thread could not be started.
    running: OnceLock<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    list: Sender<Visit>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Flusher {
    /// Puts `client` on the list; returns false if there is no flusher to
    /// write it (its writer thread must).
    pub(crate) fn list(&self, client: Arc<dyn Flush>) -> bool {
        self.running()
            .is_some_and(|running| running.list.send(Some(client)).is_ok())
    }

    fn running(&self) -> Option<&Running> {
        self.running
            .get_or_init(|| {
                let (tx, rx) = crossbeam_channel::unbounded();
                let again = tx.clone();
                thread::Builder::new()
                    .name("boardcast-flush".into())
                    .stack_size(64 * 1024)
                    .spawn(move || flush(&rx, &again))
                    .map_err(|e| log::warn!("cannot start the flusher: {e}"))
                    .ok()
                    .map(|thread| Running {
                        list: tx,
                        thread: Mutex::new(Some(thread)),
                    })
            })
            .as_ref()
    }

    /// Stops the thread and waits for it to end, when the server stops.
    /// Clients left over are written by their own writer threads.
    pub(crate) fn stop(&self) {
        if let Some(Some(running)) = self.running.get() {
            let _ = running.list.send(None);
            let thread = running
                .thread
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        if let Some(Some(running)) = self.running.get() {
            let _ = running.list.send(None);
        }
    }
}

/// The flusher thread: visits the clients in its list in turn, and writes
/// each one's queued frames in one non-blocking `writev`. While it works
/// through the list, more frames queue, so under load each visit carries
/// more of them: the cost per message falls as the load grows.
fn flush(list: &Receiver<Visit>, again: &Sender<Visit>) {
    let mut frames = Vec::with_capacity(FLUSH_BATCH);
    while let Ok(Some(client)) = list.recv() {
        // A swap, not a store: it reads the publisher's mark, so the frames
        // queued before it are seen.
        client.listed().swap(false, Ordering::SeqCst);
        if client.flush(&mut frames) && !client.listed().swap(true, Ordering::SeqCst) {
            let _ = again.send(Some(client));
        }
    }
}
