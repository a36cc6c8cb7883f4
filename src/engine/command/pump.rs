//! Reading a command's stdout and stderr: one pump per pipe cuts the bytes
//! into lines (and overlong lines into pieces), and its sink redacts them,
//! writes them to the logs, counts them, applies the capture rule and sends
//! them to the event channel in batches.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::logs::{Combined, LogSink};
use super::{CaptureRule, MAX_LINE, TAIL_LINES};
use crate::engine::redact::Redactor;
use crate::engine::{EngineEvent, Lines, OutputStream};

/// Bytes asked of a pipe per read: big reads mean few wake-ups and few
/// per-chunk costs (hash update, log write, redaction scan).
const READ_CHUNK: usize = 256 * 1024;
/// Pipe capacity asked for (Linux `F_SETPIPE_SZ`; 1 MiB is the unprivileged
/// maximum by default). A fast writer then blocks, and wakes us, 16x less
/// often than with the default 64 KiB, which is most of the per-chunk cost.
#[cfg(any(target_os = "linux", target_os = "android"))]
const PIPE_SIZE: libc::c_int = 1 << 20;
/// Lines per `EngineEvent::Output` at most: a batch is one buffer (see
/// [`Lines`]), so its cost is per batch (two channel hops, a write to the
/// terminal), and a flood of short lines should make few of them. Liveness
/// does not suffer: whatever one read brings is sent at once.
const BATCH_LINES: usize = 4096;
/// Bytes per `EngineEvent::Output` at most (give or take one line): what
/// the channels downstream hold stays bounded (about 1,100 batches queued at
/// worst, 64 KiB each).
const BATCH_BYTES: usize = 64 * 1024;
/// After a read that emptied the pipe, wait this long before the next one.
/// A producer that writes 4 KiB at a time (stdio into a pipe: `sed`, `grep`)
/// would otherwise wake us for every 4 KiB, and each wake-up costs more than
/// the bytes it brings; meanwhile the pipe (1 MiB) keeps filling, so the
/// producer never waits on us. Output still shows within a millisecond or two.
/// The pipe is not watched meanwhile (see [`Pipe::unwatch`]).
const COALESCE: Duration = Duration::from_millis(1);
/// Once we stop waiting for EOF, at most this many more reads are taken
/// (enough for a full pipe), each waiting at most [`DRAIN_IDLE`], so that a
/// chatty leftover process cannot keep us reading forever.
const DRAIN_READS: usize = 16;
/// See [`DRAIN_READS`]: covers the lag between data arriving in a pipe and
/// the reactor noticing it.
const DRAIN_IDLE: Duration = Duration::from_millis(100);

/// What a pump hands to [`Sink::emit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// One or more complete lines, the last one ending in `\n`.
    Lines,
    /// A piece of an overlong line (no `\n`; a `\r` at its end is data).
    Piece,
    /// The last line of the stream, which had no `\n`.
    Final,
}

/// State both pumps share.
pub(super) struct Shared<'a> {
    pub(super) step_id: &'a str,
    pub(super) events: &'a mpsc::Sender<EngineEvent>,
    pub(super) redactor: &'a Redactor,
    pub(super) capture: Option<&'a CaptureRule>,
    pub(super) captured: &'a OnceLock<String>,
    pub(super) combined: &'a Mutex<Combined>,
    /// Stop waiting for EOF: take what is in the pipes and finish.
    pub(super) soft_stop: &'a CancellationToken,
    /// Tearing down (cancel/timeout): never block on the event channel.
    pub(super) hard_stop: &'a CancellationToken,
}

/// Per-stream consumer of chunks: redacts, logs, counts, captures, sends.
pub(super) struct Sink<'a> {
    shared: &'a Shared<'a>,
    stream: OutputStream,
    pub(super) own_log: Option<LogSink>,
    capture: Option<&'a CaptureRule>,
    sending: bool,
    batch: Lines,
    pub(super) lines: u64,
    pub(super) read_error: Option<io::Error>,
}

