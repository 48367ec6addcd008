//! Tasks beside callbacks: spawn_local, block_on, JoinHandle, wakers from this thread and
//! others, panics and abort, and where tasks run among the phases. Each body runs once per
//! backend through `task_tests!`.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use portable_reactor::runtime::{Builder, Runtime};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::init_logging as init;
use util::recording::Recording;

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    Builder::new().build_with(reactor).expect("runtime")
}

/// `block_on` returns the output; a spawned task's handle is awaited from another task.
fn block_on_and_join<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    assert_eq!(rt.block_on(async { 7 }).unwrap(), 7);
    let a = rt.spawn_local(async { String::from("a") });
    let not_send = Rc::new(Cell::new(1));
    let n = not_send.clone();
    let b = rt.spawn_local(async move { n.get() + 1 });
    let both = rt
        .block_on(async move { (a.await.unwrap(), b.await.unwrap()) })
        .unwrap();
    assert_eq!(both, ("a".to_string(), 2));
    assert_eq!(rt.stats().tasks, 0, "finished tasks are gone");
}

/// A waker woken from another thread while the loop blocks in its poll phase with nothing
/// else to wait for: the loop wakes and polls the task. The thread wakes only once the task
/// has parked its waker, so the loop is (about to be) blocked when the wake comes.
fn wake_from_another_thread<R: Reactor + 'static>(reactor: R) {
    init();
    let (reactor, polls) = Recording::new(reactor);
    let mut rt = runtime(reactor);
    let slot: Arc<Mutex<(Option<Waker>, bool)>> = Arc::new(Mutex::new((None, false)));
    let (parked_tx, parked_rx) = mpsc::channel::<()>();
    let s = slot.clone();
    let waker_thread = std::thread::spawn(move || {
        parked_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the task parked its waker");
        // Wake only once the loop has entered a poll without timeout: the wake must end it.
        let start = std::time::Instant::now();
        while !polls.lock().unwrap().contains(&None) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the loop never blocked"
            );
            std::thread::yield_now();
        }
        let waker = {
            let mut g = s.lock().unwrap();
            g.1 = true;
            g.0.take().expect("a waker")
        };
        waker.wake();
    });
    let s = slot.clone();
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let value = rt
        .block_on(poll_fn(move |cx| {
            p.set(p.get() + 1);
            let mut g = s.lock().unwrap();
            if g.1 {
                return Poll::Ready(42);
            }
            g.0 = Some(cx.waker().clone());
            let _ = parked_tx.send(());
            Poll::Pending
        }))
        .unwrap();
    waker_thread.join().unwrap();
    assert_eq!(value, 42);
    assert_eq!(polls.get(), 2, "polled once before and once after the wake");
}

/// A task woken many times before it runs is polled once more, not once per wake.
fn many_wakes_one_poll<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let handle = rt.spawn_local(poll_fn(move |cx| {
        p.set(p.get() + 1);
        if p.get() == 1 {
            for _ in 0..100 {
                cx.waker().wake_by_ref();
            }
            let w = cx.waker().clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    w.wake_by_ref();
                }
            })
            .join()
            .unwrap();
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }));
    rt.block_on(handle).unwrap().unwrap();
    assert_eq!(polls.get(), 2);
}

/// A task that panics resolves its handle to `Other` with the message; the loop goes on.
fn panicking_task_surfaces_in_its_handle<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let handle = rt.spawn_local(async {
        if true {
            panic!("task boom");
        }
    });
    let err = rt.block_on(handle).unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert!(err.to_string().contains("task boom"), "{err}");
    assert_eq!(rt.block_on(async { 1 }).unwrap(), 1, "the loop runs on");
    assert_eq!(rt.stats().tasks, 0);
}

/// `abort` drops a pending task's future and its handle resolves to `Interrupted`; dropping
/// a handle detaches (the task still runs).
fn abort_and_detach<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let flag = Flag(dropped.clone());
    let pending = rt.spawn_local(async move {
        let _flag = flag;
        std::future::pending::<()>().await;
    });
    assert_eq!(rt.stats().tasks, 1);
    pending.abort();
    let err = rt.block_on(pending).unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Interrupted, "{err}");
    assert!(dropped.get(), "the future was dropped");
    assert_eq!(rt.stats().tasks, 0);

    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    drop(rt.spawn_local(async move { r.set(true) }));
    rt.run().unwrap();
    assert!(ran.get(), "a detached task runs");
}

