//! Signals as loop callbacks, in the style of libuv's `uv_signal_start` and Node's
//! `process.on('SIGTERM')`: [`watch`] a signal, get a callback on the loop thread in the poll
//! phase for each delivery, [`stop`](SignalWatcher::stop) or [`unref`](SignalWatcher::unref)
//! the watcher.
//!
//! ```
//! # #[cfg(unix)] {
//! use portable_reactor::runtime::Runtime;
//! use portable_reactor::signal;
//!
//! let mut rt = Runtime::new()?;
//! signal::watch(&mut rt, signal::SIGUSR1, |rt, watcher, result| {
//!     assert_eq!(result.unwrap(), signal::SIGUSR1);
//!     watcher.stop(rt); // the loop has nothing left: run() returns
//! })?;
//! signal::raise(signal::SIGUSR1)?;
//! rt.run()?;
//! # }
//! # std::io::Result::Ok(())
//! ```
//!
//! # How a signal reaches the loop
//!
//! The async-signal-safe part is [`signal-hook`](https://docs.rs/signal-hook)'s, not ours:
//! each watcher owns a socket pair (a Unix-domain pair on Unix, a connected loopback UDP pair
//! on Windows), `signal-hook` writes a byte into one end from its handler, and the other end
//! is an ordinary watch of the runtime. So a watcher is delivered in the poll phase, keeps the
//! loop alive like any watch until [unref'd](SignalWatcher::unref), counts toward the high
//! watermark (above it, it waits in the queue like any watch) and has no deadline. There is
//! no global state in this crate: each watcher has its own `signal-hook` action, removed when
//! the watcher stops or its runtime is dropped.
//!
//! - **Several watchers per signal** (on one runtime or several): each gets each delivery.
//! - **Coalescing**: as in libuv, deliveries that arrive before the loop reads them are
//!   coalesced: a burst of `n` signals gives at least one callback and at most `n`. A callback
//!   means "the signal arrived at least once since the last callback".
//! - **After the last watcher**: `signal-hook` cannot give a signal its default disposition back
//!   (its handler stays installed for the life of the process, see `signal_hook_registry::unregister`),
//!   so once a signal was watched and every watcher has stopped, a later delivery of it is
//!   discarded instead of, say, terminating the process. A program that wants a second
//!   `SIGTERM` to end it keeps a watcher that exits (as `examples/graceful_shutdown.rs` does).
//!
//! # Windows
//!
//! `signal-hook` uses the C runtime's `signal()` there, and the C runtime installs the console
//! control handler (`SetConsoleCtrlHandler`) itself; its handler runs on a thread the console
//! starts, and sends the byte from there. We chose this over calling `SetConsoleCtrlHandler`
//! ourselves (which takes a bare function pointer without a context, so reaching the runtimes
//! would need a global table in this crate) and over the `ctrlc` crate (one handler per
//! process, set once, never removed). Signals there:
//!
//! | signal | delivered on |
//! |---|---|
//! | [`SIGINT`] | Ctrl-C, [`raise`] |
//! | `SIGBREAK` (21, Windows only) | Ctrl-Break, [`raise`] |
//! | [`SIGTERM`] | [`raise`] only (Windows never sends it) |
//!
//! The console's close, logoff and shutdown events are not delivered (the C runtime does not
//! map them). Under Wine deliveries do not work: Wine's msvcrt lacks `SIG_GET`, which
//! `signal-hook-registry` uses to learn the previous handler (it then calls the value 2 as a
//! handler); real Windows CRTs have it. Any other number in `1..=64` is refused with `ErrorKind::Unsupported`.

use std::fmt;
use std::io;

use crate::runtime::{Runtime, WatchOptions};
use crate::{Event, EventId, Interest, Reactor};

#[cfg(unix)]
pub use libc::{
    SIGALRM, SIGCHLD, SIGCONT, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGTSTP, SIGUSR1, SIGUSR2, SIGWINCH,
};

/// Interrupt: Ctrl-C on Windows.
#[cfg(windows)]
pub const SIGINT: i32 = 2;
/// Termination request: only [`raise`] delivers it on Windows.
#[cfg(windows)]
pub const SIGTERM: i32 = 15;
/// Ctrl-Break (Windows only).
#[cfg(windows)]
pub const SIGBREAK: i32 = 21;

/// The signals no handler may catch or that `signal-hook` refuses to handle (`SIGKILL`,
/// `SIGSTOP`, `SIGILL`, `SIGFPE`, `SIGSEGV`; on Windows `SIGILL`, `SIGFPE`, `SIGSEGV`):
/// [`watch`] refuses them with `ErrorKind::InvalidInput`.
pub const FORBIDDEN: &[i32] = signal_hook::consts::FORBIDDEN;

