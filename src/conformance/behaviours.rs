//! The list of behaviours: the one source of truth that both [`conformance_suite!`] (the
//! `#[test]`s) and [`BEHAVIOURS`](super::BEHAVIOURS) (the runner's registry) expand.
//!
//! Adding, removing or changing a behaviour here bumps [`VERSION`](super::VERSION).

/// Calls `$callback! { ($($args)*) <entries> }` with every behaviour of the suite; not
/// public API.
///
/// Each entry reads `group name "contract row" [os: "reason"]?;`: the module of
/// [`conformance`](crate::conformance) it lives in, the function, the row of the
/// [`Reactor`](crate::Reactor) contract it pins, and, for a behaviour that exists only where
/// `cfg(os)` holds, why it does not apply elsewhere.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_behaviours {
    ($callback:path, $($args:tt)*) => {
        $callback! { ($($args)*)
            registration register_twice_is_already_exists
                "register a source twice: ErrorKind::AlreadyExists";
            registration reregister_unregistered_is_not_found
                "reregister an unregistered source: ErrorKind::NotFound";
            registration deregister_unregistered_is_not_found
                "deregister an unregistered source: ErrorKind::NotFound";
            registration unsupported_mode_is_rejected_and_registers_nothing
                "unsupported Mode: ErrorKind::Unsupported, nothing registered";
            registration register_deregister_register_has_no_spurious_events
                "after deregister: no event for that source (register again: no spurious event)";
            registration reused_slot_reports_no_stale_event
                "after deregister: no event for that source (a reused slot reports nothing stale)";
            registration reregister_replaces_id_and_interest
                "reregister: replaces id and interest";
            registration reregister_with_pending_readiness_reports_new_id_only
                "reregister: readiness already pending is reported under the new id only";
            registration reregister_changes_mode
                "reregister: replaces the mode";
            registration ids_zero_and_max_round_trip
                "ids: every usize, 0 and usize::MAX included";
            registration no_events_after_deregister_with_data_in_flight
                "after deregister: no event for that source, even with data in flight";
            registration boxed_dyn_reactor_works
                "Box<dyn Reactor> is a Reactor with the same answers";
            readiness readable_after_peer_write
                "readiness: a stream is readable after the peer writes";
            readiness writable_after_nonblocking_connect
                "readiness: a stream is writable after a non-blocking connect";
            readiness listener_readable_on_incoming_connection
                "readiness: a listener is readable on an incoming connection";
            readiness udp_datagram_is_readable
                "readiness: a UDP socket is readable on a datagram";
            readiness udp_empty_datagram_is_readable
                "readiness: a UDP socket is readable on an empty datagram";
            readiness interest_filters_directions
                "interest: only the registered directions are reported";
            readiness many_sockets_each_report_their_own_id
                "ids: each source is reported under its own id";
            readiness capacity_overflow_loses_and_duplicates_nothing
                "poll: fills at most its capacity; the rest later, nothing lost or duplicated";
            readiness level_capacity_overflow_starves_no_source
                "poll: capacity overflow starves no level source";
            modes oneshot_is_silent_until_rearmed
                "Mode::Oneshot: silent after an event until reregister re-arms";
            modes oneshot_rearm_with_buffered_data_fires_at_once
                "reregister: re-arms a oneshot (buffered data fires at once)";
            modes level_persists_until_drained
                "Mode::Level: reported at every poll until drained";
            modes edge_reports_once_per_edge
                "Mode::Edge: reported once per edge";
            threads register_from_another_thread_during_blocked_poll
                "cross-thread registration: takes effect for a poll already blocked";
            threads reregister_from_another_thread_rearms_blocked_poll
                "cross-thread reregistration: re-arms for a poll already blocked";
            threads deregister_from_another_thread_during_blocked_poll
                "cross-thread deregistration: takes effect for a poll already blocked";
            threads wake_from_another_thread
                "waker: Send + Sync; a wake makes a blocked poll return";
            threads wake_before_poll_returns_at_once
                "waker: a wake before poll makes it return at once";
            threads wakes_coalesce
                "waker: coalescing";
            threads waker_surfaces_no_event
                "waker: no event is reported for it";
            threads poll_without_timeout_returns_on_event
                "poll(None): blocks until an event or a wake";
            contention wake_storm_never_fails_poll
                "waker: a wake makes poll return, never fail";
            contention wakes_racing_poll_are_never_lost
                "waker: a wake racing the start of poll is never lost";
            contention zero_timeout_does_not_wait_for_a_blocked_poll
                "poll(Some(0)): never blocks, not even behind another thread's poll";
            hints mechanism_matches_target_os
                "mechanism(): one this OS has; supports() fits it";
            hints healthy_sockets_carry_no_hints
                "hints: never false positives (healthy sockets carry none)";
            hints peer_shutdown_hints
                "hints: peer shutdown(Write), as hints() declares";
            hints peer_reset_hints
                "hints: peer reset, as hints() declares";
            hints refused_connect_hints
                "hints: refused connect, as hints() declares";
            hints pipe_writer_dropped_hints
                "hints: pipe writer dropped, as hints() declares"
                [unix: "Unix only: pipes are not sources on Windows"];
            hints pipe_reader_dropped_hints
                "hints: pipe reader dropped, as hints() declares"
                [unix: "Unix only: pipes are not sources on Windows"];
            hints udp_unreachable_hints
                "hints: ICMP port unreachable never sets write_closed"
                [unix: "Unix only: checked where connected UDP reports ICMP errors"];
            timeouts zero_timeout_never_blocks
                "poll(Some(0)): never blocks";
            timeouts timeout_is_never_early
                "poll(Some(t)): never returns before t has passed";
            timeouts sub_millisecond_timeout_is_never_early
                "poll(Some(t)): never early, t below a millisecond";
            timeouts timeout_with_silent_sources_is_never_early
                "poll(Some(t)): never early with registered, silent sources";
            timeouts poll_from_counts_from_start
                "poll_from(t, start): never returns before start + t; events as poll";
        }
    };
}

