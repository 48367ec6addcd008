//! Unix: the exit through a `SIGCHLD` watcher per child and `waitpid(pid, WNOHANG)` for that
//! child only; the stdio pipes made non-blocking and watched as they are.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use super::child::{check_exit, exit_failed, Inner};
use crate::runtime::Runtime;
use crate::{signal, Reactor};

/// A pipe end the loop watches.
pub(super) type PipeEnd = File;

/// Watches `SIGCHLD` for this child (before it is spawned, so no exit is missed): each
/// delivery asks whether *this* child exited.
pub(super) fn watch_exit_before<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    inner: &Rc<RefCell<Inner<R>>>,
) -> io::Result<()> {
    let shared = inner.clone();
    let watcher = signal::watch(rt, signal::SIGCHLD, move |rt, _, delivered| match delivered {
        Ok(_) => check_exit(rt, &shared),
        Err(e) => exit_failed(rt, &shared, e),
    })?;
    inner.borrow_mut().exit_watch = Some(watcher.id());
    Ok(())
}

/// Nothing more on Unix: the `SIGCHLD` watcher is up.
pub(super) fn watch_exit_after<R: Reactor + 'static>(
    _rt: &mut Runtime<R>,
    _inner: &Rc<RefCell<Inner<R>>>,
    _child: &std::process::Child,
) -> io::Result<()> {
    Ok(())
}

/// The child's piped stdin, stdout and stderr, non-blocking.
pub(super) fn pipes(
    child: &mut std::process::Child,
) -> io::Result<(Option<PipeEnd>, Option<PipeEnd>, Option<PipeEnd>)> {
    let stdin = child.stdin.take().map(|p| nonblocking(p.into())).transpose()?;
    let stdout = child.stdout.take().map(|p| nonblocking(p.into())).transpose()?;
    let stderr = child.stderr.take().map(|p| nonblocking(p.into())).transpose()?;
    Ok((stdin, stdout, stderr))
}

fn nonblocking(fd: OwnedFd) -> io::Result<PipeEnd> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, reading then setting its status flags.
    unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        if flags < 0 || libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(File::from(fd))
}

/// `kill(2)`; the child is not reaped yet (its exit was not reported), so the pid is its own.
pub(super) fn kill_with(child: &mut std::process::Child, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
