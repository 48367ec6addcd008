//! A watch's entry as its slot stores it: inline when it is small (no allocation), else boxed.
//!
//! A server's watches are mostly its connections, thousands of them, each idle most of the
//! time: as a `Box<dyn Entry>` each was a 16-byte fat pointer in its slot plus a heap block of
//! its own (a 56-byte connection is a 64-byte malloc chunk). Stored inline, an entry of up to
//! [`INLINE_BYTES`] costs its size in the slot and no allocation: one allocation fewer per
//! accept, one pointer fewer to follow per event, and 16 bytes fewer per idle connection
//! (88-byte slot, where 40 plus a 64-byte chunk were). A bigger (or over-aligned) entry is
//! boxed in the same storage.
//!
//! The storage is type-erased by hand: one pointer to a table of the stored type's functions
//! (`Ops`, a constant per type) and the bytes of the value (or of its `Box`). Every function
//! of the table is generic over the stored type, which [`StoredEntry::new`] fixes with the
//! bytes: that pairing is the invariant every `unsafe` block below relies on.

use std::any::Any;
use std::cell::UnsafeCell;
use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, MaybeUninit};

use super::watch::Entry;
use super::Runtime;
use crate::{BorrowedSource, Event, EventId, Reactor};

/// The words an entry may take to be stored inline. Sized for the net module's connection
/// entry, the watch a server holds by the thousand: 56 bytes with a 4-byte fd, 64 with a
/// Windows `SOCKET` (pinned by `net::stream`'s size test).
const INLINE_WORDS: usize = if cfg!(windows) { 8 } else { 7 };
/// The bytes an entry may take to be stored inline.
pub(crate) const INLINE_BYTES: usize = INLINE_WORDS * size_of::<usize>();

/// What a callback's panic leaves: its payload, to resume once the runtime is consistent.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Runs the callback of the entry the storage holds.
type CallFn<R> = unsafe fn(&Bytes, &mut Runtime<R>, EventId, io::Result<Event>) -> Result<(), Payload>;

/// The functions of one stored type (inline or boxed).
struct Ops<R: Reactor + 'static> {
    source: unsafe fn(&Bytes) -> BorrowedSource<'_>,
    source_any: unsafe fn(&Bytes) -> &mut dyn Any,
    call: CallFn<R>,
    drop: unsafe fn(&Bytes),
    /// Whether the value is inline (else `Storage` holds its `Box`).
    #[cfg_attr(not(test), allow(dead_code))]
    inline: bool,
}

/// The bytes of a stored value: a `T` inline, or a `Box<T>`.
type Storage = MaybeUninit<[usize; INLINE_WORDS]>;
/// The storage as the functions get it: in an `UnsafeCell`, since the stored value may mutate
/// itself through a shared reference (a `Cell` in a source), which bytes reached through a
/// plain `&Storage` could not allow.
type Bytes = UnsafeCell<Storage>;

/// A watch's source and callback, inline or boxed (see the module doc).
pub(crate) struct StoredEntry<R: Reactor + 'static> {
    /// The functions of the type stored in `data`, inline or boxed as it is stored.
    ops: &'static Ops<R>,
    data: Bytes,
    /// The stored type may be neither `Send` nor `Sync` (an `Rc`): neither is this.
    _not_send: PhantomData<*mut ()>,
}

/// Whether a `T` is stored inline.
const fn fits<T>() -> bool {
    size_of::<T>() <= INLINE_BYTES && align_of::<T>() <= align_of::<Storage>()
}

/// `P` is how the stored value is kept: `Inline<T>` or `Boxed<T>`. Every function below is
/// called only on storage that holds a `P` (`StoredEntry::new` pairs a table with its `P`),
/// and `drop_of` only once, last.
trait Place<R: Reactor + 'static>: 'static {
    /// Whether this is the value itself (else its box).
    const INLINE: bool;
    /// The stored entry's type.
    type Entry: Entry<R>;
    fn entry(&self) -> &Self::Entry;
    fn entry_mut(&mut self) -> &mut Self::Entry;
}

/// A `T` stored inline.
#[repr(transparent)]
struct Inline<T>(T);

/// A `T` stored in a box.
struct Boxed<T>(Box<T>);

/// `Place` for a wrapper whose field derefs to the entry (`T` itself, or `Box<T>`).
macro_rules! place {
    ($($wrapper:ident: $inline:literal),*) => {$(
        impl<R: Reactor + 'static, T: Entry<R> + 'static> Place<R> for $wrapper<T> {
            const INLINE: bool = $inline;
            type Entry = T;
            #[inline(always)]
            fn entry(&self) -> &T {
                &self.0
            }
            #[inline(always)]
            fn entry_mut(&mut self) -> &mut T {
                &mut self.0
            }
        }
    )*};
}

