//! Open files: [`open`], [`File`], [`close`], positional and current-position [`read`] and
//! [`write`], [`fstat`], [`fsync`], [`fdatasync`], [`ftruncate`].

use std::fmt;
use std::fs::{Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use super::{error, on_pool};
use crate::runtime::{JobId, Runtime};
use crate::Reactor;

/// An open file, from [`open`]: a handle, like Node's file descriptor. Clones share the open
/// file. [`close`] closes it for every clone (operations that reach the pool after it fail
/// with `ErrorKind::InvalidInput`, "file is closed"); otherwise it closes when the last clone
/// is dropped, so nothing leaks when the loop ends with files open.
///
/// It keeps the path it was opened with, for error messages.
#[derive(Clone)]
pub struct File {
    inner: Arc<RwLock<Option<std::fs::File>>>,
    path: Arc<Path>,
}

impl File {
    /// Wraps a file opened elsewhere; `path` names it in error messages.
    pub fn from_std(file: std::fs::File, path: impl Into<PathBuf>) -> File {
        File {
            inner: Arc::new(RwLock::new(Some(file))),
            path: Arc::from(path.into()),
        }
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `call` with the open file (blocking: on the pool), or fails if it is closed.
    /// Calls share the file; [`close`] waits for those running.
    fn with<T>(&self, call: impl FnOnce(&std::fs::File) -> io::Result<T>) -> io::Result<T> {
        let file = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        match file.as_ref() {
            Some(file) => call(file),
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "file is closed")),
        }
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// [`OpenOptions`] for one of Node's flag strings: `r`, `r+`, `rs+` (as `r+`), `w`, `wx`, `w+`,
/// `wx+`, `a`, `ax`, `a+`, `ax+` (`x`: fail with `AlreadyExists` if the file exists). Set a
/// creation mode on Unix with `std::os::unix::fs::OpenOptionsExt::mode` on the result (the
/// default is `0o666`, less the umask, as in Node).
///
/// ```
/// let options = portable_reactor::fs::flags("wx")?;
/// # let _ = options;
/// assert!(portable_reactor::fs::flags("q").is_err());
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// `ErrorKind::InvalidInput` for another string.
pub fn flags(flags: &str) -> io::Result<OpenOptions> {
    let mut o = OpenOptions::new();
    match flags {
        "r" => o.read(true),
        "r+" | "rs+" => o.read(true).write(true),
        "w" => o.write(true).create(true).truncate(true),
        "wx" | "xw" => o.write(true).create_new(true),
        "w+" => o.read(true).write(true).create(true).truncate(true),
        "wx+" | "xw+" => o.read(true).write(true).create_new(true),
        "a" => o.append(true).create(true),
        "ax" | "xa" => o.append(true).create_new(true),
        "a+" => o.read(true).append(true).create(true),
        "ax+" | "xa+" => o.read(true).append(true).create_new(true),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown file open flags {flags:?}"),
            ))
        }
    };
    Ok(o)
}

/// Opens `path` with `options` on the pool; `callback` gets the [`File`].
///
/// ```
/// use portable_reactor::{fs, runtime::Runtime};
/// let path = std::env::temp_dir().join(format!("pr-doc-open-{}", std::process::id()));
/// let mut rt = Runtime::new()?;
/// fs::open(&mut rt, &path, &fs::flags("w+")?, |rt, file| {
///     let file = file.unwrap();
///     fs::write(rt, &file.clone(), b"hello world", Some(0), move |rt, n| {
///         assert_eq!(n.unwrap(), 11);
///         fs::read(rt, &file.clone(), 5, Some(6), move |rt, data| {
///             assert_eq!(data.unwrap(), b"world");
///             fs::close(rt, file, |_, closed| closed.unwrap()).unwrap();
///         })
///         .unwrap();
///     })
///     .unwrap();
/// })?;
/// rt.run()?;
/// std::fs::remove_file(path)?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// The pool's (see the [module docs](super)). The callback gets the OS error with the path:
/// `NotFound`, `AlreadyExists` (an exclusive create of an existing file), `PermissionDenied`,
/// `IsADirectory` (a directory opened for writing on Unix; Windows says `PermissionDenied`,
/// and opens no directory at all, even to read), `InvalidInput` (options std refuses, like
/// `truncate` without `write`).
pub fn open<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    options: &OpenOptions,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<File>) + 'static,
) -> io::Result<JobId> {
    let path = path.into();
    let options = options.clone();
    on_pool(
        rt,
        move || match options.open(&path) {
            Ok(file) => Ok(File::from_std(file, path)),
            Err(e) => Err(error("open", &path, e)),
        },
        callback,
    )
}

/// Closes `file` (and its clones) on the pool, after the operations on it that are running
/// (closing can block, on network file systems). Operations still queued find it closed.
///
/// # Errors
///
/// The pool's. The callback gets `ErrorKind::InvalidInput` if the file was closed already,
/// and the OS's error from `close(2)` on Unix (`EIO`, on some file systems, for data that could
/// not be written back); Windows reports none.
pub fn close<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    file: File,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_pool(
        rt,
        move || {
            let open = file.inner.write().unwrap_or_else(PoisonError::into_inner).take();
            match open {
                Some(open) => close_std(open),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "file is closed already",
                )),
            }
            .map_err(|e| error("close", &file.path, e))
        },
        callback,
    )
}

