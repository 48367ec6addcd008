//! `Async<T>` through the traits async libraries take: tokio's `AsyncRead`/`AsyncWrite` (with
//! tokio's own extension methods driving them, on our loop) and futures-io's. Each body runs
//! once per backend through `async_trait_tests!`.

use std::future::poll_fn;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;

use portable_reactor::runtime::{Async, Builder, Runtime};
use portable_reactor::{MioReactor, PollingReactor, Reactor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod util;

use util::recording::Recording;

fn connected<R: Reactor + 'static>(rt: &mut Runtime<R>) -> (Async<TcpStream, R>, Async<TcpStream, R>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nonblocking(true).unwrap();
    server.set_nonblocking(true).unwrap();
    (Async::new(rt, client).unwrap(), Async::new(rt, server).unwrap())
}

/// tokio's `write_all`, `shutdown` and `read_to_end` over our `Async`, on our loop.
fn tokio_traits_drive_async_sockets<R: Reactor + 'static>(reactor: R) {
    util::init_logging();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let (mut client, mut server) = connected(&mut rt);
    let local = rt.local();
    let writer = local.spawn(async move {
        let data = vec![3u8; 200_000];
        client.write_all(&data).await?;
        AsyncWriteExt::shutdown(&mut client).await?;
        io::Result::Ok(())
    });
    let got = rt
        .block_on(async move {
            let mut all = Vec::new();
            server.read_to_end(&mut all).await.map(|_| all)
        })
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 200_000);
    assert!(got.iter().all(|b| *b == 3));
    rt.block_on(writer).unwrap().unwrap().unwrap();
}

/// futures-io's `poll_write`/`poll_close`/`poll_read`.
fn futures_io_traits<R: Reactor + 'static>(reactor: R) {
    util::init_logging();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let (mut client, mut server) = connected(&mut rt);
    let got = rt
        .block_on(async move {
            use futures_io::{AsyncRead, AsyncWrite};
            let n = poll_fn(|cx| Pin::new(&mut client).poll_write(cx, b"hello")).await?;
            assert_eq!(n, 5);
            poll_fn(|cx| Pin::new(&mut client).poll_close(cx)).await?;
            let mut buf = [0; 16];
            let mut got = Vec::new();
            loop {
                let n = poll_fn(|cx| Pin::new(&mut server).poll_read(cx, &mut buf)).await?;
                if n == 0 {
                    return io::Result::Ok(got);
                }
                got.extend_from_slice(&buf[..n]);
            }
        })
        .unwrap()
        .unwrap();
    assert_eq!(got, b"hello");
}

/// tokio's `AsyncRead` on std's sockets reads into the buffer's uninitialised part (as tokio's
/// own sockets do): a 64 KiB uninitialised buffer given 5 bytes comes back with 5 bytes
/// initialised, not 64 KiB zeroed first (hyper-util hands over such a buffer on every read).
#[cfg(unix)]
fn tokio_read_leaves_the_rest_uninitialised<R: Reactor + 'static>(reactor: R) {
    use std::mem::MaybeUninit;
    util::init_logging();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let (client, mut server) = connected(&mut rt);
    let (filled, initialised) = rt
        .block_on(async move {
            client.write_all(b"hello").await?;
            let mut storage = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
            let mut buf = tokio::io::ReadBuf::uninit(&mut storage);
            poll_fn(|cx| tokio::io::AsyncRead::poll_read(Pin::new(&mut server), cx, &mut buf)).await?;
            io::Result::Ok((buf.filled().to_vec(), buf.initialized().len()))
        })
        .unwrap()
        .unwrap();
    assert_eq!(filled, b"hello");
    assert_eq!(initialised, 5, "the unread part of the buffer was zeroed");
}

/// tokio's vectored writes on std's sockets are one `writev` each (hyper asks
/// `is_write_vectored` to decide whether to copy its buffers into one): every slice arrives,
/// in order.
fn tokio_vectored_writes<R: Reactor + 'static>(reactor: R) {
    util::init_logging();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let (mut client, mut server) = connected(&mut rt);
    assert!(tokio::io::AsyncWrite::is_write_vectored(&client));
    let got = rt
        .block_on(async move {
            let parts: [&[u8]; 3] = [b"head ", b"", b"and body"];
            let slices = parts.map(io::IoSlice::new);
            let total: usize = parts.iter().map(|p| p.len()).sum();
            // One writev takes all 13 bytes on an empty loopback socket.
            assert_eq!(client.write_vectored(&slices).await?, total);
            AsyncWriteExt::shutdown(&mut client).await?;
            let mut all = Vec::new();
            server.read_to_end(&mut all).await?;
            io::Result::Ok(all)
        })
        .unwrap()
        .unwrap();
    assert_eq!(got, b"head and body");
}

macro_rules! async_trait_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn tokio_traits_drive_async_sockets() { super::tokio_traits_drive_async_sockets($make) }
            #[test] fn futures_io_traits() { super::futures_io_traits($make) }
            #[test] fn tokio_vectored_writes() { super::tokio_vectored_writes($make) }
            #[cfg(unix)]
            #[test] fn tokio_read_leaves_the_rest_uninitialised() { super::tokio_read_leaves_the_rest_uninitialised($make) }
        }
    )*};
}

async_trait_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
    mio_level => Recording::level_only(MioReactor::new().unwrap()),
}
