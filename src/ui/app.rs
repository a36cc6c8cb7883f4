//! All UI state, the messages that change it and the effects it asks the
//! runtime to carry out. Nothing here does I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use ratatui::crossterm::event::{KeyEvent, MouseEvent};
use tui_input::Input;

use super::keymap::Context;
use super::theme::Theme;
use super::widgets::log_pane::LogPane;
use super::widgets::picker::Picker;
use crate::drill::event::Event;
use crate::drill::journal::Record;
use crate::drill::state::DrillState;
use crate::engine::OutputStream;
use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{Runbook, VarDef};

/// Lines of output kept in memory per step; the full log is on disk.
pub const LOG_CAPACITY: usize = 10_000;

#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// The clock, for the drill timer and spinners.
    Tick(Timestamp),
    /// A drill was started or resumed: the state to mirror from now on.
    DrillOpened {
        id: String,
        state: Box<DrillState>,
        notices: Vec<String>,
    },
    /// Records the runtime journaled for an effect this app asked for.
    EffectDone(Vec<Record<Event>>),
    /// Records journaled on the runtime's own account (a command ended).
    StepEnded(Vec<Record<Event>>),
    Output {
        step: usize,
        stream: OutputStream,
        lines: Vec<String>,
    },
    /// Progress of long work (a download): shown in the detail pane.
    Progress {
        step: usize,
        message: String,
    },
    /// The pods a Kubernetes step watches, as of now.
    Pods {
        step: usize,
        table: crate::engine::k8s::wait::PodTable,
    },
    /// Backups found for a step with `select = "choose"`: the operator picks.
    PickBackup {
        step: usize,
        rows: Vec<PickRow>,
    },
    /// Tags found by a `k8s-image-tag` step that must ask (`select =
    /// "choose"`, or the deployments disagree): the operator picks.
    PickTag {
        step: usize,
        rows: Vec<PickRow>,
    },
    /// What a `k8s-scale` step will do, for its confirmation.
    ScalePlanned {
        step: usize,
        lines: Vec<String>,
        target: String,
        namespace: String,
    },
    /// Earlier output restored from a log file on resume.
    /// Processes an interrupted attempt of `step` left running (read on resume).
    StillRunning {
        step: usize,
        processes: Vec<String>,
    },
    RestoredLog {
        step: usize,
        lines: Vec<String>,
    },
    /// The runtime could not carry out an effect.
    EffectFailed(String),
    /// A passing remark for the status line (e.g. the URL that was opened).
    Notice(String),
    /// SIGTERM, SIGHUP or SIGINT.
    Signal(&'static str),
    /// Watching: records another process appended to the journal.
    Followed(Vec<Record<Event>>),
    /// Watching: whether the process driving the drill runs.
    Driver(Driver),
    /// Watching: the journal can no longer be followed (it is corrupt).
    WatchFailed(String),
}

/// Watching a drill another process drives (`drillbook watch`): nothing
/// that would change the drill is done, the state follows the journal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watch {
    pub driver: Driver,
    /// Why the journal is no longer followed.
    pub error: Option<String>,
}

/// The process that drives a watched drill.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Driver {
    /// Holds the drill's lock: "pid 42 on host dr-laptop".
    Running(String),
    NotRunning,
    #[default]
    Unknown,
}

/// What a watcher's status line says when a key would change the drill.
pub const READ_ONLY_NOTICE: &str = "read-only: this drill is driven elsewhere";

#[derive(Debug, Clone, PartialEq)]
// Effects are short-lived values moved once; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Effect {
    StartDrill {
        values: BTreeMap<String, String>,
        secrets: BTreeMap<String, String>,
        /// Name and role of each participant, journaled right after the start.
        participants: Vec<(String, String)>,
    },
    Record(Event),
    RunCommand {
        step: usize,
    },
    /// Run an S3 step (s3-backup, s3-check).
    RunS3 {
        step: usize,
    },
    /// The operator picked a backup (`None`: cancelled the pick).
    BackupPicked {
        step: usize,
        key: Option<String>,
    },
    /// Run a Kubernetes step (`k8s-image-tag`, `k8s-wait`; a confirmed `k8s-scale`).
    RunK8s {
        step: usize,
    },
    /// Run an `http-check` step.
    RunHttp {
        step: usize,
    },
    /// List what a `k8s-scale` step would change, to confirm it.
    PlanScale {
        step: usize,
    },
    /// The operator picked a tag (`None`: cancelled the pick).
    TagPicked {
        step: usize,
        tag: Option<String>,
    },
    /// Show the log of a pod in the step's log pane.
    PodLogs {
        step: usize,
        pod: String,
    },
    FailStep {
        step: usize,
        reason: String,
    },
    OpenUrl(String),
    /// The drill is being aborted: stop what interrupted attempts (cut short
    /// when drillbook died) left running, journaled as notes, before any
    /// teardown step runs.
    StopLeftovers,
    /// Leave. `interrupt`: the reason to journal for a running step.
    Quit {
        interrupt: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Start,
    Main,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Steps,
    Log,
}

