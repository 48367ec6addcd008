//! Bench 1: reactor overhead. A ping-pong over socket pairs, one 64-byte message in flight
//! per pair, through `PollingReactor` vs raw `polling::Poller` (Level, and Oneshot with
//! re-arm) and `MioReactor` vs raw `mio` (Edge). Ratio = ours / raw round trips per second,
//! per round, contenders interleaved. Goal: >= 0.97.
//!
//! Scenarios: one thread driving both ends of 1 pair (per-poll overhead fully exposed), one
//! thread driving 64 pairs (batched events), and two threads pinned to different cores, each
//! driving one end of 16 pairs with its own poller (cross-core wake-ups).
//!
//! `cargo bench --bench reactor_overhead [-- FILTER]`; `BENCH_ROUNDS`, `BENCH_SECS`,
//! `BENCH_QUICK` as for every bench.

mod common;

fn main() {
    env_logger::init();
    if !common::should_run("reactor_overhead") {
        return;
    }
    #[cfg(unix)]
    imp::main();
    #[cfg(not(unix))]
    println!("reactor_overhead: Unix only for now (socket pairs); skipped on this OS");
}

#[cfg(unix)]
mod imp {
    use std::io::{self, Read, Write};
    use std::num::NonZeroUsize;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Barrier;
    use std::time::{Duration, Instant};

    use portable_reactor::{AsSource, EventId, Events, Interest, MioReactor, Mode, PollingReactor, Reactor};

    use crate::common::{self, interleave, Config, Report, Row};

    const MSG: usize = 64;
    const POLL_TIMEOUT: Duration = Duration::from_millis(50);
    const EVENTS: usize = 256;

    /// Who drives the ping-pong.
    #[derive(Clone, Copy, Debug)]
    enum Contender {
        OursPolling(Mode),
        RawPolling(Mode),
        OursMio,
        RawMio,
    }

    impl Contender {
        fn name(self) -> String {
            match self {
                Contender::OursPolling(m) => format!("PollingReactor ({m:?})"),
                Contender::RawPolling(m) => format!("raw polling ({m:?})"),
                Contender::OursMio => "MioReactor (Edge)".into(),
                Contender::RawMio => "raw mio (Edge)".into(),
            }
        }
    }

    /// (ours, raw) pairs compared like with like.
    const MATCHUPS: [(Contender, Contender); 3] = [
        (
            Contender::OursPolling(Mode::Level),
            Contender::RawPolling(Mode::Level),
        ),
        (
            Contender::OursPolling(Mode::Oneshot),
            Contender::RawPolling(Mode::Oneshot),
        ),
        (Contender::OursMio, Contender::RawMio),
    ];

    #[derive(Clone, Copy, Debug)]
    struct Scenario {
        name: &'static str,
        pairs: usize,
        threads: usize,
    }

    const SCENARIOS: [Scenario; 3] = [
        Scenario {
            name: "1 thread, 1 pair",
            pairs: 1,
            threads: 1,
        },
        Scenario {
            name: "1 thread, 64 pairs",
            pairs: 64,
            threads: 1,
        },
        Scenario {
            name: "2 threads, 16 pairs",
            pairs: 16,
            threads: 2,
        },
    ];

