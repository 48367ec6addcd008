//! The [`fs`](super) operations as futures, for tasks: each takes the task's
//! [`Local`] handle instead of `&mut Runtime` and resolves to what the callback would get.
//!
//! ```
//! use portable_reactor::{fs, runtime::Runtime};
//! let mut rt = Runtime::new()?;
//! let local = rt.local();
//! let dir = std::env::temp_dir().join(format!("pr-doc-aio-{}", std::process::id()));
//! let d = dir.clone();
//! let names = rt.block_on(async move {
//!     fs::aio::mkdir(&local, &d, true).await?;
//!     fs::aio::write_file(&local, d.join("x"), b"data".to_vec()).await?;
//!     let file = fs::aio::open(&local, d.join("x"), &fs::flags("r")?).await?;
//!     assert_eq!(fs::aio::read(&local, &file, 2, Some(2)).await?, b"ta");
//!     fs::aio::close(&local, file).await?;
//!     let entries = fs::aio::readdir(&local, &d).await?;
//!     std::io::Result::Ok(entries.iter().map(|e| e.name().to_owned()).collect::<Vec<_>>())
//! })??;
//! assert_eq!(names, ["x"]);
//! std::fs::remove_dir_all(dir)?;
//! # std::io::Result::Ok(())
//! ```
//!
//! The operation starts when the task that created the future yields (it is
//! [deferred](Local::defer) to the loop), not when the future is first polled; dropping the
//! future does not cancel it (its result is dropped). Errors are those of the callback
//! functions, and the pool's error (no thread could be started) comes out of the future.

use std::cell::RefCell;
use std::fs::{DirBuilder, Metadata, OpenOptions};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::{Dirent, File, RmOptions};
use crate::runtime::{JobId, Local, Runtime};
use crate::Reactor;

struct Slot<T> {
    result: Option<io::Result<T>>,
    waiter: Option<Waker>,
}

/// An `fs` operation as a future, from this module's functions.
#[must_use = "futures do nothing unless awaited (the operation runs anyway)"]
pub struct Op<T> {
    slot: Rc<RefCell<Slot<T>>>,
}

impl<T> std::fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("done", &self.slot.borrow().result.is_some())
            .finish()
    }
}

impl<T> Future for Op<T> {
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let mut s = self.slot.borrow_mut();
        match s.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                if !s.waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waiter = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

type Done<R, T> = Box<dyn FnOnce(&mut Runtime<R>, io::Result<T>)>;

fn fill<T>(slot: &RefCell<Slot<T>>, result: io::Result<T>) {
    let waiter = {
        let mut s = slot.borrow_mut();
        s.result = Some(result);
        s.waiter.take()
    };
    if let Some(waiter) = waiter {
        waiter.wake();
    }
}

/// Starts `op` from the loop with a callback that resolves the future.
fn start<R: Reactor + 'static, T: 'static>(
    local: &Local<R>,
    op: impl FnOnce(&mut Runtime<R>, Done<R, T>) -> io::Result<JobId> + 'static,
) -> Op<T> {
    let slot = Rc::new(RefCell::new(Slot {
        result: None,
        waiter: None,
    }));
    let filled = slot.clone();
    local.defer(move |rt| {
        let done = filled.clone();
        if let Err(e) = op(rt, Box::new(move |_, result| fill(&done, result))) {
            fill(&filled, Err(e));
        }
    });
    Op { slot }
}

/// [`fs::open`](super::open) as a future.
///
/// # Errors
///
/// As for [`fs::open`](super::open).
pub fn open<R: Reactor + 'static>(
    local: &Local<R>,
    path: impl Into<PathBuf>,
    options: &OpenOptions,
) -> Op<File> {
    let (path, options) = (path.into(), options.clone());
    start(local, move |rt, cb| super::open(rt, path, &options, cb))
}

/// [`fs::close`](super::close) as a future.
///
/// # Errors
///
/// As for [`fs::close`](super::close).
pub fn close<R: Reactor + 'static>(local: &Local<R>, file: File) -> Op<()> {
    start(local, move |rt, cb| super::close(rt, file, cb))
}

/// [`fs::read`](super::read) as a future.
///
/// # Errors
///
/// As for [`fs::read`](super::read).
pub fn read<R: Reactor + 'static>(
    local: &Local<R>,
    file: &File,
    len: usize,
    position: Option<u64>,
) -> Op<Vec<u8>> {
    let file = file.clone();
    start(local, move |rt, cb| super::read(rt, &file, len, position, cb))
}

/// [`fs::write`](super::write) as a future.
///
/// # Errors
///
/// As for [`fs::write`](super::write).
pub fn write<R: Reactor + 'static>(
    local: &Local<R>,
    file: &File,
    data: impl AsRef<[u8]> + Send + 'static,
    position: Option<u64>,
) -> Op<usize> {
    let file = file.clone();
    start(local, move |rt, cb| super::write(rt, &file, data, position, cb))
}

