//! [`Stats`]: what the loop holds and has done.

/// A snapshot of the runtime's accounting, from [`Runtime::stats`](super::Runtime::stats).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Loop iterations run.
    pub ticks: u64,
    /// Watches registered with the OS.
    pub registered: usize,
    /// Watches waiting above the high watermark.
    pub queued: usize,
    /// Watches paused with [`Runtime::pause_watch`](super::Runtime::pause_watch).
    pub paused: usize,
    /// Active timers (timeouts and intervals).
    pub timers: usize,
    /// Pending immediates.
    pub immediates: usize,
    /// Pool jobs waiting for a thread.
    pub pool_queued: usize,
    /// Pool jobs running on a thread.
    pub pool_running: usize,
    /// Pool jobs whose result has not reached its callback yet.
    pub pool_pending: usize,
    /// Tasks spawned with [`Runtime::spawn_local`](super::Runtime::spawn_local) (or
    /// [`block_on`](super::Runtime::block_on)) that have not finished.
    pub tasks: usize,
    /// Watches closed by their deadline.
    pub timeouts: u64,
    /// Watches that had to queue because the high watermark was reached.
    pub watermark_hits: u64,
    /// Watches refused because the queue was full too.
    pub rejected: u64,
}
