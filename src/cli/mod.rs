//! The `drillbook` command line: clap definitions and one function per
//! subcommand. Errors are one line that says what to do; exit codes are
//! 0 (the drill passed), 1 (it failed, was aborted or missed an objective;
//! `check`/`verify` found a problem), 2 (could not run: bad input, or
//! paused waiting for input), 130 (stopped by a signal; resumable).

mod archive;
mod attach;
mod fleet;
pub mod input;
mod pack;
pub mod plain;
mod projects;
mod sandbox;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::drill::event::{DrillOutcome, Event, SessionMode};
use crate::drill::journal;
use crate::drill::lock::{self, DrillLock};
use crate::drill::state::DrillState;
use crate::drill::store::{DrillDir, DrillStore};
use crate::drive::ReportTo;
use crate::drive::session::DrillSession;
use crate::engine::vars::{self, Prompter};
use crate::report;
use crate::runbook::{self, Runbook};

/// The bundled sandbox drill: runs anywhere, touches nothing outside its drill directory.
/// `drillbook demo` runs this, in training mode, on the sandbox.
pub const DEMO_RUNBOOK: &str = include_str!("../../runbooks/backup-verification.toml");
/// The sandbox project the demo runs over [`DEMO_RUNBOOK`].
pub const DEMO_PROJECT: &str = include_str!("../../projects/acme.toml");

