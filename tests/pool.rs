//! The thread pool: cancelling queued jobs (libuv's `uv_cancel`), the cap on slow work
//! (libuv's slow I/O limit), and the hand-offs of the builder's `pool_spin` (order kept, no
//! result or post lost between spinning and sleeping). Each body runs once per backend through
//! `pool_tests!`.

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use portable_reactor::runtime::{Builder, Runtime};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::init_logging as init;
use util::run_bounded;

const LIMIT: Duration = Duration::from_secs(10);

fn runtime<R: Reactor + 'static>(reactor: R, threads: usize) -> Runtime<R> {
    Builder::new()
        .threads(threads)
        .build_with(reactor)
        .expect("runtime")
}

/// A job that says when it starts and then waits for `release`.
fn blocker<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    log: &Rc<RefCell<Vec<String>>>,
) -> (
    portable_reactor::runtime::JobId,
    mpsc::Sender<()>,
    mpsc::Receiver<()>,
) {
    let (started_tx, started) = mpsc::channel();
    let (release, hold) = mpsc::channel::<()>();
    let l = log.clone();
    let id = rt
        .spawn_blocking(
            move || {
                started_tx.send(()).unwrap();
                hold.recv_timeout(LIMIT).expect("released");
                "blocker"
            },
            move |_, r| l.borrow_mut().push(format!("{}: {:?}", r.unwrap(), ())),
        )
        .unwrap();
    (id, release, started)
}

/// One thread held by a job; a second job queued behind it is cancelled: it never runs, its
/// callback gets `Interrupted` once, in the next pending phase (not inside `cancel_blocking`),
/// before the first job's result; the stats follow.
fn cancel_queued_job<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor, 1);
    let log = Rc::new(RefCell::new(Vec::new()));
    let (_, release, started) = blocker(&mut rt, &log);
    started.recv_timeout(LIMIT).expect("the blocker started");
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let l = log.clone();
    let queued = rt
        .spawn_blocking(
            move || r.store(true, Ordering::SeqCst),
            move |_, result| {
                let e = result.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Interrupted, "{e}");
                l.borrow_mut().push("cancelled".to_string());
            },
        )
        .unwrap();
    let s = rt.stats();
    assert_eq!(
        (s.pool_queued, s.pool_running, s.pool_pending),
        (1, 1, 2),
        "{s:?}"
    );
    rt.cancel_blocking(queued).expect("a queued job cancels");
    assert!(log.borrow().is_empty(), "the callback ran inside cancel_blocking");
    let s = rt.stats();
    assert_eq!(
        (s.pool_queued, s.pool_running, s.pool_pending),
        (0, 1, 2),
        "{s:?}"
    );
    assert!(rt.is_alive());
    release.send(()).unwrap();
    run_bounded(&mut rt, LIMIT);
    assert_eq!(*log.borrow(), ["cancelled", "blocker: ()"]);
    assert!(!ran.load(Ordering::SeqCst), "the cancelled job ran");
    let s = rt.stats();
    assert_eq!(
        (s.pool_queued, s.pool_running, s.pool_pending),
        (0, 0, 0),
        "{s:?}"
    );
}

/// A running job cannot be cancelled: `ResourceBusy`, and its callback gets its result.
fn cancel_running_job_is_refused<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor, 1);
    let log = Rc::new(RefCell::new(Vec::new()));
    let (id, release, started) = blocker(&mut rt, &log);
    started.recv_timeout(LIMIT).expect("the blocker started");
    let e = rt.cancel_blocking(id).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceBusy, "{e}");
    assert!(e.to_string().contains("running"), "{e}");
    release.send(()).unwrap();
    run_bounded(&mut rt, LIMIT);
    assert_eq!(*log.borrow(), ["blocker: ()"]);
}

/// Cancelling twice: the second is `NotFound`, and the callback runs once.
fn cancel_twice<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor, 1);
    let log = Rc::new(RefCell::new(Vec::new()));
    let (_, release, started) = blocker(&mut rt, &log);
    started.recv_timeout(LIMIT).expect("the blocker started");
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    let id = rt
        .spawn_blocking(
            || (),
            move |_, r| {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::Interrupted);
                *c.borrow_mut() += 1;
            },
        )
        .unwrap();
    rt.cancel_blocking(id).unwrap();
    let e = rt.cancel_blocking(id).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    release.send(()).unwrap();
    run_bounded(&mut rt, LIMIT);
    assert_eq!(*calls.borrow(), 1);
    let e = rt.cancel_blocking(id).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

