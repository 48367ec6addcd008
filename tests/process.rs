//! Child processes (`portable_reactor::process`): exit status and signal, stdout/stderr in
//! order with EOF, stdin, kill, the deadline, env and cwd, spawn errors, unref, many children.
//! The children are this test binary, re-executed with `PROC_CHILD` naming what to do
//! (`child_main`), so the tests need no other program and run the same on Unix and Windows.
//! Each body runs once per backend through `process_tests!`.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use portable_reactor::process::{self, Child, Command, Exit, Stdio};
use portable_reactor::runtime::{Builder, Runtime};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::{init_logging as init, run_bounded};

const LIMIT: Duration = Duration::from_secs(20);
const CHILD_ENV: &str = "PROC_CHILD";
/// The child's first line on stdout: what libtest printed before it is not the child's.
const MARKER: &[u8] = b"@@child@@\n";
const BIG: usize = 1 << 20;

/// The child's body; does nothing in a normal test run.
#[test]
fn child_main() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut out = io::stdout().lock();
    out.write_all(MARKER).unwrap();
    out.flush().unwrap();
    let code = match mode.split_once(':').unwrap_or((&mode, "")) {
        ("exit", code) => code.parse().unwrap(),
        ("print", _) => {
            out.write_all(b"out1\n").unwrap();
            out.flush().unwrap();
            eprintln!("err1");
            out.write_all(b"out2\n").unwrap();
            3
        }
        ("echo", _) => {
            let mut input = Vec::new();
            io::stdin().read_to_end(&mut input).unwrap();
            out.write_all(&input).unwrap();
            0
        }
        ("big", _) => {
            out.write_all(&vec![b'x'; BIG]).unwrap();
            0
        }
        ("env", _) => {
            for key in ["PROC_VAR", "PROC_REMOVED", "PATH"] {
                let value = std::env::var(key).unwrap_or_else(|_| "<unset>".into());
                let value = if key == "PATH" && value != "<unset>" {
                    "<set>".into()
                } else {
                    value
                };
                writeln!(out, "{key}={value}").unwrap();
            }
            writeln!(out, "cwd={}", std::env::current_dir().unwrap().display()).unwrap();
            0
        }
        ("sleep", _) => {
            // Until killed, but never for ever: if the test fails before it kills this child,
            // the child must not outlive the run by an hour (it holds the run's output).
            std::thread::sleep(LIMIT * 6);
            9
        }
        (other, _) => panic!("unknown child mode {other}"),
    };
    out.flush().unwrap();
    std::process::exit(code);
}

/// This test binary as a child doing `mode`.
fn child_cmd(mode: &str) -> Command {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_main", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ENV, mode)
        .stdout(Stdio::Null) // libtest's lines; a test that reads stdout pipes it
}

/// What the child wrote after its marker.
fn payload(out: &[u8]) -> &[u8] {
    let at = out
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .unwrap_or_else(|| panic!("no marker in {:?}", String::from_utf8_lossy(out)));
    &out[at + MARKER.len()..]
}

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    Builder::new().build_with(reactor).expect("runtime")
}

type Exits = Rc<RefCell<Vec<io::Result<Exit>>>>;

/// Spawns `command`, recording each exit callback.
fn spawn<R: Reactor + 'static>(rt: &mut Runtime<R>, command: Command) -> (Child<R>, Exits) {
    let exits: Exits = Rc::new(RefCell::new(Vec::new()));
    let e = exits.clone();
    let child = process::spawn(rt, &command, move |_, exit| e.borrow_mut().push(exit)).unwrap();
    (child, exits)
}

/// Reads a piped stream into a buffer; counts its EOFs.
fn collect<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    child: &Child<R>,
    stderr: bool,
) -> (Rc<RefCell<Vec<u8>>>, Rc<Cell<usize>>) {
    let (data, eofs) = (Rc::new(RefCell::new(Vec::new())), Rc::new(Cell::new(0)));
    let (d, e) = (data.clone(), eofs.clone());
    let callback = move |_: &mut Runtime<R>, chunk: io::Result<&[u8]>| {
        let chunk = chunk.expect("read");
        assert_eq!(e.get(), 0, "data after EOF");
        if chunk.is_empty() {
            e.set(e.get() + 1);
        }
        d.borrow_mut().extend_from_slice(chunk);
    };
    if stderr {
        child.on_stderr(rt, callback).unwrap();
    } else {
        child.on_stdout(rt, callback).unwrap();
    }
    (data, eofs)
}

fn only_exit(exits: &Exits) -> Exit {
    let exits = exits.borrow();
    assert_eq!(exits.len(), 1, "the exit is reported exactly once: {exits:?}");
    *exits[0].as_ref().expect("exit")
}

fn exit_code_reported_once<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (child, exits) = spawn(&mut rt, child_cmd("exit:7"));
    assert!(child.pid() > 0);
    run_bounded(&mut rt, LIMIT);
    let exit = only_exit(&exits);
    assert_eq!(
        (exit.code(), exit.success(), exit.signal(), exit.timed_out()),
        (Some(7), false, None, false)
    );
    assert_eq!(child.exit(), Some(exit));
    assert_eq!(rt.stats().registered, 0, "no watch left");
}

