//! The portability suite: one public test body per behaviour of the [`Reactor`] contract.
//!
//! Every function here takes a constructor (`make`) for the reactor under test, builds the
//! sockets it needs, and panics if the backend breaks the contract. Each body runs on every
//! backend and OS: where a behaviour depends on [`Reactor::supports`], the body asserts the
//! `Unsupported` error for the modes the backend declines; where close and error hints differ,
//! it asserts exactly what [`Reactor::hints`] declares (a declared hint must be set on the
//! first event of its scenario, and no hint is ever set where its condition does not hold).
//!
//! Every wait is bounded: events that must arrive are awaited for at most [`arrive()`], and
//! "stays silent" is checked by polling for [`silence()`]. No body sleeps to synchronise; the
//! only pauses are the few milliseconds a cross-thread behaviour leaves a poll blocked before
//! the other thread acts, so that it really acts on a blocked poll.
//!
//! # Wait scale
//!
//! Every wait of the suite ([`ARRIVE`], [`SILENCE`] and the limits derived from them) is
//! multiplied by the environment variable `PORTABLE_REACTOR_WAIT_SCALE` ([`WAIT_SCALE_VAR`]), a
//! decimal factor: `4` on a slow emulator (Wine, QEMU, a loaded CI machine), `0.5` for a quicker
//! run on a fast one. Unset or empty means `1`. It is read once per process. A value that is not
//! a finite number in `(0, 1000]` is a configuration mistake: the first behaviour that waits
//! panics, naming the variable and the value, rather than running with waits nobody asked for.
//!
//! Run the whole suite for a backend with [`conformance_suite!`](crate::conformance_suite),
//! from a test file of any crate (a third-party backend included):
//!
//! ```
//! # mod my_crate { pub type MyReactor = portable_reactor::MioReactor; }
//! portable_reactor::conformance_suite!(polling, portable_reactor::PollingReactor::new().unwrap());
//! portable_reactor::conformance_suite!(mine, my_crate::MyReactor::new().unwrap());
//! ```
//!
//! The expression is evaluated once per reactor the behaviour needs (at least once per test),
//! so it is also the place to initialise logging.
//!
//! # Registry, version, deviations, runner
//!
//! - [`BEHAVIOURS`]: every behaviour with its group and the contract row it pins, expanded
//!   from the same list as the macro (they cannot drift).
//! - [`VERSION`]: the suite's version, bumped whenever a behaviour is added or changed.
//! - [`Deviation`]: what a backend knowingly does differently, per behaviour, with a reason.
//! - [`runner`]: one command that runs every behaviour against chosen backends, each in its
//!   own process with a timeout, and writes the matrix as markdown, JUnit XML and JSON.

use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{AsSource, Event, EventId, Events, Interest, Mode, Reactor};

mod behaviours;
mod contention;
mod deviation;
mod hints;
mod modes;
mod readiness;
mod registration;
mod registry;
pub mod runner;
mod sockets;
mod threads;
mod timeouts;

pub use contention::*;
pub(crate) use deviation::{not_applicable, take_not_applicable};
pub use deviation::{run_test, Deviation};
pub use hints::*;
pub use modes::*;
pub use readiness::*;
pub use registration::*;
pub use registry::{behaviour, Behaviour, BoxedReactor, BEHAVIOURS, VERSION};
pub use threads::*;
pub use timeouts::*;

/// How long the suite waits for an event that must arrive before failing, before scaling: the
/// suite waits [`arrive()`].
pub const ARRIVE: Duration = Duration::from_secs(10);

/// How long the suite polls to check that a reactor stays silent, before scaling: the suite
/// polls for [`silence()`].
pub const SILENCE: Duration = Duration::from_millis(100);

/// The environment variable that scales every wait of the suite (see the
/// [module docs](self#wait-scale)).
pub const WAIT_SCALE_VAR: &str = "PORTABLE_REACTOR_WAIT_SCALE";

/// The largest accepted wait scale: beyond it, a wait of the suite no longer fits a test run.
const MAX_WAIT_SCALE: f64 = 1000.0;

/// The factor every wait of the suite is multiplied by: [`WAIT_SCALE_VAR`] from the
/// environment, read once, or `1`.
///
/// # Panics
///
/// If the variable is set to anything but a finite number in `(0, 1000]` (or is not Unicode).
pub fn wait_scale() -> f64 {
    static SCALE: OnceLock<Result<f64, String>> = OnceLock::new();
    let scale = SCALE.get_or_init(|| match std::env::var(WAIT_SCALE_VAR) {
        Ok(value) => parse_wait_scale(&value),
        Err(std::env::VarError::NotPresent) => Ok(1.0),
        Err(std::env::VarError::NotUnicode(value)) => Err(format!(
            "{WAIT_SCALE_VAR}={value:?} is not a number (expected a factor such as 0.5 or 4)"
        )),
    });
    match scale {
        Ok(scale) => *scale,
        Err(message) => panic!("{message}"),
    }
}

/// Parses a wait scale: a finite decimal in `(0, MAX_WAIT_SCALE]`; empty (or blanks) is `1`.
fn parse_wait_scale(value: &str) -> Result<f64, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(1.0);
    }
    match value.parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 && scale <= MAX_WAIT_SCALE => Ok(scale),
        _ => Err(format!(
            "{WAIT_SCALE_VAR}={value:?} is not a wait scale: expected a number greater than 0 \
             and at most {MAX_WAIT_SCALE} (a factor such as 0.5 or 4)"
        )),
    }
}

