//! [`spawn`] and the [`Child`] handle: the exit, the deadline, kill, unref, and the stdio pipes.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::rc::Rc;

use super::pipe;
#[cfg(unix)]
use super::unix as sys;
#[cfg(windows)]
use super::windows as sys;
use super::{normalize_spawn_error, Command, Exit};
use crate::runtime::{Runtime, TimerId};
use crate::{EventId, Reactor};

/// What the exit callback gets.
type ExitCallback<R> = Box<dyn FnOnce(&mut Runtime<R>, io::Result<Exit>)>;

/// A child's state on the loop thread, shared by its handles and its watches.
pub(super) struct Inner<R: Reactor + 'static> {
    pub(super) child: Option<std::process::Child>,
    exit: Option<Exit>,
    on_exit: Option<ExitCallback<R>>,
    /// The watch that reports the exit (Unix: the `SIGCHLD` watcher; Windows: the exit relay).
    pub(super) exit_watch: Option<EventId>,
    timer: Option<TimerId>,
    timed_out: bool,
    stdout: Option<sys::PipeEnd>,
    stderr: Option<sys::PipeEnd>,
    stdin: Option<EventId>,
}

/// A handle to a spawned child (cheap to clone; all clones are the same child). Dropping the
/// handles neither kills nor detaches the child: its exit is still reported.
pub struct Child<R: Reactor + 'static> {
    inner: Rc<RefCell<Inner<R>>>,
    pid: u32,
}

impl<R: Reactor + 'static> Clone for Child<R> {
    fn clone(&self) -> Self {
        Child {
            inner: self.inner.clone(),
            pid: self.pid,
        }
    }
}

impl<R: Reactor + 'static> fmt::Debug for Child<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("exit", &self.inner.borrow().exit)
            .finish_non_exhaustive()
    }
}

/// Spawns `command`; `on_exit` runs once on the loop thread when the child has exited (with
/// its [`Exit`]), or with the error that made its status unknowable (e.g. `ECHILD` if other
/// code reaped it, or the reactor refusing the exit watch).
///
/// The child keeps the loop alive until its exit is reported (unless
/// [unref'd](Child::unref)); so does each piped output read by a data callback, until its end.
///
/// ```
/// use portable_reactor::process::{self, Command};
/// use portable_reactor::runtime::Runtime;
///
/// let mut rt = Runtime::new()?;
/// let err = process::spawn(&mut rt, &Command::new("no-such-program-xyz"), |_, _| {}).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound); // synchronously, as in Node
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// - `ErrorKind::NotFound` if the program does not exist, or the working directory does not
///   (the OS does not say which; on Windows also for a working directory that is a file); `PermissionDenied` if it is not executable;
///   `InvalidInput` if it is not in an executable format, and for a zero
///   [`timeout`](Command::timeout).
/// - The OS error of the spawn or of setting up the pipes (then the child is killed); the
///   runtime's error if the exit watch cannot be made (e.g. `QuotaExceeded`).
pub fn spawn<R, F>(rt: &mut Runtime<R>, command: &Command, on_exit: F) -> io::Result<Child<R>>
where
    R: Reactor + 'static,
    F: FnOnce(&mut Runtime<R>, io::Result<Exit>) + 'static,
{
    if command.timeout == Some(std::time::Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a process timeout of zero would kill it at once",
        ));
    }
    let inner = Rc::new(RefCell::new(Inner {
        child: None,
        exit: None,
        on_exit: Some(Box::new(on_exit)),
        exit_watch: None,
        timer: None,
        timed_out: false,
        stdout: None,
        stderr: None,
        stdin: None,
    }));
    // Unix: watch SIGCHLD before the child exists, so its exit cannot be missed.
    sys::watch_exit_before(rt, &inner)?;
    let mut child = match command.to_std().spawn() {
        Ok(child) => child,
        Err(e) => {
            let watch = inner.borrow_mut().exit_watch.take();
            if let Some(id) = watch {
                let _ = rt.close(id);
            }
            log::debug!("process: spawning {:?} failed: {e}", command.program);
            return Err(normalize_spawn_error(e));
        }
    };
    let pid = child.id();
    let setup = (|| {
        let (stdin, stdout, stderr) = sys::pipes(&mut child)?;
        let stdin = stdin.map(|pipe| pipe::writer(rt, pipe)).transpose()?;
        sys::watch_exit_after(rt, &inner, &child)?;
        io::Result::Ok((stdin, stdout, stderr))
    })();
    let (stdin, stdout, stderr) = match setup {
        Ok(pipes) => pipes,
        Err(e) => {
            log::warn!("process: setting up child {pid} failed ({e}): killing it");
            let _ = child.kill();
            let _ = child.wait();
            let watch = inner.borrow_mut().exit_watch.take();
            if let Some(id) = watch {
                let _ = rt.close(id);
            }
            return Err(e);
        }
    };
    {
        let mut i = inner.borrow_mut();
        i.child = Some(child);
        i.stdin = stdin;
        i.stdout = stdout;
        i.stderr = stderr;
    }
    if let Some(after) = command.timeout {
        let weak = Rc::downgrade(&inner);
        let timer = rt.set_timeout(after, move |_| {
            let Some(inner) = weak.upgrade() else { return };
            let mut i = inner.borrow_mut();
            i.timer = None;
            if i.exit.is_none() {
                log::debug!("process: child {pid} passed its deadline: killing it");
                i.timed_out = true;
                if let Some(child) = i.child.as_mut() {
                    if let Err(e) = child.kill() {
                        log::warn!("process: killing child {pid} at its deadline failed: {e}");
                    }
                }
            }
        });
        inner.borrow_mut().timer = Some(timer);
    }
    log::debug!("process: spawned {:?} as {pid}", command.program);
    // Unix: a child that exited before the first SIGCHLD watch poll is found by it anyway.
    Ok(Child { inner, pid })
}