fn stdout_and_stderr_in_order_with_eof<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (child, exits) = spawn(
        &mut rt,
        child_cmd("print").stdout(Stdio::Pipe).stderr(Stdio::Pipe),
    );
    let (out, out_eofs) = collect(&mut rt, &child, false);
    let (err, err_eofs) = collect(&mut rt, &child, true);
    assert_eq!(
        child.on_stdout(&mut rt, |_, _| {}).unwrap_err().kind(),
        io::ErrorKind::InvalidInput,
        "stdout is read already"
    );
    run_bounded(&mut rt, LIMIT);
    assert_eq!(only_exit(&exits).code(), Some(3));
    assert_eq!(payload(&out.borrow()), b"out1\nout2\n");
    assert!(String::from_utf8_lossy(&err.borrow()).contains("err1\n"));
    assert_eq!((out_eofs.get(), err_eofs.get()), (1, 1));
}

/// A megabyte through the pipe: more than any pipe buffer, so the child waits for the loop.
fn large_output_arrives_whole<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (child, exits) = spawn(&mut rt, child_cmd("big").stdout(Stdio::Pipe));
    let (out, eofs) = collect(&mut rt, &child, false);
    run_bounded(&mut rt, LIMIT);
    assert!(only_exit(&exits).success());
    let out = out.borrow();
    let data = payload(&out);
    assert_eq!(data.len(), BIG);
    assert!(data.iter().all(|&b| b == b'x'));
    assert_eq!(eofs.get(), 1);
}

fn stdin_is_piped_to_the_child<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (child, exits) = spawn(&mut rt, child_cmd("echo").stdin(Stdio::Pipe).stdout(Stdio::Pipe));
    let (out, eofs) = collect(&mut rt, &child, false);
    child.write_stdin(&mut rt, b"hello ").unwrap();
    let big = vec![b'y'; 300_000]; // more than a pipe takes at once: queued
    child.write_stdin(&mut rt, &big).unwrap();
    child.write_stdin(&mut rt, b" world").unwrap();
    child.close_stdin(&mut rt).unwrap();
    assert_eq!(
        child.write_stdin(&mut rt, b"late").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
    run_bounded(&mut rt, LIMIT);
    assert!(only_exit(&exits).success());
    let mut expected = b"hello ".to_vec();
    expected.extend_from_slice(&big);
    expected.extend_from_slice(b" world");
    assert!(
        payload(&out.borrow()) == expected.as_slice(),
        "the child echoed something else"
    );
    assert_eq!(eofs.get(), 1);
    let (plain, _) = spawn(&mut rt, child_cmd("exit:0"));
    assert_eq!(
        plain.write_stdin(&mut rt, b"x").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    run_bounded(&mut rt, LIMIT);
}

fn kill_ends_the_child<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (child, exits) = spawn(&mut rt, child_cmd("sleep"));
    child.kill().unwrap();
    run_bounded(&mut rt, LIMIT);
    let exit = only_exit(&exits);
    assert!(!exit.success() && !exit.timed_out());
    #[cfg(unix)]
    assert_eq!((exit.signal(), exit.code()), (Some(libc::SIGKILL), None));
    #[cfg(windows)]
    assert_eq!(exit.code(), Some(1));
    child.kill().unwrap(); // after the exit: nothing
}

#[cfg(unix)]
fn signal_is_reported<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (child, exits) = spawn(&mut rt, child_cmd("sleep"));
    child.kill_with(portable_reactor::signal::SIGTERM).unwrap();
    run_bounded(&mut rt, LIMIT);
    assert_eq!(only_exit(&exits).signal(), Some(libc::SIGTERM));
    assert_eq!(
        child.kill_with(-3).map_err(|e| e.kind()),
        Ok(()),
        "after the exit: nothing"
    );
    let (other, _) = spawn(&mut rt, child_cmd("sleep"));
    assert_eq!(
        other.kill_with(-3).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    other.kill().unwrap();
    run_bounded(&mut rt, LIMIT);
}