    pub fn main() {
        let cfg = Config::from_env();
        let mut report = Report::new(
            "reactor_overhead",
            "Bench 1: reactor overhead (ping-pong over Unix socket pairs)",
            &cfg,
        );
        let pinned = common::pin_current_thread(common::CLIENT_CORE);
        report.note(format!(
            "64-byte messages, one in flight per pair; single-thread scenarios run on core {} \
             (pinned: {pinned}); the 2-thread scenario pins its threads to cores 0 and 1 where possible.",
            common::CLIENT_CORE
        ));
        report.note(
            "ratio = ours / raw round trips per second in the same round (adjacent runs); \
             figures are round trips per second",
        );
        for sc in SCENARIOS {
            if !common::filter_admits(sc.name) {
                continue;
            }
            let contenders: Vec<Contender> = MATCHUPS.iter().flat_map(|&(a, b)| [a, b]).collect();
            let figures = interleave(cfg.rounds, contenders.len(), |_, i| {
                match run(contenders[i], sc, cfg.secs) {
                    Ok(rate) => rate,
                    Err(e) => {
                        eprintln!("   {} / {}: {e}", contenders[i].name(), sc.name);
                        f64::NAN
                    }
                }
            });
            for (m, &(ours, raw)) in MATCHUPS.iter().enumerate() {
                let (o, r) = (&figures[2 * m], &figures[2 * m + 1]);
                report.row(
                    Row::new(format!("{} — {}", ours.name(), sc.name), "round trips/s", o)
                        .vs(raw.name(), o, r)
                        .goal_at_least(0.97),
                );
                report.row(Row::new(
                    format!("{} — {}", raw.name(), sc.name),
                    "round trips/s",
                    r,
                ));
            }
        }
        report.write();
    }

    /// One measured run: fresh pairs, fresh poller(s); returns round trips per second.
    fn run(c: Contender, sc: Scenario, secs: Duration) -> io::Result<f64> {
        let mut ends = Vec::with_capacity(2 * sc.pairs);
        for _ in 0..sc.pairs {
            let (a, b) = UnixStream::pair()?;
            a.set_nonblocking(true)?;
            b.set_nonblocking(true)?;
            ends.push(a);
            ends.push(b);
        }
        let stop = AtomicBool::new(false);
        let barrier = Barrier::new(sc.threads);
        if sc.threads == 1 {
            let all: Vec<usize> = (0..ends.len()).collect();
            let side = Side {
                all: &ends,
                mine: &all,
                initiator: true,
                secs,
                stop: &stop,
                barrier: &barrier,
            };
            return side.run(c);
        }
        let even: Vec<usize> = (0..ends.len()).step_by(2).collect();
        let odd: Vec<usize> = (1..ends.len()).step_by(2).collect();
        std::thread::scope(|s| {
            let responder = s.spawn(|| {
                common::pin_current_thread(common::SERVER_CORE);
                Side {
                    all: &ends,
                    mine: &odd,
                    initiator: false,
                    secs,
                    stop: &stop,
                    barrier: &barrier,
                }
                .run(c)
            });
            let rate = Side {
                all: &ends,
                mine: &even,
                initiator: true,
                secs,
                stop: &stop,
                barrier: &barrier,
            }
            .run(c);
            stop.store(true, Ordering::Release);
            responder.join().expect("responder thread")?;
            rate
        })
    }

