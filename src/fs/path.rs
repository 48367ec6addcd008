//! Operations on paths: [`stat`], [`lstat`], [`readdir`], [`mkdir`], [`rename`], [`unlink`],
//! [`rmdir`], [`rm`], [`symlink`], [`readlink`], [`realpath`], [`truncate`], [`copy_file`],
//! [`exists`].

use std::ffi::OsString;
use std::fs::{DirBuilder, FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use super::{error, on_pool, wrap};
use crate::runtime::{JobId, Runtime};
use crate::Reactor;

/// One call on one path, on the pool, its error with the operation and path.
fn on_path<R: Reactor + 'static, T: Send + 'static>(
    rt: &mut Runtime<R>,
    path: PathBuf,
    operation: &'static str,
    call: impl FnOnce(&Path) -> io::Result<T> + Send + 'static,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<T>) + 'static,
) -> io::Result<JobId> {
    on_pool(
        rt,
        move || call(&path).map_err(|e| error(operation, &path, e)),
        callback,
    )
}

/// One call on two paths.
fn on_paths<R: Reactor + 'static, T: Send + 'static>(
    rt: &mut Runtime<R>,
    (from, to): (PathBuf, PathBuf),
    operation: &'static str,
    call: impl FnOnce(&Path, &Path) -> io::Result<T> + Send + 'static,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<T>) + 'static,
) -> io::Result<JobId> {
    on_pool(
        rt,
        move || call(&from, &to).map_err(|e| wrap(operation, &from, Some(&to), e)),
        callback,
    )
}

/// The metadata of `path`, following symbolic links (`stat`), on the pool.
///
/// ```
/// use portable_reactor::{fs, runtime::Runtime};
/// let mut rt = Runtime::new()?;
/// fs::stat(&mut rt, std::env::temp_dir(), |_, meta| assert!(meta.unwrap().is_dir()))?;
/// rt.run()?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// The pool's (see the [module docs](super)); the callback gets the OS error with the path
/// (`NotFound`, `NotADirectory` for a path through a file, `PermissionDenied`).
pub fn stat<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<Metadata>) + 'static,
) -> io::Result<JobId> {
    on_path(rt, path.into(), "stat", |p| std::fs::metadata(p), callback)
}

/// The metadata of `path` itself, not following a final symbolic link (`lstat`), on the pool.
///
/// # Errors
///
/// As for [`stat`].
pub fn lstat<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<Metadata>) + 'static,
) -> io::Result<JobId> {
    on_path(
        rt,
        path.into(),
        "lstat",
        |p| std::fs::symlink_metadata(p),
        callback,
    )
}

/// A directory entry from [`readdir`] (Node's `Dirent`).
#[derive(Clone, Debug)]
pub struct Dirent {
    name: OsString,
    file_type: Option<FileType>,
}

impl Dirent {
    /// The entry's name in its directory.
    pub fn name(&self) -> &std::ffi::OsStr {
        &self.name
    }

    /// The entry's type, not following symbolic links; `None` if the OS could not tell.
    pub fn file_type(&self) -> Option<FileType> {
        self.file_type
    }

    /// Whether the entry is a directory (a symbolic link to one is not).
    pub fn is_dir(&self) -> bool {
        self.file_type.is_some_and(|t| t.is_dir())
    }

    /// Whether the entry is a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type.is_some_and(|t| t.is_file())
    }

    /// Whether the entry is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type.is_some_and(|t| t.is_symlink())
    }
}

/// The entries of directory `path` (not `.` and `..`), sorted by name, with their types, on
/// the pool.
///
/// ```
/// use portable_reactor::{fs, runtime::Runtime};
/// let dir = std::env::temp_dir().join(format!("pr-doc-readdir-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("sub"))?;
/// std::fs::write(dir.join("a.txt"), b"")?;
/// let mut rt = Runtime::new()?;
/// fs::readdir(&mut rt, &dir, |_, entries| {
///     let entries = entries.unwrap();
///     let names: Vec<_> = entries.iter().map(|e| e.name().to_owned()).collect();
///     assert_eq!(names, ["a.txt", "sub"]);
///     assert!(entries[1].is_dir());
/// })?;
/// rt.run()?;
/// std::fs::remove_dir_all(dir)?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path (`NotFound`, `NotADirectory`
/// for a file, `PermissionDenied`).
pub fn readdir<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<Vec<Dirent>>) + 'static,
) -> io::Result<JobId> {
    on_path(
        rt,
        path.into(),
        "readdir",
        |path| {
            let mut entries = Vec::new();
            let dir = std::fs::read_dir(path).map_err(|e| not_a_directory(path, e))?;
            for entry in dir {
                let entry = entry?;
                entries.push(Dirent {
                    name: entry.file_name(),
                    file_type: entry.file_type().ok(),
                });
            }
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(entries)
        },
        callback,
    )
}

