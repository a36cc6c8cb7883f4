//! What the conductor and a front-end say to each other. The conductor
//! sends [`Update`]s: records it journaled, output, progress, pods, notices
//! and questions. A front-end sends [`Input`]: answers to the open question
//! and requests the operator may make at any time (a note, quitting). The
//! plain and the TUI front-ends speak exactly this; nothing else reaches the
//! conductor, so both journal the same drill for the same answers.

use std::path::PathBuf;

use crate::drill::event::Event;
use crate::drill::journal::Record;
use crate::drill::state::DrillState;
use crate::engine::k8s::wait::PodTable;
use crate::engine::{Lines, OutputStream};

/// From the conductor to the front-end.
#[derive(Debug)]
pub enum Update {
    /// The drill is open (started or resumed): the state to mirror from now
    /// on (every later change arrives as [`Update::Recorded`]).
    Opened {
        id: String,
        dir: PathBuf,
        state: Box<DrillState>,
        /// Said once on opening: a torn journal line set aside, a runbook
        /// that changed since the drill started, the training sandbox made.
        notices: Vec<String>,
        resumed: bool,
    },
    /// Records just journaled, in order.
    Recorded(Vec<Record<Event>>),
    /// A step begins: its help and link, rendered (plain prints them).
    StepBegins { step: usize, help: Option<String>, url: Option<String> },
    /// Lines a step printed or reported (already redacted and logged).
    Output { step: usize, stream: OutputStream, lines: Lines },
    /// Progress of long work (a download): the latest line replaces the last.
    Progress { step: usize, message: String },
    /// The pods a Kubernetes step watches, as of now.
    Pods { step: usize, table: PodTable },
    /// A remark for the operator, not about one line of a step's output.
    Notice(String),
    /// A question; the answer goes back as [`Input::Answer`] with this id.
    Ask { id: u64, question: Question },
    /// The drill ended: what the finished screen and plain mode sum up.
    Finished(Box<Summary>),
    /// The conductor is done: leave with this exit code.
    Ended(Ending),
}

/// How the conductor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The process's exit code: 0 done, 1 failed, 2 could not run (paused),
    /// 130 stopped by a signal (paused).
    pub code: u8,
    /// A line for the operator once the interface is gone.
    pub message: Option<String>,
    /// Why the drill is paused, when it is (`stopped by SIGTERM`, `quit by the operator`).
    pub paused: Option<String>,
    /// Why the drill could not go on (journal error, no input): printed as an error.
    pub error: Option<String>,
}

/// What the drill's end sums up.
#[derive(Debug, Clone)]
pub struct Summary {
    pub report: crate::report::Report,
    /// Where the report files were written, or why they could not be.
    pub written: Result<Vec<PathBuf>, String>,
}

/// Something the operator must decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// Run this step? `typed`: the text the operator must type (a
    /// namespace, the step id); else yes or no.
    Confirm {
        step: usize,
        /// The command or plan, as it will run.
        command: String,
        /// Where it acts (context and namespace, bucket, this machine).
        target: String,
        typed: Option<String>,
        /// What was typed last time, when it did not match.
        mismatch: Option<String>,
    },
    /// Pick one row (a backup to restore, a tag to deploy).
    Pick {
        step: usize,
        what: PickWhat,
        rows: Vec<PickRow>,
        /// The row taken when the operator just accepts.
        default: Option<usize>,
    },
    /// A manual step: done, skip or abort.
    Manual { step: usize },
    /// A checklist: tick items (the question stays open), then done.
    Checklist { step: usize },
    /// The step was running when drillbook stopped: run it again, mark it
    /// done or skip it. `still_running`: what its attempt left running.
    Interrupted { step: usize, still_running: Vec<String> },
    /// The step failed and stops the drill: retry, skip or abort.
    Failed { step: usize, reason: String },
}

impl Question {
    pub fn step(&self) -> usize {
        match self {
            Question::Confirm { step, .. }
            | Question::Pick { step, .. }
            | Question::Manual { step }
            | Question::Checklist { step }
            | Question::Interrupted { step, .. }
            | Question::Failed { step, .. } => *step,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickWhat {
    Backup,
    Tag,
}

/// A row a picker offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickRow {
    pub cells: Vec<String>,
    /// Numeric sort keys by column, where the column is not text.
    pub sort: Vec<i128>,
    /// Highlighted (the newest backup, a tag that runs now).
    pub marked: bool,
}

/// The operator's answer to the open question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Confirm: run it.
    Yes,
    /// Confirm (typed): what the operator typed.
    Typed(String),
    /// Confirm: do not run it, and why (a reason is required).
    Decline {
        reason: String,
    },
    /// Pick: the row (index into the question's rows).
    Pick(usize),
    /// Pick: nothing chosen.
    NoPick,
    /// Manual, checklist: done, with an optional note.
    Done {
        note: Option<String>,
    },
    /// Checklist: an item ticked or unticked; the question stays open.
    Tick {
        item: usize,
        ticked: bool,
    },
    /// Checklist: an item did not work, and what happened (required); the
    /// question stays open, and the checklist fails when it is finished.
    ItemFailed {
        item: usize,
        note: String,
    },
    /// Interrupted: run it again. Failed: retry.
    Again,
    /// Interrupted: it was done another way.
    MarkDone {
        note: String,
    },
    Skip {
        reason: String,
    },
    /// Stop the drill; only teardown steps still run; the drill is aborted.
    Abort {
        note: Option<String>,
    },
    /// Failed: let the failure stand; only teardown steps still run and
    /// the drill ends failed (what an unattended drill does).
    Stop,
    /// The front-end has no way to get an answer (standard input closed).
    Unanswerable,
}

/// What the operator may ask for at any time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A note on a step (on a checklist item), or on the drill.
    Note {
        step: Option<usize>,
        item: Option<usize>,
        text: String,
    },
    ActionItem {
        text: String,
        owner: Option<String>,
        step: Option<usize>,
    },
    Debrief {
        went_well: String,
        to_improve: String,
    },
    /// Attach files to a step as evidence (copied into the drill, journaled
    /// with their hashes).
    Attach {
        step: usize,
        paths: Vec<std::path::PathBuf>,
    },
    /// Show the last lines of a pod's log in the step's output.
    PodLogs {
        step: usize,
        pod: String,
    },
    /// Leave: a running step is stopped and kept as interrupted (resumable).
    Quit {
        reason: String,
    },
    /// Stop the running attempt (its process group, its watch); the step
    /// then fails, and a step that stops the drill asks retry, skip or abort.
    StopStep,
}

/// From the front-end to the conductor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Answer { id: u64, answer: Answer },
    Request(Request),
}
