//! The conformance runner for this crate's backends: every behaviour of the portability suite
//! against [`PollingReactor`] and [`MioReactor`], each in its own process, reported as a
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

fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

fn main() {
    runner::main(&[
        Backend::new("polling", || {
            init_logging();
            Box::new(PollingReactor::new().expect("PollingReactor::new"))
        }),
        Backend::new("mio", || {
            init_logging();
            Box::new(MioReactor::new().expect("MioReactor::new"))
        }),
    ]);
}
