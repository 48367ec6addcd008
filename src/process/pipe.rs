//! A child's stdio on the loop: output pipes as persistent read watches, stdin as a write
//! watch with a bounded queue (paused and unref'd while the queue is empty).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};

#[cfg(unix)]
use super::unix::PipeEnd;
#[cfg(windows)]
use super::windows::PipeEnd;
use crate::runtime::{Runtime, WatchOptions};
use crate::{Event, EventId, Interest, Reactor};

/// The most bytes [`Child::write_stdin`](super::Child::write_stdin) queues: 16 MiB.
pub const MAX_STDIN_QUEUE: usize = 16 * 1024 * 1024;

/// The read buffer of an output pipe.
const READ_BUFFER: usize = 64 * 1024;

/// Reads per event before the pipe yields to other watches.
const READS_PER_EVENT: usize = 16;

/// What an output pipe's data callback gets.
pub(super) type DataCallback<R> = Box<dyn FnMut(&mut Runtime<R>, io::Result<&[u8]>)>;

/// An output pipe's watch source.
pub(super) struct Reader<R: Reactor + 'static> {
    pipe: PipeEnd,
    buf: Box<[u8]>,
    callback: DataCallback<R>,
}

crate::net::delegate_source!(Reader<R: Reactor>, pipe);

impl<R: Reactor + 'static> fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("pipe", &self.pipe)
            .finish_non_exhaustive()
    }
}

/// Watches an output pipe until its end.
pub(super) fn reader<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    pipe: PipeEnd,
    callback: DataCallback<R>,
) -> io::Result<EventId> {
    let reader = Reader {
        pipe,
        buf: vec![0; READ_BUFFER].into_boxed_slice(),
        callback,
    };
    // The process's deadline, not an idle timeout, bounds a silent child.
    let options = WatchOptions::new().no_timeout();
    rt.watch_with(reader, Interest::READABLE, options, reader_event::<R>)
}

fn reader_event<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    reader: &mut Reader<R>,
    event: io::Result<Event>,
) {
    if let Err(e) = event {
        (reader.callback)(rt, Err(e));
        return;
    }
    for _ in 0..READS_PER_EVENT {
        match reader.pipe.read(&mut reader.buf) {
            Ok(0) => {
                let _ = rt.close(id);
                (reader.callback)(rt, Ok(&[]));
                return;
            }
            Ok(n) => (reader.callback)(rt, Ok(&reader.buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A relay's connection reset (Windows) ends the stream like an end of file would.
            Err(e) => {
                let _ = rt.close(id);
                (reader.callback)(rt, Err(e));
                return;
            }
        }
    }
    let _ = rt.wake_watch(id);
}

/// Stdin's watch source.
pub(super) struct Writer {
    pipe: PipeEnd,
    queue: VecDeque<u8>,
    closing: bool,
    failed: bool,
}

crate::net::delegate_source!(Writer, pipe);

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("queued", &self.queue.len())
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Writes from the queue until it is empty or the pipe is full.
    fn flush(&mut self) -> io::Result<()> {
        while !self.queue.is_empty() {
            let (front, _) = self.queue.as_slices();
            match self.pipe.write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Watches stdin, paused (and not keeping the loop alive) until something is queued.
pub(super) fn writer<R: Reactor + 'static>(rt: &mut Runtime<R>, pipe: PipeEnd) -> io::Result<EventId> {
    let writer = Writer {
        pipe,
        queue: VecDeque::new(),
        closing: false,
        failed: false,
    };
    let options = WatchOptions::new().no_timeout();
    let id = rt.watch_with(writer, Interest::WRITABLE, options, writer_event::<R>)?;
    rt.pause_watch(id)?;
    rt.unref_watch(id)?;
    Ok(id)
}

fn broken(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, format!("the child's stdin {what}"))
}

pub(super) fn write<R: Reactor + 'static>(rt: &mut Runtime<R>, id: EventId, data: &[u8]) -> io::Result<()> {
    let writer = rt.source_mut::<Writer>(id).ok_or_else(|| broken("is closed"))?;
    if writer.closing {
        return Err(broken("was closed"));
    }
    if writer.failed {
        return Err(broken("failed (the child no longer reads it)"));
    }
    if writer.queue.len() + data.len() > MAX_STDIN_QUEUE {
        return Err(io::Error::new(
            io::ErrorKind::QuotaExceeded,
            format!(
                "{} bytes queued for the child's stdin; {} more would exceed {MAX_STDIN_QUEUE}",
                writer.queue.len(),
                data.len()
            ),
        ));
    }
    let was_empty = writer.queue.is_empty();
    writer.queue.extend(data);
    if was_empty {
        if let Err(e) = writer.flush() {
            writer.failed = true;
            writer.queue.clear();
            return Err(e);
        }
        if !writer.queue.is_empty() {
            rt.resume_watch(id)?;
            rt.ref_watch(id)?;
        }
    }
    Ok(())
}

pub(super) fn close<R: Reactor + 'static>(rt: &mut Runtime<R>, id: EventId) {
    let Some(writer) = rt.source_mut::<Writer>(id) else {
        return;
    };
    writer.closing = true;
    if writer.queue.is_empty() {
        let _ = rt.close(id);
    }
}

fn writer_event<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    writer: &mut Writer,
    event: io::Result<Event>,
) {
    if let Err(e) = event {
        log::warn!("process: stdin watch {id} ended: {e}");
        return;
    }
    if let Err(e) = writer.flush() {
        log::warn!(
            "process: writing the child's stdin failed ({e}); {} queued bytes dropped",
            writer.queue.len()
        );
        writer.failed = true;
        writer.queue.clear();
    }
    if writer.queue.is_empty() {
        if writer.closing || writer.failed {
            let _ = rt.close(id);
        } else {
            let _ = rt.pause_watch(id);
            let _ = rt.unref_watch(id);
        }
    }
}
