//! A graceful shutdown on `SIGTERM` (or Ctrl-C): an echo server that, on the signal, stops
//! accepting, lets its open connections finish (each closes when its client ends it), and
//! exits 0 when the last one is gone, because the loop then has nothing left.
//!
//! ```text
//! cargo run --example graceful_shutdown            # prints "listening 127.0.0.1:PORT"
//! kill -TERM <pid>                                 # or Ctrl-C
//! ```
//!
//! A second signal during the drain ends the process at once (exit status 1).
//! `tests/signals.rs` runs [`serve`] in a child process and checks all of this.

use std::cell::Cell;
use std::io::{self, Write};
use std::rc::Rc;

use portable_reactor::net::tcp::{self, ListenOptions};
use portable_reactor::runtime::{Builder, Runtime, WatchOptions};
use portable_reactor::{signal, Reactor};

/// Runs the server on `reactor` at `addr` until it has drained after a signal. `announce` gets
/// one line per step: `listening ADDR`, `connection N` (N open), `stopped accepting (signal S)`,
/// `closed N` (N left open), `drained`.
pub fn serve<R: Reactor + 'static>(
    reactor: R,
    addr: std::net::SocketAddr,
    announce: impl Fn(&str) + 'static,
) -> io::Result<()> {
    let mut rt: Runtime<R> = Builder::new().build_with(reactor)?;
    let announce = Rc::new(announce);
    let open = Rc::new(Cell::new(0usize));
    let draining = Rc::new(Cell::new(false));

    let options = ListenOptions::new().watch(WatchOptions::new().no_timeout());
    let (a, o, d) = (announce.clone(), open.clone(), draining.clone());
    let listener = tcp::listen(&mut rt, addr, options, move |rt, conn| {
        let Ok(conn) = conn else { return };
        o.set(o.get() + 1);
        a(&format!("connection {}", o.get()));
        let (a, o, d) = (a.clone(), o.clone(), d.clone());
        let _ = conn.on_data(rt, move |rt, conn, data| match data {
            Ok(bytes) if !bytes.is_empty() => {
                let _ = conn.write(rt, bytes);
            }
            // EOF (the connection closes once its echo is flushed) or an error: gone.
            _ => {
                conn.close(rt);
                o.set(o.get() - 1);
                a(&format!("closed {}", o.get()));
                if d.get() && o.get() == 0 {
                    a("drained");
                }
            }
        });
    })?;
    announce(&format!("listening {}", listener.local_addr()));

    #[cfg(unix)]
    let signals = [signal::SIGTERM, signal::SIGINT];
    #[cfg(windows)]
    let signals = [signal::SIGINT, signal::SIGBREAK];
    for sig in signals {
        let (a, o, d, listener) = (announce.clone(), open.clone(), draining.clone(), listener.clone());
        let watcher = signal::watch(&mut rt, sig, move |rt, _watcher, delivered| {
            let Ok(sig) = delivered else { return };
            if d.replace(true) {
                a("second signal: exiting now");
                std::process::exit(1);
            }
            listener.close(rt);
            a(&format!("stopped accepting (signal {sig})"));
            if o.get() == 0 {
                a("drained");
            }
        })?;
        // The watchers do not keep the loop alive: the listener and the connections do, so
        // it ends once the listener is closed and the last connection is gone.
        watcher.unref(&mut rt)?;
    }
    rt.run()
}

#[allow(dead_code)] // tests/signals.rs includes this file for `serve` only
fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    serve(portable_reactor::DefaultReactor::new()?, addr, |line| {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })?;
    Ok(())
}
