//! A tour of what the runtime reaches of the OS: a signal, a child process whose output is
//! read on the loop, and (on Unix) a Unix-domain socket, all on one loop.
//!
//! - The loop watches `SIGINT` (Ctrl-C; on Windows through the C runtime) and the example
//!   raises it, so the watcher's callback runs in the poll phase like any I/O callback.
//! - It spawns this example again as a child (with an environment variable telling it to act
//!   as one), reads the child's stdout as data callbacks, writes its stdin, and gets its exit.
//! - It listens on a Unix-domain socket in the temp directory, connects to it and echoes a line.
//!
//! ```text
//! cargo run --example tour_os
//! RUST_LOG=debug cargo run --example tour_os   # the runtime's own log lines
//! ```

use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use portable_reactor::process::{self, Command, Stdio};
use portable_reactor::runtime::Runtime;
use portable_reactor::signal;

const CHILD_ENV: &str = "PORTABLE_REACTOR_TOUR_CHILD";

/// The child: echoes each stdin line upper-cased, then exits with 3.
fn child() -> ! {
    let stdin = io::stdin();
    let mut out = io::stdout();
    for line in stdin.lock().lines() {
        let line = line.expect("stdin");
        writeln!(out, "child got: {}", line.to_uppercase()).expect("stdout");
    }
    out.flush().expect("stdout");
    std::process::exit(3)
}

fn main() -> io::Result<()> {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
    }
    env_logger::init();
    let start = Instant::now();
    let log = move |what: &str| println!("[{:>7.1} ms] {what}", start.elapsed().as_secs_f64() * 1e3);
    let mut rt = Runtime::new()?;

    // A signal, delivered on the loop thread.
    signal::watch(&mut rt, signal::SIGINT, move |rt, watcher, delivery| {
        log(&format!("signal {} delivered: {delivery:?}", watcher.signal()));
        watcher.stop(rt);
    })?;
    signal::raise(signal::SIGINT)?;

    // A child process: this program again, its stdin and stdout piped to the loop.
    let command = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::Pipe)
        .stdout(Stdio::Pipe)
        .timeout(Duration::from_secs(10));
    let child = process::spawn(&mut rt, &command, move |_, exit| {
        log(&format!("child exited: {exit:?}"));
    })?;
    let output = Rc::new(RefCell::new(Vec::new()));
    let out = output.clone();
    child.on_stdout(&mut rt, move |_, data| match data {
        Ok([]) => log("child stdout: end"),
        Ok(bytes) => out.borrow_mut().extend_from_slice(bytes),
        Err(e) => log(&format!("child stdout failed: {e}")),
    })?;
    child.write_stdin(&mut rt, b"hello\nfrom the loop\n")?;
    child.close_stdin(&mut rt)?;

    #[cfg(unix)]
    unix_socket(&mut rt, log)?;

    rt.run()?;
    print!("{}", String::from_utf8_lossy(&output.borrow()));
    log("the loop has nothing left: done");
    Ok(())
}

/// A Unix-domain echo: listen, connect, one line each way, close.
#[cfg(unix)]
fn unix_socket(rt: &mut Runtime, log: impl Fn(&str) + Copy + 'static) -> io::Result<()> {
    use portable_reactor::net::unix::{self, ConnectOptions, ListenOptions};

    let path = std::env::temp_dir().join(format!("portable-reactor-tour-{}.sock", std::process::id()));
    let listener = Rc::new(RefCell::new(None));
    let slot = listener.clone();
    let l = unix::listen(
        rt,
        &path,
        ListenOptions::new().remove_stale(true),
        move |rt, conn| {
            let conn = conn.expect("accept");
            // One connection is all this tour takes.
            if let Some(listener) = slot.borrow_mut().take() {
                let listener: unix::Listener = listener;
                listener.close(rt);
            }
            conn.on_data(rt, move |rt, conn, data| match data {
                Ok([]) => conn.close(rt),
                Ok(bytes) => {
                    log(&format!("unix server got {:?}", String::from_utf8_lossy(bytes)));
                    let _ = conn.write(rt, bytes);
                }
                Err(e) => log(&format!("unix server: {e}")),
            })
            .expect("on_data");
        },
    )?;
    *listener.borrow_mut() = Some(l);
    unix::connect(rt, &path, ConnectOptions::new(), move |rt, conn| {
        let conn = conn.expect("connect");
        conn.write(rt, b"ping over a Unix socket").expect("write");
        conn.on_data(rt, move |rt, conn, data| match data {
            Ok([]) => {}
            Ok(bytes) => {
                log(&format!(
                    "unix client got {:?} back",
                    String::from_utf8_lossy(bytes)
                ));
                conn.close(rt);
            }
            Err(e) => log(&format!("unix client: {e}")),
        })
        .expect("on_data");
    })?;
    Ok(())
}
