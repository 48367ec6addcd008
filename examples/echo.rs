//! A TCP echo server on the runtime's net modules (`portable_reactor::net::tcp`), on any
//! backend.
//!
//! ```text
//! cargo run --example echo -- [--backend default|polling|mio] [--addr 127.0.0.1:7000]
//! RUST_LOG=debug cargo run --example echo      # log every accept and close
//! ```
//!
//! It prints `echo: listening on ADDR (BACKEND)` once bound (port 0 picks a free port) and runs
//! until killed. The bare-trait version of the same server is `examples/echo_reactor.rs`.
//!
//! # In-process use (benches)
//!
//! [`serve`] and [`serve_on`] start the server on a runtime the caller owns and runs:
//!
//! ```ignore
//! #[path = "../examples/echo.rs"]
//! #[allow(dead_code)]
//! mod echo;
//!
//! let mut rt = portable_reactor::runtime::Builder::new().build_with(reactor)?;
//! let listener = echo::serve_on(&mut rt, std::net::TcpListener::bind("127.0.0.1:0")?)?;
//! // ... tell the load generator `listener.local_addr()`, then:
//! rt.run()?; // until `listener.close(&mut rt)` and every connection ended
//! ```

use std::io;
use std::net::{SocketAddr, TcpListener};

use portable_reactor::net::tcp::{self, Conn, ConnOptions, ListenOptions, Listener};
use portable_reactor::runtime::{Builder, Runtime};
use portable_reactor::{reactor_by_name, DefaultReactor, MioReactor, PollingReactor, Reactor};

/// The options echo connections use: `TCP_NODELAY` (each echo is sent at once) and the
/// defaults otherwise (64 KiB read buffer, 1 MiB write bound, the runtime's idle deadline).
pub fn conn_options() -> ConnOptions {
    ConnOptions::new().nodelay(true)
}

/// Binds `addr` and echoes every connection on `rt` (run it to serve).
///
/// # Errors
///
/// As for [`tcp::listen`].
pub fn serve<R: Reactor + 'static>(rt: &mut Runtime<R>, addr: SocketAddr) -> io::Result<Listener> {
    let opts = ListenOptions::new().conn(conn_options());
    tcp::listen(rt, addr, opts, on_connection)
}

/// Echoes every connection of an already bound `listener` on `rt`.
///
/// # Errors
///
/// As for [`tcp::listen_on`].
pub fn serve_on<R: Reactor + 'static>(rt: &mut Runtime<R>, listener: TcpListener) -> io::Result<Listener> {
    let opts = ListenOptions::new().conn(conn_options());
    tcp::listen_on(rt, listener, opts, on_connection)
}

fn on_connection<R: Reactor + 'static>(rt: &mut Runtime<R>, conn: io::Result<Conn>) {
    let conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            log::warn!("echo: accept failed: {e}");
            return;
        }
    };
    let echoed = conn.on_data(rt, |rt, conn, data| match data {
        Ok([]) => log::debug!("echo: {} sent EOF", conn.id()),
        Ok(bytes) => {
            // A peer that sends but does not read fills the write queue: drop it.
            if let Err(e) = conn.write(rt, bytes) {
                log::warn!("echo: {} dropped: {e}", conn.id());
                conn.close(rt);
            }
        }
        Err(e) => log::debug!("echo: {} ended: {e}", conn.id()),
    });
    if let Err(e) = echoed {
        log::warn!("echo: {} vanished before it was set up: {e}", conn.id());
    }
}

fn main() {
    env_logger::init();
    let mut backend = String::from("default");
    let mut addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--backend", Some(v)) => backend = v,
            ("--addr", Some(v)) => match v.parse() {
                Ok(a) => addr = a,
                Err(e) => usage(&format!("bad --addr {v:?}: {e}")),
            },
            _ => usage(&format!("unexpected argument {arg:?}")),
        }
    }
    if let Err(e) = run(&backend, addr) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}

fn run(backend: &str, addr: SocketAddr) -> io::Result<()> {
    // The static type where the name says which: no `Box<dyn Reactor>` call per poll.
    match backend {
        "default" => run_on(DefaultReactor::new()?, addr),
        "polling" => run_on(PollingReactor::new()?, addr),
        "mio" => run_on(MioReactor::new()?, addr),
        other => run_on(reactor_by_name(other)?, addr),
    }
}

fn run_on<R: Reactor + 'static>(reactor: R, addr: SocketAddr) -> io::Result<()> {
    let mut rt = Builder::new().build_with(reactor)?;
    let listener = serve(&mut rt, addr)?;
    println!(
        "echo: listening on {} ({}: {})",
        listener.local_addr(),
        rt.reactor().name(),
        rt.reactor().mechanism()
    );
    rt.run()
}

fn usage(problem: &str) -> ! {
    eprintln!("echo: {problem}\nusage: echo [--backend default|polling|mio] [--addr HOST:PORT]");
    std::process::exit(2);
}
