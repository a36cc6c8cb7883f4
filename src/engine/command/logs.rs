//! The two log files of a command step (combined and stderr-only): buffered
//! writes whose first error is kept for the end, and for the combined log
//! the running sha256 recorded in the journal and the tail shown on failure.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::CommandError;

/// Buffer size of the combined log writer. Small on purpose: a chunk at
/// least this big (a fast producer's read is up to 256 KiB) is written
/// straight from the read buffer instead of being copied into ours first,
/// and the logs are flushed whenever the pipe runs empty anyway.
pub(super) const COMBINED_BUF: usize = 64 * 1024;
/// Buffer size of the stderr log writer (stderr is usually small).
pub(super) const STDERR_BUF: usize = 64 * 1024;

/// A buffered log file that remembers its first write error instead of
/// failing mid-stream: the command keeps running (its pipes must be drained)
/// and the error is reported when it is done.
pub(super) struct LogSink {
    path: PathBuf,
    writer: BufWriter<File>,
    error: Option<io::Error>,
}

impl LogSink {
    pub(super) fn create(path: PathBuf, capacity: usize) -> Result<Self, CommandError> {
        match File::create(&path) {
            Ok(file) => Ok(Self { path, writer: BufWriter::with_capacity(capacity, file), error: None }),
            Err(source) => Err(CommandError::Log { path, source }),
        }
    }

    pub(super) fn write(&mut self, data: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.writer.write_all(data)
        {
            self.error = Some(e);
        }
    }

    /// Writes out what is buffered (keeping the first error for `finish`).
    pub(super) fn flush(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.writer.flush()
        {
            self.error = Some(e);
        }
    }

    pub(super) fn finish(mut self) -> Result<(), CommandError> {
        let result = match self.error.take() {
            Some(e) => Err(e),
            None => self.writer.flush(),
        };
        result.map_err(|source| CommandError::Log { path: self.path, source })
    }
}

/// The combined log, its running hash and the tail, shared by both pumps.
pub(super) struct Combined {
    pub(super) log: LogSink,
    pub(super) hasher: Sha256,
    pub(super) tail: VecDeque<String>,
}

impl Combined {
    pub(super) fn append(&mut self, data: &[u8]) {
        self.log.write(data);
        self.hasher.update(data);
    }
}

pub(super) fn finish_combined(combined: Mutex<Combined>) -> Result<(String, Vec<String>), CommandError> {
    let combined = combined.into_inner().unwrap_or_else(PoisonError::into_inner);
    let digest = combined.hasher.finalize();
    let hex = crate::digest::hex(&digest);
    let tail = combined.tail.into_iter().collect();
    combined.log.finish()?;
    Ok((hex, tail))
}
