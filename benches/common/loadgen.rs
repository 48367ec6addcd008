//! The load generator shared by `examples/loadgen.rs` and the echo/idle benches: C TCP
//! connections, each ping-ponging S-byte messages (write S bytes, read S bytes back, repeat)
//! for D seconds after W seconds of warm-up, in one thread over an edge-triggered `mio::Poll`.
//!
//! Latencies go into a fixed log-linear histogram (32 buckets per power of two, about 3%
//! precision), so no sample allocates.
//!
//! Only std, `mio` and `log` are used here: examples may use only regular dependencies.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The echo server.
    pub addr: SocketAddr,
    /// Concurrent connections, one message in flight each.
    pub conns: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Measured duration.
    pub secs: Duration,
    /// Warm-up before measuring (round trips then are not counted).
    pub warmup: Duration,
    /// Exactly this many round trips in all, then stop (`secs` is then only a bound, and
    /// there is no warm-up): what instruction and syscall counts divide by.
    pub count: Option<u64>,
    /// Paced run (non-zero): the connections run in waves, one round trip each, and the
    /// client pauses this long after each wave before the next. Every wave then starts with
    /// the server idle (sockets drained, back in its wait) however slow a tool makes the
    /// server: counts under callgrind or strace measure a fixed path (one connection: the
    /// idle-between-messages path), not a server that is always behind its client by a
    /// margin that depends on timing.
    pub pace: Duration,
}

impl LoadConfig {
    /// Parses `--addr A --conns C --size S --secs D [--warmup W] [--count N] [--pace-us P]`
    /// (durations in seconds, fractions allowed; with `--count`, exactly N round trips, no
    /// warm-up, and `--secs` only bounds the run; `--pace-us`: see [`LoadConfig::pace`]).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<LoadConfig, String> {
        let mut addr = None;
        let mut conns = 1usize;
        let mut size = 64usize;
        let mut secs = 5.0f64;
        let mut warmup = 1.0f64;
        let mut count = None;
        let mut pace_us = 0u64;
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--addr" => addr = Some(value()?.parse().map_err(|e| format!("--addr: {e}"))?),
                "--conns" => conns = value()?.parse().map_err(|e| format!("--conns: {e}"))?,
                "--size" => size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
                "--secs" => secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
                "--warmup" => warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
                "--count" => count = Some(value()?.parse().map_err(|e| format!("--count: {e}"))?),
                "--pace-us" => pace_us = value()?.parse().map_err(|e| format!("--pace-us: {e}"))?,
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        let addr = addr.ok_or_else(|| format!("--addr is required\n{USAGE}"))?;
        if conns == 0 || size == 0 || count == Some(0) {
            return Err("--conns, --size and --count must be at least 1".into());
        }
        if count.is_some() {
            warmup = 0.0;
        }
        let dur = |s: f64, name: &str| Duration::try_from_secs_f64(s).map_err(|e| format!("{name}: {e}"));
        Ok(LoadConfig {
            addr,
            conns,
            size,
            secs: dur(secs, "--secs")?,
            warmup: dur(warmup, "--warmup")?,
            count,
            pace: Duration::from_micros(pace_us),
        })
    }
}

/// The loadgen program: parses `args` (without the program name), runs, prints the result
/// line; returns the exit status (0, 1 on errors, 2 on bad arguments).
pub fn main_with(args: impl IntoIterator<Item = String>) -> i32 {
    let cfg = match LoadConfig::from_args(args) {
        Ok(cfg) => cfg,
        Err(msg) => {
            eprintln!("{msg}");
            return 2;
        }
    };
    match run(&cfg) {
        Ok(result) => {
            println!("{}", result.line());
            i32::from(result.errors > 0)
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            1
        }
    }
}

/// Usage text of the loadgen example.
pub const USAGE: &str =
    "usage: loadgen --addr 127.0.0.1:PORT --conns C --size S --secs D [--warmup W] [--count N] [--pace-us P]";

/// What a run measured.
#[derive(Clone, Debug)]
pub struct LoadResult {
    /// Connections.
    pub conns: usize,
    /// Message size.
    pub size: usize,
    /// Measured seconds (actual).
    pub secs: f64,
    /// Round trips completed in the measured window.
    pub round_trips: u64,
    /// Round trips per second, all connections together.
    pub rtt_per_sec: f64,
    /// Median round-trip latency in microseconds.
    pub p50_us: f64,
    /// 99th-percentile round-trip latency in microseconds.
    pub p99_us: f64,
    /// Connections that failed (connect, I/O error, early end of stream).
    pub errors: u64,
}

impl LoadResult {
    /// The one machine-readable line the example prints.
    pub fn line(&self) -> String {
        format!(
            "loadgen conns={} size={} secs={:.3} round_trips={} rtt_per_sec={:.1} p50_us={:.1} p99_us={:.1} errors={}",
            self.conns,
            self.size,
            self.secs,
            self.round_trips,
            self.rtt_per_sec,
            self.p50_us,
            self.p99_us,
            self.errors
        )
    }
}

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Enough buckets for any `u64` nanosecond value.
const BUCKETS: usize = SUB * (64 - SUB_BITS as usize + 1);