place!(Inline: true, Boxed: false);

/// # Safety
/// `data` holds a live `P`, not mutably borrowed while the result lives.
unsafe fn source_of<R: Reactor + 'static, P: Place<R>>(data: &Bytes) -> BorrowedSource<'_> {
    // SAFETY: the caller's promise.
    unsafe { (*data.get().cast::<P>()).entry().source() }
}

/// # Safety
/// `data` holds a live `P`, not otherwise borrowed while the result lives.
#[allow(clippy::mut_from_ref)]
unsafe fn source_any_of<R: Reactor + 'static, P: Place<R>>(data: &Bytes) -> &mut dyn Any {
    // SAFETY: the caller's promise.
    unsafe { (*data.get().cast::<P>()).entry_mut().source_any() }
}

/// # Safety
/// `data` holds a live `P`, not otherwise borrowed during the call.
unsafe fn call_of<R: Reactor + 'static, P: Place<R>>(
    data: &Bytes,
    rt: &mut Runtime<R>,
    id: EventId,
    event: io::Result<Event>,
) -> Result<(), Payload> {
    // SAFETY: the caller's promise.
    unsafe { (*data.get().cast::<P>()).entry_mut().call(rt, id, event) }
}

/// # Safety
/// `data` holds a live `P`, not borrowed and not used again.
unsafe fn drop_of<R: Reactor + 'static, P: Place<R>>(data: &Bytes) {
    // SAFETY: the caller's promise.
    unsafe { data.get().cast::<P>().drop_in_place() }
}

/// The function table of values stored as `P`.
struct OpsOf<R, P>(PhantomData<(R, P)>);

impl<R: Reactor + 'static, P: Place<R>> OpsOf<R, P> {
    const OPS: Ops<R> = Ops {
        source: source_of::<R, P>,
        source_any: source_any_of::<R, P>,
        call: call_of::<R, P>,
        drop: drop_of::<R, P>,
        inline: P::INLINE,
    };
}

impl<R: Reactor + 'static> StoredEntry<R> {
    /// Stores `entry`: inline if it fits in [`INLINE_BYTES`] (and is at most word-aligned),
    /// else in a box.
    pub(crate) fn new<T: Entry<R> + 'static>(entry: T) -> StoredEntry<R> {
        let mut data = Storage::uninit();
        let ops = if fits::<T>() {
            // SAFETY: `data` is uninitialised storage big and aligned enough for a `T`
            // (`fits`), and `OPS` is the table of values stored as `T`.
            unsafe { data.as_mut_ptr().cast::<Inline<T>>().write(Inline(entry)) };
            &OpsOf::<R, Inline<T>>::OPS
        } else {
            const { assert!(fits::<Boxed<()>>()) };
            // SAFETY: a `Boxed<T>` (`T: Sized`) is one pointer, which the storage holds
            // (checked above), and `OPS` is the table of values stored as `Boxed<T>`.
            unsafe { data.as_mut_ptr().cast::<Boxed<T>>().write(Boxed(Box::new(entry))) };
            &OpsOf::<R, Boxed<T>>::OPS
        };
        StoredEntry {
            ops,
            data: UnsafeCell::new(data),
            _not_send: PhantomData,
        }
    }

    /// The watched source.
    #[inline]
    pub(crate) fn source(&self) -> BorrowedSource<'_> {
        // SAFETY: `ops` is the table of the type `data` holds (`new`), not dropped yet, and
        // `&self` keeps it from being mutably borrowed for the returned lifetime.
        unsafe { (self.ops.source)(&self.data) }
    }

    /// The watched source, as `Any` for a typed lookup.
    pub(crate) fn source_any(&mut self) -> &mut dyn Any {
        // SAFETY: as in `source`; `&mut self` makes the borrow unique.
        unsafe { (self.ops.source_any)(&self.data) }
    }

    /// Runs the callback with `event`; a one-shot entry's source and callback are consumed
    /// (what is left is dropped with the entry). `Err` holds the payload of a panic of a
    /// persistent entry's callback (the entry, its source still open, is intact); a one-shot
    /// entry's panic unwinds through.
    #[inline]
    pub(crate) fn call(
        &mut self,
        rt: &mut Runtime<R>,
        id: EventId,
        event: io::Result<Event>,
    ) -> Result<(), Payload> {
        // SAFETY: as in `source`; `&mut self` makes the borrow unique.
        unsafe { (self.ops.call)(&self.data, rt, id, event) }
    }

    /// Whether the entry is stored inline (no allocation of its own).
    #[cfg(test)]
    pub(crate) fn is_inline(&self) -> bool {
        self.ops.inline
    }
}

