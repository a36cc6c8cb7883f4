//! The reliability suite's summary: every `tests/reliability_*.rs` test
//! appends one JSON line with what it really did (trials run, faults
//! injected, inputs fuzzed) and what it found (lost records, secrets found,
//! injections), and `scripts/reliability-summary` totals them into a table.
//!
//! The file is `$CARGO_TARGET_TMPDIR/reliability/summary.jsonl`, or
//! `$DRILLBOOK_RELIABILITY_SUMMARY` when set. Lines are appended with one
//! `write` on a file opened with `O_APPEND`, so tests running in parallel
//! (nextest runs each in its own process) never interleave.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// What one test did and found. Every field is a count the test made, never
/// a constant: a test that injected nothing records 0 faults.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub trials: u64,
    pub faults: u64,
    pub fuzzed: u64,
    pub lost: u64,
    pub secrets: u64,
    pub injections: u64,
}

pub fn summary_path() -> PathBuf {
    match std::env::var_os("DRILLBOOK_RELIABILITY_SUMMARY") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reliability").join("summary.jsonl"),
    }
}

/// Appends `counts` for `test` to the summary file. Call it before asserting
/// on the must-be-zero counts, so a failing test still shows what it found.
pub fn record(test: &str, counts: Counts) {
    let path = summary_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create the reliability summary directory");
    }
    let line = serde_json::json!({
        "test": test,
        "trials": counts.trials,
        "faults": counts.faults,
        "fuzzed": counts.fuzzed,
        "lost": counts.lost,
        "secrets": counts.secrets,
        "injections": counts.injections,
    })
    .to_string()
        + "\n";
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("open the reliability summary");
    file.write_all(line.as_bytes()).expect("append to the reliability summary");
}

/// How many times `needle` occurs in `haystack` (bytes, overlapping allowed).
pub fn occurrences(haystack: &[u8], needle: &[u8]) -> u64 {
    if needle.is_empty() || haystack.len() < needle.len() {
        return 0;
    }
    haystack.windows(needle.len()).filter(|w| *w == needle).count() as u64
}

/// Runs in CI (the `CI` variable set to anything but "" or "false").
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `DRILLBOOK_<NAME>` as a number, else `local` (or `ci` when in CI).
pub fn loop_size(var: &str, local: u64, ci: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(if in_ci() { ci } else { local })
}
