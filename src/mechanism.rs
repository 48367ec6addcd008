//! The OS readiness mechanism a reactor drives.

use std::fmt;

/// The OS mechanism under a reactor, as reported by [`Reactor::mechanism`](crate::Reactor::mechanism).
///
/// ```
/// use portable_reactor::Mechanism;
/// assert_eq!(Mechanism::Epoll.to_string(), "epoll");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
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
}

impl Mechanism {
    /// The lowercase name: `epoll`, `kqueue`, `iocp`, `event-ports`, `poll`.
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::Epoll => "epoll",
            Mechanism::Kqueue => "kqueue",
            Mechanism::Iocp => "iocp",
            Mechanism::EventPorts => "event-ports",
            Mechanism::Poll => "poll",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
