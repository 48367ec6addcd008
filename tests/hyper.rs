//! hyper 1.x on the runtime: the server of `examples/hyper_server.rs` and the client of
//! `examples/hyper_client.rs` as tasks on one loop (no tokio runtime anywhere), HTTP/1.1
//! over `Async<TcpStream>` through hyper-util's `TokioIo`. Each body runs once per backend
//! through `hyper_tests!`; every run is bounded by a watchdog thread that stops the loop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use portable_reactor::runtime::{Async, Builder, Runtime};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

#[path = "../examples/hyper_client.rs"]
#[allow(dead_code)]
mod hyper_client;
#[path = "../examples/hyper_server.rs"]
#[allow(dead_code)]
mod hyper_server;
mod util;

use util::recording::Recording;

/// Generous: the whole body takes milliseconds natively, longer under Wine.
const LIMIT: Duration = Duration::from_secs(60);

/// `rt.block_on(future)`, failing the test if it has not completed after `limit` (the
/// watchdog stops the loop through a handle, so a hung loop or broken timer cannot hang CI).
fn block_on_bounded<R: Reactor + 'static, T: 'static>(
    rt: &mut Runtime<R>,
    limit: Duration,
    future: impl Future<Output = T> + 'static,
) -> T {
    let handle = rt.handle();
    let (done, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let fired = done_rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout);
        if fired {
            let _ = handle.post(|rt| rt.stop());
        }
        fired
    });
    let result = rt.block_on(future);
    drop(done);
    let fired = watchdog.join().expect("watchdog thread");
    assert!(
        !fired,
        "still running after {limit:?}: {:?}",
        result.as_ref().err()
    );
    result.expect("block_on")
}

/// A server task on `rt`; returns its address, its state and its task.
fn start_server<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    limit: Option<u64>,
) -> (
    SocketAddr,
    std::rc::Rc<hyper_server::Server>,
    portable_reactor::runtime::JoinHandle<io::Result<u64>>,
) {
    let listener = hyper_server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = Async::new(rt, listener).unwrap();
    let server = hyper_server::Server::new(limit);
    let task = rt.spawn_local(server.clone().serve(rt.local(), listener));
    (addr, server, task)
}

/// 50 sequential requests on one keep-alive connection, then 4 concurrent connections of 10
/// requests each plus a POST each (its body echoed), then a graceful shutdown that ends the
/// server task with every request counted.
fn sequential_and_concurrent_requests<R: Reactor + 'static>(reactor: R) {
    util::init_logging();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let (addr, server, server_task) = start_server(&mut rt, None);
    let local = rt.local();
    let answered = block_on_bounded(&mut rt, LIMIT, async move {
        hyper_client::run_requests(local.clone(), addr, 50).await?;
        let (mut sender, driver) = hyper_client::connect(&local, addr).await?;
        let got = hyper_client::get(&mut sender, addr, "/").await?;
        hyper_client::check("/", &got)?;
        drop(sender);
        driver.await?;

        let clients: Vec<_> = (0..4)
            .map(|c| {
                let local = local.clone();
                local.clone().spawn(async move {
                    let (mut sender, driver) = hyper_client::connect::<_, Full<Bytes>>(&local, addr).await?;
                    for i in 0..10 {
                        let body = Bytes::from(format!("client {c} request {i}"));
                        let (status, echoed) =
                            hyper_client::post(&mut sender, addr, "/echo", body.clone()).await?;
                        assert_eq!(status, hyper::StatusCode::OK);
                        assert_eq!(echoed, body);
                    }
                    drop(sender);
                    driver.await
                })
            })
            .collect();
        for client in clients {
            client.await??;
        }
        server.shutdown();
        server_task.await?
    })
    .unwrap();
    assert_eq!(answered, 50 + 1 + 4 * 10);
}

/// The server's request limit (`--requests N`): after the Nth response it stops accepting and
/// closes the kept-alive connection, so its task ends by itself and the client sees the end.
fn request_limit_shuts_the_server_down<R: Reactor + 'static>(reactor: R) {
    util::init_logging();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let (addr, server, server_task) = start_server(&mut rt, Some(5));
    let local = rt.local();
    let answered = block_on_bounded(&mut rt, LIMIT, async move {
        let (mut sender, driver) =
            hyper_client::connect::<_, http_body_util::Empty<Bytes>>(&local, addr).await?;
        for i in 0..5 {
            let path = format!("/n{i}");
            hyper_client::check(&path, &hyper_client::get(&mut sender, addr, &path).await?)?;
        }
        // The server ends the connection without the client closing it.
        let answered = server_task.await??;
        driver.await?;
        assert!(server.is_shutting_down());
        io::Result::Ok(answered)
    })
    .unwrap();
    assert_eq!(answered, 5);
}

macro_rules! hyper_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn sequential_and_concurrent_requests() { super::sequential_and_concurrent_requests($make) }
            #[test] fn request_limit_shuts_the_server_down() { super::request_limit_shuts_the_server_down($make) }
        }
    )*};
}

hyper_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
    mio_level => Recording::level_only(MioReactor::new().unwrap()),
}