fn deadline_kills_the_child<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let deadline = Duration::from_millis(300);
    let start = Instant::now();
    let (_child, exits) = spawn(&mut rt, child_cmd("sleep").timeout(deadline));
    run_bounded(&mut rt, LIMIT);
    let exit = only_exit(&exits);
    assert!(exit.timed_out() && !exit.success(), "{exit:?}");
    assert!(start.elapsed() >= deadline, "killed before its deadline");
    #[cfg(unix)]
    assert_eq!(exit.signal(), Some(libc::SIGKILL));
    // A child that exits in time is not reported as timed out, and its timer is gone.
    let (_child, exits) = spawn(&mut rt, child_cmd("exit:0").timeout(LIMIT * 3));
    run_bounded(&mut rt, LIMIT);
    assert!(!only_exit(&exits).timed_out());
    assert_eq!(rt.stats().timers, 0);
    let zero = process::spawn(&mut rt, &child_cmd("exit:0").timeout(Duration::ZERO), |_, _| {});
    assert_eq!(zero.unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

fn env_and_cwd_are_honoured<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let dir = std::env::temp_dir().canonicalize().unwrap();
    let command = child_cmd("env")
        .env("PROC_VAR", "value 1")
        .env("PROC_REMOVED", "set, then removed")
        .env_remove("PROC_REMOVED")
        .current_dir(&dir)
        .stdout(Stdio::Pipe);
    let (child_a, exits) = spawn(&mut rt, command);
    let (out, _) = collect(&mut rt, &child_a, false);
    let mut cleared = child_cmd("env")
        .env_clear()
        .env(CHILD_ENV, "env")
        .stdout(Stdio::Pipe);
    if cfg!(windows) {
        // Windows programs need SystemRoot to load their DLLs.
        cleared = cleared.env("SystemRoot", std::env::var("SystemRoot").unwrap_or_default());
    }
    let (child_b, exits_b) = spawn(&mut rt, cleared);
    let (out_b, _) = collect(&mut rt, &child_b, false);
    run_bounded(&mut rt, LIMIT);
    assert!(only_exit(&exits).success() && only_exit(&exits_b).success());
    let text = String::from_utf8_lossy(payload(&out.borrow())).replace('\r', "");
    let cwd = text
        .lines()
        .find_map(|l| l.strip_prefix("cwd="))
        .unwrap()
        .to_string();
    assert_eq!(std::path::Path::new(&cwd).canonicalize().unwrap(), dir);
    assert!(
        text.contains("PROC_VAR=value 1\nPROC_REMOVED=<unset>\nPATH=<set>\n"),
        "{text}"
    );
    let text_b = String::from_utf8_lossy(payload(&out_b.borrow())).replace('\r', "");
    assert!(
        text_b.contains("PROC_VAR=<unset>\nPROC_REMOVED=<unset>\nPATH=<unset>\n"),
        "{text_b}"
    );
}

fn spawn_errors_are_synchronous<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let called = Rc::new(Cell::new(false));
    let c = called.clone();
    let missing = process::spawn(&mut rt, &Command::new("no-such-program-pr-test"), move |_, _| {
        c.set(true)
    });
    assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
    let c = called.clone();
    let bad_cwd = child_cmd("exit:0").current_dir(std::env::temp_dir().join("no-such-dir-pr-test"));
    let bad_cwd = process::spawn(&mut rt, &bad_cwd, move |_, _| c.set(true));
    assert_eq!(bad_cwd.unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(rt.stats().registered, 0, "nothing is left watched");
    run_bounded(&mut rt, LIMIT);
    assert!(!called.get(), "no exit callback for a child that never ran");
}

fn unref_lets_run_return<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (child, exits) = spawn(&mut rt, child_cmd("sleep").timeout(LIMIT * 3));
    child.unref(&mut rt).unwrap();
    run_bounded(&mut rt, LIMIT); // returns: only an unref'd child is left
    assert!(exits.borrow().is_empty() && child.exit().is_none());
    child.ref_(&mut rt).unwrap();
    assert!(rt.is_alive());
    child.kill().unwrap();
    run_bounded(&mut rt, LIMIT);
    assert!(!only_exit(&exits).success());
    assert_eq!(child.unref(&mut rt).unwrap_err().kind(), io::ErrorKind::NotFound);
}

fn many_children_each_reported_once<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let children: Vec<_> = (0..20)
        .map(|i| spawn(&mut rt, child_cmd(&format!("exit:{i}"))))
        .collect();
    run_bounded(&mut rt, LIMIT);
    for (i, (_, exits)) in children.iter().enumerate() {
        assert_eq!(only_exit(exits).code(), Some(i as i32), "child {i}");
    }
    assert_eq!(rt.stats().registered, 0);
}

macro_rules! process_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn exit_code_reported_once() { super::exit_code_reported_once($make) }
            #[test] fn stdout_and_stderr_in_order_with_eof() { super::stdout_and_stderr_in_order_with_eof($make) }
            #[test] fn large_output_arrives_whole() { super::large_output_arrives_whole($make) }
            #[test] fn stdin_is_piped_to_the_child() { super::stdin_is_piped_to_the_child($make) }
            #[test] fn kill_ends_the_child() { super::kill_ends_the_child($make) }
            #[cfg(unix)]
            #[test] fn signal_is_reported() { super::signal_is_reported($make) }
            #[test] fn deadline_kills_the_child() { super::deadline_kills_the_child($make) }
            #[test] fn env_and_cwd_are_honoured() { super::env_and_cwd_are_honoured($make) }
            #[test] fn spawn_errors_are_synchronous() { super::spawn_errors_are_synchronous($make) }
            #[test] fn unref_lets_run_return() { super::unref_lets_run_return($make) }
            #[test] fn many_children_each_reported_once() { super::many_children_each_reported_once($make) }
        }
    )*};
}

process_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
}
