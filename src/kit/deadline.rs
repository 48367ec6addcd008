//! The loop behind every `poll`: wait again after spurious wake-ups and `EINTR` until an event,
//! a wake, or the deadline.

use std::io;
use std::time::{Duration, Instant};

/// How long one OS wait may block, as [`wait_until_deadline`] tells its closure.
///
/// Pass it to the OS as the OS wants it: [`timeout`](Block::timeout) for a crate that takes a
/// timeout (`mio`), the `deadline` for one that takes a deadline (`polling`),
/// [`timeout_ms`](Block::timeout_ms) for poll(2) and `epoll_wait`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// Until an event or a wake.
    Forever,
    /// Not at all.
    No,
    /// Until `deadline`, which was `remaining` away at the last clock read.
    Until {
        /// When the poll's timeout ends (for crates that take a deadline, such as `polling`).
        deadline: Instant,
        /// The time left (for crates that take a timeout, such as `mio`).
        remaining: Duration,
    },
}

impl Block {
    /// As a timeout: `None` for no limit.
    #[inline]
    pub fn timeout(self) -> Option<Duration> {
        match self {
            Block::Forever => None,
            Block::No => Some(Duration::ZERO),
            Block::Until { remaining, .. } => Some(remaining),
        }
    }

    /// As a millisecond timeout for poll(2), `epoll_wait` and the like: `-1` for no limit, and
    /// the time left rounded up (a wait of 0.2 ms is 1 ms, never 0: a timeout is never cut
    /// short), at most `i32::MAX`.
    ///
    /// ```
    /// use portable_reactor::kit::Block;
    /// use std::time::{Duration, Instant};
    /// assert_eq!(Block::Forever.timeout_ms(), -1);
    /// assert_eq!(Block::No.timeout_ms(), 0);
    /// let until = |remaining| Block::Until { deadline: Instant::now() + remaining, remaining };
    /// assert_eq!(until(Duration::from_micros(200)).timeout_ms(), 1);
    /// assert_eq!(until(Duration::from_millis(5)).timeout_ms(), 5);
    /// assert_eq!(until(Duration::from_secs(1 << 40)).timeout_ms(), i32::MAX);
    /// ```
    pub fn timeout_ms(self) -> i32 {
        match self {
            Block::Forever => -1,
            Block::No => 0,
            Block::Until { remaining, .. } => {
                let ms = remaining.as_nanos().div_ceil(1_000_000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            }
        }
    }
}

/// Calls `wait_once(block)` until it reports that the poll is done (events or a wake),
/// an error other than `Interrupted` occurs, or `timeout` has fully passed.
///
/// `wait_once` makes one OS wait that blocks at most as `block` says, translates its events,
/// and returns `Ok(true)` when the poll is done (it reported an event, or a wake came),
/// `Ok(false)` when the wait returned with nothing to report (a spurious wake-up, an internal
/// notification, events all dropped as stale), or the wait's error: `Interrupted` (`EINTR`)
/// is retried, any other error is returned.
///
/// So the poll's `timeout` is kept as the contract says: never cut short by a spurious return
/// or a signal, `None` waits until an event or a wake, and `Some(Duration::ZERO)` is exactly
/// one call with [`Block::No`], whatever it returns. The clock is read once before the first
/// wait ([`wait_from`] takes the caller's read instead), and after each wait that reported
/// nothing, only for a non-zero timeout. A timeout too
/// large to add to `Instant::now()` is treated as infinite.
///
/// ```
/// use portable_reactor::kit::{wait_until_deadline, Block};
/// use std::io;
/// use std::time::{Duration, Instant};
///
/// // An OS wait that is interrupted once, then returns early with nothing, then times out.
/// let start = Instant::now();
/// let mut waits = Vec::new();
/// wait_until_deadline(Some(Duration::from_millis(30)), |block| {
///     waits.push(block);
///     if waits.len() == 1 {
///         return Err(io::ErrorKind::Interrupted.into());
///     }
///     // A real backend blocks here as `block` says (e.g. poll(2) with `block.timeout_ms()`).
///     std::thread::sleep(block.timeout().unwrap() / 2);
///     Ok(false)
/// })?;
/// assert!(start.elapsed() >= Duration::from_millis(30), "never early");
/// assert!(waits.len() >= 3);
/// assert!(matches!(waits[0], Block::Until { .. }));
///
/// // A zero timeout: one non-blocking wait, even if it is interrupted.
/// let mut calls = 0;
/// wait_until_deadline(Some(Duration::ZERO), |block| {
///     calls += 1;
///     assert_eq!(block, Block::No);
///     Err(io::ErrorKind::Interrupted.into())
/// })?;
/// assert_eq!(calls, 1);
/// # io::Result::Ok(())
/// ```
///
/// # Errors
///
/// The first error of `wait_once` other than `Interrupted`.
#[inline]
pub fn wait_until_deadline(
    timeout: Option<Duration>,
    wait_once: impl FnMut(Block) -> io::Result<bool>,
) -> io::Result<()> {
    wait_since(Instant::now, timeout, wait_once)
}

/// As [`wait_until_deadline`], with `timeout` counted from `start` (a clock read the caller
/// made before this call) instead of from the call: the backend side of
/// [`Reactor::poll_from`](crate::Reactor::poll_from), which saves the clock read before the
/// first wait.
///
/// The first wait blocks for the whole `timeout` ([`Block::Until`] with `remaining` =
/// `timeout`), so the poll returns no earlier than `start + timeout` and no later than
/// `wait_until_deadline(timeout, ..)` called now would. The waits after a spurious return
/// count to `start + timeout`. `None` for `start` is the call's own clock read (as
/// `wait_until_deadline`).
///
/// ```
/// use portable_reactor::kit::{wait_from, Block};
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// let timeout = Duration::from_millis(20);
/// let mut first = None;
/// wait_from(Some(start), Some(timeout), |block| {
///     first.get_or_insert(block);
///     std::thread::sleep(block.timeout().unwrap() / 4); // returns early with nothing
///     Ok(false)
/// })?;
/// assert!(start.elapsed() >= timeout, "never before start + timeout");
/// assert_eq!(first, Some(Block::Until { deadline: start + timeout, remaining: timeout }));
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// The first error of `wait_once` other than `Interrupted`.
#[inline]
pub fn wait_from(
    start: Option<Instant>,
    timeout: Option<Duration>,
    wait_once: impl FnMut(Block) -> io::Result<bool>,
) -> io::Result<()> {
    match start {
        Some(start) => wait_since(move || start, timeout, wait_once),
        None => wait_since(Instant::now, timeout, wait_once),
    }
}

/// [`wait_from`] with the start as a closure, called only for a non-zero finite timeout: our
/// adapters pass `Instant::now` for `poll` and the caller's read for `poll_from`, so each is
/// compiled for its own case.
#[inline]
pub(crate) fn wait_since(
    start: impl FnOnce() -> Instant,
    timeout: Option<Duration>,
    mut wait_once: impl FnMut(Block) -> io::Result<bool>,
) -> io::Result<()> {
    let mut block = match timeout {
        None => Block::Forever,
        Some(t) if t.is_zero() => Block::No,
        Some(t) => match start().checked_add(t) {
            Some(deadline) => Block::Until {
                deadline,
                remaining: t,
            },
            None => Block::Forever,
        },
    };
    loop {
        match wait_once(block) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        match block {
            Block::Forever => {}
            Block::No => return Ok(()),
            Block::Until { deadline, .. } => {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(());
                }
                block = Block::Until {
                    deadline,
                    remaining: deadline - now,
                };
            }
        }
        log::trace!("poll: woke early with nothing to report, waiting {block:?} more");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeout_calls_once() {
        let mut calls = 0;
        wait_until_deadline(Some(Duration::ZERO), |b| {
            calls += 1;
            assert_eq!(b, Block::No);
            assert_eq!(b.timeout(), Some(Duration::ZERO));
            Ok(false)
        })
        .unwrap();
        assert_eq!(calls, 1);
        // Also after EINTR: a zero timeout never blocks and never retries.
        let mut calls = 0;
        wait_until_deadline(Some(Duration::ZERO), |_| {
            calls += 1;
            Err(io::ErrorKind::Interrupted.into())
        })
        .unwrap();
        assert_eq!(calls, 1);
    }

    #[test]
    fn retries_interrupts_and_spurious_returns_until_done() {
        let mut calls = 0;
        wait_until_deadline(None, |b| {
            assert_eq!(b, Block::Forever);
            assert_eq!(b.timeout(), None);
            calls += 1;
            match calls {
                1 => Err(io::ErrorKind::Interrupted.into()),
                2 => Ok(false),
                _ => Ok(true),
            }
        })
        .unwrap();
        assert_eq!(calls, 3);
    }

    #[test]
    fn never_returns_before_the_deadline() {
        let start = Instant::now();
        let timeout = Duration::from_millis(20);
        let mut calls = 0;
        wait_until_deadline(Some(timeout), |b| {
            calls += 1;
            let Block::Until { deadline, remaining } = b else {
                panic!("{b:?}");
            };
            assert!(deadline >= start + timeout);
            assert!(remaining <= timeout);
            if calls == 1 {
                assert_eq!(remaining, timeout);
            }
            Ok(false)
        })
        .unwrap();
        assert!(start.elapsed() >= timeout);
    }

    #[test]
    fn huge_timeout_is_infinite_not_a_panic() {
        let mut calls = 0;
        wait_until_deadline(Some(Duration::MAX), |b| {
            calls += 1;
            assert_eq!(b, Block::Forever);
            Ok(calls == 2)
        })
        .unwrap();
    }

    #[test]
    fn errors_pass_through() {
        let err = wait_until_deadline(None, |_| Err(io::ErrorKind::PermissionDenied.into())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    }
}
