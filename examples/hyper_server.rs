//! A hyper 1.x HTTP/1.1 server on the runtime: hyper's connection futures run as tasks on
//! the loop (no tokio runtime), reading and writing through `Async<TcpStream>`, which
//! implements tokio's `AsyncRead`/`AsyncWrite` (feature `tokio`), wrapped in hyper-util's
//! `TokioIo` to get hyper's `rt::Read`/`rt::Write`.
//!
//! ```text
//! cargo run --example hyper_server -- [--addr 127.0.0.1:8080] [--requests N] [--backend default|polling|mio]
//! RUST_LOG=debug cargo run --example hyper_server   # log every connection
//! curl http://127.0.0.1:8080/            # Hello, World!
//! curl http://127.0.0.1:8080/abc         # abc (the path, echoed)
//! curl -d 'some body' http://127.0.0.1:8080/  # some body (a POST's body, echoed)
//! ```
//!
//! It prints `hyper_server: listening on http://ADDR (BACKEND)` once bound (port 0, the
//! default, picks a free port) and runs until killed, or until it has answered `N` requests
//! (`--requests N`): then it stops accepting, lets every connection finish the request it is
//! on (hyper's graceful shutdown), and exits.
//!
//! # In-process use (tests, benches)
//!
//! ```ignore
//! #[path = "../examples/hyper_server.rs"]
//! #[allow(dead_code)]
//! mod hyper_server;
//!
//! let server = hyper_server::Server::new(None);
//! let listener = Async::new(&mut rt, nonblocking_listener)?;
//! let task = rt.spawn_local(server.clone().serve(rt.local(), listener));
//! // ... clients; then `server.shutdown()` and await `task`.
//! ```

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use portable_reactor::runtime::{Async, Builder, Local, WatchOptions};
use portable_reactor::{reactor_by_name, Reactor};

/// The service every server here runs (ours and, in the bench, tokio's): `GET /` answers
/// `Hello, World!`, `GET /PATH` answers `PATH`, a request with a body answers the body.
pub async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_owned();
    let body = if request.method() == Method::POST || request.method() == Method::PUT {
        request.into_body().collect().await?.to_bytes()
    } else if path == "/" {
        Bytes::from_static(b"Hello, World!")
    } else {
        Bytes::from(path[1..].to_owned())
    };
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body(Full::new(body))
        .expect("a valid response"))
}

/// A server's shared state: requests answered, an optional limit, and the shutdown signal its
/// accept loop and connections wait on.
#[derive(Default)]
pub struct Server {
    answered: Cell<u64>,
    limit: Option<u64>,
    shutting_down: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Server {
    /// A server that shuts down after `limit` requests (never with `None`).
    pub fn new(limit: Option<u64>) -> Rc<Server> {
        Rc::new(Server {
            limit,
            ..Server::default()
        })
    }

    /// Requests answered so far.
    pub fn answered(&self) -> u64 {
        self.answered.get()
    }

    /// Stops accepting and closes every connection once its current request is answered.
    pub fn shutdown(&self) {
        if !self.shutting_down.replace(true) {
            for waker in self.waiters.take() {
                waker.wake();
            }
        }
    }

    /// Whether [`shutdown`](Server::shutdown) was called (or the limit reached).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.get()
    }

    fn count(&self) {
        let n = self.answered.get() + 1;
        self.answered.set(n);
        if self.limit.is_some_and(|limit| n >= limit) {
            log::debug!("hyper_server: {n} requests answered, shutting down");
            self.shutdown();
        }
    }

    /// Ready once shutting down (registers the waker otherwise).
    fn poll_shutdown(&self, waker: &Waker) -> Poll<()> {
        if self.shutting_down.get() {
            return Poll::Ready(());
        }
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
        Poll::Pending
    }

