//! The whole portability suite on the guide's example backend (`examples/poll_backend.rs`, a
//! third-party backend over poll(2) built on `portable_reactor::kit`), and the suite's
//! acceptance of a non-native mechanism.
//!
//! `cargo test --test example_backend` (Unix only: poll(2)).
#![cfg(unix)]

#[allow(dead_code)]
#[path = "../examples/poll_backend.rs"]
mod poll_backend;

mod util;

use poll_backend::PollReactor;
use portable_reactor::prelude::*;
use portable_reactor::{conformance_suite, Mechanism};

fn poll_example() -> PollReactor {
    let _ = env_logger::builder().is_test(true).try_init();
    PollReactor::new().expect("PollReactor::new")
}

conformance_suite!(example, poll_example());

/// The example backend, reporting a mechanism this crate does not name.
struct Renamed(PollReactor, Mechanism);

impl Reactor for Renamed {
    fn mechanism(&self) -> Mechanism {
        self.1
    }
    crate::forward_reactor!(0; register, reregister, deregister, poll, waker, supports, hints, name);
}

#[test]
fn the_suite_accepts_a_non_native_mechanism() {
    portable_reactor::conformance::mechanism_matches_target_os(|| {
        Renamed(poll_example(), Mechanism::Other("poll-simulator"))
    });
}

#[test]
#[should_panic(expected = "or Mechanism::Other with a name of its own")]
fn the_suite_rejects_a_native_name_passed_as_other() {
    portable_reactor::conformance::mechanism_matches_target_os(|| {
        Renamed(poll_example(), Mechanism::Other("epoll"))
    });
}

#[test]
#[should_panic(expected = "or Mechanism::Other with a name of its own")]
fn the_suite_rejects_a_native_mechanism_of_another_os() {
    portable_reactor::conformance::mechanism_matches_target_os(|| {
        let elsewhere = if cfg!(target_os = "linux") {
            Mechanism::Kqueue
        } else {
            Mechanism::Iocp
        };
        Renamed(poll_example(), elsewhere)
    });
}