/// `ErrorKind::NotADirectory` for a `read_dir` of something else: Windows says so, Wine says
/// "invalid name" (`FindFirstFile` on `file\*`).
fn not_a_directory(path: &Path, e: io::Error) -> io::Error {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() && e.kind() != io::ErrorKind::NotADirectory => {
            io::Error::new(io::ErrorKind::NotADirectory, format!("not a directory ({e})"))
        }
        _ => e,
    }
}

/// Creates directory `path`; with `recursive`, its missing parents too, and an existing
/// directory is no error (Node's `{ recursive: true }`). On the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path: `AlreadyExists` (not recursive,
/// or a file in the way), `NotFound` (a missing parent, not recursive), `NotADirectory`.
pub fn mkdir<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    recursive: bool,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    let mut builder = DirBuilder::new();
    builder.recursive(recursive);
    mkdir_with(rt, path, builder, callback)
}

/// [`mkdir`] with a [`DirBuilder`] of your own: `recursive`, and the mode on Unix
/// (`std::os::unix::fs::DirBuilderExt::mode`, `0o777` less the umask by default).
///
/// # Errors
///
/// As for [`mkdir`].
pub fn mkdir_with<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    builder: DirBuilder,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_path(rt, path.into(), "mkdir", move |p| builder.create(p), callback)
}

/// Renames `from` to `to`, replacing a file at `to` (a directory `to` must be empty, on
/// Unix), on the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with both paths (`NotFound`, `CrossesDevices`,
/// `DirectoryNotEmpty`/`AlreadyExists`, `IsADirectory`, `NotADirectory`, `PermissionDenied`).
pub fn rename<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    from: impl Into<PathBuf>,
    to: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_paths(
        rt,
        (from.into(), to.into()),
        "rename",
        |a, b| std::fs::rename(a, b),
        callback,
    )
}

/// Removes the file (or symbolic link) `path` (`unlink`), on the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path (`NotFound`, `IsADirectory` or
/// `PermissionDenied` for a directory, depending on the OS).
pub fn unlink<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_path(rt, path.into(), "unlink", |p| std::fs::remove_file(p), callback)
}

/// Removes the empty directory `path` (`rmdir`), on the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path (`DirectoryNotEmpty`, `NotFound`,
/// `NotADirectory` for a file).
pub fn rmdir<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_path(rt, path.into(), "rmdir", |p| std::fs::remove_dir(p), callback)
}

/// How [`rm`] removes (Node's `fs.rm` options).
#[derive(Copy, Clone, Debug, Default)]
pub struct RmOptions {
    recursive: bool,
    force: bool,
}

impl RmOptions {
    /// Neither recursive nor forced.
    pub fn new() -> RmOptions {
        RmOptions::default()
    }

    /// Removes a directory with everything in it (symbolic links inside are removed, not
    /// followed).
    pub fn recursive(mut self, recursive: bool) -> RmOptions {
        self.recursive = recursive;
        self
    }

    /// A missing `path` is no error.
    pub fn force(mut self, force: bool) -> RmOptions {
        self.force = force;
        self
    }
}

