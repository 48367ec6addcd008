//! The loop behind every `poll`: wait again after spurious wake-ups and `EINTR` until an event,
//! a wake, or the deadline.

use std::io;
use std::time::{Duration, Instant};

/// Calls `wait_once(remaining)` until it reports that the poll is done (events or a wake),
/// an error other than `Interrupted` occurs, or `timeout` has fully passed.
///
/// `Some(Duration::ZERO)` makes exactly one non-blocking call. A timeout too large to add to
/// `Instant::now()` is treated as infinite.
pub(crate) fn wait_until_deadline(
    timeout: Option<Duration>,
    mut wait_once: impl FnMut(Option<Duration>) -> io::Result<bool>,
) -> io::Result<()> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut remaining = if deadline.is_some() { timeout } else { None };
    loop {
        match wait_once(remaining) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if let Some(deadline) = deadline {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            remaining = Some(deadline - now);
        }
        log::trace!("poll: woke early with nothing to report, waiting {remaining:?} more");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeout_calls_once() {
        let mut calls = 0;
        wait_until_deadline(Some(Duration::ZERO), |t| {
            calls += 1;
            assert_eq!(t, Some(Duration::ZERO));
            Ok(false)
        })
        .unwrap();
        assert_eq!(calls, 1);
    }

    #[test]
    fn retries_interrupts_and_spurious_returns_until_done() {
        let mut calls = 0;
        wait_until_deadline(None, |t| {
            assert_eq!(t, None);
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
        wait_until_deadline(Some(timeout), |_| Ok(false)).unwrap();
        assert!(start.elapsed() >= timeout);
    }

    #[test]
    fn huge_timeout_is_infinite_not_a_panic() {
        let mut calls = 0;
        wait_until_deadline(Some(Duration::MAX), |t| {
            calls += 1;
            assert_eq!(t, None);
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
