//! Fuzzing. The runbook parser never panics: random text, random TOML-ish
//! text, every truncation of real runbooks, byte flips and shuffled lines all
//! give Ok or errors with a line and column. A real drill's journal,
//! truncated, bit-flipped, with lines reordered, dropped or duplicated, never
//! panics the reader or the replay: it replays (a torn tail is dropped, and
//! nothing before the damage is lost) or fails with an error naming its line.
//! Inputs per property: 2000 locally, 500 in CI, `DRILLBOOK_FUZZ_CASES` to
//! choose (journal truncations: every offset locally, about as many as
//! inputs per property in CI).

use crate::support;

use std::cell::Cell;
use std::path::Path;

use drillbook::drill::event::Event;
use drillbook::drill::journal::{self, JournalError, Record};
use drillbook::drill::state::{DrillState, ReplayError, Replayer};
use drillbook::runbook::parse;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::reliability::{self, Counts};
use support::{Home, fixture};

fn fixtures() -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    [
        "tests/fixtures/valid.toml",
        "tests/fixtures/broken.toml",
        "tests/fixtures/crash.toml",
        "runbooks/backup-verification.toml",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(format!("{root}/{p}")).unwrap())
    .collect()
}

fn assert_located(text: &str) -> Result<(), TestCaseError> {
    if let Err(diagnostics) = parse("fuzz.toml", text) {
        prop_assert!(!diagnostics.0.is_empty());
        let lines = text.split('\n').count();
        for diagnostic in &diagnostics.0 {
            prop_assert!(diagnostic.line >= 1 && diagnostic.line <= lines.max(1), "{diagnostic:?}");
            prop_assert!(diagnostic.column >= 1);
            prop_assert!(!diagnostic.message.is_empty());
            let _ = diagnostic.to_string();
        }
    }
    Ok(())
}

/// Inputs per property.
fn cases() -> u32 {
    reliability::loop_size("DRILLBOOK_FUZZ_CASES", 2000, 500) as u32
}

/// Runs `test` on `cases()` inputs from `strategy`, records how many were
/// tried under `name`, and fails with proptest's minimal failing input.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let tried = Cell::new(0u64);
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    let result = runner.run(&strategy, |value| {
        tried.set(tried.get() + 1);
        test(value)
    });
    reliability::record(name, Counts { fuzzed: tried.get(), ..Counts::default() });
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
}

#[test]
fn every_truncation_of_the_fixtures_is_handled() {
    let mut tried = 0;
    for text in fixtures() {
        for cut in 0..=text.len() {
            if text.is_char_boundary(cut) {
                tried += 1;
                if let Err(error) = assert_located(&text[..cut]) {
                    panic!("cut at {cut}: {error}");
                }
            }
        }
    }
    reliability::record("every_truncation_of_the_fixtures_is_handled", Counts { fuzzed: tried, ..Counts::default() });
}

#[test]
fn random_text_never_panics() {
    fuzz("random_text_never_panics", "\\PC{0,400}", |text| assert_located(&text));
}

#[test]
fn toml_shaped_text_never_panics() {
    let lines = proptest::collection::vec(
        prop_oneof![
            Just("[runbook]".to_string()),
            Just("[[step]]".to_string()),
            Just("[vars.x]".to_string()),
            "[a-z_]{1,10} = \"[a-z{} .|']{0,20}\"",
            "[a-z_]{1,10} = [0-9]{1,12}",
            "[a-z_]{1,10} = \\[\"[a-z]{0,5}\", \\{ text = \"x\" \\}\\]",
            Just("kind = \"command\"".to_string()),
            Just("run = \"echo {{ x }}\"".to_string()),
            Just("capture = { name = \"c\", regex = \"(\" }".to_string()),
            Just("timeout = \"1h30\"".to_string()),
            Just("id = \"a\"".to_string()),
        ],
        0..30,
    );
    fuzz("toml_shaped_text_never_panics", lines, |lines| assert_located(&lines.join("\n")));
}

#[test]
fn mutated_fixtures_never_panic() {
    let texts = fixtures();
    let strategy = (0..texts.len(), any::<prop::sample::Index>(), any::<u8>());
    fuzz("mutated_fixtures_never_panic", strategy, |(index, position, byte)| {
        let mut bytes = texts[index].clone().into_bytes();
        let at = position.index(bytes.len());
        bytes[at] = byte;
        match String::from_utf8(bytes) {
            Ok(text) => assert_located(&text),
            Err(_) => Ok(()),
        }
    });
}

