//! Writes a drill with a long journal for `scripts/bench`: the runbook's
//! first step is a checklist, and the drill holds N events in all (a note
//! for most of them, some ticks), unfinished, so `drillbook resume` opens it.
//!
//!     cargo run --release --example bench_journal -- HOME RUNBOOK EVENTS
//!
//! Prints the drill id. Put HOME on a tmpfs: every event is synced to disk.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use drillbook::drill::event::{Event, SessionMode};
use drillbook::drill::store::DrillStore;
use drillbook::drive::session::DrillSession;
use drillbook::engine::vars::{NoPrompt, resolve_vars};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [home, runbook, events] = args.as_slice() else {
        eprintln!("usage: bench_journal HOME RUNBOOK EVENTS");
        return ExitCode::from(2);
    };
    match write(PathBuf::from(home), PathBuf::from(runbook), events.parse().unwrap_or(100_000)) {
        Ok(id) => {
            println!("{id}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bench_journal: {error}");
            ExitCode::FAILURE
        }
    }
}

fn write(home: PathBuf, runbook: PathBuf, events: u64) -> Result<String, String> {
    let runbook = drillbook::runbook::load(&runbook).map_err(|e| e.to_string())?;
    let first = runbook.steps.first().ok_or("the runbook has no steps")?.id.clone();
    let vars = resolve_vars(&runbook, &BTreeMap::new(), &|_| None, &mut NoPrompt).map_err(|e| e.to_string())?;
    let store = DrillStore::at(home);
    let mut session =
        DrillSession::start(&store, runbook, vars, SessionMode::Plain, false).map_err(|e| e.to_string())?;
    let record = |session: &mut DrillSession, event| session.record(event).map_err(|e| e.to_string());
    record(&mut session, Event::StepStarted { step: first.clone(), attempt: 1, command: None, log: None })?;
    // Two events were journaled by the start, one by the step start.
    for n in 3..events {
        let event = if n % 10 == 0 {
            Event::ChecklistTicked {
                step: first.clone(),
                item: (n % 4) as usize,
                text: String::new(),
                ticked: n % 20 == 0,
            }
        } else {
            Event::NoteAdded { step: Some(first.clone()), text: format!("observation {n}: replica lag 0.{n}s") }
        };
        record(&mut session, event)?;
    }
    Ok(session.dir.id.clone())
}