/// Reports the exit if the child has exited: stops the exit watch and the deadline, then runs
/// the exit callback (once).
pub(super) fn check_exit<R: Reactor + 'static>(rt: &mut Runtime<R>, inner: &Rc<RefCell<Inner<R>>>) {
    let (result, watch, timer, callback) = {
        let mut i = inner.borrow_mut();
        if i.exit.is_some() || i.on_exit.is_none() {
            return;
        }
        let Some(child) = i.child.as_mut() else { return };
        let result = match child.try_wait() {
            Ok(None) => return,
            Ok(Some(status)) => {
                let exit = Exit {
                    status,
                    timed_out: i.timed_out,
                };
                i.exit = Some(exit);
                Ok(exit)
            }
            Err(e) => Err(e),
        };
        (result, i.exit_watch.take(), i.timer.take(), i.on_exit.take())
    };
    if let Some(id) = watch {
        let _ = rt.close(id);
    }
    if let Some(timer) = timer {
        rt.clear_timer(timer);
    }
    log::debug!("process: child exited: {result:?}");
    if let Some(callback) = callback {
        callback(rt, result);
    }
}

/// Ends the exit watch with `error` (the watch failed): the exit callback gets it.
pub(super) fn exit_failed<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    inner: &Rc<RefCell<Inner<R>>>,
    error: io::Error,
) {
    let (timer, callback) = {
        let mut i = inner.borrow_mut();
        i.exit_watch = None;
        (i.timer.take(), i.on_exit.take())
    };
    if let Some(timer) = timer {
        rt.clear_timer(timer);
    }
    if let Some(callback) = callback {
        callback(rt, Err(error));
    }
}

