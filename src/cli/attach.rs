//! `drillbook attach [DRILL] STEP FILE... [--note TEXT]`: files attached to
//! a step as evidence. The files are copied into the drill and hashed here;
//! the journal is written by whoever holds the drill's lock: this process
//! when the drill is not running, the running drill otherwise (through its
//! inbox: see [`crate::drill::attach`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::drill::attach;
use crate::drill::event::Event;
use crate::drill::journal;
use crate::drill::lock::{DrillLock, LockError};
use crate::drill::state::DrillState;
use crate::drill::store::{DrillDir, DrillStore, StoreError};
use crate::report;

/// How long to wait for a running drill to journal the attachments before
/// saying they are queued.
const RUNNING_DRILL_PATIENCE: Duration = Duration::from_secs(10);

pub fn run(args: &[String], note: Option<String>) -> Result<ExitCode, String> {
    let note = match note.as_deref().map(str::trim) {
        Some("") => return Err("--note is empty: say what the files show, or leave --note out".into()),
        note => note.map(str::to_string),
    };
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let (dir, state, step, files) = resolve(&store, args)?;
    // Every file is checked before any is copied: a typo in the third path
    // must not leave the first two attached.
    for file in &files {
        let metadata = std::fs::metadata(file).map_err(|e| format!("cannot attach {}: {e}", file.display()))?;
        if metadata.is_dir() {
            return Err(format!("cannot attach {}: it is a directory (attach the files in it)", file.display()));
        }
    }
    let by = crate::drive::session::operator();
    let mut events = Vec::new();
    for file in &files {
        events.push(attach::copy_in(&dir.path, step, file, note.clone(), Some(by.clone())).map_err(|e| e.to_string())?);
    }
    match DrillLock::acquire(&dir.path) {
        Ok(lock) => journal_here(&dir, &state, &events, lock),
        Err(LockError::Held { pid, host, .. }) => {
            let who = match (pid, host) {
                (Some(pid), Some(host)) => format!("pid {pid} on {host}"),
                (Some(pid), None) => format!("pid {pid}"),
                _ => "another process".to_string(),
            };
            hand_to_running_drill(&dir, &events, &who)
        }
        Err(error) => Err(error.to_string()),
    }
}

/// The drill, its replayed state, the step and the files named by `[DRILL] STEP FILE...`.
fn resolve<'a>(
    store: &DrillStore,
    args: &'a [String],
) -> Result<(DrillDir, DrillState, &'a str, Vec<PathBuf>), String> {
    let latest = || store.list().map_err(|e| e.to_string())?.pop().ok_or_else(|| "there are no drills yet".to_string());
    let (dir, rest) = match args {
        [drill, _, _, ..] => match store.find(drill) {
            Ok(dir) => (dir, &args[1..]),
            Err(StoreError::NotFound(_)) => (latest()?, args),
            Err(error) => return Err(error.to_string()),
        },
        [_, _] => (latest()?, args),
        _ => return Err("give the step and at least one file: drillbook attach [DRILL] STEP FILE...".into()),
    };
    let replay = journal::read::<Event>(&dir.journal()).map_err(|e| e.to_string())?;
    if replay.records.is_empty() {
        return Err(format!("drill {} never started: there is no step to attach to", dir.id));
    }
    let state = DrillState::replay(&replay.records).map_err(|e| format!("{}: {e}", dir.journal().display()))?;
    let step = rest[0].as_str();
    if state.step(step).is_none() {
        let ids: Vec<&str> = state.steps.iter().map(|s| s.outline.id.as_str()).collect();
        let guess = if rest.len() == args.len() && args.len() > 2 {
            format!(" (`{}` is not a drill either)", args[0])
        } else {
            String::new()
        };
        return Err(format!("drill {} has no step `{step}`{guess}; its steps: {}", dir.id, ids.join(", ")));
    }
    Ok((dir, state, step, rest[1..].iter().map(PathBuf::from).collect()))
}

/// No drill process holds the journal: append here, with anything an
/// earlier `attach` left in the inbox, and refresh the reports of a drill
/// that ended.
fn journal_here(dir: &DrillDir, state: &DrillState, events: &[Event], _lock: DrillLock) -> Result<ExitCode, String> {
    let (mut journal, _) = journal::Journal::<Event>::open(&dir.journal()).map_err(|e| e.to_string())?;
    let mut known: Vec<String> = state.steps.iter().flat_map(|s| s.files.iter().map(|f| f.path.clone())).collect();
    let queued: Vec<(Option<PathBuf>, Event)> = attach::pending(&dir.path)
        .into_iter()
        .filter_map(|request| request.event.ok().map(|event| (Some(request.file), event)))
        .chain(events.iter().cloned().map(|event| (None, event)))
        .collect();
    for (request, event) in queued {
        let Event::FileAttached { step, path, label, .. } = &event else { continue };
        if state.step(step).is_none() {
            // Journaling it would make the journal unreadable; the request stays for a person to see.
            eprintln!("drillbook: a request for step `{step}`, which the drill does not have, is left in the inbox");
            continue;
        }
        if !known.contains(path) {
            journal.append(&event).map_err(|e| e.to_string())?;
            println!("attached {label} to {step} as {path}");
            known.push(path.clone());
        }
        if let Some(request) = request {
            attach::done(&request);
        }
    }
    if state.finished.is_some() && dir.path.join(report::FILES[0].0).exists() {
        let replay = journal::read::<Event>(&dir.journal()).map_err(|e| e.to_string())?;
        let state = DrillState::replay(&replay.records).map_err(|e| format!("{}: {e}", dir.journal().display()))?;
        report::write_all(&dir.path, &report::build(&state, Some(journal.head().to_string())))
            .map_err(|e| e.to_string())?;
        println!("reports in {} updated", dir.path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The drill runs elsewhere: leave the events in its inbox and wait (a
/// while) for it to journal them. A holder that lets go meanwhile (it was a
/// short-lived command, or the drill ended) leaves the journal to us.
fn hand_to_running_drill(dir: &DrillDir, events: &[Event], who: &str) -> Result<ExitCode, String> {
    let mut requests = Vec::new();
    for event in events {
        requests.push(attach::queue(&dir.path, event).map_err(|e| e.to_string())?);
    }
    let started = Instant::now();
    loop {
        requests.retain(|request: &PathBuf| request.exists());
        if requests.is_empty() {
            for event in events {
                if let Event::FileAttached { step, path, label, .. } = event {
                    println!("attached {label} to {step} as {path} (journaled by the running drill, {who})");
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        if let Ok(lock) = DrillLock::acquire(&dir.path) {
            let replay = journal::read::<Event>(&dir.journal()).map_err(|e| e.to_string())?;
            let state = DrillState::replay(&replay.records).map_err(|e| format!("{}: {e}", dir.journal().display()))?;
            return journal_here(dir, &state, &[], lock);
        }
        if started.elapsed() >= RUNNING_DRILL_PATIENCE {
            let inbox = dir.path.join(attach::INBOX_DIR);
            println!(
                "{} file(s) copied into the drill and queued in {}: the drill ({who}) journals them when it \
                 next listens (they are kept; nothing is lost)",
                requests.len(),
                inbox.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
