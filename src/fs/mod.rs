//! File system operations on the runtime's thread pool, in the style of Node's callback `fs`.
//!
//! File I/O has no portable readiness model, so, as in libuv, each operation runs as blocking
//! work on the pool ([`Runtime::spawn_blocking`]) and its callback gets the result on the loop
//! thread. Every function returns the pool job's [`JobId`]: an operation still queued can be
//! cancelled with [`Runtime::cancel_blocking`] (its callback then gets `Interrupted`).
//!
//! | Node | here | result |
//! |---|---|---|
//! | `fs.open` | [`open`] (with [`std::fs::OpenOptions`], or Node's flags through [`flags`]) | [`File`] |
//! | `fs.close` | [`close`] (or drop the [`File`]) | `()` |
//! | `fs.read` | [`read`] (at an offset, or the current position) | `Vec<u8>` |
//! | `fs.write` | [`write`](write()) (at an offset, or the current position) | bytes written |
//! | `fs.fstat`, `fs.stat`, `fs.lstat` | [`fstat`], [`stat`], [`lstat`] | [`std::fs::Metadata`] |
//! | `fs.fsync`, `fs.fdatasync` | [`fsync`], [`fdatasync`] | `()` |
//! | `fs.ftruncate`, `fs.truncate` | [`ftruncate`], [`truncate`] | `()` |
//! | `fs.readdir` | [`readdir`] | [`Dirent`]s, sorted by name |
//! | `fs.mkdir` | [`mkdir`] (recursive or not), [`mkdir_with`] (a [`std::fs::DirBuilder`], for the mode) | `()` |
//! | `fs.rename` | [`rename`] | `()` |
//! | `fs.unlink`, `fs.rmdir`, `fs.rm` | [`unlink`], [`rmdir`], [`rm`] ([`RmOptions`]: recursive, force) | `()` |
//! | `fs.symlink`, `fs.readlink`, `fs.realpath` | [`symlink`], [`readlink`], [`realpath`] | `()`, `PathBuf` |
//! | `fs.copyFile` | [`copy_file`] | bytes copied |
//! | `fs.exists` | [`exists`] | `bool` |
//! | `fs.readFile`, `fs.writeFile` | [`read_file`], [`write_file`] | `Vec<u8>`, `()` |
//!
//! [`aio`] has each of them as a future for tasks (Node's `fs.promises`).
//!
//! # Errors
//!
//! An operation's own error goes to its callback as an `io::Error` of the OS error's kind
//! (`NotFound`, `AlreadyExists`, `PermissionDenied`, `NotADirectory`, `IsADirectory`,
//! `DirectoryNotEmpty`, `CrossesDevices`, `StorageFull`, ...: std's mapping, kept as it is),
//! whose message names the operation and the path as Node's do (`open '/no/such': No such file
//! or directory (os error 2)`). Its inner error is an [`FsError`], with the path, the
//! operation and the OS error (for [`io::Error::raw_os_error`]):
//!
//! ```
//! use portable_reactor::{fs, runtime::Runtime};
//! use std::io::ErrorKind;
//! let mut rt = Runtime::new()?;
//! fs::stat(&mut rt, "/no/such/file", |_, result| {
//!     let e = result.unwrap_err();
//!     assert_eq!(e.kind(), ErrorKind::NotFound);
//!     assert!(e.to_string().starts_with("stat '/no/such/file': "), "{e}");
//!     let inner = e.get_ref().and_then(|e| e.downcast_ref::<fs::FsError>()).unwrap();
//!     assert_eq!(inner.path(), std::path::Path::new("/no/such/file"));
//!     assert_eq!(inner.operation(), "stat");
//! })?;
//! rt.run()?;
//! # std::io::Result::Ok(())
//! ```
//!
//! One kind differs from std's: reading a [`File`] not opened to read, or writing one not
//! opened to write, is `PermissionDenied` on every OS (Unix says `EBADF`, which std leaves
//! uncategorized; Windows says access denied).
//!
//! A few OS errors have no stable `ErrorKind` in std yet (`ELOOP`, too many symbolic links;
//! `ENAMETOOLONG` maps to `InvalidFilename`): they keep std's kind, and [`FsError::os_error`]
//! gives the code. The error returned by the function itself (not its callback) is the pool's:
//! no pool thread could be started.

pub mod aio;
mod file;
mod path;

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::runtime::{JobId, Runtime};
use crate::Reactor;

pub use file::{close, fdatasync, flags, fstat, fsync, ftruncate, open, read, write, File, MAX_READ};
pub use path::{
    copy_file, exists, lstat, mkdir, mkdir_with, readdir, readlink, realpath, rename, rm, rmdir, stat,
    symlink, truncate, unlink, Dirent, RmOptions,
};

