//! Windows: anonymous pipes are not AFD sockets, so the loop cannot poll them. Each piped
//! stream gets a relay thread copying (blocking) between the pipe and a loopback TCP
//! connection whose other end the loop watches; a thread waits on (a duplicate of) the process
//! handle and closes another loopback connection when the process exits.

use std::cell::RefCell;
use std::io::{self, Read};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::windows::io::{AsHandle, AsRawHandle, OwnedHandle};
use std::rc::Rc;

use super::child::{check_exit, exit_failed, Inner};
use crate::runtime::{Runtime, WatchOptions};
use crate::{Interest, Reactor};

/// A pipe end the loop watches: the loop's end of a relay connection.
pub(super) type PipeEnd = TcpStream;

/// A loopback connection: (the loop's end, non-blocking; the relay thread's end, blocking).
fn relay_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let thread_end = TcpStream::connect(listener.local_addr()?)?;
    let (loop_end, peer) = listener.accept()?;
    // Another local process could connect to the listener first: accept only our own end.
    if peer != thread_end.local_addr()? {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "a stranger connected to the stdio relay's listener",
        ));
    }
    loop_end.set_nonblocking(true)?;
    let _ = loop_end.set_nodelay(true);
    let _ = thread_end.set_nodelay(true);
    Ok((loop_end, thread_end))
}

fn relay_thread(name: String, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new().name(name).spawn(body).map(|_| ())
}

/// Nothing before the spawn on Windows: the exit is waited for on the process handle.
pub(super) fn watch_exit_before<R: Reactor + 'static>(
    _rt: &mut Runtime<R>,
    _inner: &Rc<RefCell<Inner<R>>>,
) -> io::Result<()> {
    Ok(())
}

/// A thread waits on the process handle, then closes its end of a relay connection; the
/// loop's end is watched and reports the exit.
pub(super) fn watch_exit_after<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    inner: &Rc<RefCell<Inner<R>>>,
    child: &std::process::Child,
) -> io::Result<()> {
    let process: OwnedHandle = child.as_handle().try_clone_to_owned()?;
    let (loop_end, thread_end) = relay_pair()?;
    relay_thread(format!("reactor-exit-{}", child.id()), move || {
        // SAFETY: `process` is an owned, valid process handle for the whole wait.
        unsafe {
            windows_sys::Win32::System::Threading::WaitForSingleObject(
                process.as_raw_handle(),
                windows_sys::Win32::System::Threading::INFINITE,
            );
        }
        let _ = thread_end.shutdown(Shutdown::Both);
    })?;
    let shared = inner.clone();
    let options = WatchOptions::new().no_timeout();
    let id = rt.watch_with(
        loop_end,
        Interest::READABLE,
        options,
        move |rt, _, stream, event| {
            if let Err(e) = event {
                exit_failed(rt, &shared, e);
                return;
            }
            let mut buf = [0u8; 16];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break, // the waiting thread closed its end: the process exited
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break, // a reset ends the connection too
                }
            }
            check_exit(rt, &shared);
        },
    )?;
    inner.borrow_mut().exit_watch = Some(id);
    Ok(())
}

/// The child's piped stdin, stdout and stderr, each through a relay thread.
pub(super) fn pipes(
    child: &mut std::process::Child,
) -> io::Result<(Option<PipeEnd>, Option<PipeEnd>, Option<PipeEnd>)> {
    let pid = child.id();
    let stdin = match child.stdin.take() {
        Some(mut pipe) => {
            let (loop_end, mut thread_end) = relay_pair()?;
            relay_thread(format!("reactor-stdin-{pid}"), move || {
                let _ = io::copy(&mut thread_end, &mut pipe);
                // Dropping the pipe is the child's end of stream.
            })?;
            Some(loop_end)
        }
        None => None,
    };
    let stdout = child
        .stdout
        .take()
        .map(|pipe| output(pipe, format!("reactor-stdout-{pid}")))
        .transpose()?;
    let stderr = child
        .stderr
        .take()
        .map(|pipe| output(pipe, format!("reactor-stderr-{pid}")))
        .transpose()?;
    Ok((stdin, stdout, stderr))
}

fn output(mut pipe: impl Read + Send + 'static, name: String) -> io::Result<PipeEnd> {
    let (loop_end, mut thread_end) = relay_pair()?;
    relay_thread(name, move || {
        let _ = io::copy(&mut pipe, &mut thread_end);
        let _ = thread_end.shutdown(Shutdown::Write);
    })?;
    Ok(loop_end)
}

/// `SIGINT`, `SIGTERM`, `SIGKILL` terminate the process (`TerminateProcess`), as in Node.
pub(super) fn kill_with(child: &mut std::process::Child, signal: i32) -> io::Result<()> {
    match signal {
        2 | 9 | 15 => child.kill(),
        1..=64 => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("signal {signal} cannot be sent on Windows (SIGINT, SIGTERM and SIGKILL terminate)"),
        )),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{signal} is not a signal number"),
        )),
    }
}
