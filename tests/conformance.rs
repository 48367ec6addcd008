//! The portability suite, run for every backend of this crate.
//!
//! `cargo test --features conformance --test conformance`

use portable_reactor::{conformance_suite, MioReactor, PollingReactor, Reactor};

fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

fn polling() -> PollingReactor {
    init_logging();
    PollingReactor::new().expect("PollingReactor::new")
}

fn mio() -> MioReactor {
    init_logging();
    MioReactor::new().expect("MioReactor::new")
}

fn boxed(name: &str) -> Box<dyn Reactor> {
    init_logging();
    portable_reactor::reactor_by_name(name).expect("reactor_by_name")
}

conformance_suite!(polling, polling());
conformance_suite!(mio, mio());
conformance_suite!(boxed_mio, boxed("mio"));
conformance_suite!(boxed_polling, boxed("polling"));