impl<'a> Sink<'a> {
    pub(super) fn new(shared: &'a Shared<'a>, stream: OutputStream, own_log: Option<LogSink>) -> Self {
        Self {
            shared,
            stream,
            own_log,
            capture: shared.capture.filter(|r| r.stream.covers(stream)),
            sending: true,
            batch: Lines::new(),
            lines: 0,
            read_error: None,
        }
    }

    /// Makes the logs on disk current, for a reader following them
    /// (`drillbook watch`).
    fn flush_logs(&mut self) {
        self.shared.combined.lock().unwrap_or_else(PoisonError::into_inner).log.flush();
        if let Some(log) = &mut self.own_log {
            log.flush();
        }
    }

    async fn emit(&mut self, raw: &[u8], kind: Chunk) {
        let data = self.shared.redactor.redact(raw);
        let body: &[u8] = match kind {
            Chunk::Lines => data.strip_suffix(b"\n").unwrap_or(&data),
            Chunk::Piece | Chunk::Final => &data,
        };
        let newline: &[u8] = if kind == Chunk::Lines { b"" } else { b"\n" };

        let mut tail: Vec<String> = body
            .rsplit(|&b| b == b'\n')
            .take(TAIL_LINES)
            .map(|l| utf8_lossy(line_text(l, kind)).into_owned())
            .collect();
        tail.reverse();
        {
            let mut combined = self.shared.combined.lock().unwrap_or_else(PoisonError::into_inner);
            combined.append(&data);
            combined.append(newline);
            let overflow = (combined.tail.len() + tail.len()).saturating_sub(TAIL_LINES);
            let keep_from = overflow.min(combined.tail.len());
            combined.tail.drain(..keep_from);
            combined.tail.extend(tail);
        }
        if let Some(log) = &mut self.own_log {
            log.write(&data);
            log.write(newline);
        }

        let mut capture = self.capture.filter(|_| self.shared.captured.get().is_none());
        if !self.sending && capture.is_none() {
            self.lines += memchr::memchr_iter(b'\n', body).count() as u64 + 1;
            return;
        }
        if capture.is_none() && kind == Chunk::Lines && memchr::memchr(b'\r', &data).is_none() {
            // The usual flood: whole lines with nothing to strip or look for
            // go into batches a piece at a time, not a line at a time.
            let text = utf8_lossy(&data);
            let mut rest: &str = &text;
            while !rest.is_empty() {
                if self.batch.is_empty() {
                    self.batch =
                        Lines::with_capacity(BATCH_LINES.min(rest.len() / 32 + 1), BATCH_BYTES.min(rest.len()));
                }
                let before = self.batch.len();
                let taken = self.batch.push_split(rest, BATCH_LINES, BATCH_BYTES);
                self.lines += (self.batch.len() - before) as u64;
                rest = rest.get(taken..).unwrap_or_default();
                if self.batch.len() >= BATCH_LINES || self.batch.text_len() >= BATCH_BYTES {
                    self.flush().await;
                }
            }
            self.flush().await;
            return;
        }
        // Lossy UTF-8 of the whole chunk is that of each line in turn: a
        // '\n' is never part of a multi-byte sequence, so no replacement
        // spans two lines. Valid text (the usual case) is not copied here.
        let text = utf8_lossy(body);
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', text.as_bytes()).chain(std::iter::once(text.len())) {
            let line = line_str(text.get(start..end).unwrap_or_default(), kind);
            start = end + 1;
            self.lines += 1;
            if let Some(rule) = capture
                && let Some(value) = rule.value(line)
            {
                // With `Both`, the other stream may have been first.
                let _ = self.shared.captured.set(value);
                capture = None;
            }
            if self.sending {
                if self.batch.is_empty() {
                    self.batch = Lines::with_capacity(
                        BATCH_LINES.min(text.len() / 32 + 1),
                        BATCH_BYTES.min(text.len()) + line.len(),
                    );
                }
                self.batch.push(line);
                if self.batch.len() >= BATCH_LINES || self.batch.text_len() >= BATCH_BYTES {
                    self.flush().await;
                }
            }
        }
        self.flush().await;
    }

    /// Sends the pending batch. When tearing down, a full channel drops the
    /// batch rather than wait on a receiver that may be stuck (logs stay
    /// complete).
    async fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.batch);
        if !self.sending {
            return;
        }
        let event = EngineEvent::Output { step_id: self.shared.step_id.to_owned(), stream: self.stream, lines };
        if self.shared.hard_stop.is_cancelled() {
            if let Err(mpsc::error::TrySendError::Closed(_)) = self.shared.events.try_send(event) {
                self.sending = false;
            }
            return;
        }
        tokio::select! {
            biased;
            sent = self.shared.events.send(event) => {
                if sent.is_err() {
                    self.sending = false;
                }
            }
            () = self.shared.hard_stop.cancelled() => {}
        }
    }
}

