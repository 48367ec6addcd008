//! [`Builder`]: the runtime's limits and defaults.

use std::io;
use std::time::Duration;

use super::Runtime;
use crate::{DefaultReactor, Reactor};

/// The environment variable that sets the thread pool's size (1 to 1024) when the builder
/// does not.
pub const THREADS_ENV: &str = "PORTABLE_REACTOR_THREADS";

/// The default I/O deadline: a watch that sees no event for this long is closed with
/// `ErrorKind::TimedOut`. Two minutes, Node's historical socket timeout.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(120);

/// The default high watermark: registrations held with the OS at once.
pub const DEFAULT_HIGH_WATERMARK: usize = 65_536;

/// The default bound on watches queued above the high watermark.
pub const DEFAULT_QUEUE_LIMIT: usize = 8_192;

/// The default bound on [`Handle::post`](super::Handle::post) callbacks waiting for the loop:
/// beyond it `post` fails with `ErrorKind::QuotaExceeded`.
pub const DEFAULT_POST_LIMIT: usize = 65_536;

/// The default [`pool_spin`](Builder::pool_spin): how long a pool thread watches the queue
/// after a job, and the loop its inbox while pool jobs are in flight, before they sleep.
///
/// Chosen by measurement (`cargo bench --bench pool`, 2-vCPU VM whose idle vCPUs halt): a wake
/// across cores took 30-70 µs there; 10 µs of spin caught too few hand-offs to matter, 25 µs
/// about half, 50 µs nearly all of them for jobs of up to 20 µs (a 1-in-flight round trip of
/// about 2 µs instead of 100); 100 µs bought nothing more.
pub const DEFAULT_POOL_SPIN: Duration = Duration::from_micros(50);

/// The default thread pool size.
pub const DEFAULT_THREADS: usize = 4;

const MAX_THREADS: usize = 1024;

/// The longest [`pool_spin`](Builder::pool_spin) [`build`](Builder::build) accepts.
const MAX_POOL_SPIN: Duration = Duration::from_millis(10);

/// Settings a runtime is built with.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) threads: usize,
    pub(crate) io_timeout: Option<Duration>,
    pub(crate) high_watermark: usize,
    pub(crate) queue_limit: usize,
    pub(crate) events_capacity: usize,
    pub(crate) post_limit: usize,
    pub(crate) pool_spin: Duration,
}

