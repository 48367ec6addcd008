//! A hyper 1.x HTTP/1.1 client on the runtime, against `examples/hyper_server.rs` (or any
//! server answering `GET /PATH` with `PATH`): one keep-alive connection, `N` sequential
//! requests, each response checked.
//!
//! ```text
//! cargo run --example hyper_server -- --addr 127.0.0.1:8080 &
//! cargo run --example hyper_client -- 127.0.0.1:8080 [N] [--backend default|polling|mio]
//! ```
//!
//! It requests `/0`, `/1`, ... `/N-1` (default N = 10), checks each status is 200 and each
//! body is the path without its slash, prints `hyper_client: N responses OK`, and exits 1 on
//! the first mismatch or error.
//!
//! The connection's `connect` is std's blocking one (the runtime has no async connect yet;
//! on loopback it returns at once); reads and writes then go through `Async<TcpStream>` and
//! hyper-util's `TokioIo`, and hyper's connection future runs as a task on the loop.

use std::io;
use std::net::{SocketAddr, TcpStream};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use portable_reactor::runtime::{Async, Builder, JoinHandle, Local, WatchOptions};
use portable_reactor::{reactor_by_name, Reactor};

/// A client connection: its request sender and the task driving hyper's connection.
pub type Connection<B> = (SendRequest<B>, JoinHandle<()>);

/// Connects to `addr` and hands the connection to hyper, whose connection future runs as a
/// task on `local`'s runtime.
///
/// # Errors
///
/// The connect error; hyper's handshake error as `ErrorKind::Other`.
pub async fn connect<R, B>(local: &Local<R>, addr: SocketAddr) -> io::Result<Connection<B>>
where
    R: Reactor + 'static,
    B: hyper::body::Body + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr)?;
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(Async::in_local(local, stream, WatchOptions::new()));
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(io::Error::other)?;
    let driver = local.spawn(async move {
        if let Err(e) = conn.await {
            log::debug!("hyper_client: connection ended: {e}");
        }
    });
    Ok((sender, driver))
}

/// Sends `request` and collects the response: its status and body.
///
/// # Errors
///
/// hyper's error as `ErrorKind::Other`.
pub async fn fetch<B>(sender: &mut SendRequest<B>, request: Request<B>) -> io::Result<(StatusCode, Bytes)>
where
    B: hyper::body::Body + 'static,
{
    sender.ready().await.map_err(io::Error::other)?;
    let response = sender.send_request(request).await.map_err(io::Error::other)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?
        .to_bytes();
    Ok((status, body))
}

/// `GET /path` on `sender`'s connection (to `host`).
///
/// # Errors
///
/// As for [`fetch`].
pub async fn get(
    sender: &mut SendRequest<Empty<Bytes>>,
    host: SocketAddr,
    path: &str,
) -> io::Result<(StatusCode, Bytes)> {
    let request = Request::get(path)
        .header("host", host.to_string())
        .body(Empty::new())
        .map_err(io::Error::other)?;
    fetch(sender, request).await
}

/// `POST /path` with `body` on `sender`'s connection.
///
/// # Errors
///
/// As for [`fetch`].
pub async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    host: SocketAddr,
    path: &str,
    body: Bytes,
) -> io::Result<(StatusCode, Bytes)> {
    let request = Request::post(path)
        .header("host", host.to_string())
        .body(Full::new(body))
        .map_err(io::Error::other)?;
    fetch(sender, request).await
}

/// Checks a response to `GET /NAME`: status 200, body `NAME` (`Hello, World!` for `/`).
///
/// # Errors
///
/// `ErrorKind::InvalidData` describing the mismatch.
pub fn check(path: &str, (status, body): &(StatusCode, Bytes)) -> io::Result<()> {
    let want: &[u8] = if path == "/" {
        b"Hello, World!"
    } else {
        &path.as_bytes()[1..]
    };
    if *status != StatusCode::OK || body.as_ref() != want {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "GET {path}: {status} {body:?}, wanted 200 {:?}",
                Bytes::copy_from_slice(want)
            ),
        ));
    }
    Ok(())
}

/// `n` sequential `GET /i` on one connection to `addr`, each checked.
///
/// # Errors
///
/// The first failure.
pub async fn run_requests<R: Reactor + 'static>(
    local: Local<R>,
    addr: SocketAddr,
    n: usize,
) -> io::Result<()> {
    let (mut sender, driver) = connect::<R, Empty<Bytes>>(&local, addr).await?;
    for i in 0..n {
        let path = format!("/{i}");
        check(&path, &get(&mut sender, addr, &path).await?)?;
    }
    // Closing the sender ends the connection (hyper closes it once idle).
    drop(sender);
    driver.await?;
    Ok(())
}

#[allow(dead_code)] // unused where the file is included as a module
fn main() {
    env_logger::init();
    let mut backend = String::from("default");
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--backend" => backend = args.next().unwrap_or_else(|| usage("--backend NAME")),
            _ => positional.push(arg),
        }
    }
    let addr: SocketAddr = match positional.first().map(|a| a.parse()) {
        Some(Ok(addr)) => addr,
        _ => usage("an address HOST:PORT"),
    };
    let n: usize = match positional.get(1).map(|n| n.parse()) {
        None => 10,
        Some(Ok(n)) => n,
        Some(Err(_)) => usage("a request count N"),
    };
    let result = (|| {
        let mut rt = Builder::new().build_with(reactor_by_name(&backend)?)?;
        let local = rt.local();
        rt.block_on(run_requests(local, addr, n))?
    })();
    match result {
        Ok(()) => println!("hyper_client: {n} responses OK"),
        Err(e) => {
            eprintln!("hyper_client: {e}");
            std::process::exit(1);
        }
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "hyper_client: wanted {problem}\nusage: hyper_client HOST:PORT [N] [--backend default|polling|mio]"
    );
    std::process::exit(2);
}
