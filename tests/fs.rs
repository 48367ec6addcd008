//! `fs` on the thread pool: open/close, reads and writes at an offset and at the current
//! position, stat, readdir, mkdir, rename, unlink, rmdir, rm, symlinks, truncate, copy, with
//! edge cases from libuv's `test-fs.c` (a directory opened for writing, readdir of a file,
//! rmdir of a non-empty directory, rename over a file, exclusive create, reads past the end, a
//! huge length). Each body runs once per backend through `fs_tests!`.

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use portable_reactor::fs::{self, File, RmOptions};
use portable_reactor::runtime::{Builder, JobId, Runtime};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::init_logging as init;
use util::run_bounded;

const LIMIT: Duration = Duration::from_secs(10);

type Done<R, T> = Box<dyn FnOnce(&mut Runtime<R>, io::Result<T>)>;

/// Starts one operation, runs the loop (bounded) until it is done, and returns its result.
fn go<R: Reactor + 'static, T: 'static>(
    rt: &mut Runtime<R>,
    op: impl FnOnce(&mut Runtime<R>, Done<R, T>) -> io::Result<JobId>,
) -> io::Result<T> {
    let slot = Rc::new(RefCell::new(None));
    let s = slot.clone();
    op(rt, Box::new(move |_, r| *s.borrow_mut() = Some(r))).expect("queued");
    run_bounded(rt, LIMIT);
    let result = slot.borrow_mut().take();
    result.expect("the callback ran once")
}

/// A fresh directory per test and backend, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new<R: Reactor>(test: &str, rt: &Runtime<R>) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "pr-fs-{test}-{}-{}",
            rt.reactor().name(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    Builder::new().threads(2).build_with(reactor).expect("runtime")
}

/// The error names the operation and the path, and keeps `kind`.
fn assert_error(e: &io::Error, kind: ErrorKind, operation: &str, path: &Path) {
    assert_eq!(e.kind(), kind, "{e}");
    let inner = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<fs::FsError>())
        .unwrap_or_else(|| panic!("no FsError in {e:?}"));
    assert_eq!(inner.operation(), operation, "{e}");
    assert_eq!(inner.path(), path, "{e}");
    let prefix = format!("{operation} '{}'", path.display());
    assert!(
        e.to_string().starts_with(&prefix),
        "{e} does not start with {prefix}"
    );
}

fn open<R: Reactor + 'static>(rt: &mut Runtime<R>, path: &Path, flags: &str) -> io::Result<File> {
    let options = fs::flags(flags).unwrap();
    go(rt, |rt, cb| fs::open(rt, path, &options, cb))
}