/// `String::from_utf8_lossy`, with `str::from_utf8`'s faster validation
/// first: the lossy decoder walks valid text a character at a time, which
/// was a tenth of drillbook's CPU when streaming 63 MB.
fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The text of a line for events/captures: without its trailing `\r`, unless
/// it is a piece of a longer line.
fn line_text(line: &[u8], kind: Chunk) -> &[u8] {
    match (kind, line.split_last()) {
        (Chunk::Lines | Chunk::Final, Some((b'\r', rest))) => rest,
        _ => line,
    }
}

/// [`line_text`] of a line already made text.
fn line_str(line: &str, kind: Chunk) -> &str {
    match kind {
        Chunk::Lines | Chunk::Final => line.strip_suffix('\r').unwrap_or(line),
        Chunk::Piece => line,
    }
}

/// A command's output pipe, read without blocking; the runtime's reactor
/// watches it only while a read waits for it to fill.
pub(super) struct Pipe {
    watched: Option<AsyncFd<File>>,
    idle: Option<File>,
}

impl Pipe {
    /// Takes the pipe over from the runtime's child handle, as big as it can
    /// be made. `None` when the stream was not piped.
    pub(super) fn of(stream: Option<impl Into<PipeFd>>) -> io::Result<Option<Pipe>> {
        let Some(stream) = stream else { return Ok(None) };
        let PipeFd(fd) = stream.into();
        let fd = fd?;
        enlarge_pipe(&fd);
        set_nonblocking(&fd)?;
        Ok(Some(Pipe { watched: None, idle: Some(File::from(fd)) }))
    }

    /// Reads what the pipe holds, waiting until it holds something (or is
    /// closed: 0). An unwatched pipe is read at once, and watched again only
    /// if it is empty: a flood read after each pause costs no reactor work.
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(file) = self.idle.take() {
            match (&file).read(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // SAFETY: the `File` owns its descriptor, which stays open
                    // and the same until `into_inner` hands the `File` back.
                    match unsafe { AsyncFd::register_with_interest(file, Interest::READABLE) } {
                        Ok(watched) => self.watched = Some(watched),
                        Err(failed) => {
                            let (file, error) = failed.into_parts();
                            self.idle = Some(file);
                            return Err(error);
                        }
                    }
                }
                read => {
                    self.idle = Some(file);
                    return read;
                }
            }
        }
        let Some(watched) = &mut self.watched else {
            return Err(io::Error::other("the pipe is neither watched nor idle"));
        };
        loop {
            let mut ready = watched.readable().await?;
            if let Ok(read) = ready.try_io(|file| file.get_ref().read(buf)) {
                return read;
            }
        }
    }

    /// Stops the reactor watching the pipe until a read finds it empty. While
    /// a pump waits to coalesce, a producer writing 4 KiB at a time would
    /// otherwise wake a runtime thread for each write, only for it to find
    /// nobody waiting: thousands of wake-ups per second of a flood, which
    /// cost more CPU than the reads.
    fn unwatch(&mut self) {
        if let Some(watched) = self.watched.take() {
            self.idle = Some(watched.into_inner());
        }
    }
}