macro_rules! on_file {
    ($(#[$doc:meta])* $name:ident -> $out:ty) => {
        $(#[$doc])*
        pub fn $name<R: Reactor + 'static>(local: &Local<R>, file: &File) -> Op<$out> {
            let file = file.clone();
            start(local, move |rt, cb| super::$name(rt, &file, cb))
        }
    };
}

macro_rules! on_path {
    ($(#[$doc:meta])* $name:ident -> $out:ty) => {
        $(#[$doc])*
        pub fn $name<R: Reactor + 'static>(local: &Local<R>, path: impl Into<PathBuf>) -> Op<$out> {
            let path = path.into();
            start(local, move |rt, cb| super::$name(rt, path, cb))
        }
    };
}

macro_rules! on_paths {
    ($(#[$doc:meta])* $name:ident($a:ident, $b:ident) -> $out:ty) => {
        $(#[$doc])*
        pub fn $name<R: Reactor + 'static>(
            local: &Local<R>,
            $a: impl Into<PathBuf>,
            $b: impl Into<PathBuf>,
        ) -> Op<$out> {
            let ($a, $b) = ($a.into(), $b.into());
            start(local, move |rt, cb| super::$name(rt, $a, $b, cb))
        }
    };
}

on_file! {
    /// [`fs::fstat`](super::fstat) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::fstat`](super::fstat).
    fstat -> Metadata
}
on_file! {
    /// [`fs::fsync`](super::fsync) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::fsync`](super::fsync).
    fsync -> ()
}
on_file! {
    /// [`fs::fdatasync`](super::fdatasync) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::fdatasync`](super::fdatasync).
    fdatasync -> ()
}

/// [`fs::ftruncate`](super::ftruncate) as a future.
///
/// # Errors
///
/// As for [`fs::ftruncate`](super::ftruncate).
pub fn ftruncate<R: Reactor + 'static>(local: &Local<R>, file: &File, len: u64) -> Op<()> {
    let file = file.clone();
    start(local, move |rt, cb| super::ftruncate(rt, &file, len, cb))
}

on_path! {
    /// [`fs::stat`](super::stat) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::stat`](super::stat).
    stat -> Metadata
}
on_path! {
    /// [`fs::lstat`](super::lstat) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::lstat`](super::lstat).
    lstat -> Metadata
}
on_path! {
    /// [`fs::readdir`](super::readdir) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::readdir`](super::readdir).
    readdir -> Vec<Dirent>
}
on_path! {
    /// [`fs::unlink`](super::unlink) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::unlink`](super::unlink).
    unlink -> ()
}
on_path! {
    /// [`fs::rmdir`](super::rmdir) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::rmdir`](super::rmdir).
    rmdir -> ()
}
on_path! {
    /// [`fs::readlink`](super::readlink) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::readlink`](super::readlink).
    readlink -> PathBuf
}
on_path! {
    /// [`fs::realpath`](super::realpath) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::realpath`](super::realpath).
    realpath -> PathBuf
}
on_path! {
    /// [`fs::exists`](super::exists) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::exists`](super::exists).
    exists -> bool
}
on_path! {
    /// [`fs::read_file`](super::read_file) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::read_file`](super::read_file).
    read_file -> Vec<u8>
}
on_paths! {
    /// [`fs::rename`](super::rename) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::rename`](super::rename).
    rename(from, to) -> ()
}
on_paths! {
    /// [`fs::symlink`](super::symlink) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::symlink`](super::symlink).
    symlink(target, path) -> ()
}
on_paths! {
    /// [`fs::copy_file`](super::copy_file) as a future.
    ///
    /// # Errors
    ///
    /// As for [`fs::copy_file`](super::copy_file).
    copy_file(from, to) -> u64
}

/// [`fs::mkdir`](super::mkdir) as a future.
///
/// # Errors
///
/// As for [`fs::mkdir`](super::mkdir).
pub fn mkdir<R: Reactor + 'static>(local: &Local<R>, path: impl Into<PathBuf>, recursive: bool) -> Op<()> {
    let path = path.into();
    start(local, move |rt, cb| super::mkdir(rt, path, recursive, cb))
}

/// [`fs::mkdir_with`](super::mkdir_with) as a future.
///
/// # Errors
///
/// As for [`fs::mkdir_with`](super::mkdir_with).
pub fn mkdir_with<R: Reactor + 'static>(
    local: &Local<R>,
    path: impl Into<PathBuf>,
    builder: DirBuilder,
) -> Op<()> {
    let path = path.into();
    start(local, move |rt, cb| super::mkdir_with(rt, path, builder, cb))
}

/// [`fs::rm`](super::rm) as a future.
///
/// # Errors
///
/// As for [`fs::rm`](super::rm).
pub fn rm<R: Reactor + 'static>(local: &Local<R>, path: impl Into<PathBuf>, options: RmOptions) -> Op<()> {
    let path = path.into();
    start(local, move |rt, cb| super::rm(rt, path, options, cb))
}

/// [`fs::truncate`](super::truncate) as a future.
///
/// # Errors
///
/// As for [`fs::truncate`](super::truncate).
pub fn truncate<R: Reactor + 'static>(local: &Local<R>, path: impl Into<PathBuf>, len: u64) -> Op<()> {
    let path = path.into();
    start(local, move |rt, cb| super::truncate(rt, path, len, cb))
}

/// [`fs::write_file`](super::write_file) as a future.
///
/// # Errors
///
/// As for [`fs::write_file`](super::write_file).
pub fn write_file<R: Reactor + 'static>(
    local: &Local<R>,
    path: impl Into<PathBuf>,
    data: impl AsRef<[u8]> + Send + 'static,
) -> Op<()> {
    let path = path.into();
    start(local, move |rt, cb| super::write_file(rt, path, data, cb))
}
