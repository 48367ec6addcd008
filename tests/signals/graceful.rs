//! The canonical use of signals: `examples/graceful_shutdown.rs`'s server, run in a child
//! process (this test binary, re-executed with `GRACEFUL_CHILD` set), gets `SIGTERM`, stops
//! accepting, serves its open connection to the end and exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use portable_reactor::{MioReactor, PollingReactor};

use super::graceful_shutdown::serve;
use super::LIMIT;

/// Set in the child: the backend its server runs on.
const CHILD_ENV: &str = "GRACEFUL_CHILD";

/// The child's body; does nothing in a normal test run.
#[test]
fn child_server() {
    let Ok(backend) = std::env::var(CHILD_ENV) else {
        return;
    };
    let announce = |line: &str| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    match backend.as_str() {
        "polling" => serve(PollingReactor::new().unwrap(), addr, announce),
        "mio" => serve(MioReactor::new().unwrap(), addr, announce),
        other => panic!("unknown backend {other}"),
    }
    .expect("serve");
    std::process::exit(0);
}

/// Waits (bounded) for the child's line starting with `prefix`; returns the rest of it.
fn wait_for(lines: &mpsc::Receiver<String>, prefix: &str) -> String {
    loop {
        match lines.recv_timeout(LIMIT) {
            Ok(line) => {
                // libtest's "test graceful::child_server ... " may start the first line.
                if let Some(at) = line.find(prefix) {
                    return line[at + prefix.len()..].to_string();
                }
            }
            Err(e) => panic!("the child never printed {prefix:?}: {e}"),
        }
    }
}

pub(super) fn shutdown(backend: &str) {
    super::init();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "graceful::child_server",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, backend)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(Some(child));
    let stdout = child.get().stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let addr: SocketAddr = wait_for(&lines, "listening ").parse().unwrap();

    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn.write_all(b"hello").unwrap();
    let mut buf = [0; 5];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    wait_for(&lines, "connection 1");

    let pid = child.get().id() as libc::pid_t;
    // SAFETY: kill(2) with a child's pid that was not reaped yet (we wait for it below).
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0);
    assert_eq!(wait_for(&lines, "stopped accepting (signal "), "15)");
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    // The open connection is still served while the server drains.
    conn.write_all(b"bye").unwrap();
    let mut buf = [0; 3];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"bye");
    conn.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        conn.read(&mut [0; 8]).unwrap(),
        0,
        "the server closes after the client's EOF"
    );
    wait_for(&lines, "drained");

    let (tx, done) = mpsc::channel();
    let mut waited = child.0.take().unwrap();
    std::thread::spawn(move || tx.send(waited.wait()));
    let Ok(status) = done.recv_timeout(LIMIT) else {
        // SAFETY: kill(2); the child is not reaped (its wait has not returned).
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("the child did not exit");
    };
    let status = status.unwrap();
    assert!(status.success(), "the child exited with {status}");
}

/// Kills the child if the test fails before it exits.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    fn get(&mut self) -> &mut std::process::Child {
        self.0.as_mut().unwrap()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