/// Reads and writes at offsets and at the current position; past the end; a huge length;
/// fstat, fsync, fdatasync, ftruncate, close.
fn read_write_at_offsets<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = Scratch::new("rw", &rt);
    let path = dir.join("data");
    let file = open(&mut rt, &path, "w+").unwrap();
    assert_eq!(file.path(), path);
    let write =
        |rt: &mut Runtime<R>, data: &'static [u8], at| go(rt, |rt, cb| fs::write(rt, &file, data, at, cb));
    assert_eq!(write(&mut rt, b"abc", None).unwrap(), 3);
    assert_eq!(write(&mut rt, b"def", None).unwrap(), 3);
    let read = |rt: &mut Runtime<R>, len, at| go(rt, |rt, cb| fs::read(rt, &file, len, at, cb));
    assert_eq!(
        read(&mut rt, 10, None).unwrap(),
        b"",
        "the position is at the end"
    );
    assert_eq!(read(&mut rt, 100, Some(0)).unwrap(), b"abcdef");
    assert_eq!(read(&mut rt, 2, Some(2)).unwrap(), b"cd");
    assert_eq!(write(&mut rt, b"XY", Some(1)).unwrap(), 2);
    // A gap past the end reads back as zeros.
    assert_eq!(write(&mut rt, b"Z", Some(10)).unwrap(), 1);
    assert_eq!(read(&mut rt, 100, Some(0)).unwrap(), b"aXYdef\0\0\0\0Z");
    // Past the end: no bytes, no error (libuv's fs_read_past_eof... returns 0).
    assert_eq!(read(&mut rt, 10, Some(11)).unwrap(), b"");
    assert_eq!(read(&mut rt, 10, Some(1 << 40)).unwrap(), b"");
    assert_eq!(read(&mut rt, 0, Some(0)).unwrap(), b"");
    // The largest length is a buffer that grows with what is read, not an allocation of
    // isize::MAX bytes; one more is refused at once.
    assert_eq!(read(&mut rt, fs::MAX_READ, Some(4)).unwrap(), b"ef\0\0\0\0Z");
    let e = fs::read(&mut rt, &file, usize::MAX, Some(0), |_, _| unreachable!()).unwrap_err();
    assert_error(&e, ErrorKind::InvalidInput, "read", &path);
    assert_eq!(go(&mut rt, |rt, cb| fs::fstat(rt, &file, cb)).unwrap().len(), 11);
    go(&mut rt, |rt, cb| fs::fsync(rt, &file, cb)).unwrap();
    go(&mut rt, |rt, cb| fs::fdatasync(rt, &file, cb)).unwrap();
    go(&mut rt, |rt, cb| fs::ftruncate(rt, &file, 3, cb)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"aXY");
    go(&mut rt, |rt, cb| fs::close(rt, file, cb)).unwrap();
    // Append mode: writes at the current position go to the end.
    let file = open(&mut rt, &path, "a").unwrap();
    go(&mut rt, |rt, cb| fs::write(rt, &file, b"!", None, cb)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"aXY!");
    // A file opened only to append cannot be read.
    let e = go(&mut rt, |rt, cb| fs::read(rt, &file, 4, Some(0), cb)).unwrap_err();
    assert_error(&e, ErrorKind::PermissionDenied, "read", &path);
    drop(file);
    // Opened only to read: writes are refused.
    let file = open(&mut rt, &path, "r").unwrap();
    let e = go(&mut rt, |rt, cb| fs::write(rt, &file, b"no", Some(0), cb)).unwrap_err();
    assert_error(&e, ErrorKind::PermissionDenied, "write", &path);
    let e = go(&mut rt, |rt, cb| fs::ftruncate(rt, &file, 0, cb)).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::InvalidInput),
        "{e}"
    );
}

