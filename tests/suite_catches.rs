//! The portability suite can fail: broken backends, built for the purpose, fail the behaviours
//! that pin what they break, every time.
//!
//! `Lazy` wraps a [`PollingReactor`] and defers every registration change made while a poll is
//! in progress to the start of the next poll, so a poll already blocked never sees a
//! (de)registration from another thread. The cross-thread behaviours must catch it.

mod util;

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use portable_reactor::conformance;
use portable_reactor::{BorrowedSource, EventId, Events, Interest, Mode, PollingReactor, RawSource, Reactor};

/// How many times each broken backend is run through a behaviour: it must fail every time.
const RUNS: usize = 3;

fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A registration change, kept for the next poll.
#[derive(Debug)]
enum Change {
    Register(RawSource, EventId, Interest, Mode),
    Reregister(RawSource, EventId, Interest, Mode),
    Deregister(RawSource),
}

#[derive(Default)]
struct LazyState {
    polling: bool,
    deferred: Vec<Change>,
}

/// A backend whose blocked poll never sees cross-thread (de)registrations: changes made while a
/// poll is in progress are applied when the next poll starts.
struct Lazy {
    inner: PollingReactor,
    state: Mutex<LazyState>,
}

impl Lazy {
    fn new() -> Lazy {
        init_logging();
        Lazy {
            inner: PollingReactor::new().expect("PollingReactor::new"),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, LazyState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a deferred change; errors are only logged (the caller was told `Ok` already).
    fn apply(&self, change: Change) {
        // SAFETY: the suite keeps its sources open until it has deregistered them or dropped the
        // reactor, and a change is deferred at most until the next poll of this reactor; a
        // source closed meanwhile (a behaviour that already failed) makes the OS call fail
        // with `EBADF`, which is only logged.
        let source = |raw| unsafe { borrow(raw) };
        let result = match change {
            // SAFETY: as above: the source was open when the suite registered it.
            Change::Register(raw, id, interest, mode) => unsafe {
                self.inner.register(source(raw), id, interest, mode)
            },
            Change::Reregister(raw, id, interest, mode) => {
                self.inner.reregister(source(raw), id, interest, mode)
            }
            Change::Deregister(raw) => self.inner.deregister(source(raw)),
        };
        if let Err(e) = result {
            log::warn!("lazy: a deferred change failed: {e}");
        }
    }
}

/// # Safety
///
/// `raw` must be open for as long as the borrow is used.
#[cfg(unix)]
unsafe fn borrow<'a>(raw: RawSource) -> BorrowedSource<'a> {
    // SAFETY: the caller guarantees `raw` is open.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) }
}

/// # Safety
///
/// `raw` must be open for as long as the borrow is used.
#[cfg(windows)]
unsafe fn borrow<'a>(raw: RawSource) -> BorrowedSource<'a> {
    // SAFETY: the caller guarantees `raw` is open.
    unsafe { std::os::windows::io::BorrowedSocket::borrow_raw(raw) }
}

fn raw(source: BorrowedSource<'_>) -> RawSource {
    #[cfg(unix)]
    {
        std::os::fd::AsRawFd::as_raw_fd(&source)
    }
    #[cfg(windows)]
    {
        std::os::windows::io::AsRawSocket::as_raw_socket(&source)
    }
}

impl Reactor for Lazy {
    unsafe fn register(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        let mut state = self.state();
        if state.polling {
            state
                .deferred
                .push(Change::Register(raw(source), id, interest, mode));
            return Ok(());
        }
        // SAFETY: the caller upholds `register`'s contract.
        unsafe { self.inner.register(source, id, interest, mode) }
    }

    fn reregister(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        let mut state = self.state();
        if state.polling {
            state
                .deferred
                .push(Change::Reregister(raw(source), id, interest, mode));
            return Ok(());
        }
        self.inner.reregister(source, id, interest, mode)
    }

    fn deregister(&self, source: BorrowedSource<'_>) -> io::Result<()> {
        let mut state = self.state();
        if state.polling {
            state.deferred.push(Change::Deregister(raw(source)));
            return Ok(());
        }
        self.inner.deregister(source)
    }

    fn poll(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        {
            let mut state = self.state();
            for change in std::mem::take(&mut state.deferred) {
                self.apply(change);
            }
            state.polling = true;
        }
        let result = self.inner.poll(events, timeout);
        self.state().polling = false;
        result
    }
    crate::forward_reactor!(inner; waker, mechanism, supports, hints, name);
}

/// Runs `behaviour` on `Lazy` [`RUNS`] times and asserts that it fails every time; returns the
/// failure messages.
fn fails_every_time(name: &str, behaviour: fn(fn() -> Lazy)) -> Vec<String> {
    (0..RUNS)
        .map(|run| {
            let result = catch_unwind(AssertUnwindSafe(|| behaviour(Lazy::new)));
            let Err(panic) = result else {
                panic!("{name} passed on the lazy backend (run {run}): the suite cannot catch it");
            };
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("{name}, run {run}: caught: {message}");
            message
        })
        .collect()
}

#[test]
fn lazy_backend_fails_register_from_another_thread() {
    let messages = fails_every_time("register_from_another_thread_during_blocked_poll", |make| {
        conformance::register_from_another_thread_during_blocked_poll(make)
    });
    // Every round catches it, the first included.
    for m in messages {
        assert!(
            m.contains("(round 0)") && m.contains("did not report the other thread's action"),
            "{m}"
        );
    }
}

#[test]
fn lazy_backend_fails_reregister_from_another_thread() {
    let messages = fails_every_time("reregister_from_another_thread_rearms_blocked_poll", |make| {
        conformance::reregister_from_another_thread_rearms_blocked_poll(make)
    });
    for m in messages {
        assert!(
            m.contains("(round 1)") && m.contains("did not report the other thread's action"),
            "{m}"
        );
    }
}

#[test]
fn lazy_backend_fails_deregister_from_another_thread() {
    let messages = fails_every_time("deregister_from_another_thread_during_blocked_poll", |make| {
        conformance::deregister_from_another_thread_during_blocked_poll(make)
    });
    // The first mode tried catches it: the deregistered source is reported.
    for m in messages {
        assert!(
            m.contains("(Oneshot)") && m.contains("expected exactly one readable event for #99"),
            "{m}"
        );
    }
}

/// The wrapper itself is a working reactor when nothing crosses threads: the failures above
/// come from the deferral, not from a broken wrapper.
#[test]
fn lazy_backend_passes_single_thread_behaviours() {
    conformance::reregister_replaces_id_and_interest(Lazy::new);
    conformance::oneshot_is_silent_until_rearmed(Lazy::new);
}