/// After completion: `ResourceBusy` while the result is on its way to the loop, `NotFound`
/// once its callback ran; an old id never cancels the job that reuses its slot.
fn cancel_after_completion<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor, 1);
    let done = Rc::new(RefCell::new(0));
    let d = done.clone();
    let id = rt
        .spawn_blocking(|| 7, move |_, r| *d.borrow_mut() += r.unwrap())
        .unwrap();
    // Wait (bounded) until the pool has finished it: its result sits in the loop's inbox.
    let start = Instant::now();
    while rt.stats().pool_running + rt.stats().pool_queued > 0 {
        assert!(start.elapsed() < LIMIT, "the job did not finish");
        std::thread::yield_now();
    }
    let e = rt.cancel_blocking(id).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceBusy, "{e}");
    run_bounded(&mut rt, LIMIT);
    assert_eq!(*done.borrow(), 7);
    assert_eq!(rt.cancel_blocking(id).unwrap_err().kind(), ErrorKind::NotFound);
    // The next job takes the freed slot; the old id must not name it.
    let log = Rc::new(RefCell::new(Vec::new()));
    let (next, release, started) = blocker(&mut rt, &log);
    started.recv_timeout(LIMIT).unwrap();
    let d = done.clone();
    let queued = rt
        .spawn_blocking(|| 1, move |_, r| *d.borrow_mut() += r.unwrap())
        .unwrap();
    assert_ne!(id, next);
    assert_ne!(id, queued);
    assert_eq!(rt.cancel_blocking(id).unwrap_err().kind(), ErrorKind::NotFound);
    release.send(()).unwrap();
    run_bounded(&mut rt, LIMIT);
    assert_eq!(*done.borrow(), 8, "the queued job ran");
    assert_eq!(*log.borrow(), ["blocker: ()"]);
}

/// `spawn_blocking_future`'s job cancels through `BlockingJob::id`: the future resolves to
/// `Interrupted`. Slow jobs waiting for the slow cap cancel too.
fn cancel_future_and_slow_job<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor, 2);
    let (release, hold) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    rt.spawn_blocking_slow(
        move || {
            started_tx.send(()).unwrap();
            hold.recv_timeout(LIMIT).is_ok()
        },
        |_, r| assert!(r.unwrap(), "released"),
    )
    .unwrap();
    started.recv_timeout(LIMIT).unwrap();
    // The slow slot (one of two threads) is taken: this one waits in the slow queue.
    let slow = rt
        .spawn_blocking_slow(
            || unreachable!("cancelled"),
            |_, r: io::Result<()>| {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::Interrupted);
            },
        )
        .unwrap();
    assert_eq!(rt.stats().pool_queued, 1);
    rt.cancel_blocking(slow).unwrap();
    assert_eq!(rt.stats().pool_queued, 0);
    // Hold the other thread too, then queue a future's job behind both and cancel it.
    let (release2, hold2) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    rt.spawn_blocking(
        move || {
            started_tx.send(()).unwrap();
            hold2.recv_timeout(LIMIT).is_ok()
        },
        |_, r| assert!(r.unwrap()),
    )
    .unwrap();
    started.recv_timeout(LIMIT).unwrap();
    let job = rt.spawn_blocking_future(|| 5).unwrap();
    rt.cancel_blocking(job.id()).unwrap();
    let result = rt.block_on(job).unwrap();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Interrupted);
    release.send(()).unwrap();
    release2.send(()).unwrap();
    run_bounded(&mut rt, LIMIT);
}

/// Slow work never holds more than half the pool: with 4 threads and 6 hung slow jobs, at most
/// 2 run at once, and ordinary jobs still complete promptly; the slow ones all run once
/// released.
fn slow_work_is_capped<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor, 4);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (release, hold) = mpsc::channel::<()>();
    let hold = Arc::new(std::sync::Mutex::new(hold));
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..6 {
        let (running, most, hold) = (running.clone(), most.clone(), hold.clone());
        let o = order.clone();
        rt.spawn_blocking_slow(
            move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let ok = hold.lock().unwrap().recv_timeout(LIMIT).is_ok();
                running.fetch_sub(1, Ordering::SeqCst);
                ok
            },
            move |_, r| o.borrow_mut().push((i, r.unwrap())),
        )
        .unwrap();
    }
    let finished = Rc::new(RefCell::new(None));
    let f = finished.clone();
    let start = Instant::now();
    for _ in 0..8 {
        let f = f.clone();
        let release = release.clone();
        rt.spawn_blocking(
            || std::thread::current().id(),
            move |_, r| {
                r.unwrap();
                if f.borrow().is_none() {
                    *f.borrow_mut() = Some(start.elapsed());
                    for _ in 0..6 {
                        release.send(()).unwrap();
                    }
                }
            },
        )
        .unwrap();
    }
    // If every thread is held, nothing releases the slow jobs: their own timeouts
    // (LIMIT) end them and the test fails on the elapsed time below.
    drop(release);
    run_bounded(&mut rt, 3 * LIMIT);
    let elapsed = finished.borrow().expect("ordinary work completed");
    assert!(
        elapsed < LIMIT / 2,
        "ordinary work waited {elapsed:?} behind hung slow work"
    );
    assert!(
        most.load(Ordering::SeqCst) <= 2,
        "{} slow jobs ran at once",
        most.load(Ordering::SeqCst)
    );
    let mut ran = order.borrow().clone();
    ran.sort_unstable();
    let all: Vec<_> = (0..6).map(|i| (i, true)).collect();
    assert_eq!(ran, all, "every slow job ran once, released");
}

