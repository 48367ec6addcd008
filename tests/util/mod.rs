//! Helpers shared by the integration tests (`mod util;` in each test file).
#![allow(dead_code)] // each test file uses its own subset

#[macro_use]
pub mod forward;
pub mod recording;

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use portable_reactor::runtime::Runtime;
use portable_reactor::Reactor;

/// Routes `log` output through the test harness (`RUST_LOG=trace` shows the loop's ticks).
pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A connected loopback TCP pair: (client, server), the server end non-blocking. TCP rather
/// than a socketpair so the tests also run on Windows.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let client = TcpStream::connect(listener.local_addr().expect("local_addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    server.set_nonblocking(true).expect("set_nonblocking");
    client.set_nodelay(true).expect("set_nodelay");
    (client, server)
}

/// Reads a non-blocking stream until `WouldBlock` or end of stream; returns the bytes read.
pub fn drain(stream: &mut TcpStream) -> usize {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Runs the loop to the end, failing the test if it still runs after `limit`. The watchdog is
/// a thread that stops the loop through a [`Handle`](portable_reactor::runtime::Handle), so it
/// works even if the runtime's own timers are what is broken.
pub fn run_bounded<R: Reactor + 'static>(rt: &mut Runtime<R>, limit: Duration) {
    let handle = rt.handle();
    let fired = Arc::new(AtomicBool::new(false));
    let (done, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let fired = fired.clone();
        std::thread::spawn(move || {
            if done_rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                fired.store(true, Ordering::SeqCst);
                let _ = handle.post(|rt| rt.stop());
            }
        })
    };
    let result = rt.run();
    drop(done);
    watchdog.join().expect("watchdog thread");
    result.expect("run");
    assert!(
        !fired.load(Ordering::SeqCst),
        "the loop was still running after {limit:?}"
    );
}

/// Whether this Windows binary runs under Wine (ntdll exports `wine_get_version`).
#[cfg(windows)]
pub fn under_wine() -> bool {
    use std::ffi::c_void;
    #[link(name = "kernel32")]
    extern "system" {
        fn GetModuleHandleA(name: *const std::ffi::c_char) -> *mut c_void;
        fn GetProcAddress(module: *mut c_void, name: *const std::ffi::c_char) -> *mut c_void;
    }
    // SAFETY: both names are NUL-terminated C strings; ntdll is loaded in every process and
    // a module handle from GetModuleHandleA needs no release.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr());
        !ntdll.is_null() && !GetProcAddress(ntdll, c"wine_get_version".as_ptr()).is_null()
    }
}

/// Whether this Windows binary runs under Wine: never, off Windows.
#[cfg(not(windows))]
pub fn under_wine() -> bool {
    false
}

/// A loopback address where a TCP connect is refused, and the socket that keeps it so: bound
/// but not listening. (Binding a listener, taking its port and dropping it races every other
/// test that binds an ephemeral port: one of them can take the port and accept.)
pub fn refused_addr() -> (socket2::Socket, std::net::SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).expect("bind 127.0.0.1:0");
    let addr = socket
        .local_addr()
        .expect("local_addr")
        .as_socket()
        .expect("an inet address");
    (socket, addr)
}
