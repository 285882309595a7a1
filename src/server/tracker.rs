//! The threads of a server, counted and joined.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// Counts running threads, so shutdown can wait for them all, and keeps
/// their handles, so it can join them: when [`Server::run`](super::Server::run) returns, its
/// threads have exited, not merely finished their work.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    count: Mutex<usize>,
    zero: Condvar,
    /// The threads not yet joined. Those that finished are joined at each
    /// spawn, so this holds about as many as are running.
    handles: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl Tracker {
    fn enter(self: &Arc<Self>) -> ThreadGuard {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        ThreadGuard(Arc::clone(self))
    }

    /// Spawns a thread that counts as running until `work` returns. Not
    /// inlined: a connection thread calls it, and its frame would stay
    /// below the handler's for the connection's life.
    #[inline(never)]
    pub(super) fn spawn<F>(
        self: &Arc<Self>,
        name: &str,
        stack_size: usize,
        work: F,
    ) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let guard = self.enter();
        let handle = thread::Builder::new()
            .name(name.into())
            .stack_size(stack_size)
            .spawn(move || {
                let _guard = guard;
                work();
            })?;
        let running = *self.count.lock().unwrap_or_else(|p| p.into_inner());
        let mut handles = self.handles();
        // Joining the finished threads now and then keeps the list about as
        // long as the running threads, at a constant cost per spawn.
        if handles.len() >= 2 * running + 32 {
            join_finished(&mut handles);
        }
        handles.push(handle);
        Ok(())
    }

    fn handles(&self) -> MutexGuard<'_, Vec<thread::JoinHandle<()>>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the threads that have finished; the others stay tracked.
    pub(super) fn join_finished(&self) {
        join_finished(&mut self.handles());
    }

    /// Joins every thread.
    pub(super) fn join_all(&self) {
        let handles = std::mem::take(&mut *self.handles());
        for handle in handles {
            let _ = handle.join();
        }
    }

    /// Waits until no thread runs, at most `timeout`; returns how many
    /// still do.
    pub(super) fn wait(&self, timeout: Duration) -> usize {
        let count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let (count, _) = self
            .zero
            .wait_timeout_while(count, timeout, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        *count
    }
}

/// Joins, in place, the threads of `handles` that have finished.
fn join_finished(handles: &mut Vec<thread::JoinHandle<()>>) {
    let mut i = 0;
    while i < handles.len() {
        if handles[i].is_finished() {
            let _ = handles.swap_remove(i).join();
        } else {
            i += 1;
        }
    }
}

struct ThreadGuard(Arc<Tracker>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(|p| p.into_inner());
        *count -= 1;
        if *count == 0 {
            self.0.zero.notify_all();
        }
    }
}