/// The spins the hand-off tests run with: the default, none, and one so short that the loop and
/// the pool threads keep crossing between spinning and sleeping.
const SPINS: [Duration; 3] = [
    portable_reactor::runtime::DEFAULT_POOL_SPIN,
    Duration::ZERO,
    Duration::from_micros(1),
];

/// One thread, 200 jobs queued at once: they start, and their callbacks run, in submission
/// order, whatever the spin.
fn fifo_with_any_spin<R: Reactor + 'static>(make: impl Fn() -> R) {
    init();
    for spin in SPINS {
        let mut rt = Builder::new()
            .threads(1)
            .pool_spin(spin)
            .build_with(make())
            .expect("runtime");
        let started = Arc::new(std::sync::Mutex::new(Vec::new()));
        let called = Rc::new(RefCell::new(Vec::new()));
        for i in 0..200usize {
            let started = started.clone();
            let called = called.clone();
            rt.spawn_blocking(
                move || started.lock().unwrap().push(i),
                move |_, r| {
                    r.unwrap();
                    called.borrow_mut().push(i);
                },
            )
            .unwrap();
        }
        run_bounded(&mut rt, LIMIT);
        let all: Vec<usize> = (0..200).collect();
        assert_eq!(*started.lock().unwrap(), all, "start order, spin {spin:?}");
        assert_eq!(*called.borrow(), all, "callback order, spin {spin:?}");
    }
}

/// Chains of jobs, one and four in flight on two threads, each job also posting to the loop
/// from its pool thread (the post lands while the loop spins or sleeps): every result and
/// every post arrives, whatever the spin, and an idle runtime ends.
fn chains_lose_no_result<R: Reactor + 'static>(make: impl Fn() -> R) {
    init();
    const JOBS: usize = 2_000;
    for spin in SPINS {
        for in_flight in [1usize, 4] {
            let mut rt = Builder::new()
                .threads(2)
                .pool_spin(spin)
                .build_with(make())
                .expect("runtime");
            let results = Rc::new(RefCell::new(0usize));
            let posts = Arc::new(AtomicUsize::new(0));
            fn chain<R: Reactor + 'static>(
                rt: &mut Runtime<R>,
                left: Rc<RefCell<usize>>,
                results: Rc<RefCell<usize>>,
                posts: Arc<AtomicUsize>,
            ) {
                {
                    let mut n = left.borrow_mut();
                    if *n == 0 {
                        return;
                    }
                    *n -= 1;
                }
                let handle = rt.handle();
                let counted = posts.clone();
                rt.spawn_blocking(
                    move || {
                        handle
                            .post(move |_| {
                                counted.fetch_add(1, Ordering::SeqCst);
                            })
                            .expect("post");
                        7u8
                    },
                    move |rt, r| {
                        assert_eq!(r.unwrap(), 7);
                        *results.borrow_mut() += 1;
                        chain(rt, left, results, posts);
                    },
                )
                .unwrap();
            }
            let left = Rc::new(RefCell::new(JOBS));
            for _ in 0..in_flight {
                chain(&mut rt, left.clone(), results.clone(), posts.clone());
            }
            run_bounded(&mut rt, 3 * LIMIT);
            assert_eq!(
                *results.borrow(),
                JOBS,
                "results, spin {spin:?}, {in_flight} in flight"
            );
            assert_eq!(
                posts.load(Ordering::SeqCst),
                JOBS,
                "posts, spin {spin:?}, {in_flight} in flight"
            );
            let stats = rt.stats();
            assert_eq!(
                (stats.pool_queued, stats.pool_running, stats.pool_pending),
                (0, 0, 0)
            );
        }
    }
}

macro_rules! pool_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn cancel_queued_job() { super::cancel_queued_job($make) }
            #[test] fn cancel_running_job_is_refused() { super::cancel_running_job_is_refused($make) }
            #[test] fn cancel_twice() { super::cancel_twice($make) }
            #[test] fn cancel_after_completion() { super::cancel_after_completion($make) }
            #[test] fn cancel_future_and_slow_job() { super::cancel_future_and_slow_job($make) }
            #[test] fn slow_work_is_capped() { super::slow_work_is_capped($make) }
            #[test] fn fifo_with_any_spin() { super::fifo_with_any_spin(|| $make) }
            #[test] fn chains_lose_no_result() { super::chains_lose_no_result(|| $make) }
        }
    )*};
}

pool_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
}
