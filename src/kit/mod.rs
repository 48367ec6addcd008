//! The backend kit: what every backend shares, public for third-party backends.
//!
//! [`PollingReactor`](crate::PollingReactor) and [`MioReactor`](crate::MioReactor) are built on
//! exactly these pieces, and so is the example poll(2) backend of the
//! [guide](crate::guide#writing-a-backend). Most of the [`Reactor`](crate::Reactor) contract is
//! in them, so a backend that uses them only has to talk to its OS mechanism:
//!
//! - [`Book`]: the registrations. Ids to internal keys (every `usize` id works), the
//!   `AlreadyExists` / `NotFound` answers, oneshot disarming, events that do not fit in
//!   [`Events`](crate::Events) kept for the next poll, two OS events for one source merged into
//!   one, and slots of sources deregistered during a poll held until that poll has translated
//!   its events (so a stale OS event is never reported under a new registration's id).
//! - [`wait_until_deadline`] and [`Block`]: the loop around the OS wait. `EINTR` and spurious
//!   returns are retried, a timeout is never cut short, a zero timeout is exactly one
//!   non-blocking call. [`wait_from`] is the same loop for
//!   [`Reactor::poll_from`](crate::Reactor::poll_from), counting from the caller's clock read.
//! - [`PollLock`]: one poll at a time; a zero-timeout poll never waits behind another one; and
//!   whether a poll is in flight, for [`Book::deregister`].
//! - [`unsupported_mode`] and [`raw_source`]: the `Unsupported` error every backend returns
//!   for a mode it lacks, and the raw value of a borrowed source (the book's key).
//!
//! # How a backend uses it
//!
//! | `Reactor` method | kit call |
//! |---|---|
//! | `register` | check the mode ([`unsupported_mode`]), then [`Book::register`] with the OS call in its closure |
//! | `reregister` | check the mode, then [`Book::reregister`] with the OS call in its closure |
//! | `deregister` | [`Book::deregister`] with the OS call and [`PollLock::is_polling`] |
//! | `poll` | [`PollLock::lock`]; the book's overflow first ([`Book::report_overflow`]); then [`wait_until_deadline`] around the OS wait, translating each wait between [`Book::begin_report`] and [`Book::end_report`] with [`Book::report`] |
//! | `poll_from` (optional) | as `poll`, with [`wait_from`] |
//!
//! The book is not synchronised: keep it in a `Mutex` of its own, locked by the
//! (de)registrations and once per OS wait to translate its events, and never held across the
//! OS wait (so registrations from other threads go on while a poll blocks).
//!
//! # Stability
//!
//! The kit follows the crate's semver like the [`Reactor`](crate::Reactor) trait does: the
//! items here are the interface our own adapters use, and changes to them are announced in the
//! CHANGELOG as breaking. What is internal stays out of it: the book's source map, its slab,
//! and how it merges events are implementation details, and [`Block`] is exhaustive because a
//! wait can only block forever, not at all, or until a deadline.

mod book;
mod deadline;
mod lock;
mod source_map;

pub use book::{Book, Entry};
pub(crate) use deadline::wait_since;
pub use deadline::{wait_from, wait_until_deadline, Block};
pub use lock::PollLock;

use std::io;

use crate::{BorrowedSource, Mechanism, Mode, RawSource};

/// The `ErrorKind::Unsupported` error for a mode a backend cannot register, as the contract
/// wants it: return it from `register` and `reregister` before touching the OS or the book.
///
/// ```
/// use portable_reactor::{kit, Mechanism, Mode};
/// let err = kit::unsupported_mode(Mode::Edge, "poll-example", Mechanism::Poll);
/// assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
/// assert_eq!(err.to_string(), "Edge mode is not supported by the poll-example backend on poll");
/// ```
pub fn unsupported_mode(mode: Mode, backend: &str, mechanism: Mechanism) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{mode:?} mode is not supported by the {backend} backend on {mechanism}"),
    )
}

/// The raw value of a borrowed source (a `RawFd` on Unix, a `RawSocket` on Windows): what the
/// [`Book`] is keyed by.
///
/// ```
/// use portable_reactor::{kit, AsSource};
/// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// let raw = kit::raw_source(socket.as_source());
/// # let _ = raw;
/// # std::io::Result::Ok(())
/// ```
pub fn raw_source(source: BorrowedSource<'_>) -> RawSource {
    crate::source::raw(source)
}
