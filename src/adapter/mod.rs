//! What every adapter in `backends/` shares: the registration book that makes the error
//! contract and id mapping identical everywhere, and the deadline loop behind `poll`.

mod book;
mod deadline;

pub(crate) use book::{Book, Entry};
pub(crate) use deadline::{wait_until_deadline, Block};

use std::io;

use crate::Mode;

/// `ErrorKind::Unsupported` for a mode a backend cannot register.
pub(crate) fn unsupported(mode: Mode, backend: &str, mechanism: crate::Mechanism) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{mode:?} mode is not supported by the {backend} backend on {mechanism}"),
    )
}
