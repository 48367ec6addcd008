//! # Writing a backend
//!
//! A backend is a type that implements [`Reactor`](crate::Reactor) over some readiness
//! mechanism (an OS poller, a crate, io_uring, a simulator). This guide takes a backend
//! author from the contract to a CI matrix:
//!
//! 1. [the contract](#1-the-contract) every backend keeps;
//! 2. [the kit](#2-the-kit) that keeps most of it for you;
//! 3. [the suite](#3-the-suite) that checks the rest, in your own tests;
//! 4. [the runner](#4-the-runner) that prints and writes the matrix;
//! 5. [the reusable workflow](#5-the-reusable-workflow) that runs it on Linux, macOS and Windows;
//! 6. [the complete example](#6-the-complete-example): a poll(2) backend of about 400 lines.
//!
//! ## 1. The contract
//!
//! The [contract table](crate::Reactor#contract) on the `Reactor` trait is the whole
//! specification: ids, errors, modes, re-registration, capacity, timeouts, cross-thread
//! (de)registration, the waker. Around it a backend declares three things, which the suite
//! holds it to:
//!
//! - [`Reactor::supports`](crate::Reactor::supports): which [`Mode`](crate::Mode)s it
//!   registers (`Oneshot` always; the others where the mechanism has them, or emulated).
//!   An unsupported mode is `ErrorKind::Unsupported` ([`kit::unsupported_mode`](crate::kit::unsupported_mode)).
//! - [`Reactor::hints`](crate::Reactor::hints): which close and error hints it guarantees,
//!   scenario by scenario ([`Hints`](crate::Hints), built from [`Hints::NONE`](crate::Hints::NONE)
//!   with the `with_*` methods). A hint is never a false positive, declared or not.
//! - [`Reactor::mechanism`](crate::Reactor::mechanism): what it drives. A native mechanism by
//!   its variant (a poll(2) backend reports [`Mechanism::Poll`](crate::Mechanism::Poll)), and
//!   anything else as [`Mechanism::Other`](crate::Mechanism::Other)`("io_uring")`: the suite
//!   accepts `Other` on every OS, under a name of its own.
//!
//! Sources are [`BorrowedSource`](crate::BorrowedSource)s (a `BorrowedFd` on Unix, a
//! `BorrowedSocket` on Windows); the waker is a [`Waker`](crate::Waker) over your own
//! [`Wake`](crate::Wake) implementation. Import the traits with
//! [`use portable_reactor::prelude::*`](crate::prelude).
//!
//! ## 2. The kit
//!
//! [`portable_reactor::kit`](crate::kit) is what [`PollingReactor`](crate::PollingReactor) and
//! [`MioReactor`](crate::MioReactor) are built on, public: the registration
//! [`Book`](crate::kit::Book) (ids to keys, `AlreadyExists` / `NotFound`, oneshot disarming,
//! the events that do not fit kept for the next poll, stale slots held while a poll is in
//! flight), [`wait_until_deadline`](crate::kit::wait_until_deadline) (`EINTR`, spurious
//! returns, never early), and the [`PollLock`](crate::kit::PollLock) (one poll at a time, a
//! zero timeout never waits). The [kit's page](crate::kit#how-a-backend-uses-it) maps each
//! `Reactor` method to its kit calls. In short, with `book: Mutex<Book<X>>` and
//! `state: PollLock<S>` (`X` is what you keep per source, `S` the polling thread's buffers):
//!
//! ```rust,ignore
//! unsafe fn register(&self, source: BorrowedSource<'_>, id: EventId, interest: Interest, mode: Mode) -> io::Result<()> {
//!     self.check_mode(mode)?; // kit::unsupported_mode(mode, NAME, MECHANISM) if !supports(mode)
//!     let raw = kit::raw_source(source);
//!     // The closure gets the key to give the OS (never the caller's id) and returns your data.
//!     lock(&self.book).register(raw, id, interest, mode, |key| os_add(raw, key, interest))?;
//!     Ok(())
//! }
//!
//! fn deregister(&self, source: BorrowedSource<'_>) -> io::Result<()> {
//!     let raw = kit::raw_source(source);
//!     lock(&self.book).deregister(raw, |entry| os_delete(raw, entry), || self.state.is_polling())
//! }
//!
//! fn poll(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
//!     events.clear();
//!     let Some(mut state) = self.state.lock(timeout) else { return Ok(0) };
//!     // (first: the book's overflow, if any; see the example)
//!     kit::wait_until_deadline(timeout, |block| {
//!         let waited = os_wait(&mut state, block); // block: Forever, No, Until { deadline, remaining }
//!         let mut book = lock(&self.book);
//!         book.begin_report();
//!         for (key, what) in state.os_events() {
//!             book.report(key, events, |entry| Event::new(entry.id()).with_readable(what.readable && entry.interest().is_readable()));
//!         }
//!         book.end_report();
//!         waited?; // Interrupted is retried by the loop
//!         Ok(!events.is_empty() || self.take_wake()) // false: nothing to report, wait again
//!     })?;
//!     Ok(events.len())
//! }
//! ```
//!
//! The book is not synchronised: keep it in a `Mutex` of its own, never held across the OS
//! wait, so that other threads register while a poll blocks.
//!
//! [`Reactor::poll_from`](crate::Reactor::poll_from) has a default that calls `poll`. A
//! backend that overrides it, with the same body and
//! [`kit::wait_from(Some(start), timeout, ..)`](crate::kit::wait_from) in place of
//! `wait_until_deadline`, saves the runtime a clock read per loop iteration (our adapters do:
//! one body, `start` an `Option`).
//!
//! ## 3. The suite
//!
//! The portability suite is one test body per behaviour of the contract, in
//! `portable_reactor::conformance` (feature `conformance`). The `conformance_suite!` macro
//! ([portability suite](crate#portability-suite)) instantiates all of them as `#[test]`s for a backend, so your crate runs exactly the
//! suite ours run, with `cargo test`:
//!
//! ```toml
//! [dev-dependencies]
//! portable-reactor = { version = "0.1", features = ["conformance"] }
//! ```
//!
//! ```rust,ignore
//! // tests/conformance.rs
//! portable_reactor::conformance_suite!(my_backend, my_crate::MyReactor::new().unwrap());
//! ```
//!
//! Each behaviour names the contract row it pins; a failure says what the backend did and what
//! the contract wants. Waits in the suite are bounded; on a slow CI machine scale them with the
//! `PORTABLE_REACTOR_WAIT_SCALE` environment variable.
//!
//! ## 4. The runner
//!
//! One command runs every behaviour against chosen backends on this host, isolated (a hang or a
//! panic is that behaviour's failure), prints the behaviour × backend matrix, and writes it as
//! markdown, JUnit XML and JSON. Ours:
//!
//! ```text
//! cargo run --release --example conformance --features conformance -- \
//!     --backend all|polling,mio --format md,junit,json --out target/conformance/ \
//!     [--filter SUBSTRING] [--timeout SECS]
//! ```
//!
//! It writes `conformance.md` (also printed), `conformance.junit.xml` and `conformance.json`
//! into `--out`; the per-behaviour timeout (default 60 s) is scaled by
//! `PORTABLE_REACTOR_WAIT_SCALE`. Exit status: 0 when nothing failed unexpectedly (declared
//! deviations allowed), 1 on an unexpected failure, timeout or panic, 2 on a usage error.
//!
//! For your backend, an example (or bin) in your crate hands the runner named constructors,
//! and gets the same flags:
//!
//! ```rust,ignore
//! // examples/conformance.rs
//! use portable_reactor::conformance::runner::{self, Backend};
//!
//! fn main() {
//!     runner::main(&[Backend::new("mybackend", || {
//!         Box::new(my_crate::MyReactor::new().unwrap())
//!     })
//!     .with_deviations(my_crate::DEVIATIONS)]);
//! }
//! ```
//!
//! ## 5. The reusable workflow
//!
//! `.github/workflows/conformance.yml` in this repository is a reusable workflow
//! (`on: workflow_call`). It builds your runner example natively on each OS of the list, runs
//! `cargo run --release -p <package> --example <runner> --features <features> -- --format
//! md,junit,json --out target/conformance`, appends the markdown matrix to the job summary,
//! and uploads `target/conformance` as the artifact `conformance-<os>`. Its inputs:
//!
//! | input | default | what |
//! |---|---|---|
//! | `package` | `''` | the cargo package holding the runner |
//! | `runner` | `conformance` | the runner's example name |
//! | `features` | `conformance` | cargo features to build it with |
//! | `os` | `'["ubuntu-latest","macos-latest","windows-latest"]'` | runners, as a JSON list |
//! | `wait-scale` | `'1'` | `PORTABLE_REACTOR_WAIT_SCALE` for slow machines |
//!
//! ```yaml
//! # .github/workflows/portability.yml in your repository
//! name: portability
//! on: [push, pull_request]
//! jobs:
//!   conformance:
//!     uses: <owner>/portable-reactor/.github/workflows/conformance.yml@main
//!     with:
//!       package: my-backend
//!       runner: conformance
//!       # The runner example gets the suite from [dev-dependencies] (features = ["conformance"]),
//!       # so no feature of your package is needed.
//!       features: ''
//!       os: '["ubuntu-latest","macos-latest","windows-latest"]'
//! ```
//!
//! (Replace `<owner>` with this repository's owner, and pin a tag or commit instead of `main`.)
//!
//! ## 6. The complete example
//!
//! `examples/poll_backend.rs` in this repository is a complete third-party backend: poll(2)
//! on the kit, written as a user crate would (only public API), in about 400 lines (docs and a demo `main` included). It
//! passes the whole suite: `tests/example_backend.rs` runs `conformance_suite!` on it, so
//! `cargo test` runs it on Linux in CI. It is Unix only (poll(2), a self-pipe): on Windows,
//! and so under Wine, its `main` does nothing and the test is not built; our adapters are
//! the ones the suite checks there.
//!
//! ```text
//! cargo run --example poll_backend          # one event, one wake
//! cargo test --test example_backend         # the whole suite on it
//! ```
//!
//! Its key parts, beyond what [§ 2](#2-the-kit) shows:
//!
//! - **An interest list rebuilt per wait.** poll(2) watches the fds it is given, so each wait
//!   builds its `pollfd`s from [`Book::entries`](crate::kit::Book::entries) (the fd is the
//!   book's per-source data), leaving out the oneshot registrations that reported
//!   ([`Entry::is_armed`](crate::kit::Entry::is_armed)): the book gives poll(2) the oneshot
//!   mode it lacks. The timeout is [`Block::timeout_ms`](crate::kit::Block::timeout_ms),
//!   rounded up so a wait is never early.
//! - **A self-pipe for wakes and for changes.** A (de)registration made while another thread
//!   blocks in poll(2) writes the pipe if [`PollLock::is_polling`](crate::kit::PollLock::is_polling):
//!   the wait returns reporting nothing (`Ok(false)`), and `wait_until_deadline` waits again
//!   with the new list for the time left. A wake sets a flag first, so only a wake makes the
//!   poll return with no events.
//! - **The overflow first.** poll(2) returns every ready fd whatever the capacity; the book
//!   keeps what does not fit, and a poll whose book [`has_overflow`](crate::kit::Book::has_overflow)
//!   reports it ([`report_overflow`](crate::kit::Book::report_overflow)) before it asks the OS.
//! - **Translation.** A closed or failed source is ready for the directions registered;
//!   `POLLHUP` sets both close hints, `POLLRDHUP` (Linux) the read one, `POLLERR` the error
//!   hint, and the declared [`Hints`](crate::Hints) say exactly that.