impl<R: Reactor + 'static> Child<R> {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit, once reported.
    pub fn exit(&self) -> Option<Exit> {
        self.inner.borrow().exit
    }

    /// Reads the child's stdout: `callback` gets each chunk as it arrives, in order, then
    /// `Ok(&[])` once at end of stream, or the error that ended the reading. Until this is
    /// called nothing is read (the child blocks once the pipe is full).
    ///
    /// # Errors
    ///
    /// `ErrorKind::InvalidInput` if stdout is not [`Stdio::Pipe`](super::Stdio::Pipe) or is
    /// read already; the runtime's error if the pipe cannot be watched.
    pub fn on_stdout(
        &self,
        rt: &mut Runtime<R>,
        callback: impl FnMut(&mut Runtime<R>, io::Result<&[u8]>) + 'static,
    ) -> io::Result<()> {
        let pipe = self.inner.borrow_mut().stdout.take();
        let pipe = pipe.ok_or_else(|| not_piped("stdout"))?;
        pipe::reader(rt, pipe, Box::new(callback)).map(|_| ())
    }

    /// [`on_stdout`](Child::on_stdout) for stderr.
    ///
    /// # Errors
    ///
    /// As for [`on_stdout`](Child::on_stdout).
    pub fn on_stderr(
        &self,
        rt: &mut Runtime<R>,
        callback: impl FnMut(&mut Runtime<R>, io::Result<&[u8]>) + 'static,
    ) -> io::Result<()> {
        let pipe = self.inner.borrow_mut().stderr.take();
        let pipe = pipe.ok_or_else(|| not_piped("stderr"))?;
        pipe::reader(rt, pipe, Box::new(callback)).map(|_| ())
    }

    /// Writes `data` to the child's stdin: what the pipe takes at once is written, the rest
    /// queued and written as the pipe drains (at most [`MAX_STDIN_QUEUE`](super::MAX_STDIN_QUEUE)
    /// bytes queued). Never blocks. A later failure (the child exited without reading) drops
    /// the queued bytes and is logged.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if stdin is not a pipe; `BrokenPipe` after
    /// [`close_stdin`](Child::close_stdin) or a failed write; `QuotaExceeded` beyond the queue
    /// bound (nothing of `data` is written); the OS error of the write.
    pub fn write_stdin(&self, rt: &mut Runtime<R>, data: &[u8]) -> io::Result<()> {
        let id = self.inner.borrow().stdin.ok_or_else(|| not_piped("stdin"))?;
        pipe::write(rt, id, data)
    }

    /// Closes the child's stdin once the queued bytes are written (the child reads end of
    /// stream). Closing twice does nothing.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if stdin is not a pipe.
    pub fn close_stdin(&self, rt: &mut Runtime<R>) -> io::Result<()> {
        let id = self.inner.borrow().stdin.ok_or_else(|| not_piped("stdin"))?;
        pipe::close(rt, id);
        Ok(())
    }

    /// Kills the child: `SIGKILL` on Unix, `TerminateProcess` on Windows. Nothing happens if
    /// its exit was reported already.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn kill(&self) -> io::Result<()> {
        let mut i = self.inner.borrow_mut();
        if i.exit.is_some() {
            return Ok(());
        }
        match i.child.as_mut() {
            Some(child) => child.kill(),
            None => Ok(()),
        }
    }

    /// Sends `signal` to the child (e.g. [`signal::SIGTERM`](crate::signal::SIGTERM)).
    /// Nothing happens if its exit was reported already (its pid may be another process's by
    /// then; until it is reported, the pid cannot be reused: the child is not reaped yet).
    /// On Windows `SIGINT`, `SIGTERM` and `SIGKILL` (2, 15, 9) terminate the process, as in
    /// Node.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a number that is not a signal; on Windows `Unsupported` for other
    /// signals; the OS error.
    pub fn kill_with(&self, signal: i32) -> io::Result<()> {
        let mut i = self.inner.borrow_mut();
        if i.exit.is_some() {
            return Ok(());
        }
        match i.child.as_mut() {
            Some(child) => sys::kill_with(child, signal),
            None => Ok(()),
        }
    }

    /// Lets the loop end while the child runs (its exit is still reported if the loop runs
    /// then). Pipes being read still keep the loop alive until their end.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the exit was reported already.
    pub fn unref(&self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.set_ref(rt, false)
    }

    /// Undoes [`unref`](Child::unref).
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the exit was reported already.
    pub fn ref_(&self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.set_ref(rt, true)
    }

    fn set_ref(&self, rt: &mut Runtime<R>, on: bool) -> io::Result<()> {
        let (watch, timer) = {
            let i = self.inner.borrow();
            (i.exit_watch, i.timer)
        };
        let id =
            watch.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the child's exit was reported"))?;
        if let Some(timer) = timer {
            if on {
                rt.ref_timer(timer);
            } else {
                rt.unref_timer(timer);
            }
        }
        if on {
            rt.ref_watch(id)
        } else {
            rt.unref_watch(id)
        }
    }
}

fn not_piped(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("the child's {what} is not a pipe (Stdio::Pipe), or is read already"),
    )
}
