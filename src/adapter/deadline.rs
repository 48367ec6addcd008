//! The loop behind every `poll`: wait again after spurious wake-ups and `EINTR` until an event,
//! a wake, or the deadline.

use std::io;
use std::time::{Duration, Instant};

/// How long one OS wait may block.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Block {
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
    pub(crate) fn timeout(self) -> Option<Duration> {
        match self {
            Block::Forever => None,
            Block::No => Some(Duration::ZERO),
            Block::Until { remaining, .. } => Some(remaining),
        }
    }
}

/// Calls `wait_once(block)` until it reports that the poll is done (events or a wake),
/// an error other than `Interrupted` occurs, or `timeout` has fully passed.
///
/// The clock is read once before the first wait, and after each wait that reported nothing,
/// only for a non-zero timeout: `None` and `Some(Duration::ZERO)` (exactly one non-blocking
/// call) read no clock. A timeout too large to add to `Instant::now()` is treated as infinite.
#[inline]
pub(crate) fn wait_until_deadline(
    timeout: Option<Duration>,
    mut wait_once: impl FnMut(Block) -> io::Result<bool>,
) -> io::Result<()> {
    let mut block = match timeout {
        None => Block::Forever,
        Some(t) if t.is_zero() => Block::No,
        Some(t) => match Instant::now().checked_add(t) {
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
