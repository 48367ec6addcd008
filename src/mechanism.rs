//! The OS readiness mechanism a reactor drives.

use std::fmt;

/// The OS mechanism under a reactor, as reported by [`Reactor::mechanism`](crate::Reactor::mechanism).
///
/// The named variants are the native mechanisms the portability suite knows per OS (it checks
/// that a backend reports one its OS has). A backend over anything else (io_uring, select, a
/// simulator, a remote poller) reports [`Mechanism::Other`] with a short lowercase name; the
/// suite accepts it on every OS. The enum is `#[non_exhaustive]`: more mechanisms may be named
/// in a minor release, so a `match` needs a `_` arm.
///
/// ```
/// use portable_reactor::Mechanism;
/// assert_eq!(Mechanism::Epoll.to_string(), "epoll");
/// assert_eq!(Mechanism::Other("io_uring").to_string(), "io_uring");
/// assert_ne!(Mechanism::Other("poll"), Mechanism::Poll, "name a native mechanism by its variant");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// Linux and Android `epoll`.
    Epoll,
    /// BSD and Apple `kqueue`.
    Kqueue,
    /// Windows I/O completion ports (socket readiness through AFD polls).
    Iocp,
    /// illumos and Solaris event ports.
    EventPorts,
    /// Portable `poll(2)`.
    Poll,
    /// A mechanism this crate does not name (io_uring, select, a simulator ...), by its short
    /// lowercase name. Not for the mechanisms above: a poll(2) backend reports
    /// [`Mechanism::Poll`], so the suite can check what it knows of poll(2).
    Other(&'static str),
}

impl Mechanism {
    /// The lowercase name: `epoll`, `kqueue`, `iocp`, `event-ports`, `poll`, or the name of an
    /// [`Other`](Mechanism::Other) mechanism.
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::Epoll => "epoll",
            Mechanism::Kqueue => "kqueue",
            Mechanism::Iocp => "iocp",
            Mechanism::EventPorts => "event-ports",
            Mechanism::Poll => "poll",
            Mechanism::Other(name) => name,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