/// What a one-line text dialog is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextPurpose {
    Note {
        step: usize,
        item: Option<usize>,
    },
    /// An action item for the report, about the selected step.
    ActionItem {
        step: usize,
    },
    /// The debrief's first question, then its second.
    DebriefWentWell,
    DebriefToImprove {
        went_well: String,
    },
    SkipReason {
        step: usize,
    },
    MarkDoneNote {
        step: usize,
    },
    Search,
}

impl TextPurpose {
    pub fn title(&self) -> &'static str {
        match self {
            TextPurpose::Note { .. } => "Add a note",
            TextPurpose::ActionItem { .. } => "Action item (end with @name to give it an owner)",
            TextPurpose::DebriefWentWell => "Debrief (1/2): what went well?",
            TextPurpose::DebriefToImprove { .. } => "Debrief (2/2): what should improve?",
            TextPurpose::SkipReason { .. } => "Why skip this step?",
            TextPurpose::MarkDoneNote { .. } => "Mark done: what was done instead?",
            TextPurpose::Search => "Search the log",
        }
    }
}

#[derive(Debug)]
pub enum Modal {
    Help { scroll: u16 },
    Confirm { step: usize, command: String, target: String },
    TypedConfirm { step: usize, command: String, target: String, expected: String, input: Input, mismatch: bool },
    Interrupted { step: usize },
    Failure { step: usize },
    Text { purpose: TextPurpose, input: Input },
    QuitConfirm,
    Picker { purpose: PickerPurpose, picker: Picker },
}

/// What a picker chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerPurpose {
    /// A start-screen variable with `choices`.
    Var(usize),
    /// The backup object of an `s3-backup` step.
    Backup(usize),
    /// The image tag of a `k8s-image-tag` step.
    Tag(usize),
    /// A pod of a Kubernetes step whose logs to show.
    Pod(usize),
}

/// A row offered by a picker the runtime filled: its value and its cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickRow {
    pub value: String,
    pub cells: Vec<String>,
    pub sort: Vec<i128>,
    pub marked: bool,
}

impl Modal {
    pub fn context(&self) -> Context {
        match self {
            Modal::Help { .. } => Context::Help,
            Modal::Confirm { .. } | Modal::TypedConfirm { .. } | Modal::QuitConfirm | Modal::Text { .. } => {
                Context::Confirm
            }
            Modal::Interrupted { .. } => Context::Interrupted,
            Modal::Failure { .. } => Context::Failure,
            Modal::Picker { .. } => Context::Confirm,
        }
    }
}