/// libuv's open edge cases: exclusive create of an existing file, a missing file, a directory
/// opened for writing, unknown flags; read_file/write_file errors carry the path.
fn open_errors<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = Scratch::new("open", &rt);
    let path = dir.join("exists");
    std::fs::write(&path, b"x").unwrap();
    let e = open(&mut rt, &path, "wx").unwrap_err();
    assert_error(&e, ErrorKind::AlreadyExists, "open", &path);
    let e = open(&mut rt, &path, "ax+").unwrap_err();
    assert_error(&e, ErrorKind::AlreadyExists, "open", &path);
    let missing = dir.join("missing");
    let e = open(&mut rt, &missing, "r").unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "open", &missing);
    let e = open(&mut rt, &dir.0, "r+").unwrap_err();
    let expected = if cfg!(windows) {
        ErrorKind::PermissionDenied
    } else {
        ErrorKind::IsADirectory
    };
    assert_error(&e, expected, "open", &dir.0);
    assert_eq!(fs::flags("rw").unwrap_err().kind(), ErrorKind::InvalidInput);
    // Exclusive create of a new file works, once.
    let new = dir.join("new");
    let file = open(&mut rt, &new, "wx+").unwrap();
    drop(file);
    assert!(new.is_file());
    let e = go(&mut rt, |rt, cb| fs::read_file(rt, &missing, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "read_file", &missing);
    let nested = dir.join("no/such/dir/file");
    let e = go(&mut rt, |rt, cb| fs::write_file(rt, &nested, b"x", cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "write_file", &nested);
}

/// stat follows links, lstat does not; a missing path and a path through a file.
fn stat_variants<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = Scratch::new("stat", &rt);
    let path = dir.join("file");
    std::fs::write(&path, b"12345").unwrap();
    let meta = go(&mut rt, |rt, cb| fs::stat(rt, &path, cb)).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.len(), 5);
    assert!(go(&mut rt, |rt, cb| fs::lstat(rt, &dir.0, cb)).unwrap().is_dir());
    let missing = dir.join("missing");
    let e = go(&mut rt, |rt, cb| fs::stat(rt, &missing, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "stat", &missing);
    let e = go(&mut rt, |rt, cb| fs::lstat(rt, &missing, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "lstat", &missing);
    let through = path.join("x");
    let e = go(&mut rt, |rt, cb| fs::stat(rt, &through, cb)).unwrap_err();
    let expected = if cfg!(windows) {
        ErrorKind::NotFound
    } else {
        ErrorKind::NotADirectory
    };
    assert_error(&e, expected, "stat", &through);
}

/// readdir: names sorted with their types; of a file: NotADirectory; missing: NotFound.
fn readdir_entries<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = Scratch::new("readdir", &rt);
    std::fs::write(dir.join("b.txt"), b"").unwrap();
    std::fs::write(dir.join("a.txt"), b"").unwrap();
    std::fs::create_dir(dir.join("c")).unwrap();
    let entries = go(&mut rt, |rt, cb| fs::readdir(rt, &dir.0, cb)).unwrap();
    let names: Vec<_> = entries
        .iter()
        .map(|e| e.name().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a.txt", "b.txt", "c"]);
    assert!(entries[0].is_file() && !entries[0].is_dir());
    assert!(entries[2].is_dir() && !entries[2].is_symlink());
    let empty = dir.join("c");
    assert!(go(&mut rt, |rt, cb| fs::readdir(rt, &empty, cb))
        .unwrap()
        .is_empty());
    let file = dir.join("a.txt");
    let e = go(&mut rt, |rt, cb| fs::readdir(rt, &file, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotADirectory, "readdir", &file);
    let missing = dir.join("missing");
    let e = go(&mut rt, |rt, cb| fs::readdir(rt, &missing, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "readdir", &missing);
}

/// mkdir (recursive or not), rmdir (non-empty: DirectoryNotEmpty), rename (over a file),
/// unlink, rm.
fn directories_and_renames<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = Scratch::new("dirs", &rt);
    let deep = dir.join("a/b/c");
    let e = go(&mut rt, |rt, cb| fs::mkdir(rt, &deep, false, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "mkdir", &deep);
    go(&mut rt, |rt, cb| fs::mkdir(rt, &deep, true, cb)).unwrap();
    assert!(deep.is_dir());
    go(&mut rt, |rt, cb| fs::mkdir(rt, &deep, true, cb)).expect("recursive: an existing directory is fine");
    let e = go(&mut rt, |rt, cb| fs::mkdir(rt, &deep, false, cb)).unwrap_err();
    assert_error(&e, ErrorKind::AlreadyExists, "mkdir", &deep);
    let a = dir.join("a");
    let e = go(&mut rt, |rt, cb| fs::rmdir(rt, &a, cb)).unwrap_err();
    assert_error(&e, ErrorKind::DirectoryNotEmpty, "rmdir", &a);
    go(&mut rt, |rt, cb| fs::rmdir(rt, &deep, cb)).unwrap();
    assert!(!deep.exists());
    // Rename over an existing file replaces it.
    let (from, to) = (dir.join("from"), dir.join("to"));
    std::fs::write(&from, b"new").unwrap();
    std::fs::write(&to, b"old").unwrap();
    go(&mut rt, |rt, cb| fs::rename(rt, &from, &to, cb)).unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"new");
    assert!(!from.exists());
    let e = go(&mut rt, |rt, cb| fs::rename(rt, &from, &to, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "rename", &from);
    let inner = e.get_ref().unwrap().downcast_ref::<fs::FsError>().unwrap();
    assert_eq!(inner.dest(), Some(to.as_path()));
    assert!(e.to_string().contains(&format!("-> '{}'", to.display())), "{e}");
    // unlink: a file, twice; a directory; rmdir of a file.
    go(&mut rt, |rt, cb| fs::unlink(rt, &to, cb)).unwrap();
    let e = go(&mut rt, |rt, cb| fs::unlink(rt, &to, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "unlink", &to);
    let e = go(&mut rt, |rt, cb| fs::unlink(rt, &a, cb)).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::IsADirectory | ErrorKind::PermissionDenied),
        "unlink of a directory: {e}"
    );
    let file = dir.join("file");
    std::fs::write(&file, b"").unwrap();
    let e = go(&mut rt, |rt, cb| fs::rmdir(rt, &file, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotADirectory, "rmdir", &file);
    // rm: a directory needs recursive; force ignores a missing path.
    let e = go(&mut rt, |rt, cb| fs::rm(rt, &a, RmOptions::new(), cb)).unwrap_err();
    assert_error(&e, ErrorKind::IsADirectory, "rm", &a);
    go(&mut rt, |rt, cb| {
        fs::rm(rt, &a, RmOptions::new().recursive(true), cb)
    })
    .unwrap();
    assert!(!a.exists());
    let e = go(&mut rt, |rt, cb| {
        fs::rm(rt, &a, RmOptions::new().recursive(true), cb)
    })
    .unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "rm", &a);
    go(&mut rt, |rt, cb| fs::rm(rt, &a, RmOptions::new().force(true), cb)).unwrap();
    go(&mut rt, |rt, cb| fs::rm(rt, &file, RmOptions::new(), cb)).unwrap();
    assert!(!file.exists());
}

/// truncate, copy_file, exists, realpath.
fn truncate_copy_exists<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = Scratch::new("copy", &rt);
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    std::fs::write(&src, b"0123456789").unwrap();
    std::fs::write(&dst, b"old contents, longer").unwrap();
    assert_eq!(
        go(&mut rt, |rt, cb| fs::copy_file(rt, &src, &dst, cb)).unwrap(),
        10
    );
    assert_eq!(std::fs::read(&dst).unwrap(), b"0123456789");
    go(&mut rt, |rt, cb| fs::truncate(rt, &dst, 4, cb)).unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), b"0123");
    go(&mut rt, |rt, cb| fs::truncate(rt, &dst, 6, cb)).unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), b"0123\0\0");
    let missing = dir.join("missing");
    let e = go(&mut rt, |rt, cb| fs::copy_file(rt, &missing, &dst, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "copy_file", &missing);
    let e = go(&mut rt, |rt, cb| fs::truncate(rt, &missing, 0, cb)).unwrap_err();
    assert_error(&e, ErrorKind::NotFound, "truncate", &missing);
    assert!(go(&mut rt, |rt, cb| fs::exists(rt, &src, cb)).unwrap());
    assert!(!go(&mut rt, |rt, cb| fs::exists(rt, &missing, cb)).unwrap());
    let real = go(&mut rt, |rt, cb| {
        fs::realpath(rt, dir.0.join(".").join("src"), cb)
    })
    .unwrap();
    assert_eq!(real, std::fs::canonicalize(&src).unwrap());
}