/// A child's stdout or stderr, as a blocking file descriptor.
pub(super) struct PipeFd(io::Result<OwnedFd>);

impl From<tokio::process::ChildStdout> for PipeFd {
    fn from(stream: tokio::process::ChildStdout) -> Self {
        PipeFd(stream.into_owned_fd())
    }
}

impl From<tokio::process::ChildStderr> for PipeFd {
    fn from(stream: tokio::process::ChildStderr) -> Self {
        PipeFd(stream.into_owned_fd())
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Best effort: a failure only costs throughput.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn enlarge_pipe(pipe: &impl AsRawFd) {
    // SAFETY: fcntl on an fd we own; F_SETPIPE_SZ takes an int argument
    // and touches no memory of ours.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn enlarge_pipe(_pipe: &impl AsRawFd) {}

/// Reads one pipe to EOF (or until told to stop) into a fixed buffer, handing
/// complete lines and overlong pieces to the sink.
pub(super) async fn pump<'a>(reader: Option<Pipe>, mut sink: Sink<'a>) -> Sink<'a> {
    let Some(mut reader) = reader else {
        return sink;
    };
    let soft_stop = sink.shared.soft_stop;
    // Keep `longest` bytes past a cut in view so no secret straddles it.
    let force_at = MAX_LINE + sink.shared.redactor.longest;
    let mut buf = vec![0u8; force_at + READ_CHUNK];
    let mut filled = 0;
    let mut drain_reads = 0;
    loop {
        let free = buf.get_mut(filled..).unwrap_or_default();
        let free_len = free.len();
        let read = if soft_stop.is_cancelled() {
            // No more waiting for EOF: only what arrives promptly.
            if drain_reads >= DRAIN_READS {
                break;
            }
            drain_reads += 1;
            match tokio::time::timeout(DRAIN_IDLE, reader.read(free)).await {
                Ok(read) => read,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                biased;
                () = soft_stop.cancelled() => continue,
                read = reader.read(free) => read,
            }
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                sink.read_error = Some(e);
                break;
            }
        };
        // A read that did not fill the buffer drained the pipe: the output
        // trickles, so the logs are flushed for whoever follows them. A flood
        // fills every read and keeps writing a MiB at a time.
        let drained = n < free_len;
        let end = (filled + n).min(buf.len());
        let mut start = 0;
        let fresh = buf.get(filled..end).unwrap_or_default();
        if let Some(pos) = fresh.iter().rposition(|&b| b == b'\n') {
            let upto = filled + pos + 1;
            sink.emit(buf.get(..upto).unwrap_or_default(), Chunk::Lines).await;
            start = upto;
        }
        while end - start > force_at {
            let rest = buf.get(start..end).unwrap_or_default();
            let cut = sink.shared.redactor.safe_cut(rest, MAX_LINE);
            sink.emit(rest.get(..cut).unwrap_or(rest), Chunk::Piece).await;
            start += cut;
        }
        if start > 0 {
            buf.copy_within(start..end, 0);
        }
        filled = end - start;
        if drained {
            sink.flush_logs();
            if !soft_stop.is_cancelled() {
                reader.unwatch();
                tokio::select! {
                    biased;
                    () = soft_stop.cancelled() => {}
                    () = tokio::time::sleep(COALESCE) => {}
                }
            }
        }
    }
    // What is left is the final line, without a newline.
    let mut start = 0;
    while filled - start > MAX_LINE {
        let rest = buf.get(start..filled).unwrap_or_default();
        let cut = sink.shared.redactor.safe_cut(rest, MAX_LINE);
        sink.emit(rest.get(..cut).unwrap_or(rest), Chunk::Piece).await;
        start += cut;
    }
    if filled > start {
        sink.emit(buf.get(start..filled).unwrap_or_default(), Chunk::Final).await;
    }
    sink
}
