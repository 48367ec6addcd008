//! Declared deviations and "not applicable" outcomes.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

/// A behaviour a backend knowingly does differently, with the reason: declared by the backend's
/// author, reported by the [runner](super::runner) in every format as a deviation (not a
/// failure) when the behaviour fails, and as a stale declaration when it passes.
///
/// A deviation is for what [`Reactor::supports`](crate::Reactor::supports) and
/// [`Reactor::hints`](crate::Reactor::hints) cannot say: behaviours that depend on those are
/// already adapted by the suite.
///
/// ```
/// use portable_reactor::conformance::Deviation;
///
/// const DEVIATIONS: &[Deviation] = &[Deviation::new(
///     "wakes_coalesce",
///     "every wake posts its own completion packet",
/// )];
/// assert_eq!(DEVIATIONS[0].behaviour, "wakes_coalesce");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Deviation {
    /// The behaviour's function name, as in [`BEHAVIOURS`](super::BEHAVIOURS) (for example
    /// `"wakes_coalesce"`).
    pub behaviour: &'static str,
    /// Why the backend does it differently; reported next to the outcome.
    pub reason: &'static str,
}

impl Deviation {
    /// A deviation of `behaviour`, for `reason`.
    pub const fn new(behaviour: &'static str, reason: &'static str) -> Deviation {
        Deviation { behaviour, reason }
    }

    /// The declaration for `behaviour` in `deviations`, if any.
    ///
    /// ```
    /// use portable_reactor::conformance::Deviation;
    /// let list = [Deviation::new("wakes_coalesce", "why")];
    /// assert!(Deviation::find(&list, "wakes_coalesce").is_some());
    /// assert!(Deviation::find(&list, "timeout_is_never_early").is_none());
    /// ```
    pub fn find<'a>(deviations: &'a [Deviation], behaviour: &str) -> Option<&'a Deviation> {
        deviations.iter().find(|d| d.behaviour == behaviour)
    }
}

thread_local! {
    /// Why the behaviour running on this thread did not apply, set by [`not_applicable`].
    static NOT_APPLICABLE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records that the behaviour running on this thread does not apply to the backend (it has
/// checked what it could, e.g. that the mode is `Unsupported`, and returns).
pub(crate) fn not_applicable(reason: impl Into<String>) {
    let reason = reason.into();
    log::debug!("conformance: not applicable: {reason}");
    NOT_APPLICABLE.with(|na| *na.borrow_mut() = Some(reason));
}

/// Takes the reason recorded by [`not_applicable`] on this thread since the last call.
pub(crate) fn take_not_applicable() -> Option<String> {
    NOT_APPLICABLE.with(|na| na.borrow_mut().take())
}

/// Runs the behaviour `name` as a test of [`conformance_suite!`](crate::conformance_suite):
/// `body` as is, unless `deviations` declares `name`; then a failure of `body` is the declared
/// deviation and a pass is a stale declaration, both reported on stderr and neither failing
/// the test. Not needed outside the macro.
///
/// ```
/// use portable_reactor::conformance::{run_test, Deviation};
/// let declared = [Deviation::new("demo", "fails on purpose")];
/// run_test("demo", &declared, || panic!("the declared deviation"));
/// run_test("other", &declared, || {});
/// ```
///
/// # Panics
///
/// As `body` does, for a behaviour without a declared deviation.
pub fn run_test(name: &str, deviations: &[Deviation], body: impl FnOnce()) {
    let _ = take_not_applicable();
    let Some(deviation) = Deviation::find(deviations, name) else {
        body();
        if let Some(reason) = take_not_applicable() {
            eprintln!("conformance: {name}: not applicable: {reason}");
        }
        return;
    };
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Err(_) => eprintln!(
            "conformance: {name}: declared deviation ({}): fails as declared",
            deviation.reason
        ),
        Ok(()) => eprintln!(
            "conformance: {name}: deviation passes (stale declaration): {}",
            deviation.reason
        ),
    }
}