/// symlink, readlink, lstat of a link, realpath through it, rm of a link. On Windows links
/// need a privilege (else `PermissionDenied`), and Wine's `CreateSymbolicLinkW` reports
/// success and creates nothing (`fs::symlink` then says `Unsupported`): when creating one is
/// refused, the test says so on stderr and checks only the refusal's error.
fn symlinks<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = Scratch::new("links", &rt);
    let target = dir.join("target");
    std::fs::write(&target, b"t").unwrap();
    let link = dir.join("link");
    if let Err(e) = go(&mut rt, |rt, cb| fs::symlink(rt, "target", &link, cb)) {
        if !cfg!(windows) {
            panic!("symlink failed off Windows: {e}");
        }
        assert_error(&e, e.kind(), "symlink", Path::new("target"));
        eprintln!("symlinks: not available here ({e}); only the refusal was checked");
        return;
    }
    assert_eq!(
        go(&mut rt, |rt, cb| fs::readlink(rt, &link, cb)).unwrap(),
        Path::new("target")
    );
    assert!(go(&mut rt, |rt, cb| fs::lstat(rt, &link, cb))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(go(&mut rt, |rt, cb| fs::stat(rt, &link, cb)).unwrap().is_file());
    let real = go(&mut rt, |rt, cb| fs::realpath(rt, &link, cb)).unwrap();
    assert_eq!(real, std::fs::canonicalize(&target).unwrap());
    let entries = go(&mut rt, |rt, cb| fs::readdir(rt, &dir.0, cb)).unwrap();
    assert!(entries.iter().any(|e| e.name() == "link" && e.is_symlink()));
    let e = go(&mut rt, |rt, cb| fs::symlink(rt, "target", &link, cb)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    if cfg!(unix) {
        let e = go(&mut rt, |rt, cb| fs::readlink(rt, &target, cb)).unwrap_err();
        assert_error(&e, ErrorKind::InvalidInput, "readlink", &target);
    }
    // A dangling link exists as a link, not for `exists`.
    std::fs::remove_file(&target).unwrap();
    assert!(!go(&mut rt, |rt, cb| fs::exists(rt, &link, cb)).unwrap());
    go(&mut rt, |rt, cb| fs::rm(rt, &link, RmOptions::new(), cb)).unwrap();
    assert!(std::fs::symlink_metadata(&link).is_err());
}

/// An fs operation still queued cancels (Interrupted); a file closed while a read of it is
/// queued stays open for that read.
fn cancel_and_close_with_ops_queued<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new().threads(1).build_with(reactor).unwrap();
    let dir = Scratch::new("cancel", &rt);
    let path = dir.join("file");
    std::fs::write(&path, b"contents").unwrap();
    let file = open(&mut rt, &path, "r").unwrap();
    let (release, hold) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    rt.spawn_blocking(
        move || {
            started_tx.send(()).unwrap();
            hold.recv_timeout(LIMIT).is_ok()
        },
        |_, r| assert!(r.unwrap()),
    )
    .unwrap();
    started.recv_timeout(LIMIT).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let stat = fs::stat(&mut rt, &path, move |_, r| {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Interrupted);
        l.borrow_mut().push("stat cancelled".to_owned());
    })
    .unwrap();
    let l = log.clone();
    fs::read(&mut rt, &file, 100, Some(0), move |_, r| {
        assert_eq!(r.unwrap(), b"contents");
        l.borrow_mut().push("read".to_owned());
    })
    .unwrap();
    let l = log.clone();
    fs::close(&mut rt, file, move |_, r| {
        r.unwrap();
        l.borrow_mut().push("closed".to_owned());
    })
    .unwrap();
    rt.cancel_blocking(stat).unwrap();
    release.send(()).unwrap();
    run_bounded(&mut rt, LIMIT);
    assert_eq!(*log.borrow(), ["stat cancelled", "read", "closed"]);
}

