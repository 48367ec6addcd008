//! Polls under contention: a storm of wakes from other threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::scaled;
use crate::{Events, Reactor};

/// How many threads wake the reactor in [`wake_storm_never_fails_poll`].
const STORM_THREADS: usize = 3;

/// Sets the flag when dropped, unwinding included: stops the storm's threads whatever happens
/// to the polling thread.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A wake makes `poll` return, never fail: three threads wake the reactor without pause while
/// this thread polls with short timeouts (1 to 5 ms) for 1.5 s (scaled). Every poll returns
/// `Ok` with no event, and every wake succeeds.
pub fn wake_storm_never_fails_poll<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let storm = scaled(Duration::from_millis(1500));
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..STORM_THREADS {
            let (waker, stop) = (reactor.waker(), &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    waker.wake().expect("a wake failed during the storm");
                    // Leave the polling thread a core on a small machine.
                    thread::yield_now();
                }
            });
        }
        let _stop = StopOnDrop(&stop);
        let mut events = Events::with_capacity(8);
        let start = Instant::now();
        let mut polls: u64 = 0;
        while start.elapsed() < storm {
            let timeout = Duration::from_millis(1 + polls % 5);
            if let Err(e) = reactor.poll(&mut events, Some(timeout)) {
                panic!(
                    "poll {polls} (timeout {timeout:?}) failed during a wake storm, after {:?}: \
                     {e} (ErrorKind::{:?}); a wake must make poll return, not fail",
                    start.elapsed(),
                    e.kind()
                );
            }
            assert!(
                events.is_empty(),
                "a wake surfaces no event: {:?}",
                events.as_slice()
            );
            polls += 1;
        }
        log::debug!("wake storm: {polls} polls in {storm:?}, none failed");
    });
}