/// The highest signal number [`watch`] considers; larger numbers are `InvalidInput`.
const MAX_SIGNAL: i32 = 64;

/// Bytes read from a watcher's socket per read: more deliveries than this before the loop
/// reads them are still one callback per read.
const DRAIN_BUFFER: usize = 64;

/// What a signal watcher's callback gets.
type SignalCallback<R> = Box<dyn FnMut(&mut Runtime<R>, SignalWatcher, io::Result<i32>)>;

/// A signal watcher's handle: the `Copy` id of its watch and the signal it watches.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignalWatcher {
    id: EventId,
    signal: i32,
}

impl SignalWatcher {
    /// The watcher's watch id.
    pub fn id(self) -> EventId {
        self.id
    }

    /// The signal it watches.
    pub fn signal(self) -> i32 {
        self.signal
    }

    /// Stops the watcher (also from inside its own callback): its `signal-hook` action is
    /// removed and its socket pair closed. Stopping twice does nothing.
    pub fn stop<R: Reactor + 'static>(self, rt: &mut Runtime<R>) {
        if rt.close(self.id).is_ok() {
            log::debug!("signal: watcher {} of signal {} stopped", self.id, self.signal);
        }
    }

    /// Lets the loop end while the watcher is active (libuv's `uv_unref`): [`Runtime::run`]
    /// returns when nothing else is left, and the watcher still gets the deliveries that arrive
    /// while the loop runs.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the watcher was stopped.
    pub fn unref<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        rt.unref_watch(self.id)
    }

    /// Undoes [`unref`](SignalWatcher::unref).
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the watcher was stopped.
    pub fn ref_<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        rt.ref_watch(self.id)
    }
}

/// Watches `signal` until stopped: `callback` runs on the loop thread, in the poll phase,
/// after each delivery (coalesced, see the [module docs](self)) with `Ok(signal)`, or once
/// with the error that ended the watcher (the runtime's: e.g. a registration the reactor
/// refused when the watcher was admitted from above the high watermark).
///
/// The watcher keeps the loop alive until [stopped](SignalWatcher::stop) or
/// [unref'd](SignalWatcher::unref), and has no deadline.
///
/// ```
/// # #[cfg(unix)] {
/// use portable_reactor::runtime::Runtime;
/// use portable_reactor::signal;
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let mut rt = Runtime::new()?;
/// let seen = Rc::new(Cell::new(0));
/// for _ in 0..2 {
///     let seen = seen.clone();
///     signal::watch(&mut rt, signal::SIGUSR2, move |rt, watcher, _| {
///         seen.set(seen.get() + 1);
///         watcher.stop(rt);
///     })?;
/// }
/// signal::raise(signal::SIGUSR2)?;
/// rt.run()?;
/// assert_eq!(seen.get(), 2); // each watcher got the delivery
/// # }
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// - `ErrorKind::InvalidInput` for a number that is not a signal (below 1, above 64, or one
///   the OS refuses) and for the [`FORBIDDEN`] signals (never a panic).
/// - `ErrorKind::Unsupported` on Windows for a signal it does not deliver (see the
///   [module docs](self#windows)).
/// - The OS error if the socket pair cannot be made; the runtime's error if it cannot be
///   watched (e.g. `QuotaExceeded` above the high watermark with a full queue).
pub fn watch<R, F>(rt: &mut Runtime<R>, signal: i32, callback: F) -> io::Result<SignalWatcher>
where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, SignalWatcher, io::Result<i32>) + 'static,
{
    check(signal)?;
    let (receiver, registration) = sys::register(signal)?;
    let source = SignalSource::<R> {
        receiver,
        registration: Some(registration),
        signal,
        callback: Box::new(callback),
    };
    let options = WatchOptions::new().no_timeout();
    let id = rt.watch_with(source, Interest::READABLE, options, on_readable::<R>)?;
    log::debug!("signal: watching signal {signal} as {id}");
    Ok(SignalWatcher { id, signal })
}

/// Sends `signal` to this process (`raise(3)`; on Windows the C runtime's `raise`), for tests
/// and for re-raising.
///
/// # Errors
///
/// The OS error, e.g. `InvalidInput` for a number that is not a signal.
pub fn raise(signal: i32) -> io::Result<()> {
    signal_hook::low_level::raise(signal)
}