/// Descriptors of this process open on `path` (Linux: `/proc/self/fd`), else `None`.
fn open_descriptors(path: &Path) -> Option<usize> {
    if !cfg!(target_os = "linux") {
        return None; // (Wine even lists a /proc/self/fd, of the Wine process)
    }
    let fds = std::fs::read_dir("/proc/self/fd").ok()?;
    let path = std::fs::canonicalize(path).ok()?;
    Some(
        fds.filter_map(Result::ok)
            .filter(|fd| std::fs::read_link(fd.path()).ok().as_deref() == Some(&*path))
            .count(),
    )
}

/// `close` closes a file for all its clones (later operations and a second close are
/// `InvalidInput`); dropping the last clone closes it too, also from a callback; on Linux the
/// descriptors are counted.
fn close_and_drop<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = Scratch::new("close", &rt);
    let path = dir.join("file");
    std::fs::write(&path, b"data").unwrap();
    let file = open(&mut rt, &path, "r").unwrap();
    let clone = file.clone();
    assert!(open_descriptors(&path).is_some() || !cfg!(target_os = "linux"));
    assert_eq!(open_descriptors(&path).unwrap_or(1), 1);
    go(&mut rt, |rt, cb| fs::close(rt, file, cb)).unwrap();
    assert_eq!(open_descriptors(&path).unwrap_or(0), 0, "closed for every clone");
    let e = go(&mut rt, |rt, cb| fs::read(rt, &clone, 4, Some(0), cb)).unwrap_err();
    assert_error(&e, ErrorKind::InvalidInput, "read", &path);
    assert!(e.to_string().contains("closed"), "{e}");
    let e = go(&mut rt, |rt, cb| fs::close(rt, clone, cb)).unwrap_err();
    assert_error(&e, ErrorKind::InvalidInput, "close", &path);
    // Dropped, not closed: the last clone's drop closes, even inside a callback.
    let a = open(&mut rt, &path, "r").unwrap();
    let b = open(&mut rt, &path, "r").unwrap();
    assert_eq!(open_descriptors(&path).unwrap_or(2), 2);
    drop(a);
    assert_eq!(open_descriptors(&path).unwrap_or(1), 1);
    let held = b.clone();
    let data = go(&mut rt, move |rt, cb| {
        fs::read(rt, &b, 4, None, move |rt, r| {
            drop(held);
            cb(rt, r)
        })
    });
    assert_eq!(data.unwrap(), b"data");
    assert_eq!(open_descriptors(&path).unwrap_or(0), 0, "dropped in the callback");
}

