//! A tour of the runtime: the original design's demo.
//!
//! Two file reads in parallel and a third chained on the first, a CPU-heavy job on the thread
//! pool, zero-delay timers, a 3000 ms timer that sets a nested 500 ms one, a 1000 ms timer,
//! and a request to a slow TCP server started here on 127.0.0.1. Every step prints the time and
//! the thread it ran on.
//!
//! ```text
//! cargo run --example tour
//! RUST_LOG=trace cargo run --example tour   # one line per loop tick
//! ```

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use portable_reactor::fs;
use portable_reactor::runtime::{Runtime, WatchOptions};
use portable_reactor::{Interest, Reactor};

fn step(start: Instant, what: &str) {
    let thread = std::thread::current();
    println!(
        "[{:>5} ms] {:<14} {}",
        start.elapsed().as_millis(),
        thread.name().unwrap_or("?"),
        what
    );
}

/// A server that takes its time: reads a request, waits 1500 ms, answers.
fn slow_server() -> io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("slow-server".into())
        .spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 64];
                let n = conn.read(&mut buf).unwrap_or(0);
                std::thread::sleep(Duration::from_millis(1500)); // the slowness being demonstrated
                let reply = format!(
                    "HTTP/1.0 200 OK\r\n\r\nslow answer to {:?}",
                    String::from_utf8_lossy(&buf[..n])
                );
                let _ = conn.write_all(reply.as_bytes());
            }
        })?;
    Ok(addr)
}

fn demo_files() -> io::Result<Vec<PathBuf>> {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    (1..=3)
        .map(|i| {
            let path = dir.join(format!("portable-reactor-tour-{pid}-{i}.txt"));
            std::fs::write(&path, format!("contents of file {i}\n").repeat(i * 1000))?;
            Ok(path)
        })
        .collect()
}

fn main() -> io::Result<()> {
    env_logger::init();
    let start = Instant::now();
    let mut rt = Runtime::new()?;
    step(
        start,
        &format!(
            "loop starts on {} ({})",
            rt.reactor().name(),
            rt.reactor().mechanism()
        ),
    );

    // Two file reads in parallel, and a third chained on the first.
    let files = demo_files()?;
    let third = files[2].clone();
    fs::read_file(&mut rt, &files[0], move |rt, data| {
        step(
            start,
            &format!(
                "file 1 read: {} bytes; chaining file 3",
                data.map(|d| d.len()).unwrap_or(0)
            ),
        );
        fs::read_file(rt, third, move |_, data| {
            step(
                start,
                &format!("file 3 read: {} bytes", data.map(|d| d.len()).unwrap_or(0)),
            );
        })
        .expect("pool");
    })?;
    fs::read_file(&mut rt, &files[1], move |_, data| {
        step(
            start,
            &format!("file 2 read: {} bytes", data.map(|d| d.len()).unwrap_or(0)),
        );
    })?;

    // A CPU-heavy job on the pool.
    rt.spawn_blocking(
        move || {
            step(start, "counting primes below 300,000");
            (2u32..300_000)
                .filter(|n| (2..).take_while(|d| d * d <= *n).all(|d| n % d != 0))
                .count()
        },
        move |_, primes| step(start, &format!("pool job done: {} primes", primes.unwrap_or(0))),
    )?;

    // Zero-delay timers, then the long ones.
    rt.set_timeout(Duration::ZERO, move |_| step(start, "zero-delay timer 1"));
    rt.set_timeout(Duration::ZERO, move |_| step(start, "zero-delay timer 2"));
    rt.set_timeout(Duration::from_millis(3000), move |rt| {
        step(start, "3000 ms timer; setting a nested 500 ms one");
        rt.set_timeout(Duration::from_millis(500), move |_| {
            step(start, "nested 500 ms timer")
        });
    });
    rt.set_timeout(Duration::from_millis(1000), move |_| step(start, "1000 ms timer"));

    // A request to the slow server, with a deadline on the wait.
    let addr = slow_server()?;
    let mut conn = TcpStream::connect(addr)?;
    conn.write_all(b"GET /slow")?;
    conn.set_nonblocking(true)?;
    step(start, "request sent to the slow server");
    let mut reply = Vec::new();
    rt.watch_with(
        conn,
        Interest::READABLE,
        WatchOptions::new().timeout(Duration::from_secs(5)),
        move |rt, id, conn, event| {
            if let Err(e) = event {
                step(start, &format!("request failed: {e}"));
                return;
            }
            let mut buf = [0u8; 512];
            loop {
                match conn.read(&mut buf) {
                    Ok(0) => {
                        step(start, &format!("response: {:?}", String::from_utf8_lossy(&reply)));
                        rt.close(id).expect("live watch");
                        return;
                    }
                    Ok(n) => reply.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) => {
                        step(start, &format!("read failed: {e}"));
                        rt.close(id).expect("live watch");
                        return;
                    }
                }
            }
        },
    )?;

    step(start, "main done; running the loop");
    rt.run()?;
    step(start, &format!("loop finished: {:?}", rt.stats()));
    for file in files {
        let _ = std::fs::remove_file(file);
    }
    Ok(())
}