/// Builds a [`Runtime`] with chosen limits.
///
/// | setting | default |
/// |---|---|
/// | [`threads`](Builder::threads) | `PORTABLE_REACTOR_THREADS` if set, else 4 |
/// | [`io_timeout`](Builder::io_timeout) | 120 s ([`DEFAULT_IO_TIMEOUT`]) |
/// | [`high_watermark`](Builder::high_watermark) | 65,536 registrations |
/// | [`queue_limit`](Builder::queue_limit) | 8,192 queued watches |
/// | [`events_capacity`](Builder::events_capacity) | 1,024 events per poll |
/// | [`post_limit`](Builder::post_limit) | 65,536 posts waiting ([`DEFAULT_POST_LIMIT`]) |
/// | [`pool_spin`](Builder::pool_spin) | 50 µs ([`DEFAULT_POOL_SPIN`]) |
///
/// ```
/// use portable_reactor::runtime::Builder;
/// use std::time::Duration;
///
/// let rt = Builder::new()
///     .threads(2)
///     .io_timeout(Duration::from_secs(30))
///     .high_watermark(10_000)
///     .queue_limit(1_000)
///     .build()?;
/// assert_eq!(rt.stats().registered, 0);
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    threads: Option<usize>,
    io_timeout: Option<Duration>,
    high_watermark: usize,
    queue_limit: usize,
    events_capacity: usize,
    post_limit: usize,
    pool_spin: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl Builder {
    /// A builder with the defaults in the table above.
    pub fn new() -> Builder {
        Builder {
            threads: None,
            io_timeout: Some(DEFAULT_IO_TIMEOUT),
            high_watermark: DEFAULT_HIGH_WATERMARK,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            events_capacity: 1024,
            post_limit: DEFAULT_POST_LIMIT,
            pool_spin: DEFAULT_POOL_SPIN,
        }
    }

    /// The thread pool's size, 1 to 1024; overrides `PORTABLE_REACTOR_THREADS`. Threads start on
    /// first use.
    pub fn threads(mut self, threads: usize) -> Builder {
        self.threads = Some(threads);
        self
    }

    /// The default deadline of every watch (an idle timeout; see
    /// [`Runtime::watch_with`](super::Runtime::watch_with)). It must be longer than zero
    /// ([`build`](Builder::build) refuses `Duration::ZERO`, which would time every watch out at
    /// once; Node reads 0 as "no timeout", which here is [`no_io_timeout`](Builder::no_io_timeout),
    /// spelled out so that a zero read from a configuration cannot silently remove every
    /// deadline).
    pub fn io_timeout(mut self, timeout: Duration) -> Builder {
        self.io_timeout = Some(timeout);
        self
    }

    /// Watches get no deadline unless they ask for one: the explicit opt-out.
    pub fn no_io_timeout(mut self) -> Builder {
        self.io_timeout = None;
        self
    }

    /// At most this many registrations are held with the OS; further watches wait in a queue.
    pub fn high_watermark(mut self, registrations: usize) -> Builder {
        self.high_watermark = registrations;
        self
    }

    /// At most this many watches wait above the high watermark; further watches fail at once.
    pub fn queue_limit(mut self, watches: usize) -> Builder {
        self.queue_limit = watches;
        self
    }

    /// At most this many [`Handle::post`](super::Handle::post) callbacks wait for the loop at
    /// once (1 or more); beyond it `post` fails with `ErrorKind::QuotaExceeded` and drops the
    /// callback, so threads that post faster than the loop runs cannot grow its memory without
    /// bound. Pool results are not counted: the pool's own jobs bound them.
    pub fn post_limit(mut self, posts: usize) -> Builder {
        self.post_limit = posts;
        self
    }

    /// How long a pool thread that finished a job watches the queue before it sleeps, and how
    /// long the loop watches for pool results before it blocks in the reactor while jobs are in
    /// flight; `Duration::ZERO` turns both off.
    ///
    /// Waking a thread asleep on another core costs an interrupt (in a virtual machine whose
    /// idle vCPUs halt, a trip through the hypervisor: tens of microseconds), and a job's round
    /// trip pays two of them; a spin that sees the next job or the result arrive pays neither.
    /// The cost is CPU: at most one pool thread spins at a time, for at most this long after
    /// each job; the loop's spin adapts (it shrinks to nothing while results do not come back
    /// within it, from long jobs or while other events wake the loop, and grows back when they
    /// do); both yield the core as they go. An idle pool and an idle loop do not spin. While
    /// the loop spins, I/O events wait for the spin's end (at most this long). At most 10 ms
    /// (checked by [`build`](Builder::build)).
    ///
    /// ```
    /// use portable_reactor::runtime::Builder;
    /// use std::time::Duration;
    /// // No spinning: every hand-off sleeps and wakes (CPU-frugal, slower round trips).
    /// let mut rt = Builder::new().pool_spin(Duration::ZERO).build()?;
    /// rt.spawn_blocking(|| 2 + 2, |_, four| assert_eq!(four.unwrap(), 4))?;
    /// rt.run()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn pool_spin(mut self, spin: Duration) -> Builder {
        self.pool_spin = spin;
        self
    }

    /// The most events one poll returns, in `1..=`[`Events::MAX_CAPACITY`](crate::Events::MAX_CAPACITY)
    /// (checked by [`build`](Builder::build)).
    pub fn events_capacity(mut self, events: usize) -> Builder {
        self.events_capacity = events;
        self
    }

    /// Builds a runtime on the [`DefaultReactor`].
    ///
    /// # Errors
    ///
    /// `ErrorKind::InvalidInput` for a setting out of range (threads not in 1..=1024, a high
    /// watermark of 0 or above the most watchers a runtime can index, an events capacity of 0 or
    /// above [`Events::MAX_CAPACITY`](crate::Events::MAX_CAPACITY), an I/O timeout or a post
    /// limit of zero, a pool spin above 10 ms, a malformed `PORTABLE_REACTOR_THREADS`); the OS
    /// error if the reactor cannot be created.
    pub fn build(self) -> io::Result<Runtime<DefaultReactor>> {
        let config = self.config()?;
        Runtime::with_config(DefaultReactor::new()?, config)
    }

    /// Builds a runtime on `reactor` (any backend, `Box<dyn Reactor>` included).
    ///
    /// ```
    /// use portable_reactor::runtime::Builder;
    /// let rt = Builder::new().build_with(portable_reactor::reactor_by_name("mio")?)?;
    /// assert_eq!(rt.reactor().name(), "mio");
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`build`](Builder::build).
    pub fn build_with<R: Reactor + 'static>(self, reactor: R) -> io::Result<Runtime<R>> {
        let config = self.config()?;
        Runtime::with_config(reactor, config)
    }

    fn config(self) -> io::Result<Config> {
        let threads = match self.threads {
            Some(n) => n,
            None => threads_from_env(std::env::var_os(THREADS_ENV))?,
        };
        if !(1..=MAX_THREADS).contains(&threads) {
            return Err(invalid(format!(
                "thread pool size {threads} is not in 1..={MAX_THREADS}"
            )));
        }
        if self.high_watermark == 0 || self.high_watermark > super::watchers::MAX_WATCHERS {
            return Err(invalid(format!(
                "high watermark {} is not in 1..={}",
                self.high_watermark,
                super::watchers::MAX_WATCHERS
            )));
        }
        if self.io_timeout == Some(Duration::ZERO) {
            return Err(invalid(
                "an I/O timeout of zero would time every watch out at once (no_io_timeout() removes it)"
                    .into(),
            ));
        }
        if self.pool_spin > MAX_POOL_SPIN {
            return Err(invalid(format!(
                "a pool spin of {:?} is above {MAX_POOL_SPIN:?}",
                self.pool_spin
            )));
        }
        if self.post_limit == 0 {
            return Err(invalid("a post limit of 0 refuses every post".into()));
        }
        // Checked here, so an unallocatable size is an error rather than an abort.
        crate::Events::try_with_capacity(self.events_capacity)?;
        Ok(Config {
            threads,
            io_timeout: self.io_timeout,
            high_watermark: self.high_watermark,
            queue_limit: self.queue_limit,
            events_capacity: self.events_capacity,
            post_limit: self.post_limit,
            pool_spin: self.pool_spin,
        })
    }
}

/// Parses `PORTABLE_REACTOR_THREADS`; unset means the default.
fn threads_from_env(value: Option<std::ffi::OsString>) -> io::Result<usize> {
    let Some(value) = value else {
        return Ok(DEFAULT_THREADS);
    };
    let text = value.to_str().unwrap_or("");
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(invalid(format!(
            "{THREADS_ENV}={value:?} is not a thread count in 1..={MAX_THREADS}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert_eq!(threads_from_env(None).unwrap(), DEFAULT_THREADS);
        assert_eq!(threads_from_env(Some("8".into())).unwrap(), 8);
        assert_eq!(threads_from_env(Some(" 1024 ".into())).unwrap(), 1024);
        for bad in ["0", "1025", "four", "", "-1"] {
            let err = threads_from_env(Some(bad.into())).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains(THREADS_ENV));
        }
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        for builder in [
            Builder::new().threads(0),
            Builder::new().threads(1025),
            Builder::new().high_watermark(0),
            Builder::new().events_capacity(0),
            Builder::new().events_capacity(crate::Events::MAX_CAPACITY + 1),
            Builder::new().events_capacity(1 << 40),
            Builder::new().pool_spin(Duration::from_millis(11)),
        ] {
            assert_eq!(builder.config().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
    }
}