/// `fs::aio`: the operations as futures in a task, errors included, several in flight at once.
fn aio_futures<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = Scratch::new("aio", &rt);
    let local = rt.local();
    let d = dir.0.clone();
    let time = local.time().clone();
    let work = async move {
        use fs::aio;
        aio::mkdir(&local, d.join("sub/deeper"), true).await?;
        let file = aio::open(&local, d.join("f"), &fs::flags("w+")?).await?;
        assert_eq!(aio::write(&local, &file, b"0123456789", Some(0)).await?, 10);
        // Three reads in flight at once.
        let reads = [
            aio::read(&local, &file, 3, Some(0)),
            aio::read(&local, &file, 3, Some(7)),
            aio::read(&local, &file, 3, Some(20)),
        ];
        let mut got = Vec::new();
        for r in reads {
            got.push(r.await?);
        }
        assert_eq!(got, [b"012".to_vec(), b"789".to_vec(), Vec::new()]);
        assert_eq!(aio::fstat(&local, &file).await?.len(), 10);
        aio::ftruncate(&local, &file, 4).await?;
        aio::fsync(&local, &file).await?;
        aio::close(&local, file).await?;
        assert_eq!(aio::read_file(&local, d.join("f")).await?, b"0123");
        aio::rename(&local, d.join("f"), d.join("g")).await?;
        assert_eq!(aio::copy_file(&local, d.join("g"), d.join("h")).await?, 4);
        let names: Vec<_> = aio::readdir(&local, &d)
            .await?
            .iter()
            .map(|e| e.name().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["g", "h", "sub"]);
        let missing = d.join("missing");
        let e = aio::stat(&local, &missing).await.unwrap_err();
        assert_error(&e, ErrorKind::NotFound, "stat", &missing);
        assert!(!aio::exists(&local, &missing).await?);
        aio::rm(&local, d.join("sub"), RmOptions::new().recursive(true)).await?;
        aio::unlink(&local, d.join("h")).await?;
        io::Result::Ok(())
    };
    // Bounded: a future that never resolves fails the test with TimedOut.
    let done = rt.block_on(time.timeout(LIMIT, work)).unwrap();
    done.expect("in time").unwrap();
    assert!(dir.join("g").is_file() && !dir.join("h").exists() && !dir.join("sub").exists());
}

macro_rules! fs_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn read_write_at_offsets() { super::read_write_at_offsets($make) }
            #[test] fn open_errors() { super::open_errors($make) }
            #[test] fn stat_variants() { super::stat_variants($make) }
            #[test] fn readdir_entries() { super::readdir_entries($make) }
            #[test] fn directories_and_renames() { super::directories_and_renames($make) }
            #[test] fn truncate_copy_exists() { super::truncate_copy_exists($make) }
            #[test] fn symlinks() { super::symlinks($make) }
            #[test] fn close_and_drop() { super::close_and_drop($make) }
            #[test] fn aio_futures() { super::aio_futures($make) }
            #[test] fn cancel_and_close_with_ops_queued() { super::cancel_and_close_with_ops_queued($make) }
        }
    )*};
}

fs_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
}
