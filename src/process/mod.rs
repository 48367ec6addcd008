//! Child processes on the loop, in the style of libuv's `uv_spawn` and Node's
//! `child_process.spawn`: [`spawn`] a [`Command`] with its arguments, environment, working
//! directory and stdio, get the [`Exit`] in a callback exactly once, read its stdout and
//! stderr as data callbacks, write its stdin from the loop, [`kill`](Child::kill) it, give it a
//! deadline, [`unref`](Child::unref) it.
//!
//! ```
//! use portable_reactor::process::{self, Command, Stdio};
//! use portable_reactor::runtime::Runtime;
//! use std::cell::RefCell;
//! use std::rc::Rc;
//!
//! let mut rt = Runtime::new()?;
//! # let (program, args): (&str, &[&str]) = if cfg!(windows) { ("cmd", &["/C", "echo hi"]) } else { ("sh", &["-c", "echo hi"]) };
//! let child = process::spawn(
//!     &mut rt,
//!     &Command::new(program).args(args).stdout(Stdio::Pipe),
//!     |_, exit| assert!(exit.unwrap().success()),
//! )?;
//! let out = Rc::new(RefCell::new(Vec::new()));
//! let o = out.clone();
//! child.on_stdout(&mut rt, move |_, data| o.borrow_mut().extend_from_slice(data.unwrap()))?;
//! rt.run()?; // returns once the child has exited and its stdout reached EOF
//! assert_eq!(String::from_utf8_lossy(&out.borrow()).trim(), "hi");
//! # std::io::Result::Ok(())
//! ```
//!
//! # How it works
//!
//! Spawning is `std::process::Command`'s (so a program that cannot be started is an `Err` from
//! [`spawn`] itself, synchronously, as in Node). Everything after is a watch of the runtime,
//! so the loop's guarantees hold (the high watermark, stats, unref):
//!
//! - **Unix**: the exit is detected like libuv does, on `SIGCHLD` through a
//!   [`signal`](crate::signal) watcher per child, which then asks for *this* child's status
//!   only (`waitpid(pid, WNOHANG)`, through `std::process::Child::try_wait`): children spawned
//!   by other code are never reaped. The stdio pipes are made non-blocking and watched directly.
//! - **Windows**: anonymous pipes cannot be polled (they are not AFD sockets), so each piped
//!   stream has a relay thread copying between the pipe (blocking) and a loopback TCP
//!   connection whose other end the loop watches; a thread waits on the process handle and
//!   closes another loopback connection when the process exits. The TCP window gives the
//!   relays backpressure (a chatty child waits for the loop; nothing is queued without bound)
//!   and keeps the order of the bytes; end of stream is the relay closing its connection.
//!
//! The exit callback and the end of stdout/stderr are independent: the exit may be reported
//! before the last output is read. The loop stays alive until both the exit is reported and
//! each stream read by a data callback reached its end.
//!
//! On Unix, a write to the stdin of a child that exited raises `SIGPIPE`; Rust programs ignore
//! it (std sets this up before `main`), and the write then fails with `BrokenPipe`.

mod child;
mod pipe;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use child::{spawn, Child};
pub use pipe::MAX_STDIN_QUEUE;

/// What a child's stdin, stdout or stderr is connected to.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stdio {
    /// This process's own stream (the default, as for `std::process::Command::spawn`).
    #[default]
    Inherit,
    /// The null device.
    Null,
    /// A pipe the loop watches: read with [`Child::on_stdout`] / [`Child::on_stderr`], write
    /// with [`Child::write_stdin`].
    Pipe,
}

impl Stdio {
    fn to_std(self) -> std::process::Stdio {
        match self {
            Stdio::Inherit => std::process::Stdio::inherit(),
            Stdio::Null => std::process::Stdio::null(),
            Stdio::Pipe => std::process::Stdio::piped(),
        }
    }
}