/// Removes `path`: a file or symbolic link, or (with [`RmOptions::recursive`]) a directory
/// and everything in it; on the pool.
///
/// ```
/// use portable_reactor::{fs, runtime::Runtime};
/// let dir = std::env::temp_dir().join(format!("pr-doc-rm-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("a/b"))?;
/// let mut rt = Runtime::new()?;
/// let d = dir.clone();
/// fs::rm(&mut rt, &dir, fs::RmOptions::new().recursive(true), move |_, r| {
///     r.unwrap();
///     assert!(!d.exists());
/// })?;
/// rt.run()?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path: `NotFound` (unless forced),
/// `IsADirectory` for a directory without `recursive`, `PermissionDenied`.
pub fn rm<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    options: RmOptions,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_path(
        rt,
        path.into(),
        "rm",
        move |path| {
            let kind = match std::fs::symlink_metadata(path) {
                Ok(meta) => meta.file_type(),
                Err(e) if options.force && e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let removed = if kind.is_dir() {
                if !options.recursive {
                    return Err(io::Error::new(
                        io::ErrorKind::IsADirectory,
                        "is a directory (remove it with RmOptions::recursive)",
                    ));
                }
                std::fs::remove_dir_all(path)
            } else if cfg!(windows) && kind.is_symlink() {
                // A link to a directory is a directory on Windows.
                std::fs::remove_file(path).or_else(|_| std::fs::remove_dir(path))
            } else {
                std::fs::remove_file(path)
            };
            match removed {
                Err(e) if options.force && e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        },
        callback,
    )
}

/// Creates a symbolic link at `path` pointing to `target` (a relative `target` is relative to
/// the link's directory), on the pool. On Windows the link is a directory link when `target`
/// is a directory, else a file link; creating one needs the privilege or developer mode, else
/// `PermissionDenied`; under Wine, which reports links created without creating them, the
/// callback gets `Unsupported`.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with both paths (`AlreadyExists`, `NotFound`
/// for a missing parent, `PermissionDenied`).
pub fn symlink<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    target: impl Into<PathBuf>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_paths(
        rt,
        (target.into(), path.into()),
        "symlink",
        symlink_blocking,
        callback,
    )
}

#[cfg(unix)]
fn symlink_blocking(target: &Path, path: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(windows)]
fn symlink_blocking(target: &Path, path: &Path) -> io::Result<()> {
    let resolved = match path.parent() {
        Some(dir) if target.is_relative() => dir.join(target),
        _ => target.to_owned(),
    };
    if resolved.is_dir() {
        std::os::windows::fs::symlink_dir(target, path)?;
    } else {
        std::os::windows::fs::symlink_file(target, path)?;
    }
    // Wine's CreateSymbolicLinkW reports success and creates nothing.
    std::fs::symlink_metadata(path).map(drop).map_err(|_| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "the OS reported the link created, but there is none (Wine does this)",
        )
    })
}

/// The target of the symbolic link `path` (`readlink`), on the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path (`NotFound`; `InvalidInput` for
/// a path that is not a link).
pub fn readlink<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<PathBuf>) + 'static,
) -> io::Result<JobId> {
    on_path(rt, path.into(), "readlink", |p| std::fs::read_link(p), callback)
}

/// The absolute path of `path` with every symbolic link resolved (`realpath`), on the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path (`NotFound`).
pub fn realpath<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<PathBuf>) + 'static,
) -> io::Result<JobId> {
    on_path(
        rt,
        path.into(),
        "realpath",
        |p| std::fs::canonicalize(p),
        callback,
    )
}

/// Sets the length of the file at `path` (`truncate`): cut, or extended with zeros; on the
/// pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path (`NotFound`, `IsADirectory`,
/// `PermissionDenied`).
pub fn truncate<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    len: u64,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_path(
        rt,
        path.into(),
        "truncate",
        move |p| std::fs::OpenOptions::new().write(true).open(p)?.set_len(len),
        callback,
    )
}

/// Copies the contents (and permissions) of file `from` to `to`, replacing `to`, on the pool;
/// `callback` gets the bytes copied. (`copy_file_range`/`sendfile` on Linux, `CopyFileEx` on
/// Windows, through `std::fs::copy`.)
///
/// # Errors
///
/// The pool's; the callback gets the OS error with both paths (`NotFound`, `InvalidInput`
/// when `from` is not a file, `IsADirectory`, `PermissionDenied`).
pub fn copy_file<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    from: impl Into<PathBuf>,
    to: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<u64>) + 'static,
) -> io::Result<JobId> {
    on_paths(rt, (from.into(), to.into()), "copy_file", copy_blocking, callback)
}

fn copy_blocking(from: &Path, to: &Path) -> io::Result<u64> {
    let copied = std::fs::copy(from, to)?;
    // Wine's CopyFileEx does not call the progress routine std counts the bytes with.
    if cfg!(windows) && copied == 0 {
        return Ok(std::fs::metadata(to)?.len());
    }
    Ok(copied)
}

/// Whether `path` exists, following symbolic links (a broken link does not), on the pool.
///
/// # Errors
///
/// The pool's; the callback gets an error, with the path, only when existence cannot be told
/// (`PermissionDenied` on a parent directory, ...), not for a missing path.
pub fn exists<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<bool>) + 'static,
) -> io::Result<JobId> {
    on_path(rt, path.into(), "exists", |p| p.try_exists(), callback)
}
