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
use crate::drill::state::DrillState;
use crate::drive::{Answer, Question, Request, Update};
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
    /// What the drill's conductor reports (or, when watching, what the
    /// journal and logs of a drill driven elsewhere show).
    Drive(Update),
    /// Earlier output restored from a log file on resume.
    RestoredLog {
        step: usize,
        lines: Vec<String>,
    },
    /// A passing remark for the status line (e.g. the URL that was opened).
    Notice(String),
    /// SIGTERM, SIGHUP or SIGINT, heard before a drill is open (the
    /// conductor hears them once it is).
    Signal(&'static str),
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

/// What `update` asks the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The start screen was filled in: open the drill and conduct it.
    StartDrill {
        values: BTreeMap<String, String>,
        secrets: BTreeMap<String, String>,
        /// Name and role of each participant, journaled right after the start.
        participants: Vec<(String, String)>,
    },
    /// The operator's answer to the conductor's question `id`.
    Answer {
        id: u64,
        answer: Answer,
    },
    /// Something the operator asks of the conductor (a note, quitting).
    Request(Request),
    OpenUrl(String),
    /// Leave now (nothing is conducted: the start screen, a watch).
    Exit,
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
    /// The path of a file to attach to the selected step.
    Attach {
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
    /// What went wrong with a checklist item.
    ItemFailed {
        step: usize,
        item: usize,
    },
    Search,
}

impl TextPurpose {
    pub fn title(&self) -> &'static str {
        match self {
            TextPurpose::Note { .. } => "Add a note",
            TextPurpose::ActionItem { .. } => "Action item (end with @name to give it an owner)",
            TextPurpose::Attach { .. } => "Attach a file to this step (its path)",
            TextPurpose::DebriefWentWell => "Debrief (1/2): what went well?",
            TextPurpose::DebriefToImprove { .. } => "Debrief (2/2): what should improve?",
            TextPurpose::SkipReason { .. } => "Why skip this step?",
            TextPurpose::MarkDoneNote { .. } => "Mark done: what was done instead?",
            TextPurpose::ItemFailed { .. } => "What went wrong with this item?",
            TextPurpose::Search => "Search the log",
        }
    }
}

#[derive(Debug)]
pub enum Modal {
    Help {
        scroll: u16,
    },
    Confirm {
        step: usize,
        command: String,
        target: String,
    },
    TypedConfirm {
        step: usize,
        command: String,
        target: String,
        expected: String,
        input: Input,
        mismatch: bool,
    },
    Interrupted {
        step: usize,
    },
    Failure {
        step: usize,
    },
    Text {
        purpose: TextPurpose,
        input: Input,
    },
    QuitConfirm,
    /// Stop the running step? (It then fails: retry, skip or abort.)
    StopConfirm {
        step: usize,
    },
    Picker {
        purpose: PickerPurpose,
        picker: Picker,
    },
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

impl Modal {
    pub fn context(&self) -> Context {
        match self {
            Modal::Help { .. } => Context::Help,
            Modal::Confirm { .. }
            | Modal::TypedConfirm { .. }
            | Modal::QuitConfirm
            | Modal::StopConfirm { .. }
            | Modal::Text { .. } => Context::Confirm,
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
    /// A training drill: its steps act on the sandbox, and the plan says so.
    pub training: bool,
    /// What changed since the project's last drill (read by the runtime
    /// when the screen opens; `None` when the runbook names no project).
    pub since_last: Option<crate::report::history::SinceLast>,
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
    /// The conductor's open question (its id): answered from a dialog, or,
    /// for a manual step or a checklist, from the step's keys.
    pub question: Option<(u64, Question)>,
    pub now: Timestamp,
    pub size: (u16, u16),
    pub status: Option<String>,
    pub quit_armed: bool,
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
            question: None,
            now,
            size: (80, 24),
            status: None,
            quit_armed: false,
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

    /// Where step `index` acts ("context ctx, namespace ns", "bucket b"), rendered.
    pub fn step_target(&self, index: usize) -> Option<String> {
        let step = self.runbook.steps.get(index)?;
        let training = self.drill.as_ref().is_some_and(|d| d.training);
        crate::drive::target::step_target(step, &self.template_context(), &self.templater, training)
    }

    /// Where step `index` will act, with the start screen's variables as
    /// typed so far (secrets are not needed to say where a step acts).
    pub fn planned_target(&self, index: usize) -> Option<String> {
        let step = self.runbook.steps.get(index)?;
        let mut context = self.template_context();
        for field in self.start.fields.iter().filter(|f| !f.var.secret) {
            context.set_var(&field.var.name, field.input.value());
        }
        crate::drive::target::step_target(step, &context, &self.templater, self.start.training)
    }

    /// Lines the selected step's log holds (the layout gives an empty log's
    /// rows to the step's detail).
    pub fn selected_log_lines(&self) -> usize {
        self.logs.get(self.selected).map_or(0, |log| log.len())
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
        if self.waiting_answer().is_some() {
            contexts.insert(0, Context::Asked);
        }
        if self.running_command().is_some() && !self.read_only() {
            contexts.insert(0, Context::Running);
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

    /// The step whose question waits with its dialog closed (Esc): Enter
    /// opens it again. Manual steps and checklists are answered by their keys.
    pub fn waiting_answer(&self) -> Option<usize> {
        let (_, question) = self.question.as_ref()?;
        let dialog = !matches!(question, Question::Manual { .. } | Question::Checklist { .. });
        (dialog && self.modal.is_none()).then(|| question.step())
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
