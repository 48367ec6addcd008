//! One watcher's slot in the watcher table (`super::watchers`): where it stands with the OS,
//! its entry, its interest and mode, its state bits and its idle deadline, in 40 bytes.

use std::time::Duration;

use crate::{Interest, Mode};

/// Where a watcher stands with the OS.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Registered with the reactor.
    Registered,
    /// Waiting under the high watermark.
    Queued,
    /// Paused by the user: not registered, not queued; its deadline still runs.
    Paused,
}

/// One watcher. `E` is the type-erased source and callback.
pub(crate) struct Slot<E> {
    /// The id's generation (at most 32 bits: see `GENERATIONS`).
    pub(super) generation: u32,
    pub(crate) state: State,
    /// `None` while the watcher's own callback runs.
    pub(crate) entry: Option<E>,
    pub(crate) interest: Interest,
    /// The reactor mode of the registration.
    pub(crate) mode: Mode,
    /// `once`, `rearm`, `interest_dirty`, a pending pause or resume, `closing`, `in_queue` and
    /// `refed`, one bit each (see the accessors): a byte where eight were.
    pub(super) bits: u8,
    /// The idle timeout in nanoseconds (saturated), or `NO_TIMEOUT`.
    pub(super) timeout: u64,
    /// The last activity (an event, or the deadline being set) as a tick: the deadline is
    /// `timeout` after it, computed only when a heap entry surfaces, so an event costs a copy
    /// of the loop's tick. (The slot does not say which heap entry is its own: any entry of a
    /// live watch is taken as a lower bound of its deadline; see `super::watchers`.)
    pub(super) active: u64,
}

/// `Slot::timeout` of a watcher without a deadline.
pub(super) const NO_TIMEOUT: u64 = u64::MAX;
/// The latest tick: ticks and deadlines saturate at it.
pub(super) const MAX_TICK: u64 = u64::MAX - 1;

pub(super) fn timeout_nanos(timeout: Option<Duration>) -> u64 {
    timeout.map_or(NO_TIMEOUT, |t| {
        u64::try_from(t.as_nanos())
            .unwrap_or(u64::MAX)
            .min(NO_TIMEOUT - 1)
    })
}

pub(super) const ONCE: u8 = 1 << 0;
pub(super) const REARM: u8 = 1 << 1;
pub(super) const INTEREST_DIRTY: u8 = 1 << 2;
pub(super) const PAUSE_PENDING: u8 = 1 << 3;
pub(super) const PAUSE_PENDING_PAUSED: u8 = 1 << 4;
pub(super) const CLOSING: u8 = 1 << 5;
pub(super) const IN_QUEUE: u8 = 1 << 6;
pub(super) const REFED: u8 = 1 << 7;

impl<E> Slot<E> {
    /// The idle deadline as a tick: `timeout` after the last activity.
    pub(super) fn deadline(&self) -> Option<u64> {
        (self.timeout != NO_TIMEOUT).then(|| self.active.saturating_add(self.timeout).min(MAX_TICK))
    }

    #[inline]
    pub(super) fn bit(&self, bit: u8) -> bool {
        self.bits & bit != 0
    }

    #[inline]
    pub(super) fn set_bit(&mut self, bit: u8, on: bool) {
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
    }

    /// Fires once, then is removed.
    #[inline]
    pub(crate) fn once(&self) -> bool {
        self.bit(ONCE)
    }

    /// Persistent over a oneshot registration: re-armed after each callback.
    #[inline]
    pub(crate) fn rearm(&self) -> bool {
        self.bit(REARM)
    }

    /// The interest changed while the callback ran: re-register when it returns.
    pub(crate) fn set_interest_dirty(&mut self) {
        self.set_bit(INTEREST_DIRTY, true);
    }

    /// Whether the interest changed while the callback ran; cleared.
    #[inline]
    pub(crate) fn take_interest_dirty(&mut self) -> bool {
        let dirty = self.bit(INTEREST_DIRTY);
        self.set_bit(INTEREST_DIRTY, false);
        dirty
    }

    /// Paused (`Some(true)`) or resumed (`Some(false)`) while the callback ran.
    pub(crate) fn set_pause_pending(&mut self, pause: Option<bool>) {
        self.set_bit(PAUSE_PENDING, pause.is_some());
        self.set_bit(PAUSE_PENDING_PAUSED, pause == Some(true));
    }

    /// The pause or resume asked for while the callback ran; cleared.
    #[inline]
    pub(crate) fn take_pause_pending(&mut self) -> Option<bool> {
        let pause = self.bit(PAUSE_PENDING).then(|| self.bit(PAUSE_PENDING_PAUSED));
        self.set_pause_pending(None);
        pause
    }

    /// Closed while its callback ran: finish the close when it returns.
    #[inline]
    pub(crate) fn closing(&self) -> bool {
        self.bit(CLOSING)
    }

    pub(crate) fn set_closing(&mut self) {
        self.set_bit(CLOSING, true);
    }

    /// Its id is in the high-watermark queue (maybe from before a pause): moving back to
    /// `Queued` reuses that entry instead of adding one.
    pub(super) fn in_queue(&self) -> bool {
        self.bit(IN_QUEUE)
    }

    pub(super) fn set_in_queue(&mut self, on: bool) {
        self.set_bit(IN_QUEUE, on);
    }

    /// Keeps the loop alive.
    pub(super) fn refed(&self) -> bool {
        self.bit(REFED)
    }
}
