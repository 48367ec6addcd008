//! The conformance runner for this crate's backends: every behaviour of the portability suite
//! against [`PollingReactor`], [`MioReactor`] and, on Unix, the guide's example backend
//! (`examples/poll_backend.rs`, poll(2) on the kit), each in its own process, reported as a
//! matrix (markdown on stdout and in `--out`, JUnit XML, JSON).
//!
//! ```text
//! cargo run --release --example conformance --features conformance -- \
//!     --backend all --format md,junit,json --out target/conformance/
//! ```
//!
//! A third-party backend's crate has the same few lines with its own constructor; see
//! `portable_reactor::conformance::runner`.

use portable_reactor::conformance::runner::{self, Backend};
use portable_reactor::{MioReactor, PollingReactor};

#[cfg(unix)]
#[allow(dead_code)] // its own `main` is the example's, not ours
#[path = "poll_backend.rs"]
mod poll_backend;

fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

fn main() {
    #[cfg_attr(not(unix), allow(unused_mut))] // the example backend is Unix only
    let mut backends = vec![
        Backend::new("polling", || {
            init_logging();
            Box::new(PollingReactor::new().expect("PollingReactor::new"))
        }),
        Backend::new("mio", || {
            init_logging();
            Box::new(MioReactor::new().expect("MioReactor::new"))
        }),
    ];
    #[cfg(unix)]
    backends.push(Backend::new("poll-example", || {
        init_logging();
        Box::new(poll_backend::PollReactor::new().expect("PollReactor::new"))
    }));
    runner::main(&backends);
}