/// Where tasks run: in the poll phase, after the callback that spawned them and its
/// next-ticks, before the check phase (Node: nextTick, then promises, then setImmediate).
fn tasks_run_in_the_poll_phase<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    rt.set_timeout(Duration::from_millis(1), move |rt| {
        let l1 = l.clone();
        rt.set_immediate(move |_| l1.borrow_mut().push("immediate"));
        let l2 = l.clone();
        drop(rt.spawn_local(async move { l2.borrow_mut().push("task") }));
        let l3 = l.clone();
        rt.next_tick(move |_| l3.borrow_mut().push("tick"));
        l.borrow_mut().push("timeout");
    });
    util::run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(*log.borrow(), ["timeout", "tick", "task", "immediate"]);
}

/// A task waiting on a pool job through a channel completes: wakes from pool threads count.
fn task_woken_by_pool_thread<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let shared: Arc<Mutex<(Option<u64>, Option<Waker>)>> = Arc::new(Mutex::new((None, None)));
    let s = shared.clone();
    let woke = Arc::new(AtomicUsize::new(0));
    let w = woke.clone();
    let s2 = shared.clone();
    let fut = poll_fn(move |cx| {
        let mut g = s2.lock().unwrap();
        match g.0 {
            Some(v) => Poll::Ready(v),
            None => {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    });
    rt.spawn_blocking(
        move || {
            let mut g = s.lock().unwrap();
            g.0 = Some(99);
            if let Some(waker) = g.1.take() {
                w.fetch_add(1, Ordering::SeqCst);
                waker.wake();
            }
        },
        |_, r| r.unwrap(),
    )
    .unwrap();
    assert_eq!(rt.block_on(fut).unwrap(), 99);
    let _ = woke.load(Ordering::SeqCst);
}

/// `sleep` never completes early and its timer keeps `run` going; `timeout` gives `TimedOut`
/// and drops (clears) what it gave up on; an interval ticks a period apart.
fn time_futures<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let time = rt.time();
    let done = Rc::new(Cell::new(None));
    let d = done.clone();
    let t = time.clone();
    let start = Instant::now();
    drop(rt.spawn_local(async move {
        t.sleep(Duration::from_millis(20)).await;
        d.set(Some(start.elapsed()));
    }));
    util::run_bounded(&mut rt, Duration::from_secs(10));
    let slept = done.get().expect("run kept going for the sleeping task");
    assert!(slept >= Duration::from_millis(20), "woke early: {slept:?}");

    let t = time.clone();
    let start = Instant::now();
    let err = rt
        .block_on(async move {
            t.timeout(Duration::from_millis(5), t.sleep(Duration::from_secs(60)))
                .await
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(5));
    assert_eq!(rt.stats().timers, 0, "the abandoned sleep's timer is cleared");
    let t = time.clone();
    let quick = rt.block_on(async move { t.timeout(Duration::from_secs(60), async { 5 }).await });
    assert_eq!(quick.unwrap().unwrap(), 5);
    assert_eq!(rt.stats().timers, 0, "the unused timeout's timer is cleared");

    let t = time.clone();
    let ticks = rt
        .block_on(async move {
            let mut interval = t.interval(Duration::from_millis(5));
            let mut at = Vec::new();
            for _ in 0..3 {
                interval.tick().await;
                at.push(Instant::now());
            }
            at
        })
        .unwrap();
    for pair in ticks.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(5), "{ticks:?}");
    }
    let start = Instant::now();
    rt.run().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "nothing left behind keeps the loop"
    );
}

/// `spawn_blocking_future`: the job's value, or its panic as `Other`.
fn blocking_job_as_a_future<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let job = rt.spawn_blocking_future(|| std::thread::current().id()).unwrap();
    let pool_thread = rt.block_on(job).unwrap().unwrap();
    assert_ne!(pool_thread, std::thread::current().id(), "ran on a pool thread");
    let boom = rt.spawn_blocking_future(|| -> u8 { panic!("job boom") }).unwrap();
    let err = rt.block_on(boom).unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert!(err.to_string().contains("job boom"), "{err}");
}

macro_rules! task_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn block_on_and_join() { super::block_on_and_join($make) }
            #[test] fn wake_from_another_thread() { super::wake_from_another_thread($make) }
            #[test] fn many_wakes_one_poll() { super::many_wakes_one_poll($make) }
            #[test] fn panicking_task_surfaces_in_its_handle() { super::panicking_task_surfaces_in_its_handle($make) }
            #[test] fn abort_and_detach() { super::abort_and_detach($make) }
            #[test] fn tasks_run_in_the_poll_phase() { super::tasks_run_in_the_poll_phase($make) }
            #[test] fn time_futures() { super::time_futures($make) }
            #[test] fn blocking_job_as_a_future() { super::blocking_job_as_a_future($make) }
            #[test] fn task_woken_by_pool_thread() { super::task_woken_by_pool_thread($make) }
        }
    )*};
}

task_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
}
