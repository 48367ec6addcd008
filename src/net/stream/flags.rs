//! A connection's state bits: ten flags and a waiting close in one `u16`, read and written
//! through accessors named after what they hold (`conn.eof()`, `conn.set_eof(true)`).

use super::done::Closing;
use super::{Connection, Stream};
use crate::Reactor;

/// The bits of [`Connection::flags`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Flags(u16);

impl Flags {
    /// A new connection's flags: all clear but `allow_half_open` as its options say.
    pub(super) fn new(allow_half_open: bool) -> Flags {
        let mut flags = Flags(0);
        flags.set(ALLOW_HALF_OPEN, allow_half_open);
        flags
    }

    #[inline]
    fn get(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    /// The bit's value, cleared.
    #[inline]
    fn take(&mut self, bit: u16) -> bool {
        let on = self.get(bit);
        self.0 &= !bit;
        on
    }

    #[inline]
    fn set(&mut self, bit: u16, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

const READING_PAUSED: u16 = 1 << 0;
const ALLOW_HALF_OPEN: u16 = 1 << 1;
const WANT_DRAIN: u16 = 1 << 2;
const SHUTDOWN_PENDING: u16 = 1 << 3;
const WRITE_SHUT: u16 = 1 << 4;
const EOF: u16 = 1 << 5;
const CLOSED: u16 = 1 << 6;
const UNREAD: u16 = 1 << 7;
const SHORT_READ_DRAINS: u16 = 1 << 8;
const IN_EVENT: u16 = 1 << 9;
/// A waiting close ([`Closing`]): two bits, at most one set.
const CLOSING_AFTER_FIN: u16 = 1 << 10;
const CLOSING_NEXT_EVENT: u16 = 1 << 11;

macro_rules! flag_accessors {
    ($($(#[$doc:meta])* $get:ident, $set:ident = $bit:ident;)*) => {
        impl<S: Stream, R: Reactor + 'static> Connection<S, R> {
            $(
                $(#[$doc])*
                #[inline]
                pub(super) fn $get(&self) -> bool {
                    self.flags.get($bit)
                }

                #[inline]
                pub(super) fn $set(&mut self, on: bool) {
                    self.flags.set($bit, on);
                }
            )*
        }
    };
}

flag_accessors! {
    /// [`pause_reading`](Connection::pause_reading) is in force.
    reading_paused, set_reading_paused = READING_PAUSED;
    /// A shutdown waits for the queued bytes to be written.
    shutdown_pending, set_shutdown_pending = SHUTDOWN_PENDING;
    /// FIN was sent.
    write_shut, set_write_shut = WRITE_SHUT;
    /// The read side reached EOF.
    eof, set_eof = EOF;
    /// Closed (or closing) by this layer or the user through this context.
    closed, set_closed = CLOSED;
    /// A readable event came while no data callback was set.
    unread, set_unread = UNREAD;
    /// A read shorter than the buffer may be taken for a drained socket (no `EAGAIN` read
    /// after it): set at watch time from the watch's mode and the backend's hints.
    short_read_drains, set_short_read_drains = SHORT_READ_DRAINS;
    /// The connection's watch callback is running: it asks for the interest the connection
    /// needs once, when it ends (`event::settle`), so a write from the data callback need not.
    in_event, set_in_event = IN_EVENT;
}

impl<S: Stream, R: Reactor + 'static> Connection<S, R> {
    /// The options allow a half-open connection (EOF read, writing goes on): set once, when
    /// the connection is made.
    #[inline]
    pub(super) fn allow_half_open(&self) -> bool {
        self.flags.get(ALLOW_HALF_OPEN)
    }

    /// A write was queued since the last drain.
    #[inline]
    pub(super) fn set_want_drain(&mut self, on: bool) {
        self.flags.set(WANT_DRAIN, on);
    }

    /// Whether a write was queued since the last drain; cleared.
    #[inline]
    pub(super) fn take_want_drain(&mut self) -> bool {
        self.flags.take(WANT_DRAIN)
    }

    /// Whether a readable event came while no data callback was set; cleared.
    #[inline]
    pub(super) fn take_unread(&mut self) -> bool {
        self.flags.take(UNREAD)
    }

    /// A close the user asked for that waits (for the FIN, or for the next event).
    #[inline]
    pub(super) fn closing(&self) -> Option<Closing> {
        if self.flags.get(CLOSING_AFTER_FIN) {
            Some(Closing::AfterFin)
        } else if self.flags.get(CLOSING_NEXT_EVENT) {
            Some(Closing::NextEvent)
        } else {
            None
        }
    }

    #[inline]
    pub(super) fn set_closing(&mut self, closing: Option<Closing>) {
        self.flags
            .set(CLOSING_AFTER_FIN, closing == Some(Closing::AfterFin));
        self.flags
            .set(CLOSING_NEXT_EVENT, closing == Some(Closing::NextEvent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_flag_is_its_own_bit() {
        let bits = [
            READING_PAUSED,
            ALLOW_HALF_OPEN,
            WANT_DRAIN,
            SHUTDOWN_PENDING,
            WRITE_SHUT,
            EOF,
            CLOSED,
            UNREAD,
            SHORT_READ_DRAINS,
            IN_EVENT,
            CLOSING_AFTER_FIN,
            CLOSING_NEXT_EVENT,
        ];
        let mut flags = Flags::new(false);
        for (i, &bit) in bits.iter().enumerate() {
            assert_eq!(bit.count_ones(), 1);
            flags.set(bit, true);
            for &other in &bits[i + 1..] {
                assert!(!flags.get(other), "setting {bit:#x} set {other:#x}");
            }
        }
        for &bit in &bits {
            flags.set(bit, false);
        }
        assert_eq!(flags, Flags::default());
        assert!(Flags::new(true).get(ALLOW_HALF_OPEN));
    }
}
