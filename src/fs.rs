//! File system operations on the runtime's thread pool, in the style of Node's callback `fs`.
//!
//! File I/O has no portable readiness model, so, as in libuv, it runs as blocking work on the
//! pool and the callback gets the result on the loop thread.

use std::io;
use std::path::PathBuf;

use crate::runtime::Runtime;
use crate::Reactor;

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
/// `ErrorKind::NotFound`) goes to `callback`.
pub fn read_file<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<Vec<u8>>) + 'static,
) -> io::Result<()> {
    let path = path.into();
    rt.spawn_blocking(
        move || std::fs::read(path),
        |rt, result| callback(rt, result.and_then(|r| r)),
    )?;
    Ok(())
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
/// Returns the error of [`Runtime::spawn_blocking`]. The write's own error goes to `callback`.
pub fn write_file<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    path: impl Into<PathBuf>,
    data: impl AsRef<[u8]> + Send + 'static,
    callback: impl FnOnce(&mut Runtime<R>, io::Result<()>) + 'static,
) -> io::Result<()> {
    let path = path.into();
    rt.spawn_blocking(
        move || std::fs::write(path, data),
        |rt, result| callback(rt, result.and_then(|r| r)),
    )?;
    Ok(())
}