/// What to spawn: a program, its arguments, environment, working directory, stdio and
/// deadline. A builder, like `std::process::Command`.
///
/// ```
/// use portable_reactor::process::{Command, Stdio};
/// use std::time::Duration;
/// let cmd = Command::new("make")
///     .arg("-j2")
///     .env("CC", "cc")
///     .env_remove("MAKEFLAGS")
///     .current_dir("/tmp")
///     .stdout(Stdio::Pipe)
///     .stderr(Stdio::Null)
///     .timeout(Duration::from_secs(60));
/// # let _ = cmd;
/// ```
#[derive(Clone, Debug)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env_clear: bool,
    /// Set (`Some`) or removed (`None`), in order.
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    timeout: Option<Duration>,
}

impl Command {
    /// Runs `program` (looked up in `PATH` when it has no path separator), with no arguments,
    /// this process's environment and working directory, inherited stdio and no deadline.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env_clear: false,
            env: Vec::new(),
            cwd: None,
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            timeout: None,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Command {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Command {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Command {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts the child's environment empty (variables set after this still apply, and so do
    /// those set before: the order of `env` calls does not matter).
    pub fn env_clear(mut self) -> Command {
        self.env_clear = true;
        self
    }

    /// The child's working directory. A relative program path is resolved against it on
    /// Unix (as by `std::process::Command`).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Command {
        self.cwd = Some(dir.into());
        self
    }

    /// The child's stdin.
    pub fn stdin(mut self, stdio: Stdio) -> Command {
        self.stdin = stdio;
        self
    }

    /// The child's stdout.
    pub fn stdout(mut self, stdio: Stdio) -> Command {
        self.stdout = stdio;
        self
    }

    /// The child's stderr.
    pub fn stderr(mut self, stdio: Stdio) -> Command {
        self.stderr = stdio;
        self
    }

    /// Kills the child (`SIGKILL` on Unix, `TerminateProcess` on Windows) if it has not exited
    /// `after` it was spawned; its [`Exit`] then says [`timed_out`](Exit::timed_out). `after`
    /// must be longer than zero ([`spawn`] refuses zero with `ErrorKind::InvalidInput`).
    pub fn timeout(mut self, after: Duration) -> Command {
        self.timeout = Some(after);
        self
    }

    fn to_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args);
        if self.env_clear {
            cmd.env_clear();
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(self.stdin.to_std())
            .stdout(self.stdout.to_std())
            .stderr(self.stderr.to_std());
        cmd
    }
}

/// How a child ended: its `std::process::ExitStatus`, and whether the [`Command::timeout`]
/// deadline killed it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    status: std::process::ExitStatus,
    timed_out: bool,
}

impl Exit {
    /// The status, as std reports it.
    pub fn status(&self) -> std::process::ExitStatus {
        self.status
    }

    /// Whether the child exited with status 0 (and was not killed).
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code; `None` if a signal terminated the child (Unix).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that terminated the child (Unix); always `None` on Windows, where a killed
    /// process exits with code 1.
    pub fn signal(&self) -> Option<i32> {
        #[cfg(unix)]
        {
            std::os::unix::process::ExitStatusExt::signal(&self.status)
        }
        #[cfg(windows)]
        {
            None
        }
    }

    /// Whether the [`Command::timeout`] deadline passed and the child was killed for it (it
    /// may also have exited by itself at that moment: then the status says so).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }
}

/// Gives spawn errors a stable kind: on Unix `ENOEXEC` (not an executable format, which std
/// leaves `Uncategorized`) is `InvalidInput`; on Windows `ERROR_DIRECTORY` (267, a working
/// directory that does not exist or is not a directory, `NotADirectory` in std) is
/// `NotFound`, as a missing directory is on Unix.
fn normalize_spawn_error(e: io::Error) -> io::Error {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ENOEXEC) {
        return io::Error::new(io::ErrorKind::InvalidInput, e);
    }
    #[cfg(windows)]
    if e.raw_os_error() == Some(267) {
        return io::Error::new(io::ErrorKind::NotFound, e);
    }
    e
}
