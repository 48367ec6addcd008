//! Polls under contention: a storm of wakes from other threads, and a zero-timeout poll while
//! another thread's poll blocks.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::scaled;
use super::threads::blocked_for;
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

/// How many rounds [`wakes_racing_poll_are_never_lost`] runs.
const RACE_ROUNDS: u32 = 2_000;

/// Every wake ends a poll, including one that races the start of the wait: for 2,000 rounds,
/// another thread wakes the reactor once, released just as this thread enters `poll` (after a
/// delay that varies by round, sweeping the window between "about to wait" and "in the OS
/// wait"), and that poll (or the next, if the wake beat it) returns within a second (scaled).
/// A backend whose bookkeeping can drop a wake (a "notified" flag left set, after which every
/// wake is a no-op) fails in a second instead of hanging an event loop forever.
pub fn wakes_racing_poll_are_never_lost<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let patience = scaled(Duration::from_secs(1));
    // The round the waking thread may wake for; it watches this instead of sleeping, so that
    // it wakes within nanoseconds of the release (a sleeping thread would wake long after
    // this thread is inside the OS wait, and the race would never happen).
    let released = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let (waker, released, stop) = (reactor.waker(), &released, &stop);
        s.spawn(move || {
            let mut done = 0;
            loop {
                let mut checks = 0u32;
                while released.load(Ordering::Acquire) == done {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    checks += 1;
                    if checks % 256 == 0 {
                        // Leave the polling thread a core on a small machine.
                        thread::yield_now();
                    }
                    std::hint::spin_loop();
                }
                done += 1;
                for _ in 0..(done % 64) * 4 {
                    std::hint::spin_loop();
                }
                waker.wake().expect("a wake failed");
            }
        });
        let _stop = StopOnDrop(stop);
        let mut events = Events::with_capacity(8);
        let start = Instant::now();
        for round in 0..RACE_ROUNDS {
            released.store(round + 1, Ordering::Release);
            let began = Instant::now();
            let polled = reactor.poll(&mut events, Some(patience * 2));
            let took = began.elapsed();
            if let Err(e) = polled {
                panic!("round {round}: poll failed: {e} (ErrorKind::{:?})", e.kind());
            }
            assert!(
                events.is_empty(),
                "round {round}: a wake surfaces no event: {:?}",
                events.as_slice()
            );
            assert!(
                took < patience,
                "round {round}: a wake sent as poll began did not end it in {took:?}: a wake \
                 was lost"
            );
        }
        log::debug!(
            "wakes racing poll: {RACE_ROUNDS} rounds in {:?}, none lost",
            start.elapsed()
        );
    });
}

/// `poll(Some(Duration::ZERO))` never blocks, not even behind another thread's poll: while one
/// thread blocks in a poll (timeout 1 s, scaled), another thread's zero-timeout poll returns
/// within 200 ms (scaled), with no event (nothing is ready).
pub fn zero_timeout_does_not_wait_for_a_blocked_poll<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let long = scaled(Duration::from_secs(1));
    let limit = scaled(Duration::from_millis(200));
    for round in 0..3 {
        let (polling, about_to_poll) = mpsc::channel::<()>();
        let (took, zero_returned, blocked_returned, zero_events) = thread::scope(|s| {
            let blocked = s.spawn(|| {
                let mut events = Events::with_capacity(8);
                polling.send(()).expect("the other thread is gone");
                reactor.poll(&mut events, Some(long)).expect("blocked poll");
                Instant::now()
            });
            about_to_poll.recv().expect("the blocked poll's thread failed");
            // Let the other poll block (see the `threads` module docs).
            thread::sleep(blocked_for());
            let mut events = Events::with_capacity(8);
            let start = Instant::now();
            reactor
                .poll(&mut events, Some(Duration::ZERO))
                .expect("poll(ZERO) during another thread's poll");
            let took = start.elapsed();
            let zero_returned = Instant::now();
            // End the other poll early.
            reactor.waker().wake().expect("wake");
            let blocked_returned = blocked.join().expect("the blocked poll's thread panicked");
            (took, zero_returned, blocked_returned, events.len())
        });
        assert!(
            took < limit,
            "round {round}: poll(Some(Duration::ZERO)) took {took:?} while another thread's poll \
             blocked (limit {limit:?}): a zero timeout never blocks, not even behind another poll"
        );
        assert!(
            blocked_returned > zero_returned,
            "round {round}: the other thread's poll({long:?}) had returned before the zero-timeout \
             poll did, so it was not blocked"
        );
        assert_eq!(zero_events, 0, "round {round}: nothing is ready");
    }
}