    /// One polling loop over some ends. Keys/ids are end indices: `2i` and `2i + 1` are the
    /// two ends of pair `i`; the even end starts each ping and counts a round trip when the
    /// pong comes back.
    struct Side<'a> {
        all: &'a [UnixStream],
        mine: &'a [usize],
        initiator: bool,
        secs: Duration,
        stop: &'a AtomicBool,
        barrier: &'a Barrier,
    }

    /// Reads one message from end `k` and writes it back: returns 1 if it completed a round
    /// trip, 0 otherwise (also for a spurious wake-up).
    #[inline]
    fn bounce(end: &UnixStream, k: usize, buf: &mut [u8; MSG]) -> io::Result<u64> {
        let mut got = 0;
        while got < MSG {
            match (&*end).read(&mut buf[got..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && got == 0 => return Ok(0),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
        }
        (&*end).write_all(&buf[..])?;
        Ok(u64::from(k % 2 == 0))
    }

    impl Side<'_> {
        fn run(&self, c: Contender) -> io::Result<f64> {
            match c {
                Contender::OursPolling(mode) => self.ours(&PollingReactor::new()?, mode),
                Contender::OursMio => self.ours(&MioReactor::new()?, Mode::Edge),
                Contender::RawPolling(mode) => self.raw_polling(mode),
                Contender::RawMio => self.raw_mio(),
            }
        }

        /// After registration: waits for the other side, then starts the pings. Returns the
        /// start instant.
        fn start(&self) -> io::Result<Instant> {
            self.barrier.wait();
            if self.initiator {
                for &k in self.mine.iter().filter(|k| *k % 2 == 0) {
                    (&self.all[k]).write_all(&[0x5a; MSG])?;
                }
            }
            Ok(Instant::now())
        }

        /// Whether to stop: the initiator after `secs` (the clock is read every 16 polls),
        /// the other side when the initiator says so.
        fn done(&self, polls: &mut u32, start: Instant) -> bool {
            if !self.initiator {
                return self.stop.load(Ordering::Acquire);
            }
            *polls = polls.wrapping_add(1);
            *polls % 16 == 0 && start.elapsed() >= self.secs
        }

        fn rate(&self, round_trips: u64, start: Instant) -> f64 {
            round_trips as f64 / start.elapsed().as_secs_f64()
        }

        fn ours<R: Reactor>(&self, reactor: &R, mode: Mode) -> io::Result<f64> {
            for &k in self.mine {
                // SAFETY: every end outlives the reactor, which is dropped at the end of
                // this run (it is created per run by the caller).
                unsafe {
                    reactor.register(self.all[k].as_source(), EventId(k), Interest::READABLE, mode)?;
                }
            }
            let mut events = Events::with_capacity(EVENTS);
            let mut buf = [0u8; MSG];
            let (mut polls, mut round_trips) = (0u32, 0u64);
            let start = self.start()?;
            while !self.done(&mut polls, start) {
                reactor.poll(&mut events, Some(POLL_TIMEOUT))?;
                for ev in events.iter() {
                    let k = ev.id().0;
                    round_trips += bounce(&self.all[k], k, &mut buf)?;
                    if mode == Mode::Oneshot {
                        reactor.reregister(self.all[k].as_source(), ev.id(), Interest::READABLE, mode)?;
                    }
                }
            }
            Ok(self.rate(round_trips, start))
        }

        fn raw_polling(&self, mode: Mode) -> io::Result<f64> {
            let pm = match mode {
                Mode::Level => polling::PollMode::Level,
                Mode::Oneshot => polling::PollMode::Oneshot,
                Mode::Edge => polling::PollMode::Edge,
            };
            let poller = polling::Poller::new()?;
            for &k in self.mine {
                // SAFETY: every end outlives the poller, which is dropped at the end of this
                // run.
                unsafe { poller.add_with_mode(&self.all[k], polling::Event::readable(k), pm)? };
            }
            let mut events = polling::Events::with_capacity(NonZeroUsize::new(EVENTS).expect("nonzero"));
            let mut buf = [0u8; MSG];
            let (mut polls, mut round_trips) = (0u32, 0u64);
            let start = self.start()?;
            while !self.done(&mut polls, start) {
                events.clear();
                match poller.wait(&mut events, Some(POLL_TIMEOUT)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                for ev in events.iter() {
                    let k = ev.key;
                    round_trips += bounce(&self.all[k], k, &mut buf)?;
                    if pm == polling::PollMode::Oneshot {
                        poller.modify_with_mode(&self.all[k], polling::Event::readable(k), pm)?;
                    }
                }
            }
            Ok(self.rate(round_trips, start))
        }

        fn raw_mio(&self) -> io::Result<f64> {
            use mio::unix::SourceFd;
            let mut poll = mio::Poll::new()?;
            for &k in self.mine {
                let fd = self.all[k].as_raw_fd();
                poll.registry()
                    .register(&mut SourceFd(&fd), mio::Token(k), mio::Interest::READABLE)?;
            }
            let mut events = mio::Events::with_capacity(EVENTS);
            let mut buf = [0u8; MSG];
            let (mut polls, mut round_trips) = (0u32, 0u64);
            let start = self.start()?;
            while !self.done(&mut polls, start) {
                match poll.poll(&mut events, Some(POLL_TIMEOUT)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                for ev in events.iter() {
                    let k = ev.token().0;
                    round_trips += bounce(&self.all[k], k, &mut buf)?;
                }
            }
            Ok(self.rate(round_trips, start))
        }
    }
}
