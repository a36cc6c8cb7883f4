//! Where a replay's time goes (development aid for `scripts/bench resume`):
//!
//!     cargo run --release --example replay_phases -- path/to/journal.jsonl
use std::time::Instant;

use drillbook::drill::event::Event;
use drillbook::drill::journal::{self, Record};
use drillbook::drill::state::{DrillState, Replayer};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: replay_phases JOURNAL");
        std::process::exit(2);
    };
    let path = std::path::PathBuf::from(path);
    let started = Instant::now();
    let data = std::fs::read(&path).unwrap_or_default();
    let read = started.elapsed();
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let t = Instant::now();
    let parsed: Vec<Record<Event>> = lines.iter().filter_map(|l| serde_json::from_slice(l).ok()).collect();
    let parse = t.elapsed();
    let t = Instant::now();
    let headers: Vec<Record<serde::de::IgnoredAny>> =
        lines.iter().filter_map(|l| serde_json::from_slice(l).ok()).collect();
    let parse_header = t.elapsed();
    let t = Instant::now();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_slice::<Record<serde_json::Value>>(l).ok())
        .map(|r| r.event)
        .collect();
    let parse_event_value = t.elapsed();
    let t = Instant::now();
    let values: Vec<serde_json::Value> = lines.iter().filter_map(|l| serde_json::from_slice(l).ok()).collect();
    let parse_value = t.elapsed();
    let t = Instant::now();
    let digests: usize = lines.iter().map(|l| <sha2::Sha256 as sha2::Digest>::digest(l)[0] as usize).sum();
    let hashing = t.elapsed();
    println!("sha256 of every line: {hashing:?} ({digests})");
    let t = Instant::now();
    let verify = journal::verify(&path).map(|r| r.records).unwrap_or(0);
    let verified = t.elapsed();
    let t = Instant::now();
    let replay = journal::read::<Event>(&path).map(|r| r.records.len()).unwrap_or(0);
    let read_journal = t.elapsed();
    // What a resume does: every record into the state as it is checked.
    let t = Instant::now();
    let mut replayer = Replayer::default();
    let state = journal::read_each::<Event>(&path, &mut |record| replayer.feed(record))
        .ok()
        .and_then(|_| replayer.finish().ok());
    let read_each = t.elapsed();
    let streamed = state.as_ref().map_or(0, |state| state.event_count);
    // What the conductor hands the front-end when the drill opens.
    let t = Instant::now();
    let copy = state.clone();
    let copied = t.elapsed();
    drop((copy, state));
    let t = Instant::now();
    let state = DrillState::replay(&parsed).map(|s| s.steps.len()).unwrap_or(0);
    let apply = t.elapsed();
    println!(
        "{} lines; read {read:?}; parse Record<Event> {parse:?}; Record<IgnoredAny> {parse_header:?} ({}); Record<Value> {parse_event_value:?} ({}); parse as Value {parse_value:?} ({}); \
         verify {verified:?} ({verify}); journal::read {read_journal:?} ({replay}); \
         read_each into the state (a resume) {read_each:?} ({streamed}); \
         a copy of that state {copied:?}; DrillState::replay {apply:?} ({state} steps); \
         size_of Record<Event> {}",
        lines.len(),
        headers.len(),
        events.len(),
        values.len(),
        std::mem::size_of::<Record<Event>>()
    );
}
