//! SHA-256 of a file, hashed the way a command step hashes its log (the
//! same `sha2` hasher, fed the same 256 KiB reads), for `scripts/bench`:
//! the part of streaming's CPU that is the log's evidence hash.
//!
//!     cargo run --release --example sha256_file -- FILE
//!
//! Prints the hex digest and the CPU seconds the hashing took.

use std::io::Read;
use std::process::ExitCode;

use sha2::{Digest, Sha256};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: sha256_file FILE");
        return ExitCode::from(2);
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("sha256_file: {path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut chunk = vec![0u8; 256 * 1024];
    let mut hasher = Sha256::new();
    let mut hashing = std::time::Duration::ZERO;
    loop {
        let read = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) => {
                eprintln!("sha256_file: {path}: {error}");
                return ExitCode::FAILURE;
            }
        };
        // Only the hashing is timed: reading the file is the kernel work cat does too.
        let started = cpu_time();
        hasher.update(&chunk[..read]);
        hashing += cpu_time().saturating_sub(started);
    }
    println!("{} {:.6}", drillbook::digest::hex(&hasher.finalize()), hashing.as_secs_f64());
    ExitCode::SUCCESS
}

/// This thread's CPU time.
fn cpu_time() -> std::time::Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    std::time::Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
}
