//! `drillbook fleet`: the register of every project's drills, from the shared
//! archive's summaries and this machine's drills. On a terminal a sortable
//! screen; `--plain` a table whose exit code a monitoring job can alert on
//! (1 when a row is OVERDUE or FAILED); `--json`, `--csv`; `--html FILE` a
//! dashboard (with any of the others, or alone).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::drill::store::DrillStore;
use crate::fleet::{self, Register, Roster, export, register, sources};
use crate::report::write_atomic;
use crate::ui::fleet::{FleetApp, runtime};
use crate::ui::theme::Theme;

#[derive(Debug, Clone, clap::Args)]
pub struct FleetArgs {
    /// Projects expected to drill, and their runbooks (TOML: [[project]] name, runbooks, cadence):
    /// one never drilled shows as OVERDUE. Inside a drill repository (`drillbook init`) its
    /// project files are the roster, and a project whose file was deleted shows as RETIRED.
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// Count training drills too.
    #[arg(long)]
    pub training: bool,
    /// A text table; exits 1 when a row is OVERDUE or FAILED (for a monitoring job).
    #[arg(long, conflicts_with_all = ["json", "csv"])]
    pub plain: bool,
    /// The register as JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// The register as CSV.
    #[arg(long)]
    pub csv: bool,
    /// Also write the register as one self-contained HTML dashboard to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

pub fn run(args: FleetArgs) -> Result<ExitCode, String> {
    let roster = match args.roster.as_deref() {
        Some(path) => Some(Roster::load(path).map_err(|e| e.to_string())?),
        // Inside a drill repository its project files are the roster.
        None => match crate::project::repo::Repo::find(&std::env::current_dir().unwrap_or_default()) {
            Ok(repo) => Some(crate::project::repo::roster(&crate::project::repo::entries(&repo))),
            Err(crate::project::repo::RepoError::NotFound) => None,
            Err(error) => return Err(error.to_string()),
        },
    };
    let config = Config::load().map_err(|e| format!("configuration: {e}"))?;
    let archive = config.archive.map(|sourced| sourced.value);
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let interactive = std::io::stderr().is_terminal();
    // Beside the drills: `$DRILLBOOK_HOME/fleet-cache/`.
    let cache_dir = store.root().parent().unwrap_or(store.root()).join("fleet-cache");

    let mut warnings = Vec::new();
    let archived = match &archive {
        Some(archive) => {
            if interactive {
                eprintln!("reading the summaries in {}…", archive.url());
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let read = runtime.block_on(sources::archived(archive, Some(&cache_dir))).map_err(|e| e.to_string())?;
            if interactive {
                eprintln!("{} summaries fetched, {} unchanged since the last register", read.fetched, read.cached);
            }
            warnings.extend(read.warnings);
            read.drills
        }
        None => {
            eprintln!(
                "drillbook: no archive configured (DRILLBOOK_ARCHIVE, or `archive` in {}): this machine's drills only",
                config.file.display()
            );
            Vec::new()
        }
    };
    let local = sources::local(&store).map_err(|e| e.to_string())?;
    warnings.extend(local.warnings);

    let options = fleet::Options { training: args.training, ..fleet::Options::at(jiff::Timestamp::now()) };
    let mut register = register(fleet::register::merge(local.drills, archived), roster.as_ref(), &options);
    warnings.append(&mut register.warnings);
    register.warnings = warnings;
    for warning in &register.warnings {
        eprintln!("drillbook: warning: {warning}");
    }

    if let Some(path) = &args.html {
        write_atomic(path, &fleet::html::to_html(&register)).map_err(|e| e.to_string())?;
        eprintln!("dashboard written to {}", path.display());
    }
    let output = if args.json {
        Output::Json
    } else if args.csv {
        Output::Csv
    } else if args.plain {
        Output::Plain
    } else if args.html.is_some() {
        Output::Nothing
    } else if use_screen() {
        Output::Screen
    } else {
        Output::Plain
    };
    match output {
        Output::Json => print(&format!("{}\n", export::json(&register))),
        Output::Csv => print(&export::csv(&register)),
        Output::Plain => {
            print(&export::plain(&register));
            return Ok(plain_exit_code(&register));
        }
        Output::Screen => {
            let sources = match &archive {
                Some(archive) => format!("{} + this machine", archive.url()),
                None => "this machine".to_string(),
            };
            if let Some(notice) = runtime::run(FleetApp::new(register, sources, Theme::from_env()))? {
                println!("{notice}");
            }
        }
        Output::Nothing => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// What goes to standard output.
enum Output {
    Screen,
    Plain,
    Json,
    Csv,
    /// `--html FILE` alone: the dashboard is the output.
    Nothing,
}

/// 1 when a row is OVERDUE or FAILED: what a monitoring job alerts on.
pub fn plain_exit_code(register: &Register) -> ExitCode {
    if register.needs_attention() { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// The screen, unless in CI or not on a terminal (then the plain table).
fn use_screen() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    !ci && std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(text.as_bytes());
}