#[test]
fn fixtures_with_lines_dropped_duplicated_or_swapped_never_panic() {
    let texts = fixtures();
    let strategy = (0..texts.len(), lines_edit());
    fuzz("fixtures_with_lines_dropped_duplicated_or_swapped_never_panic", strategy, |(index, edit)| {
        let lines: Vec<String> = texts[index].split('\n').map(str::to_string).collect();
        assert_located(&edit.apply(lines).join("\n"))
    });
}

/// One edit of a list of lines, by positions taken modulo its length.
#[derive(Debug, Clone)]
enum LinesEdit {
    Swap(prop::sample::Index, prop::sample::Index),
    Move(prop::sample::Index, prop::sample::Index),
    Drop(prop::sample::Index),
    Duplicate(prop::sample::Index),
    Reverse(prop::sample::Index, prop::sample::Index),
}

fn lines_edit() -> impl Strategy<Value = LinesEdit> {
    let index = any::<prop::sample::Index>;
    prop_oneof![
        (index(), index()).prop_map(|(a, b)| LinesEdit::Swap(a, b)),
        (index(), index()).prop_map(|(a, b)| LinesEdit::Move(a, b)),
        index().prop_map(LinesEdit::Drop),
        index().prop_map(LinesEdit::Duplicate),
        (index(), index()).prop_map(|(a, b)| LinesEdit::Reverse(a, b)),
    ]
}

impl LinesEdit {
    fn apply<T: Clone>(&self, mut lines: Vec<T>) -> Vec<T> {
        if lines.is_empty() {
            return lines;
        }
        let len = lines.len();
        match self {
            LinesEdit::Swap(a, b) => lines.swap(a.index(len), b.index(len)),
            LinesEdit::Move(from, to) => {
                let line = lines.remove(from.index(len));
                lines.insert(to.index(len), line);
            }
            LinesEdit::Drop(at) => {
                lines.remove(at.index(len));
            }
            LinesEdit::Duplicate(at) => {
                let at = at.index(len);
                lines.insert(at, lines[at].clone());
            }
            LinesEdit::Reverse(a, b) => {
                let (a, b) = (a.index(len).min(b.index(len)), a.index(len).max(b.index(len)));
                lines[a..=b].reverse();
            }
        }
        lines
    }
}

// ---------------------------------------------------------------------------
// Journals
// ---------------------------------------------------------------------------