#[cfg(unix)]
fn close_std(file: std::fs::File) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    let fd = file.into_raw_fd();
    // SAFETY: `fd` was just taken from an owned `File`, so this closes it exactly once; it is
    // not retried on EINTR (Linux and the BSDs release the descriptor anyway).
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn close_std(file: std::fs::File) -> io::Result<()> {
    drop(file);
    Ok(())
}

/// The largest `len` [`read`] takes (a `Vec` holds at most `isize::MAX` bytes).
pub const MAX_READ: usize = isize::MAX as usize;

/// What [`read`] reserves before the first byte arrives: a huge `len` costs only what is read.
const FIRST_RESERVE: usize = 64 * 1024;

/// Reads up to `len` bytes of `file` on the pool, at byte `position` (`pread`; the file's own
/// position does not move on Unix, and moves past the bytes read on Windows, as in Node) or,
/// with `None`, at its current position (which moves past them). `callback` gets the bytes:
/// fewer than `len` only at the end of the file, none at or past it.
///
/// The buffer grows with what is read (it starts at 64 KiB at most), so a `len` far larger
/// than the file costs no more than the file; memory running out while it grows is
/// `ErrorKind::OutOfMemory`, never an abort.
///
/// # Errors
///
/// `ErrorKind::InvalidInput` for a `len` over [`MAX_READ`], with nothing queued; else the
/// pool's. The callback gets the OS error (`IsADirectory` for a directory on Unix,
/// `PermissionDenied`/`InvalidInput` for a file not opened to read, `OutOfMemory`) with the path.
pub fn read<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    file: &File,
    len: usize,
    position: Option<u64>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<Vec<u8>>) + 'static,
) -> io::Result<JobId> {
    if len > MAX_READ {
        return Err(error(
            "read",
            file.path(),
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a read of {len} bytes is more than a buffer can hold ({MAX_READ})"),
            ),
        ));
    }
    let file = file.clone();
    on_pool(
        rt,
        move || {
            file.with(|f| read_blocking(f, len, position))
                .map_err(|e| error("read", &file.path, e))
        },
        callback,
    )
}

fn read_blocking(file: &std::fs::File, len: usize, position: Option<u64>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len.min(FIRST_RESERVE))
        .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
    let limit = len as u64;
    match position {
        Some(pos) => At { file, pos }.take(limit).read_to_end(&mut buf)?,
        None => file.take(limit).read_to_end(&mut buf)?,
    };
    Ok(buf)
}

/// A reader at an offset, through positional reads.
struct At<'a> {
    file: &'a std::fs::File,
    pos: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn write_at(file: &std::fs::File, mut data: &[u8], mut pos: u64) -> io::Result<()> {
    while !data.is_empty() {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::write_at(file, data, pos);
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_write(file, data, pos);
        match n {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                data = &data[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `data` to `file` on the pool, at byte `position` (`pwrite`; a gap past the
/// end reads back as zeros) or, with `None`, at its current position (the end, for a file
/// opened to append). `callback` gets the bytes written: `data.len()`.
///
/// On Linux, a positional write to a file opened to append goes to the end anyway (`pwrite`'s
/// documented bug); on Windows the file's position moves past the bytes written.
///
/// # Errors
///
/// The pool's. The callback gets the OS error (`StorageFull`, `PermissionDenied`/`InvalidInput`
/// for a file not opened to write, ...) with the path.
pub fn write<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    file: &File,
    data: impl AsRef<[u8]> + Send + 'static,
    position: Option<u64>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<usize>) + 'static,
) -> io::Result<JobId> {
    let file = file.clone();
    on_pool(
        rt,
        move || {
            let data = data.as_ref();
            file.with(|f| match position {
                Some(pos) => write_at(f, data, pos),
                None => (&*f).write_all(data),
            })
            .map(|()| data.len())
            .map_err(|e| error("write", &file.path, e))
        },
        callback,
    )
}

/// One blocking call on an open file, on the pool.
fn on_file<R: Reactor + 'static, T: Send + 'static>(
    rt: &mut Runtime<R>,
    file: &File,
    operation: &'static str,
    call: impl FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<T>) + 'static,
) -> io::Result<JobId> {
    let file = file.clone();
    on_pool(
        rt,
        move || file.with(call).map_err(|e| error(operation, &file.path, e)),
        callback,
    )
}

/// The metadata of an open file (`fstat`), on the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path.
pub fn fstat<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    file: &File,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<Metadata>) + 'static,
) -> io::Result<JobId> {
    on_file(rt, file, "fstat", std::fs::File::metadata, callback)
}

/// Flushes the file's data and metadata to the device (`fsync`; `FlushFileBuffers` on
/// Windows), on the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path.
pub fn fsync<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    file: &File,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_file(rt, file, "fsync", std::fs::File::sync_all, callback)
}

/// Flushes the file's data, and only the metadata needed to read it back (`fdatasync`; as
/// [`fsync`] where the OS has no such call), on the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path.
pub fn fdatasync<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    file: &File,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_file(rt, file, "fdatasync", std::fs::File::sync_data, callback)
}

/// Sets the length of an open file (`ftruncate`): cut, or extended with zeros; on the pool.
///
/// # Errors
///
/// The pool's; the callback gets the OS error with the path (`InvalidInput`/`PermissionDenied`
/// for a file not opened to write).
pub fn ftruncate<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    file: &File,
    len: u64,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    on_file(rt, file, "ftruncate", move |f| f.set_len(len), callback)
}