impl<R: Reactor + 'static> Drop for StoredEntry<R> {
    fn drop(&mut self) {
        // SAFETY: as in `source`; `&mut self` makes the borrow unique, and this is the last
        // use of `data`.
        unsafe { (self.ops.drop)(&self.data) }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io;
    use std::net::UdpSocket;
    use std::rc::Rc;

    use super::super::watch::{Once, Persistent};
    use super::*;
    use crate::DefaultReactor;

    type Rt = Runtime<DefaultReactor>;

    /// Counts its drops.
    struct Tracked(Rc<Cell<u32>>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    fn socket() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").unwrap()
    }

    fn event(id: EventId) -> io::Result<Event> {
        Ok(Event::new(id).with_readable(true))
    }

    #[test]
    fn a_small_entry_is_inline_and_a_big_one_boxed_and_each_drops_once() {
        let mut rt = Rt::new().unwrap();
        let drops = Rc::new(Cell::new(0));
        let calls = Rc::new(Cell::new(0));
        let (tracked, c) = (Tracked(drops.clone()), calls.clone());
        let small = StoredEntry::new(Persistent {
            source: socket(),
            callback: move |_: &mut Rt, _: EventId, _: &mut UdpSocket, _| {
                let _ = &tracked;
                c.set(c.get() + 1);
            },
        });
        assert!(small.is_inline());
        let (tracked, big_state, c) = (Tracked(drops.clone()), [7u64; 16], calls.clone());
        let mut big = StoredEntry::new(Persistent {
            source: socket(),
            callback: move |_: &mut Rt, _: EventId, _: &mut UdpSocket, _| {
                let _ = &tracked;
                c.set(c.get() + big_state[15] as u32);
            },
        });
        assert!(!big.is_inline());
        // Moved, as the runtime moves an entry out of its slot and back.
        let mut moved = [small];
        let id = EventId(1);
        assert!(moved[0].call(&mut rt, id, event(id)).is_ok());
        assert!(big.call(&mut rt, id, event(id)).is_ok());
        assert_eq!(calls.get(), 8);
        assert!(moved[0].source_any().downcast_mut::<UdpSocket>().is_some());
        assert!(big.source_any().downcast_mut::<UdpSocket>().is_some());
        assert!(moved[0].source_any().downcast_mut::<u32>().is_none());
        assert_eq!(drops.get(), 0);
        drop(moved);
        assert_eq!(drops.get(), 1);
        drop(big);
        assert_eq!(drops.get(), 2);
    }

    #[test]
    fn a_panicking_callback_leaves_the_entry_whole() {
        let mut rt = Rt::new().unwrap();
        let drops = Rc::new(Cell::new(0));
        let tracked = Tracked(drops.clone());
        let mut entry = StoredEntry::new(Persistent {
            source: socket(),
            callback: move |_: &mut Rt, _: EventId, _: &mut UdpSocket, _| {
                let _ = &tracked;
                panic!("callback panics");
            },
        });
        let id = EventId(3);
        assert!(entry.call(&mut rt, id, event(id)).is_err());
        // Still whole: its source is there, nothing dropped.
        assert!(entry.source_any().downcast_mut::<UdpSocket>().is_some());
        let _ = entry.source();
        assert_eq!(drops.get(), 0);
        drop(entry);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn a_one_shot_entry_hands_over_its_source_once() {
        let mut rt = Rt::new().unwrap();
        let drops = Rc::new(Cell::new(0));
        let got = Rc::new(Cell::new(false));
        let (tracked, g) = (Tracked(drops.clone()), got.clone());
        let mut entry = StoredEntry::new(Once(Some((
            socket(),
            move |_: &mut Rt, source: UdpSocket, _: io::Result<Event>| {
                drop(tracked);
                g.set(source.local_addr().is_ok());
            },
        ))));
        assert!(entry.is_inline());
        let _ = entry.source();
        let id = EventId(4);
        assert!(entry.call(&mut rt, id, event(id)).is_ok());
        assert!(got.get());
        assert_eq!(drops.get(), 1, "the callback was consumed by its call");
        // The shell is no source of that type any more, and a second call does nothing.
        assert!(entry.source_any().downcast_mut::<UdpSocket>().is_none());
        assert!(entry.call(&mut rt, id, event(id)).is_ok());
        drop(entry);
        assert_eq!(drops.get(), 1);
    }
}