/// The error inside the `io::Error` an `fs` operation fails with: the operation, its path (and
/// second path, for [`rename`], [`symlink`] and [`copy_file`]) and the OS error.
#[derive(Debug)]
pub struct FsError {
    operation: &'static str,
    path: PathBuf,
    dest: Option<PathBuf>,
    source: io::Error,
}

impl FsError {
    /// The operation, as this module's function name (`"open"`, `"readdir"`, ...).
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The path the operation was given (its first path when it takes two).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The second path of [`rename`], [`symlink`] and [`copy_file`].
    pub fn dest(&self) -> Option<&Path> {
        self.dest.as_deref()
    }

    /// The OS error code, if the error came from the OS.
    pub fn os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}'", self.operation, self.path.display())?;
        if let Some(dest) = &self.dest {
            write!(f, " -> '{}'", dest.display())?;
        }
        write!(f, ": {}", self.source)
    }
}

impl Error for FsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// `e` with the operation and path, keeping its kind.
pub(crate) fn error(operation: &'static str, path: &Path, e: io::Error) -> io::Error {
    wrap(operation, path, None, e)
}

/// `e` with the operation and paths, keeping its kind (but see [`kind`]).
pub(crate) fn wrap(operation: &'static str, path: &Path, dest: Option<&Path>, e: io::Error) -> io::Error {
    io::Error::new(
        kind(&e),
        FsError {
            operation,
            path: path.to_owned(),
            dest: dest.map(Path::to_owned),
            source: e,
        },
    )
}

/// The kind an `fs` error reports: std's, except that `EBADF` (std: uncategorized), which a
/// [`File`] only meets when it was not opened for the access asked, is `PermissionDenied`, as
/// Windows reports the same case.
fn kind(e: &io::Error) -> io::ErrorKind {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EBADF) {
        return io::ErrorKind::PermissionDenied;
    }
    e.kind()
}

/// Runs `work` on the pool; `callback` gets its result (or the pool's `Other` for a panic,
/// `Interrupted` if cancelled) on the loop.
pub(crate) fn on_pool<R: Reactor + 'static, T: Send + 'static>(
    rt: &mut Runtime<R>,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<T>) + 'static,
) -> io::Result<JobId> {
    rt.spawn_blocking(work, move |rt, result| callback(rt, result.and_then(|r| r)))
}

/// Reads a whole file on the thread pool; `callback` gets its bytes on the loop thread.
///
/// ```
/// use portable_reactor::{fs, runtime::Runtime};
/// let path = std::env::temp_dir().join(format!("pr-doc-read-{}", std::process::id()));
/// std::fs::write(&path, b"hello")?;
/// let mut rt = Runtime::new()?;
/// let p = path.clone();
/// fs::read_file(&mut rt, &path, move |_, result| {
///     assert_eq!(result.unwrap(), b"hello");
///     std::fs::remove_file(p).unwrap();
/// })?;
/// rt.run()?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// Returns the error of [`Runtime::spawn_blocking`]. The read's own error (e.g.
/// `ErrorKind::NotFound`, `OutOfMemory` for a file too large to hold) goes to `callback`, with
/// the path (see the [module docs](self)).
pub fn read_file<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<Vec<u8>>) + 'static,
) -> io::Result<JobId> {
    let path = path.into();
    on_pool(
        rt,
        move || std::fs::read(&path).map_err(|e| error("read_file", &path, e)),
        callback,
    )
}

/// Writes `data` to a file (created or truncated) on the thread pool; `callback` gets the
/// outcome on the loop thread.
///
/// ```
/// use portable_reactor::{fs, runtime::Runtime};
/// let path = std::env::temp_dir().join(format!("pr-doc-write-{}", std::process::id()));
/// let mut rt = Runtime::new()?;
/// let p = path.clone();
/// fs::write_file(&mut rt, &path, b"bytes".to_vec(), move |_, result| {
///     result.unwrap();
///     assert_eq!(std::fs::read(&p).unwrap(), b"bytes");
///     std::fs::remove_file(p).unwrap();
/// })?;
/// rt.run()?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// Returns the error of [`Runtime::spawn_blocking`]. The write's own error goes to `callback`,
/// with the path.
pub fn write_file<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    data: impl AsRef<[u8]> + Send + 'static,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    let path = path.into();
    on_pool(
        rt,
        move || std::fs::write(&path, data).map_err(|e| error("write_file", &path, e)),
        callback,
    )
}
