//! The traits a user must import to call their methods: `use portable_reactor::prelude::*;`.
//!
//! [`Reactor`] for every reactor method, [`AsSource`] for `as_source` on sockets and pipes,
//! [`Wake`] for a backend that builds its own [`Waker`](crate::Waker).
//!
//! ```
//! use portable_reactor::prelude::*;
//! use portable_reactor::{DefaultReactor, EventId, Events, Interest, Mode};
//!
//! let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
//! socket.set_nonblocking(true)?;
//! let reactor = DefaultReactor::new()?;
//! // SAFETY: `socket` outlives the reactor, which is declared after it and so dropped first.
//! unsafe { reactor.register(socket.as_source(), EventId(1), Interest::READABLE, Mode::Level)? };
//! let mut events = Events::with_capacity(8);
//! reactor.poll(&mut events, Some(std::time::Duration::ZERO))?;
//! # std::io::Result::Ok(())
//! ```

pub use crate::{AsSource, Reactor, Wake};