#[derive(Debug, Parser)]
#[command(
    name = "drillbook",
    version,
    about = "Guides you through disaster-recovery drills, journaling every step so a drill can be resumed and reported."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a new drill from a runbook, or from a project file (a project's fill-in of a shared runbook).
    Run {
        /// The runbook or project file (TOML).
        #[arg(required_unless_present = "project")]
        runbook: Option<PathBuf>,
        /// The project NAME of the drill repository (`projects/NAME.toml`), instead of a file.
        #[arg(long, value_name = "NAME", conflicts_with = "runbook")]
        project: Option<String>,
        /// Set a variable: --var project=acme (repeatable). Secrets come from their environment variable instead.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        #[command(flatten)]
        ui: UiArgs,
        /// Mark the drill as a training run in its report.
        #[arg(long)]
        training: bool,
        /// Someone taking part, with their role: --participant "Alice Martin:incident commander" (repeatable).
        #[arg(long = "participant", value_name = "NAME:ROLE", value_parser = parse_participant)]
        participants: Vec<(String, String)>,
    },
    /// Continue a drill that was interrupted or failed (the latest unfinished one if no id is given).
    Resume {
        /// Drill id or unique prefix (see `drillbook list`).
        drill: Option<String>,
        #[command(flatten)]
        ui: UiArgs,
    },
    /// Stop an unfinished drill: stop what an interrupted step left running, run its pending
    /// teardown steps (`always = true`, with their confirmations) and record it as aborted (the
    /// latest unfinished one if no id is given).
    Abort {
        /// Drill id or unique prefix (see `drillbook list`).
        drill: Option<String>,
        #[command(flatten)]
        ui: UiArgs,
    },
    /// Follow a drill driven in another terminal, read-only: the same screens, live (the latest
    /// unfinished drill if no id is given; a finished one shows how it ended).
    Watch {
        /// Drill id or unique prefix (see `drillbook list`).
        drill: Option<String>,
        /// Print the journal's events as they arrive, one line each, until the drill ends
        /// (also without a terminal).
        #[arg(long)]
        plain: bool,
    },
    /// List drills with their runbook, status and current step.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Validate runbooks and project files: every problem with file:line:col (no argument:
    /// every runbook and project of the drill repository).
    Check { runbooks: Vec<PathBuf> },
    /// Write a drill repository for a team: drillbook.toml, runbooks/ (the bundled patterns),
    /// projects/ with an example project, and a README saying how to add a project.
    Init {
        /// Where (default: the current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// List the drill repository's projects with their runbook, cadence and last drill.
    Projects {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write a drill's report (built from its journal).
    Report {
        /// Drill id or unique prefix.
        drill: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// Write to a file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Add an action item (follow-up work) to a drill's journal; it appears in the report.
    Action {
        /// Drill id or unique prefix.
        drill: String,
        /// What has to be done.
        text: String,
        /// Who will do it.
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
        /// The step it is about.
        #[arg(long, value_name = "STEP_ID")]
        step: Option<String>,
    },
    /// Attach files (screenshots taken by hand, exported logs) to a step as evidence: copied into
    /// the drill, their SHA-256 journaled. Works while the drill runs in another terminal (the
    /// running drill journals them) and after it ended.
    #[command(override_usage = "drillbook attach [DRILL] STEP FILE... [--note TEXT]")]
    Attach {
        /// [DRILL] STEP FILE...: the drill (id or unique prefix; default: the latest), the
        /// step's id, the files.
        #[arg(num_args = 2.., required = true, value_name = "ARGS")]
        args: Vec<String>,
        /// What the files show.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Check a drill journal's hash chain (detects changed, inserted or removed lines).
    Verify {
        drill: String,
        /// Check the shared archive's copy instead (and compare it with this machine's).
        #[arg(long)]
        archive: bool,
    },
    /// Write a drill's evidence pack, drill-ID.tar.zst: journal, runbook snapshot, logs/, evidence/,
    /// the four reports (written afresh) and manifest.json (every file's SHA-256, the journal's chain
    /// head), optionally signed with an SSH key. Never downloads/ (restored backups: production data).
    /// Refused (exit 1) when the journal's chain or a journaled evidence file does not verify.
    Export(pack::ExportArgs),
    /// Check an evidence pack offline: every file against the manifest, the journal's chain and head,
    /// each evidence file against its journaled hash, and the signature. Exit 0 when all holds, 1 at
    /// the first mismatch (named), 2 when the file cannot be read.
    VerifyPack(pack::VerifyPackArgs),
    /// The shared archive (`archive = "s3://BUCKET/PREFIX/"` in the configuration).
    Archive {
        #[command(subcommand)]
        command: archive::ArchiveCommand,
    },
    /// Run the bundled sandbox drill (no cloud account needed).
    Demo {
        #[command(flatten)]
        ui: UiArgs,
        /// Someone taking part, with their role: --participant "Alice Martin:incident commander" (repeatable).
        #[arg(long = "participant", value_name = "NAME:ROLE", value_parser = parse_participant)]
        participants: Vec<(String, String)>,
    },
    /// The simulated cluster of the sandbox: create it, deploy to it, break it, look at it.
    Sandbox {
        #[command(subcommand)]
        command: sandbox::SandboxCommand,
    },
    /// The register of every project's drills (the shared archive's and this machine's): last
    /// drill, outcome, RTO/RPO, next due, and OK / DUE SOON / OVERDUE / FAILED. `--plain` exits 1
    /// when a row is OVERDUE or FAILED.
    Fleet(fleet::FleetArgs),
    /// Print the effective configuration (operator, archive, notifications) and where each value
    /// came from: the config file (`DRILLBOOK_CONFIG` or the platform config dir), the environment,
    /// or a default.
    Config,
    /// Print the JSON schema of the runbook format (for editor completion).
    Schema,
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// Line-oriented interface (works in pipes; used for scheduled drills).
    #[arg(long)]
    pub plain: bool,
    /// Answer confirmations with yes; in plain mode record manual and checklist steps as skipped.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// S3 endpoint for every S3 step without its own (MinIO, Ceph, moto; `file://DIR` is the sandbox store).
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// AWS profile for every S3 step without its own.
    #[arg(long, value_name = "NAME", env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Kubeconfig context for every Kubernetes step without its own (default: the current context;
    /// `sandbox:DIR` is the simulated cluster).
    #[arg(long, value_name = "NAME", env = "DRILLBOOK_KUBE_CONTEXT")]
    pub context: Option<String>,
    /// When the drill ends, upload its reports (md, html, json, junit) to s3://BUCKET/PREFIX/DRILL_ID/
    /// (for scheduled drills; uses --endpoint-url and --profile like S3 steps).
    #[arg(long, value_name = "S3_URL", value_parser = parse_report_to)]
    pub report_to: Option<ReportTo>,
}

fn parse_report_to(text: &str) -> Result<ReportTo, String> {
    text.parse()
}

impl UiArgs {
    /// Hands `--endpoint-url` and `--profile` to the AWS SDK, which reads
    /// them from the environment. Called before any thread exists.
    fn export_aws_settings(&self) {
        // SAFETY: runs at the start of the command, before the runtime or
        // any other thread is started, so nothing reads the environment
        // concurrently.
        unsafe {
            if let Some(endpoint) = &self.endpoint_url {
                std::env::set_var("AWS_ENDPOINT_URL", endpoint);
            }
            if let Some(profile) = &self.profile {
                std::env::set_var("AWS_PROFILE", profile);
            }
            if let Some(context) = &self.context {
                std::env::set_var(crate::engine::k8s::CONTEXT_ENV, context);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown.
    Md,
    /// One self-contained HTML file (prints well).
    Html,
    Json,
    /// JUnit XML, for CI: one test case per step, plus RTO and RPO.
    Junit,
}

/// `Name:role` of `--participant`.
fn parse_participant(text: &str) -> Result<(String, String), String> {
    crate::drill::participants::parse_one(text, None).map_err(|_| {
        format!(
            "`{text}` is not NAME:ROLE; write the name, a colon and the role, e.g. --participant \"Alice Martin:incident commander\""
        )
    })
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("drillbook: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode, String> {
    // A drill must not start on a configuration that cannot be read: its
    // archive or notifications would be silently dropped.
    if matches!(
        cli.command,
        Command::Run { .. } | Command::Resume { .. } | Command::Abort { .. } | Command::Demo { .. }
    ) {
        crate::config::Config::load().map_err(|e| format!("configuration: {e}"))?;
    }
    match cli.command {
        Command::Run { runbook, project, vars, ui, training, participants } => {
            ui.export_aws_settings();
            let path = match (runbook, project) {
                (Some(path), _) => path,
                (None, Some(name)) => projects::project_path(&name)?,
                (None, None) => return Err("name a runbook or project file, or --project NAME".into()),
            };
            let loaded = load_runbook(&path)?;
            start(loaded, &vars, ui, training, participants)
        }
        Command::Demo { ui, participants } => {
            ui.export_aws_settings();
            // A project file over the team's pattern, as a drill repository keeps them.
            let demo = crate::project::resolve_bundled(
                Path::new("(bundled) projects/acme.toml"),
                DEMO_PROJECT,
                Path::new("(bundled) runbooks/backup-verification.toml"),
                DEMO_RUNBOOK,
            )
            .map_err(|e| e.to_string())?;
            start(demo.runbook, &[], ui, true, participants)
        }
        Command::Resume { drill, ui } => {
            ui.export_aws_settings();
            resume(drill.as_deref(), ui, false)
        }
        Command::Abort { drill, ui } => {
            ui.export_aws_settings();
            resume(drill.as_deref(), ui, true)
        }
        Command::Watch { drill, plain } => watch(drill.as_deref(), plain),
        Command::List { json } => list(json),
        Command::Check { runbooks } if runbooks.is_empty() => Ok(check(&projects::everything_to_check()?)),
        Command::Check { runbooks } => Ok(check(&runbooks)),
        Command::Init { dir } => projects::init(&dir),
        Command::Projects { json } => projects::list(json),
        Command::Report { drill, format, output } => report(&drill, format, output.as_deref()),
        Command::Action { drill, text, owner, step } => action(&drill, &text, owner.as_deref(), step.as_deref()),
        Command::Attach { args, note } => attach::run(&args, note),
        Command::Verify { drill, archive: false } => verify(&drill),
        Command::Verify { drill, archive: true } => archive::verify(&drill),
        Command::Export(args) => pack::export(args),
        Command::VerifyPack(args) => pack::verify_pack(args),
        Command::Archive { command } => archive::run(command),
        Command::Sandbox { command } => sandbox::run(command),
        Command::Fleet(args) => fleet::run(args),
        Command::Config => {
            let config = crate::config::Config::load().map_err(|e| format!("configuration: {e}"))?;
            for line in config.describe() {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&runbook::json_schema()).map_err(|e| e.to_string())?;
            println!("{schema}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "drillbook", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A runbook, or a project file resolved against its pattern.
fn load_runbook(path: &Path) -> Result<Runbook, String> {
    match load_any(path) {
        Ok(runbook) => Ok(runbook),
        Err(runbook::LoadError::Invalid(diagnostics)) => Err(format!("the runbook is invalid:\n{diagnostics}")),
        Err(other) => Err(other.to_string()),
    }
}

/// Reads `path` as a project file when it is one (a `[project]` naming a
/// `runbook`), else as a runbook.
fn load_any(path: &Path) -> Result<Runbook, runbook::LoadError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| runbook::LoadError::Read { path: display, source })?;
    if !crate::project::is_project(&text) {
        return runbook::load(path);
    }
    match crate::project::resolve(path, &text) {
        Ok(project) => Ok(project.runbook),
        Err(crate::project::ProjectError::Invalid(diagnostics)) => Err(runbook::LoadError::Invalid(diagnostics)),
        Err(crate::project::ProjectError::Read { path, source }) => Err(runbook::LoadError::Read { path, source }),
    }
}

/// Step kinds this build can run.
fn unsupported_steps(runbook: &Runbook) -> Vec<String> {
    use runbook::Action;
    runbook
        .steps
        .iter()
        .filter(|s| {
            !matches!(
                s.action,
                Action::Manual
                    | Action::Checklist(_)
                    | Action::Command(_)
                    | Action::S3Backup(_)
                    | Action::S3Check(_)
                    | Action::K8sImageTag(_)
                    | Action::K8sWait(_)
                    | Action::K8sScale(_)
                    | Action::K8sIsolation(_)
                    | Action::HttpCheck(_)
                    | Action::SqlCheck(_)
                    | Action::DnsCheck(_)
                    | Action::BrowserCheck(_)
            )
        })
        .map(|s| format!("`{}` ({}, line {})", s.id, s.kind.name(), s.line))
        .collect()
}

fn start(
    runbook: Runbook,
    var_args: &[String],
    ui: UiArgs,
    training: bool,
    participants: Vec<(String, String)>,
) -> Result<ExitCode, String> {
    let unsupported = unsupported_steps(&runbook);
    if !unsupported.is_empty() {
        return Err(format!(
            "this build of drillbook cannot run these steps yet: {}. `drillbook check` validates them",
            unsupported.join(", ")
        ));
    }
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let given = vars::parse_var_args(var_args).map_err(|e| e.to_string())?;
    if use_tui(&ui) {
        // Same checks as plain mode on what was given; the start screen asks for the rest.
        vars::check_given(&runbook, &given).map_err(|e| e.to_string())?;
        let env = runbook
            .vars
            .iter()
            .filter_map(|var| {
                let name = if var.secret { Some(var.secret_env_name()) } else { var.env.clone() };
                let value = std::env::var(name?).ok().filter(|v| !v.is_empty())?;
                Some((var.name.clone(), value))
            })
            .collect();
        let opening =
            crate::ui::runtime::Opening::New { runbook: Box::new(runbook), given, env, training, store, participants };
        return crate::ui::runtime::run(opening, conducting(&ui));
    }
    let mut input = input::Input::stdin();
    let env = |name: &str| std::env::var(name).ok();
    let resolved = if ui.yes {
        vars::resolve_vars(&runbook, &given, &env, &mut vars::NoPrompt).map_err(|e| e.to_string())?
    } else {
        vars::resolve_vars(&runbook, &given, &env, &mut input).map_err(|e| e.to_string())?
    };
    let mut session =
        DrillSession::start(&store, runbook, resolved, SessionMode::Plain, training).map_err(|e| e.to_string())?;
    session.record_participants(&participants).map_err(|e| e.to_string())?;
    plain::drive(session, input, ui, None, false)
}

fn resume(drill: Option<&str>, ui: UiArgs, abort: bool) -> Result<ExitCode, String> {
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let dir = match drill {
        Some(id) => archive::find_or_pull(&store, id)?,
        None => latest_unfinished(&store)?,
    };
    let mode = if use_tui(&ui) { SessionMode::Tui } else { SessionMode::Plain };
    let lease = archive::lease_for_resume(&dir, !ui.yes)?;
    let taken_over = lease.as_ref().is_some_and(|(_, taken_over)| *taken_over);
    let (mut session, notice) = DrillSession::resume_handing_off(dir, mode, taken_over).map_err(|e| e.to_string())?;
    if let Some((lease, _)) = lease {
        session.set_lease(lease);
    }
    let mut input = input::Input::stdin();
    let missing: Vec<runbook::VarDef> = session.missing_secrets().into_iter().cloned().collect();
    let mut secrets = std::collections::BTreeMap::new();
    for var in missing {
        let value = std::env::var(var.secret_env_name()).ok().filter(|v| !v.is_empty());
        let value = match value {
            Some(value) => value,
            None if !ui.yes => input.ask(&var, true)?.ok_or_else(|| {
                format!("secret `{}` has no value: set {} and resume again", var.name, var.secret_env_name())
            })?,
            None => {
                return Err(format!(
                    "secret `{}` has no value: set {} and resume again",
                    var.name,
                    var.secret_env_name()
                ));
            }
        };
        secrets.insert(var.name.clone(), value);
    }
    session.set_secrets(secrets);
    if use_tui(&ui) && !abort {
        let opening = crate::ui::runtime::Opening::Resume { session: Box::new(session), notice };
        return crate::ui::runtime::run(opening, conducting(&ui));
    }
    plain::drive(session, input, ui, Some(notice), abort)
}

/// Watches a drill without touching it: no lock, no journal line, nothing
/// written into its directory.
fn watch(drill: Option<&str>, plain: bool) -> Result<ExitCode, String> {
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let dir = match drill {
        Some(id) => store.find(id).map_err(|e| e.to_string())?,
        None => latest_unfinished(&store).map_err(|_| {
            "there is no unfinished drill to watch: give the id of one (`drillbook list` shows all drills)".to_string()
        })?,
    };
    let ui = UiArgs { plain, yes: false, endpoint_url: None, profile: None, context: None, report_to: None };
    if !use_tui(&ui) {
        return watch_plain(&dir);
    }
    println!("{}", crate::ui::runtime::watch(dir)?);
    Ok(ExitCode::SUCCESS)
}

/// `drillbook watch --plain`: one line per journal event as it arrives,
/// until the drill ends (read-only, like the full-screen view).
fn watch_plain(dir: &DrillDir) -> Result<ExitCode, String> {
    let mut follower = journal::Follower::<Event>::new(&dir.journal());
    println!("watching drill {} (read-only; Ctrl-C stops watching, not the drill)", dir.id);
    let mut state: Option<DrillState> = None;
    loop {
        for record in follower.poll().map_err(|e| e.to_string())? {
            match state.as_mut() {
                Some(state) => state.apply(&record).map_err(|e| e.to_string())?,
                None => state = Some(DrillState::replay(std::slice::from_ref(&record)).map_err(|e| e.to_string())?),
            }
            let fields = serde_json::to_value(&record.event).unwrap_or_default();
            let mut line = format!(
                "{} #{:<4} {}",
                record.ts.strftime("%H:%M:%S"),
                record.seq,
                fields["type"].as_str().unwrap_or("?")
            );
            for key in
                ["step", "attempt", "result", "outcome", "name", "role", "text", "reason", "what", "target", "error"]
            {
                match &fields[key] {
                    serde_json::Value::String(value) => line.push_str(&format!(" {key}={value}")),
                    serde_json::Value::Number(value) => line.push_str(&format!(" {key}={value}")),
                    _ => {}
                }
            }
            println!("{line}");
            if let (Event::DrillFinished { .. }, Some(state)) = (&record.event, &state) {
                println!("drill {}", crate::drill::verdict::verdict(state).outcome.label());
                return Ok(ExitCode::SUCCESS);
            }
        }
        let _ = std::io::stdout().flush();
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// How the TUI's conductor runs: the same flags as plain mode's.
fn conducting(ui: &UiArgs) -> crate::ui::runtime::Conducting {
    crate::ui::runtime::Conducting { unattended: ui.yes, report_to: ui.report_to.clone() }
}

/// The full-screen interface, unless asked for plain mode, running in CI,
/// or not attached to a terminal.
fn use_tui(ui: &UiArgs) -> bool {
    use std::io::IsTerminal;
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    !ui.plain && !ci && std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The newest drill that is neither completed nor aborted.
fn latest_unfinished(store: &DrillStore) -> Result<DrillDir, String> {
    for dir in store.list().map_err(|e| e.to_string())?.into_iter().rev() {
        // A drill killed before its first event was written never started.
        if journal::read::<Event>(&dir.journal()).is_ok_and(|replay| replay.records.is_empty()) {
            continue;
        }
        // An unreadable journal is reported, not silently passed over.
        let state = read_state(&dir)?;
        if !matches!(state.finished.as_ref().map(|f| f.outcome), Some(DrillOutcome::Completed | DrillOutcome::Aborted))
        {
            return Ok(dir);
        }
    }
    Err("there is no unfinished drill to resume (`drillbook list` shows all drills)".to_string())
}

fn check(paths: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for path in paths {
        match load_any(path) {
            Ok(runbook) => println!("ok: {} ({}, {} steps)", path.display(), runbook.id, runbook.steps.len()),
            Err(runbook::LoadError::Invalid(diagnostics)) => {
                failed = true;
                eprint!("{diagnostics}");
                let count = diagnostics.0.len();
                eprintln!("{}: {count} error{}\n", path.display(), if count == 1 { "" } else { "s" });
            }
            Err(error) => {
                failed = true;
                eprintln!("{error}");
            }
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn read_state(dir: &DrillDir) -> Result<DrillState, String> {
    let replay = journal::read::<Event>(&dir.journal()).map_err(|e| e.to_string())?;
    if replay.records.is_empty() {
        return Err(format!(
            "drill {} never started (it was stopped before its first journal line was complete)",
            dir.id
        ));
    }
    DrillState::replay(&replay.records).map_err(|e| format!("{}: {e}", dir.journal().display()))
}

#[derive(serde::Serialize)]
struct ListEntry {
    id: String,
    runbook: String,
    title: String,
    status: String,
    started_at: String,
    current_step: Option<String>,
    training: bool,
}

fn list(json: bool) -> Result<ExitCode, String> {
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    for dir in store.list().map_err(|e| e.to_string())? {
        let entry = match read_state(&dir) {
            Ok(state) => {
                // A drill whose lock another process holds is live right now. Asked
                // without taking the lock: taking it, even for a moment, would rewrite
                // who last held it and refuse a `resume` started in that moment.
                let holder = lock::holder(&dir.path);
                let nobody_holds = !matches!(holder, Some(lock::Holder { holding: Some(true) | None, .. }));
                let status = match (&state.finished, holder) {
                    (Some(_), _) => crate::drill::verdict::verdict(&state).outcome.label().to_string(),
                    (None, Some(lock::Holder { holding: Some(true), .. })) => "running".to_string(),
                    (None, Some(lock::Holder { holding: None, host, .. })) => {
                        format!("open on {}?", host.as_deref().unwrap_or("another host"))
                    }
                    (None, _) => "paused".to_string(),
                };
                let current = state
                    .steps
                    .iter()
                    .find(|s| {
                        !matches!(
                            s.status,
                            crate::drill::state::StepStatus::Succeeded
                                | crate::drill::state::StepStatus::Skipped { .. }
                                | crate::drill::state::StepStatus::MarkedDone { .. }
                        )
                    })
                    .map(|s| {
                        // A step journaled as running in a drill nobody holds was cut
                        // short: its process died (resume marks it interrupted).
                        let cut_short =
                            nobody_holds && matches!(s.status, crate::drill::state::StepStatus::Running { .. });
                        format!("{} ({})", s.outline.id, if cut_short { "interrupted" } else { s.status.label() })
                    });
                ListEntry {
                    id: dir.id.clone(),
                    runbook: state.runbook_id.clone(),
                    title: state.runbook_title.clone(),
                    status,
                    started_at: state.started_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    current_step: if state.finished.is_some() { None } else { current },
                    training: state.training,
                }
            }
            Err(error) => ListEntry {
                id: dir.id.clone(),
                runbook: String::new(),
                title: String::new(),
                status: format!("unreadable: {error}"),
                started_at: String::new(),
                current_step: None,
                training: false,
            },
        };
        entries.push(entry);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&entries).map_err(|e| e.to_string())?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!(
            "no drills yet in {} (start one with `drillbook run RUNBOOK` or `drillbook demo`)",
            store.root().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<36}  {:<24}  {:<10}  {:<23}  CURRENT STEP", "ID", "RUNBOOK", "STATUS", "STARTED");
    for entry in entries {
        let runbook = if entry.training { format!("{} (training)", entry.runbook) } else { entry.runbook };
        println!(
            "{:<36}  {:<24}  {:<10}  {:<23}  {}",
            entry.id,
            runbook,
            entry.status,
            entry.started_at,
            entry.current_step.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn report(drill: &str, format: ReportFormat, output: Option<&Path>) -> Result<ExitCode, String> {
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let dir = store.find(drill).map_err(|e| e.to_string())?;
    let state = read_state(&dir)?;
    let head = journal::verify(&dir.journal()).ok().map(|v| v.head);
    let mut built = report::build(&state, head);
    report::files::check_files(&mut built, &dir.path);
    built.since_last = report::history::since_last(&built, &dir.path);
    built.removed_steps = report::removed_steps(&dir.path);
    let text = match format {
        ReportFormat::Md => report::to_markdown(&built),
        ReportFormat::Html => report::to_html(&built),
        ReportFormat::Json => report::to_json(&built),
        ReportFormat::Junit => report::to_junit(&built),
    };
    match output {
        Some(path) => {
            report::write_atomic(path, &text).map_err(|e| e.to_string())?;
            eprintln!("report written to {}", path.display());
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Appends an action item to a drill's journal. Like every writer it holds
/// the drill's lock while it appends, so a drill open in another process is
/// refused. A finished drill takes action items too: they come from the
/// debrief.
fn action(drill: &str, text: &str, owner: Option<&str>, step: Option<&str>) -> Result<ExitCode, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the action item's text is empty: say what has to be done".into());
    }
    let owner = match owner.map(str::trim) {
        Some("") => return Err("--owner is empty: give a name, or leave --owner out".into()),
        owner => owner.map(str::to_string),
    };
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let dir = store.find(drill).map_err(|e| e.to_string())?;
    let _lock = DrillLock::acquire(&dir.path).map_err(|e| e.to_string())?;
    let (mut journal, replay) = journal::Journal::<Event>::open(&dir.journal()).map_err(|e| e.to_string())?;
    if let Some(torn) = &replay.torn {
        eprintln!(
            "drillbook: the journal's last line was torn by a crash; it was set aside{}",
            torn.saved_to.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default()
        );
    }
    if replay.records.is_empty() {
        return Err(format!("drill {} never started: there is nothing to add an action item to", dir.id));
    }
    let state = DrillState::replay(&replay.records).map_err(|e| format!("{}: {e}", dir.journal().display()))?;
    if let Some(step) = step
        && state.step(step).is_none()
    {
        let ids: Vec<&str> = state.steps.iter().map(|s| s.outline.id.as_str()).collect();
        return Err(format!("drill {} has no step `{step}` (its steps: {})", dir.id, ids.join(", ")));
    }
    let event = Event::ActionItemAdded { text: text.to_string(), owner: owner.clone(), step: step.map(str::to_string) };
    journal.append(&event).map_err(|e| e.to_string())?;
    let owner = owner.map(|o| format!(" (owner: {o})")).unwrap_or_default();
    println!("action item added to drill {}{owner}", dir.id);
    // The report files the drill's end wrote follow the journal.
    if state.finished.is_some() && dir.path.join(report::FILES[0].0).exists() {
        let replay = journal::read::<Event>(&dir.journal()).map_err(|e| e.to_string())?;
        let state = DrillState::replay(&replay.records).map_err(|e| format!("{}: {e}", dir.journal().display()))?;
        let built = report::build(&state, Some(journal.head().to_string()));
        report::write_all(&dir.path, &built).map_err(|e| e.to_string())?;
        println!("reports in {} updated", dir.path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(drill: &str) -> Result<ExitCode, String> {
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let dir = store.find(drill).map_err(|e| e.to_string())?;
    match journal::verify(&dir.journal()) {
        Ok(report) => {
            println!("ok: {} records, chain intact, head sha256 {}", report.records, report.head);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("drillbook: journal verification failed: {error}");
            Ok(ExitCode::from(1))
        }
    }
}

impl Prompter for input::Input {
    fn ask(&mut self, var: &runbook::VarDef, secret: bool) -> std::io::Result<Option<String>> {
        input::Input::ask(self, var, secret).map_err(std::io::Error::other)
    }
}