/// Instantiates the portability suite for a backend: a module `$name` with one `#[test]` per
/// behaviour in [`conformance`](crate::conformance) (the list of
/// [`BEHAVIOURS`](crate::conformance::BEHAVIOURS)), each calling the behaviour with a closure
/// that evaluates `$make` to build a fresh reactor.
///
/// `$make` is evaluated inside the generated module, which imports `super::*`, so it may name
/// items of the calling test file.
///
/// `deviations = EXPR` (a `&[Deviation]`) declares what the backend knowingly does
/// differently: the test of a declared behaviour passes whether the behaviour fails (as
/// declared) or passes (a stale declaration), and says which on stderr; see
/// [`Deviation`](crate::conformance::Deviation). The [runner](crate::conformance::runner)
/// reports both in every format.
///
/// ```
/// use portable_reactor::conformance::Deviation;
///
/// portable_reactor::conformance_suite!(polling, portable_reactor::PollingReactor::new().unwrap());
/// portable_reactor::conformance_suite!(
///     boxed_mio,
///     portable_reactor::reactor_by_name("mio").unwrap()
/// );
/// portable_reactor::conformance_suite!(
///     mio_declared,
///     portable_reactor::MioReactor::new().unwrap(),
///     deviations = &[Deviation::new("wakes_coalesce", "an example declaration")],
/// );
/// // One behaviour can also be run directly:
/// portable_reactor::conformance::register_twice_is_already_exists(|| {
///     portable_reactor::MioReactor::new().unwrap()
/// });
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $make:expr $(,)?) => {
        $crate::conformance_suite!($name, $make, deviations = &[]);
    };
    ($name:ident, $make:expr, deviations = $deviations:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_behaviours!($crate::__conformance_tests, ($make)($deviations));
        }
    };
}

/// Expands the test list of [`conformance_suite!`]; not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (
        (($make:expr) ($deviations:expr))
        $($group:ident $test:ident $contract:literal $([$os:ident : $why:literal])?;)*
    ) => {$(
        $(#[cfg($os)])?
        #[test]
        fn $test() {
            $crate::conformance::run_test(stringify!($test), $deviations, || {
                $crate::conformance::$test(|| $make)
            });
        }
    )*};
}