/// `InvalidInput` / `Unsupported` for the numbers [`watch`] refuses.
fn check(signal: i32) -> io::Result<()> {
    if !(1..=MAX_SIGNAL).contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{signal} is not a signal number (1..={MAX_SIGNAL})"),
        ));
    }
    if FORBIDDEN.contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signal} cannot be watched (SIGKILL, SIGSTOP, SIGILL, SIGFPE, SIGSEGV)"),
        ));
    }
    #[cfg(windows)]
    if ![SIGINT, SIGTERM, SIGBREAK].contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("signal {signal} is not delivered on Windows (SIGINT, SIGBREAK and SIGTERM are)"),
        ));
    }
    Ok(())
}

/// A watcher's watch source: the receiving end of its socket pair, its `signal-hook` action
/// (removed on drop) and its callback.
struct SignalSource<R: Reactor + 'static> {
    receiver: sys::Receiver,
    registration: Option<signal_hook::SigId>,
    signal: i32,
    callback: SignalCallback<R>,
}

crate::net::delegate_source!(SignalSource<R: Reactor>, receiver);

impl<R: Reactor + 'static> Drop for SignalSource<R> {
    fn drop(&mut self) {
        if let Some(id) = self.registration.take() {
            // Also closes the sending end, which signal-hook owns.
            signal_hook::low_level::unregister(id);
        }
    }
}

impl<R: Reactor + 'static> fmt::Debug for SignalSource<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalSource")
            .field("signal", &self.signal)
            .finish_non_exhaustive()
    }
}

fn on_readable<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    source: &mut SignalSource<R>,
    event: io::Result<Event>,
) {
    let watcher = SignalWatcher {
        id,
        signal: source.signal,
    };
    if let Err(e) = event {
        log::warn!("signal: watcher {id} of signal {} ended: {e}", source.signal);
        (source.callback)(rt, watcher, Err(e));
        return;
    }
    let mut buf = [0u8; DRAIN_BUFFER];
    let mut delivered = false;
    loop {
        match sys::recv(&source.receiver, &mut buf) {
            Ok(0) => break,
            Ok(_) => delivered = true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("signal: reading watcher {id}'s socket failed: {e}");
                break;
            }
        }
    }
    if delivered {
        log::trace!("signal: signal {} delivered to watcher {id}", source.signal);
        (source.callback)(rt, watcher, Ok(source.signal));
    }
}

#[cfg(unix)]
mod sys {
    use std::io;
    use std::os::unix::net::UnixStream;

    pub(super) type Receiver = UnixStream;

    pub(super) fn recv(mut receiver: &Receiver, buf: &mut [u8]) -> io::Result<usize> {
        std::io::Read::read(&mut receiver, buf)
    }

    /// A Unix-domain socket pair; signal-hook's action sends a byte into the second end
    /// (`send` with `MSG_DONTWAIT`, async-signal-safe) and owns it.
    pub(super) fn register(signal: i32) -> io::Result<(Receiver, signal_hook::SigId)> {
        let (receiver, sender) = UnixStream::pair()?;
        receiver.set_nonblocking(true)?;
        sender.set_nonblocking(true)?;
        // `EINVAL` from `sigaction` (a number the OS has no signal for) is `InvalidInput`.
        let id = signal_hook::low_level::pipe::register(signal, sender)?;
        Ok((receiver, id))
    }
}

#[cfg(windows)]
mod sys {
    use std::io;
    use std::net::{Ipv4Addr, UdpSocket};

    /// The receiving socket, connected to the sender: datagrams from any other address are
    /// dropped by the OS, so another process cannot fake a signal.
    pub(super) type Receiver = UdpSocket;

    pub(super) fn recv(receiver: &Receiver, buf: &mut [u8]) -> io::Result<usize> {
        receiver.recv(buf)
    }

    /// A connected loopback UDP pair; the action (run by the C runtime on the console's control
    /// thread, or by `raise` on its caller's) sends one datagram, without blocking.
    pub(super) fn register(signal: i32) -> io::Result<(Receiver, signal_hook::SigId)> {
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        receiver.connect(sender.local_addr()?)?;
        sender.connect(receiver.local_addr()?)?;
        receiver.set_nonblocking(true)?;
        sender.set_nonblocking(true)?;
        let action = move || {
            let _ = sender.send(&[1]);
        };
        // SAFETY: on Windows the C runtime runs signal handlers on an ordinary thread (the
        // console's control thread, or `raise`'s caller), not interrupting one, so the action
        // may do what any thread may; it only sends a datagram on a socket it owns.
        let id = unsafe { signal_hook::low_level::register(signal, action) }?;
        Ok((receiver, id))
    }
}