/// One variable on the start screen.
#[derive(Debug)]
pub struct Field {
    pub var: VarDef,
    pub input: Input,
    /// Typed by the operator: a template default no longer follows other fields.
    pub edited: bool,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct StartForm {
    pub fields: Vec<Field>,
    /// A field index, or `fields.len()` for the participants.
    pub focused: usize,
    pub error: Option<String>,
    /// Who takes part: `Name:role, Name:role` (prefilled from `--participant`).
    pub participants: Input,
    pub participants_error: Option<String>,
}

impl StartForm {
    /// Whether the participants line has the focus (it follows the variables).
    pub fn participants_focused(&self) -> bool {
        self.focused == self.fields.len()
    }
}

pub struct App {
    pub runbook: Arc<Runbook>,
    pub templater: Templater,
    pub theme: Theme,
    pub screen: Screen,
    pub start: StartForm,
    pub drill_id: String,
    pub drill: Option<DrillState>,
    pub selected: usize,
    pub focus: Focus,
    pub logs: Vec<LogPane>,
    pub checklist_cursor: usize,
    pub modal: Option<Modal>,
    /// A dialog that arrived while another was open (a backup picker while
    /// the help or the quit question is shown); it opens when that closes.
    pub queued_modal: Option<Modal>,
    pub aborting: bool,
    /// Effects sent whose records have not come back yet; nothing new is
    /// started meanwhile, so one decision never runs twice.
    pub in_flight: usize,
    pub now: Timestamp,
    pub size: (u16, u16),
    pub status: Option<String>,
    pub quit_armed: bool,
    pub quitting: bool,
    /// Secret variable name → the environment variable commands get it in.
    pub secret_envs: BTreeMap<String, String>,
    /// Latest progress line per step (downloads, waits).
    pub progress: BTreeMap<usize, String>,
    /// Processes an interrupted attempt left running, by step: shown when
    /// the operator decides what to do with the step.
    pub still_running: BTreeMap<usize, Vec<String>>,
    /// Latest pod table per Kubernetes step.
    pub pods: BTreeMap<usize, crate::engine::k8s::wait::PodTable>,
    /// Selected row of the pod table (for `l`: that pod's logs).
    pub pod_cursor: usize,
    /// Set when watching a drill driven elsewhere: read-only.
    pub watch: Option<Watch>,
}

impl App {
    pub fn new(runbook: Arc<Runbook>, start: StartForm, now: Timestamp, theme: Theme) -> Self {
        let secret_envs =
            runbook.vars.iter().filter(|v| v.secret).map(|v| (v.name.clone(), v.secret_env_name())).collect();
        let logs = runbook.steps.iter().map(|_| LogPane::new(LOG_CAPACITY)).collect();
        App {
            runbook,
            templater: Templater::new(),
            theme,
            screen: Screen::Start,
            start,
            drill_id: String::new(),
            drill: None,
            selected: 0,
            focus: Focus::Steps,
            logs,
            checklist_cursor: 0,
            modal: None,
            queued_modal: None,
            aborting: false,
            in_flight: 0,
            now,
            size: (80, 24),
            status: None,
            quit_armed: false,
            quitting: false,
            secret_envs,
            progress: BTreeMap::new(),
            still_running: BTreeMap::new(),
            pods: BTreeMap::new(),
            pod_cursor: 0,
            watch: None,
        }
    }

    /// Watching a drill another process drives: no key changes anything.
    pub fn read_only(&self) -> bool {
        self.watch.is_some()
    }

    /// Variables and captures as templates see them, secrets as references
    /// (their values never enter the UI).
    pub fn template_context(&self) -> TemplateContext {
        let mut context = TemplateContext::new();
        if let Some(drill) = &self.drill {
            for (name, value) in &drill.vars {
                context.set_var(name, value);
            }
            for (name, (_, value)) in &drill.captures {
                context.set_capture(name, value);
            }
        }
        for (name, env) in &self.secret_envs {
            context.set_secret(name, env, "");
        }
        let mut fields = BTreeMap::new();
        fields.insert("id".to_string(), serde_json::Value::from(self.drill_id.clone()));
        context.set_capture("drill", &crate::runbook::template::CaptureValue { value: self.drill_id.clone(), fields });
        context
    }

    /// The contexts whose bindings apply now, most specific first.
    pub fn contexts(&self) -> Vec<Context> {
        if let Some(modal) = &self.modal {
            return vec![modal.context()];
        }
        if self.screen == Screen::Start {
            return vec![Context::Start];
        }
        let mut contexts = Vec::new();
        if self.focus == Focus::Log {
            if self.logs.get(self.selected).is_some_and(|log| log.search_status().is_some()) {
                contexts.push(Context::SearchedLog);
            }
            contexts.push(Context::Log);
        } else {
            contexts.push(Context::Steps);
        }
        if let Some(drill) = &self.drill {
            if drill.finished.is_some() {
                contexts.insert(0, Context::Finished);
            }
            if let Some(step) = drill.steps.get(self.selected)
                && matches!(step.status, crate::drill::state::StepStatus::Running { .. })
            {
                match step.outline.kind.as_str() {
                    "manual" => contexts.insert(0, Context::Manual),
                    "checklist" => contexts.insert(0, Context::Checklist),
                    _ => {}
                }
            }
        }
        if self.pods.get(&self.selected).is_some_and(|t| !t.rows.is_empty()) {
            contexts.push(Context::Pods);
        }
        contexts.push(Context::Global);
        contexts
    }

    /// Index of the step a process is running for, if any.
    /// A step some process or task is working on (command, download).
    pub fn running_command(&self) -> Option<usize> {
        let drill = self.drill.as_ref()?;
        drill.steps.iter().position(|s| {
            matches!(s.status, crate::drill::state::StepStatus::Running { .. })
                && !matches!(s.outline.kind.as_str(), "manual" | "checklist")
        })
    }
}