/// A fixed-size log-linear histogram of nanosecond values.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let octave = (msb - SUB_BITS + 1) as usize;
        let mantissa = ((v >> (msb - SUB_BITS)) as usize) & (SUB - 1);
        octave * SUB + mantissa
    }

    /// The middle of bucket `i`.
    fn value_of(i: usize) -> f64 {
        if i < SUB {
            return i as f64;
        }
        let octave = (i / SUB) as u32;
        let mantissa = (i % SUB) as u64;
        let shift = octave - 1;
        let low = (SUB as u64 + mantissa) << shift;
        low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
    }

    /// Records one value.
    pub fn record(&mut self, nanos: u64) {
        self.counts[Self::index(nanos)] += 1;
        self.total += 1;
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The `q`-quantile (0..=1), NaN if empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value_of(i);
            }
        }
        f64::NAN
    }
}

/// Round trips left to start when the run is counted (`LoadConfig::count`).
struct Budget(Option<u64>);

/// What every connection's progress adds to: the latencies, the round trips counted from
/// `measure_from`, the errors, and the budget of a counted run.
struct Tally {
    measure_from: Instant,
    hist: Histogram,
    round_trips: u64,
    errors: u64,
    budget: Budget,
    paced: bool,
}

impl Budget {
    /// Takes one round trip from the budget; false when it is spent.
    fn take(&mut self) -> bool {
        match &mut self.0 {
            None => true,
            Some(0) => false,
            Some(left) => {
                *left -= 1;
                true
            }
        }
    }
}

struct Conn {
    stream: TcpStream,
    written: usize,
    read: usize,
    started: Instant,
    dead: bool,
    /// Paced run: done with this wave, waiting for the others and the pause.
    parked: bool,
}

/// Opens the connections, runs the warm-up and the measured window, and closes them.
///
/// # Errors
///
/// Creating the poller fails, or no connection at all could be made.
pub fn run(cfg: &LoadConfig) -> io::Result<LoadResult> {
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(cfg.conns);
    let mut errors = 0u64;
    let mut last_err = None;
    for i in 0..cfg.conns {
        match connect(cfg.addr) {
            Ok(mut stream) => {
                poll.registry()
                    .register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
                conns.push(Conn {
                    stream,
                    written: 0,
                    read: 0,
                    started: Instant::now(),
                    dead: false,
                    parked: false,
                });
            }
            Err(e) => {
                log::warn!("loadgen: connection {i} to {} failed: {e}", cfg.addr);
                errors += 1;
                last_err = Some(e);
            }
        }
    }
    if conns.is_empty() {
        return Err(last_err.unwrap_or_else(|| io::ErrorKind::NotConnected.into()));
    }
    let msg = vec![0x5au8; cfg.size];
    let mut buf = vec![0u8; cfg.size];
    let mut events = Events::with_capacity(1024);

    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.secs;
    let mut tally = Tally {
        measure_from,
        hist: Histogram::default(),
        round_trips: 0,
        errors,
        budget: Budget(cfg.count),
        paced: !cfg.pace.is_zero(),
    };
    for c in conns.iter_mut() {
        c.started = start;
        // A connection the budget cannot start stays idle (written == size, read == 0
        // would wait for a reply: mark it done instead).
        if !tally.budget.take() {
            c.dead = true;
        }
    }
    for c in conns.iter_mut() {
        drive(c, &msg, &mut buf, &mut tally);
    }
    let mut now = Instant::now();
    while now < end && cfg.count.is_none_or(|n| tally.round_trips < n) {
        let timeout = (end - now).min(Duration::from_millis(100));
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for ev in events.iter() {
            if let Some(c) = conns.get_mut(ev.token().0) {
                drive(c, &msg, &mut buf, &mut tally);
            }
        }
        // Paced run: when every live connection has finished its round trip of this wave,
        // pause, then start the next wave.
        if !cfg.pace.is_zero() && conns.iter().all(|c| c.dead || c.parked) {
            std::thread::sleep(cfg.pace);
            for c in conns.iter_mut().filter(|c| !c.dead) {
                c.parked = false;
                c.started = Instant::now();
                drive(c, &msg, &mut buf, &mut tally);
            }
        }
        now = Instant::now();
    }
    let secs = (now - measure_from).as_secs_f64().max(1e-9);
    let Tally {
        hist,
        round_trips,
        errors,
        ..
    } = tally;
    Ok(LoadResult {
        conns: cfg.conns,
        size: cfg.size,
        secs,
        round_trips,
        rtt_per_sec: round_trips as f64 / secs,
        p50_us: hist.quantile(0.50) / 1e3,
        p99_us: hist.quantile(0.99) / 1e3,
        errors,
    })
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    Ok(TcpStream::from_std(stream))
}

/// Advances one connection as far as it goes without blocking (edge-triggered: until
/// `WouldBlock`).
fn drive(c: &mut Conn, msg: &[u8], buf: &mut [u8], tally: &mut Tally) {
    let size = msg.len();
    while !c.dead {
        if c.written < size {
            match c.stream.write(&msg[c.written..]) {
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("loadgen: write failed: {e}");
                    c.dead = true;
                    tally.errors += 1;
                }
            }
            continue;
        }
        match c.stream.read(&mut buf[..size - c.read]) {
            Ok(0) => {
                log::warn!("loadgen: server closed a connection");
                c.dead = true;
                tally.errors += 1;
            }
            Ok(n) => {
                c.read += n;
                if c.read == size {
                    let now = Instant::now();
                    if now >= tally.measure_from {
                        tally.hist.record((now - c.started).as_nanos() as u64);
                        tally.round_trips += 1;
                    }
                    c.read = 0;
                    c.written = 0;
                    c.started = now;
                    if !tally.budget.take() {
                        // Counted run: this connection's share is done (not an error).
                        c.dead = true;
                    } else if tally.paced {
                        c.parked = true;
                        return;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("loadgen: read failed: {e}");
                c.dead = true;
                tally.errors += 1;
            }
        }
    }
}