/// `base` multiplied by `scale`.
fn scale_by(base: Duration, scale: f64) -> Duration {
    base.mul_f64(scale)
}

/// `base` multiplied by [`wait_scale()`]: how every wait of the suite is derived.
pub fn scaled(base: Duration) -> Duration {
    scale_by(base, wait_scale())
}

/// How long the suite waits for an event that must arrive: [`ARRIVE`] times [`wait_scale()`].
pub fn arrive() -> Duration {
    scaled(ARRIVE)
}

/// How long the suite polls to check that a reactor stays silent: [`SILENCE`] times
/// [`wait_scale()`].
pub fn silence() -> Duration {
    scaled(SILENCE)
}

/// Every mode, in the order the suite tries them.
pub const MODES: [Mode; 3] = [Mode::Oneshot, Mode::Level, Mode::Edge];

/// Registers `source` with `reactor`.
///
/// The suite's own sources always outlive their registration: each body creates its sources
/// before the reactor that watches them, so they are dropped after it, or deregisters them
/// before dropping them. That is the contract of [`Reactor::register`].
fn register<R: Reactor + ?Sized, S: AsSource + ?Sized>(
    reactor: &R,
    source: &S,
    id: EventId,
    interest: Interest,
    mode: Mode,
) -> io::Result<()> {
    // SAFETY: see above: every caller in this module keeps `source` open until it is
    // deregistered or the reactor is dropped.
    unsafe { reactor.register(source.as_source(), id, interest, mode) }
}

/// Polls until some event arrives (at most [`arrive()`]) and returns the events of that poll.
fn poll_some<R: Reactor + ?Sized>(reactor: &R, events: &mut Events, what: &str) -> Vec<Event> {
    let arrive = arrive();
    let deadline = Instant::now() + arrive;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{what}: no event within {arrive:?}");
        let n = reactor
            .poll(events, Some(left))
            .unwrap_or_else(|e| panic!("{what}: poll failed: {e}"));
        assert_eq!(
            n,
            events.len(),
            "{what}: poll's count differs from the events it filled"
        );
        assert!(n <= events.capacity(), "{what}: poll overfilled the buffer");
        if n > 0 {
            return events.iter().copied().collect();
        }
    }
}

/// Polls until an event arrives and asserts that it is exactly one event, for `id`.
fn expect_one<R: Reactor + ?Sized>(reactor: &R, id: EventId, what: &str) -> Event {
    let mut events = Events::with_capacity(64);
    let got = poll_some(reactor, &mut events, what);
    assert!(
        got.len() == 1 && got[0].id() == id,
        "{what}: expected exactly one event for {id}, got {got:?}"
    );
    got[0]
}

/// Polls for [`silence()`] and asserts that nothing is reported.
fn expect_silence<R: Reactor + ?Sized>(reactor: &R, what: &str) {
    let mut events = Events::with_capacity(64);
    let silence = silence();
    reactor
        .poll(&mut events, Some(silence))
        .unwrap_or_else(|e| panic!("{what}: poll failed: {e}"));
    assert!(
        events.is_empty(),
        "{what}: expected no event within {silence:?}, got {:?}",
        events.as_slice()
    );
}

/// Asserts that `result` is the `Unsupported` error.
fn expect_unsupported(result: io::Result<()>, what: &str) {
    match result {
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
        other => panic!("{what}: expected ErrorKind::Unsupported, got {other:?}"),
    }
}

/// Asserts that `result` is an error of `kind`.
fn expect_kind(result: io::Result<()>, kind: io::ErrorKind, what: &str) {
    match result {
        Err(e) if e.kind() == kind => {}
        other => panic!("{what}: expected ErrorKind::{kind:?}, got {other:?}"),
    }
}

/// Asserts that an event on a healthy source carries no close or error hint.
fn expect_no_hints(event: &Event, what: &str) {
    assert!(
        !event.is_error() && !event.is_read_closed() && !event.is_write_closed(),
        "{what}: hints are never false positives, got {event:?}"
    );
}

/// A tiny deterministic PRNG (xorshift64*), so the suite needs no `rand`.
struct Prng(u64);

impl Prng {
    fn new(seed: u64) -> Prng {
        Prng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_scale_parsing() {
        assert_eq!(parse_wait_scale(""), Ok(1.0));
        assert_eq!(parse_wait_scale("  "), Ok(1.0));
        assert_eq!(parse_wait_scale("4"), Ok(4.0));
        assert_eq!(parse_wait_scale(" 0.5 "), Ok(0.5));
        assert_eq!(parse_wait_scale("1e3"), Ok(1000.0));
        for bad in ["0", "-1", "abc", "NaN", "inf", "1001", "2x", "1,5"] {
            let err = parse_wait_scale(bad).unwrap_err();
            assert!(
                err.contains(WAIT_SCALE_VAR) && err.contains(bad),
                "{bad:?}: the message names the variable and the value: {err}"
            );
        }
    }

    #[test]
    fn scaling() {
        assert_eq!(scale_by(ARRIVE, 1.0), ARRIVE);
        assert_eq!(scale_by(ARRIVE, 0.5), Duration::from_secs(5));
        assert_eq!(scale_by(SILENCE, 4.0), Duration::from_millis(400));
        // The largest scale keeps every derived wait addable to `Instant::now()`.
        assert!(Instant::now()
            .checked_add(scale_by(ARRIVE, MAX_WAIT_SCALE))
            .is_some());
    }
}
