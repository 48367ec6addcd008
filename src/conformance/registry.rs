//! The registry of behaviours, expanded from the same list as
//! [`conformance_suite!`](crate::conformance_suite).

use crate::Reactor;

/// The version of the portability suite: it bumps (and the CHANGELOG says so) whenever a
/// behaviour is added, removed, or changed in what it asserts. Minor for additions and
/// stricter checks, major for removals or renames (which break [`Deviation`](super::Deviation)
/// declarations), patch for fixes that do not change what passes.
pub const VERSION: &str = "1.2.0";

/// A reactor under test, built by the runner or the suite for each behaviour.
pub type BoxedReactor = Box<dyn Reactor>;

/// One behaviour of the suite, as the [runner](super::runner) sees it.
///
/// ```
/// use portable_reactor::conformance::{behaviour, BEHAVIOURS};
/// let b = behaviour("register_twice_is_already_exists").unwrap();
/// assert_eq!(b.group, "registration");
/// assert!(b.contract.contains("AlreadyExists"));
/// assert!(BEHAVIOURS.len() > 40);
/// (b.run)(&|| Box::new(portable_reactor::PollingReactor::new().unwrap()));
/// ```
#[derive(Copy, Clone, Debug)]
pub struct Behaviour {
    /// The function's name in [`conformance`](super), e.g. `register_twice_is_already_exists`.
    pub name: &'static str,
    /// Its group (the suite's module): `registration`, `readiness`, `modes`, `threads`,
    /// `contention`, `hints` or `timeouts`.
    pub group: &'static str,
    /// The row of the [`Reactor`] contract it pins, in a few words.
    pub contract: &'static str,
    /// Why the behaviour does not apply on this OS (it is not built here), or `None`.
    pub not_applicable: Option<&'static str>,
    /// Runs the behaviour with a constructor of the reactor under test; panics if the backend
    /// breaks the contract. Never call it where [`not_applicable`](Behaviour::not_applicable)
    /// is set (it panics saying why).
    pub run: fn(&dyn Fn() -> BoxedReactor),
}

macro_rules! registry_entries {
    (() $($group:ident $name:ident $contract:literal $([$os:ident : $why:literal])?;)*) => {
        /// Every behaviour of the suite, in the order the suite runs them (the list
        /// [`conformance_suite!`](crate::conformance_suite) expands too).
        pub static BEHAVIOURS: &[Behaviour] = &[$(
            Behaviour {
                name: stringify!($name),
                group: stringify!($group),
                contract: $contract,
                not_applicable: registry_entries!(@na $([$os : $why])?),
                run: {
                    $(#[cfg($os)])?
                    fn run(make: &dyn Fn() -> BoxedReactor) {
                        super::$name(make)
                    }
                    $(
                        #[cfg(not($os))]
                        fn run(_: &dyn Fn() -> BoxedReactor) {
                            panic!("{}: {}", stringify!($name), $why)
                        }
                    )?
                    run
                },
            },
        )*];
    };
    (@na) => { None };
    (@na [$os:ident : $why:literal]) => { if cfg!($os) { None } else { Some($why) } };
}

crate::__conformance_behaviours!(registry_entries,);

/// The behaviour called `name`, if the suite has one.
pub fn behaviour(name: &str) -> Option<&'static Behaviour> {
    BEHAVIOURS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_groups_known() {
        let groups = [
            "registration",
            "readiness",
            "modes",
            "threads",
            "contention",
            "hints",
            "timeouts",
        ];
        for (i, b) in BEHAVIOURS.iter().enumerate() {
            assert!(groups.contains(&b.group), "{}: group {}", b.name, b.group);
            assert!(!b.contract.is_empty());
            assert!(
                BEHAVIOURS[..i].iter().all(|o| o.name != b.name),
                "{} twice",
                b.name
            );
        }
    }

    #[test]
    fn unix_only_behaviours_apply_on_unix_only() {
        let b = behaviour("pipe_writer_dropped_hints").unwrap();
        assert_eq!(b.not_applicable.is_none(), cfg!(unix));
        assert!(behaviour("timeout_is_never_early")
            .unwrap()
            .not_applicable
            .is_none());
    }
}