/// The journal of a real drill (the crash-test fixture: captures, checklist
/// ticks, notes), run once through the binary.
fn real_journal() -> (Vec<u8>, Vec<Record<Event>>) {
    let home = Home::new();
    let answers: String = (0..40).map(|i| format!("y note {i}\n")).collect();
    let mut child = home
        .cmd_std()
        .args(["run", "--plain"])
        .arg(fixture("crash.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), answers.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let path = home.only_drill().join("journal.jsonl");
    let bytes = std::fs::read(&path).unwrap();
    let records = journal::read::<Event>(&path).unwrap().records;
    for kind in ["capture_set", "checklist_ticked", "note_added", "drill_finished"] {
        assert!(String::from_utf8_lossy(&bytes).contains(kind), "the sample journal has {kind}");
    }
    (bytes, records)
}

fn lines_of(bytes: &[u8]) -> usize {
    bytes.split(|b| *b == b'\n').count()
}

/// Reads a damaged journal the way `resume` and `report` do: never a panic;
/// either a replay that keeps every record before the damage, or an error
/// that names a line (or a record) inside the file.
fn check_journal(dir: &Path, damaged: &[u8], original: &[Record<Event>]) -> Result<(), TestCaseError> {
    let path = dir.join("journal.jsonl");
    std::fs::write(&path, damaged).unwrap();
    let lines = lines_of(damaged);
    let located = |line: usize| line >= 1 && line <= lines;
    let _ = journal::verify(&path);
    match journal::read::<Event>(&path) {
        Ok(replay) => {
            let n = replay.records.len();
            // Only the last record is not protected by a following hash.
            let kept = n.saturating_sub(1).min(original.len());
            prop_assert!(n <= original.len() + 1, "{n} records from a journal of {}", original.len());
            prop_assert_eq!(format!("{:?}", &replay.records[..kept]), format!("{:?}", &original[..kept]));
            // A resume builds the state record by record as it reads
            // (moving notes instead of copying): the same state, or the same error.
            let mut replayer = Replayer::default();
            for record in replay.records.iter().cloned() {
                replayer.feed(record);
            }
            let streamed = replayer.finish();
            let whole = DrillState::replay(&replay.records);
            prop_assert_eq!(format!("{streamed:?}"), format!("{whole:?}"));
            match whole {
                Ok(state) => {
                    let _ = state.elapsed();
                }
                Err(ReplayError::Empty) => prop_assert_eq!(n, 0),
                Err(
                    ReplayError::NotStarted { seq }
                    | ReplayError::StartedTwice { seq }
                    | ReplayError::UnknownStep { seq, .. },
                ) => prop_assert!(seq >= 1 && seq as usize <= n, "record {seq} of {n}"),
            }
        }
        Err(error) => {
            let message = error.to_string();
            prop_assert!(!message.is_empty());
            match &error {
                JournalError::Corrupt { line, .. } | JournalError::Event { line, .. } => {
                    prop_assert!(located(*line), "line {line} of {lines}: {message}")
                }
                JournalError::Modified { brk, .. } => {
                    prop_assert!(located(brk.line), "line {} of {lines}: {message}", brk.line)
                }
                other => prop_assert!(false, "an error without a line: {other}"),
            }
        }
    }
    Ok(())
}

#[test]
fn journals_truncated_anywhere_replay_a_prefix() {
    let (bytes, records) = real_journal();
    let dir = tempfile::tempdir().unwrap();
    // Every line boundary and the bytes next to it, and every `step`th
    // offset: all of them locally, about `cases()` in CI.
    let step = if reliability::in_ci() { (bytes.len() / cases() as usize).max(1) } else { 1 };
    let mut cuts: Vec<usize> = (0..=bytes.len()).step_by(step).collect();
    for (at, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        cuts.extend([at, at + 1, at + 2].into_iter().filter(|cut| *cut <= bytes.len()));
    }
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut tried = 0;
    for cut in cuts {
        tried += 1;
        let result = check_journal(dir.path(), &bytes[..cut], &records).and_then(|()| {
            let replay = journal::read::<Event>(&dir.path().join("journal.jsonl"));
            prop_assert!(replay.is_ok(), "a truncated journal replays: {:?}", replay.err());
            Ok(())
        });
        if let Err(error) = result {
            reliability::record(
                "journals_truncated_anywhere_replay_a_prefix",
                Counts { fuzzed: tried, lost: 1, ..Counts::default() },
            );
            panic!("cut at {cut}: {error}");
        }
    }
    reliability::record("journals_truncated_anywhere_replay_a_prefix", Counts { fuzzed: tried, ..Counts::default() });
}

#[test]
fn bit_flipped_journals_never_panic_and_errors_name_a_line() {
    let (bytes, records) = real_journal();
    let dir = tempfile::tempdir().unwrap();
    let flips = proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4);
    fuzz("bit_flipped_journals_never_panic_and_errors_name_a_line", flips, |flips| {
        let mut damaged = bytes.clone();
        for (at, bit) in flips {
            let at = at.index(damaged.len());
            damaged[at] ^= 1 << bit;
        }
        check_journal(dir.path(), &damaged, &records)
    });
}

#[test]
fn journals_with_lines_reordered_dropped_or_duplicated_are_refused_at_their_line() {
    let (bytes, records) = real_journal();
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<Vec<u8>> = bytes.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    fuzz(
        "journals_with_lines_reordered_dropped_or_duplicated_are_refused_at_their_line",
        (lines_edit(), any::<prop::sample::Index>()),
        |(edit, cut)| {
            let edited = edit.apply(lines.clone());
            let changed = edited != lines;
            let damaged: Vec<u8> = edited.concat();
            check_journal(dir.path(), &damaged, &records)?;
            // A complete line moved, dropped or repeated breaks the chain,
            // except dropping the last line (that is a shorter journal).
            let dropped_last = edited.len() + 1 == lines.len() && lines.starts_with(&edited);
            if changed && !dropped_last {
                prop_assert!(
                    journal::read::<Event>(&dir.path().join("journal.jsonl")).is_err(),
                    "{edit:?} went unnoticed"
                );
            }
            // The same damage followed by a torn line.
            let mut torn = damaged.clone();
            torn.truncate(cut.index(torn.len() + 1));
            check_journal(dir.path(), &torn, &records)
        },
    );
}