    /// Accepts on `listener` (non-blocking, watched on `local`'s runtime) and serves each
    /// connection as a task, until shutdown; then waits for every connection to finish.
    /// Returns the number of requests answered.
    ///
    /// # Errors
    ///
    /// An accept error (connections' errors are logged and end only that connection).
    pub async fn serve<R: Reactor + 'static>(
        self: Rc<Self>,
        local: Local<R>,
        listener: Async<TcpListener, R>,
    ) -> io::Result<u64> {
        let mut connections = Vec::new();
        loop {
            let accepted = poll_fn(|cx| {
                if self.poll_shutdown(cx.waker()).is_ready() {
                    return Poll::Ready(None);
                }
                listener.poll_read_with(cx, |l| l.accept()).map(Some)
            })
            .await;
            let Some(accepted) = accepted else { break };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                // A connection reset before it was accepted, out of descriptors...: go on.
                Err(e) => {
                    log::warn!("hyper_server: accept: {e}");
                    continue;
                }
            };
            connections.retain(|c: &portable_reactor::runtime::JoinHandle<()>| !c.is_finished());
            match self.connection(&local, stream) {
                Ok(conn) => {
                    log::debug!("hyper_server: connection from {peer}");
                    connections.push(local.spawn(conn));
                }
                Err(e) => log::warn!("hyper_server: connection from {peer}: {e}"),
            }
        }
        drop(listener);
        for conn in connections {
            let _ = conn.await;
        }
        Ok(self.answered())
    }

    /// One connection's future: hyper's HTTP/1.1 connection, shut down gracefully when the
    /// server shuts down.
    fn connection<R: Reactor + 'static>(
        self: &Rc<Self>,
        local: &Local<R>,
        stream: TcpStream,
    ) -> io::Result<impl Future<Output = ()> + 'static> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        let io = TokioIo::new(Async::in_local(local, stream, WatchOptions::new()));
        let counter = self.clone();
        let service = hyper::service::service_fn(move |request| {
            let counter = counter.clone();
            async move {
                let response = hello(request).await;
                counter.count();
                response
            }
        });
        let server = self.clone();
        Ok(async move {
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
            let mut conn = std::pin::pin!(conn);
            let mut graceful = false;
            let result = poll_fn(|cx| {
                if !graceful && server.poll_shutdown(cx.waker()).is_ready() {
                    graceful = true;
                    conn.as_mut().graceful_shutdown();
                }
                Pin::new(&mut conn).poll(cx)
            })
            .await;
            if let Err(e) = result {
                log::debug!("hyper_server: connection ended: {e}");
            }
        })
    }
}

/// Binds a non-blocking listener on `addr`.
///
/// # Errors
///
/// The bind error.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn run(backend: &str, addr: SocketAddr, limit: Option<u64>) -> io::Result<()> {
    let mut rt = Builder::new().build_with(reactor_by_name(backend)?)?;
    let listener = bind(addr)?;
    println!(
        "hyper_server: listening on http://{} ({}: {})",
        listener.local_addr()?,
        rt.reactor().name(),
        rt.reactor().mechanism()
    );
    let listener = Async::new(&mut rt, listener)?;
    let server = Server::new(limit);
    let local = rt.local();
    let answered = rt.block_on(server.serve(local, listener))??;
    println!("hyper_server: answered {answered} requests");
    Ok(())
}

#[allow(dead_code)] // unused where the file is included as a module
fn main() -> io::Result<()> {
    env_logger::init();
    let mut addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut limit = None;
    let mut backend = "default".to_string();
    let mut args = std::env::args().skip(1);
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                addr = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| bad("--addr HOST:PORT"))?;
            }
            "--requests" => {
                limit = Some(
                    args.next()
                        .and_then(|a| a.parse().ok())
                        .ok_or_else(|| bad("--requests N"))?,
                );
            }
            "--backend" => backend = args.next().ok_or_else(|| bad("--backend NAME"))?,
            other => return Err(bad(&format!("unknown argument {other:?}"))),
        }
    }
    run(&backend, addr, limit)
}
