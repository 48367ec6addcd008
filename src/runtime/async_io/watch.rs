//! The watch under an [`Async`](super::Async): its registration, its event callback, and the
//! interest of a level-triggered (managed) watch following the waiting tasks.

use std::io;
use std::rc::Rc;

use super::state::{interest_of, IoState, SharedSource};
use crate::runtime::{Runtime, Trigger, WatchOptions};
use crate::{AsSource, Event, EventId, Interest, Mode, Reactor};

/// Watches `io` for `state`: edge-triggered for both directions where the backend can,
/// else level-triggered for the directions waited for (see [`apply_interest_in`]).
pub(super) fn register<T: AsSource + 'static, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    io: Rc<T>,
    state: &Rc<IoState>,
    options: WatchOptions,
) -> io::Result<()> {
    let (mode, rearm) = rt.persistent_mode(Trigger::Edge);
    let managed = mode != Mode::Edge || rearm;
    state.managed.set(managed);
    let edge = !managed && !cfg!(windows);
    state
        .short_read_drains
        .set(edge && rt.reactor().hints().peer_shutdown_read_closed);
    state.short_write_fills.set(edge);
    state.timeout.set(options.timeout.resolve(rt.io_timeout()));
    state.refreshed(rt.now());
    let interest = if managed {
        state.wanted().unwrap_or(Interest::READABLE)
    } else {
        Interest::BOTH
    };
    let shared = state.clone();
    let id = rt.watch_with(
        SharedSource(io),
        interest,
        options.trigger(Trigger::Edge),
        move |rt: &mut Runtime<R>, id, _, event| on_event(rt, id, &shared, event),
    )?;
    state.registered.set(Some(interest));
    state.id.set(Some(id));
    Ok(())
}

/// The watch's callback: wakes the waiting directions, or ends every operation.
fn on_event<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    state: &Rc<IoState>,
    event: io::Result<Event>,
) {
    match event {
        Ok(event) => {
            let failed = event.is_error();
            let read = event.is_readable() || event.is_read_closed() || failed;
            let write = event.is_writable() || event.is_write_closed() || failed;
            if read {
                state.read_drained.set(false);
            }
            if write {
                state.write_drained.set(false);
            }
            if event.is_read_closed() || failed {
                state.short_read_drains.set(false);
            }
            if event.is_write_closed() || failed {
                state.short_write_fills.set(false);
            }
            let woke_reader = read && IoState::wake(&state.readers);
            let woke_writer = write && IoState::wake(&state.writers);
            // Level-triggered: readiness nobody waited for comes back at every poll, so stop
            // asking for it. The direction of a task just woken stays registered: the task
            // usually waits again right after draining the source, and dropping and taking
            // it back would cost two syscalls per cycle. If it does not, the next event
            // finds no waiter and lands here.
            if state.managed.get() && ((read && !woke_reader) || (write && !woke_writer)) {
                let keep = interest_of(
                    woke_reader || state.readers.borrow().is_some(),
                    woke_writer || state.writers.borrow().is_some(),
                );
                apply_interest_in(rt, id, state, keep);
            }
        }
        Err(e) => {
            log::debug!("runtime: async source {id} ended: {e}");
            state.id.set(None);
            state.end(&e);
        }
    }
}

pub(super) fn apply_interest<R: Reactor + 'static>(rt: &mut Runtime<R>, state: &Rc<IoState>) {
    state.adjust_queued.set(false);
    if let Some(id) = state.id.get() {
        apply_interest_in(rt, id, state, state.wanted());
    }
}

/// Registers the waited-for directions of a managed watch: pauses it when nothing waits (so
/// level readiness nobody reads does not spin the loop), resumes it when something does.
fn apply_interest_in<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    state: &Rc<IoState>,
    wanted: Option<Interest>,
) {
    if wanted == state.registered.get() {
        return;
    }
    let result = match wanted {
        None => rt.pause_watch(id),
        Some(interest) => rt.set_interest(id, interest).and_then(|()| rt.resume_watch(id)),
    };
    match result {
        Ok(()) => state.registered.set(wanted),
        Err(e) => state.end(&e),
    }
}
