//! # portable-reactor
//!
//! One event_id API over every OS: register a source (a socket, a pipe, any raw fd or `SOCKET`)
//! under a caller-chosen [`EventId`], poll, and get the ids back, with the same semantics on
//! Linux (epoll), macOS and the BSDs (kqueue), Windows (IOCP) and illumos (event ports).
//!
//! - [`Reactor`]: the trait, its contract and the per-backend tables.
//! - Backends, thin adapters over well-kept crates: [`PollingReactor`] (over `polling`) and
//!   [`MioReactor`] (over `mio`); [`DefaultReactor`] for this OS, and [`reactor_by_name`] to
//!   choose one at run time.
//! - [`runtime`]: a Node/libuv-style loop on the trait (timers, immediates, next-tick, a
//!   thread pool, watches with deadlines under a high watermark), with tasks beside callbacks
//!   (`spawn_local`, `block_on`, [`runtime::Async`], [`runtime::Time`]); [`net`] (TCP, UDP,
//!   DNS as callbacks, and [`net::aio`] for tasks) and [`fs`] on it.
//! - [`prelude`]: the traits to import (`use portable_reactor::prelude::*`).
//! - Your own backend: the [`kit`] our adapters are built on, and the [`guide`] (the
//!   contract, the kit, the suite, the runner, the CI workflow, and a complete poll(2) backend).
//!
//! ```
//! use portable_reactor::{reactor_by_name, Events, Reactor};
//! use std::time::Duration;
//!
//! for name in portable_reactor::BACKENDS {
//!     let reactor = reactor_by_name(name)?;
//!     let mut events = Events::with_capacity(64);
//!     reactor.poll(&mut events, Some(Duration::ZERO))?;
//!     println!("{} drives {}", reactor.name(), reactor.mechanism());
//! }
//! # std::io::Result::Ok(())
//! ```
//!
//! ## Portability suite
//!
//! With the `conformance` feature, `portable_reactor::conformance` holds one test body per
//! behaviour of the contract, and the `conformance_suite!` macro instantiates all of them for
//! a backend: ours run it for both adapters, and a third-party backend can run the same suite
//! in its own tests, or through `conformance::runner` (a matrix as markdown, JUnit and JSON,
//! each behaviour in its own process).
//!
//! ## Features
//!
//! | feature | gives |
//! |---|---|
//! | `conformance` | the portability suite and its runner |
//! | `tokio` | `tokio::io::AsyncRead`/`AsyncWrite` for [`runtime::Async`] (tokio as a trait crate, no runtime) |
//! | `futures-io` | `futures_io::AsyncRead`/`AsyncWrite` for [`runtime::Async`] |
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(unix, windows)))]
compile_error!("portable-reactor supports Unix and Windows targets only");

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod event;
pub mod fs;
pub mod guide;
pub mod kit;
mod mechanism;
pub mod net;
pub mod prelude;
pub mod process;
mod reactor;
pub mod runtime;
pub mod signal;
mod source;
mod sync;
mod waker;

#[path = "../backends/polling.rs"]
mod polling_backend;

#[path = "../backends/mio.rs"]
mod mio_backend;

pub use event::{Event, EventId, Events, Interest, Mode};
pub use mechanism::Mechanism;
pub use mio_backend::MioReactor;
pub use polling_backend::PollingReactor;
pub use reactor::{Hints, Reactor};
pub use source::{AsSource, BorrowedSource, RawSource};
pub use waker::{Wake, Waker};

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The backend this crate recommends on this OS.
///
/// [`MioReactor`] on epoll and kqueue systems (Linux, Android, macOS, iOS, the BSDs): mio waits
/// with one syscall per poll and is natively edge-triggered, which the runtime's persistent
/// watches use. [`PollingReactor`] elsewhere (Windows, illumos, other Unix): it drives IOCP with
/// native level and oneshot modes, where mio would need the adapter's re-arming, and illumos's
/// native event ports, where mio would use the epoll emulation.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
pub type DefaultReactor = MioReactor;

/// The backend this crate recommends on this OS.
///
/// [`MioReactor`] on epoll and kqueue systems (Linux, Android, macOS, iOS, the BSDs): mio waits
/// with one syscall per poll and is natively edge-triggered, which the runtime's persistent
/// watches use. [`PollingReactor`] elsewhere (Windows, illumos, other Unix): it drives IOCP with
/// native level and oneshot modes, where mio would need the adapter's re-arming, and illumos's
/// native event ports, where mio would use the epoll emulation.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
pub type DefaultReactor = PollingReactor;

/// The names [`reactor_by_name`] accepts, besides `"default"`.
pub const BACKENDS: [&str; 2] = ["polling", "mio"];

/// Creates a reactor chosen at run time: `"polling"`, `"mio"` or `"default"` (the
/// [`DefaultReactor`] of this OS).
///
/// ```
/// let reactor = portable_reactor::reactor_by_name("mio")?;
/// assert_eq!(reactor.name(), "mio");
/// let err = portable_reactor::reactor_by_name("select").err().unwrap();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// `ErrorKind::InvalidInput` for an unknown name; the OS error if the reactor cannot be created.
pub fn reactor_by_name(name: &str) -> std::io::Result<Box<dyn Reactor>> {
    match name {
        "default" => Ok(Box::new(DefaultReactor::new()?)),
        "polling" => Ok(Box::new(PollingReactor::new()?)),
        "mio" => Ok(Box::new(MioReactor::new()?)),
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("unknown reactor backend {other:?}; expected one of: polling, mio, default"),
        )),
    }
}
