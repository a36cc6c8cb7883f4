//! `drillbook init` (a team drill repository), `drillbook projects` (every
//! project with its runbook, cadence and last drill) and the repository
//! lookups of `run --project` and `check` with no argument.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::drill::store::DrillStore;
use crate::project::repo::{self, REPO_FILE, Repo};
use crate::report::summary::Summary;

const REPO_SETTINGS: &str = r#"# A drill repository: keep it in git. `drillbook` finds it by walking up from the current
# directory to this file (or from $DRILLBOOK_REPO).
[repository]
runbooks = "runbooks"    # the team's patterns
projects = "projects"    # one file per project: which pattern, and how it differs
cadence = "quarterly"    # how often a project drills when its file and pattern say nothing
"#;

const EXAMPLE_PROJECT: &str = r#"# One project: the pattern it follows and what is its own. `drillbook run --project example`
# (or `drillbook run projects/example.toml`) runs the resolved drill; `drillbook check` checks it.
[project]
name = "example"
runbook = "../runbooks/backup-verification.toml"
cadence = "quarterly"
owner = "Your Name"

[vars]
prod_namespace = "example-production"
dr_namespace = "example-dr"
dr_url = "https://dr.example.com"

# This project restores with its own task:
# [[override]]
# step = "restore"
# run = "inv dr deploy.db-restore --filename={{ backup.path }}"

# and has a step of its own:
# [[add]]
# after = "deploy"
# id = "reindex"
# kind = "command"
# run = "inv dr search.rebuild-index"

# It has no assets bucket:
# [[remove]]
# step = "check-assets-replica"
# reason = "example serves no uploaded files"
"#;

const REPO_README: &str = r#"# Disaster-recovery drills

Every project this team hosts drills its backups on a cadence. The drill of each project follows
one of the patterns in `runbooks/`; the file in `projects/` says which, sets the pattern's
variables and lists what the project does differently.

## Add a project

1. Copy `projects/example.toml` to `projects/NAME.toml`, set `name`, the `runbook` it follows and
   its `[vars]`.
2. `[[override]]` replaces keys of a pattern's step (by its `id`), `[[add]]` inserts a step after
   another, `[[remove]]` drops an optional step (with the `reason` the report shows). Secrets are
   never written here: a secret var names the environment variable it is read from
   (`db_password = { env = "NAME_DB_PASSWORD" }`).
3. `drillbook check` checks every pattern and project (each problem at file:line:col).

## Run a drill

    drillbook run --project NAME

The drill keeps a copy of the project file, the pattern and the resolved runbook: editing them
later never changes a drill in progress or its report.

## See what is due

    drillbook projects      # every project, its runbook, cadence and last drill
    drillbook fleet         # the register: overdue, failed, due soon (a project never drilled is overdue)
"#;

/// The patterns `init` writes: the bundled runbooks.
const PATTERNS: [(&str, &str); 3] = [
    ("backup-verification.toml", include_str!("../../runbooks/backup-verification.toml")),
    ("postgres-restore-drill.toml", include_str!("../../runbooks/postgres-restore-drill.toml")),
    ("dr-provisioning.toml", include_str!("../../runbooks/dr-provisioning.toml")),
];

/// Writes a drill repository in `dir` (created if needed); refuses to
/// overwrite anything.
pub fn init(dir: &Path) -> Result<ExitCode, String> {
    let mut files: Vec<(PathBuf, &str)> = vec![
        (dir.join(REPO_FILE), REPO_SETTINGS),
        (dir.join("README.md"), REPO_README),
        (dir.join("projects/example.toml"), EXAMPLE_PROJECT),
    ];
    files.extend(PATTERNS.iter().map(|(name, text)| (dir.join("runbooks").join(name), *text)));
    let existing: Vec<String> =
        files.iter().filter(|(p, _)| p.exists()).map(|(p, _)| p.display().to_string()).collect();
    if !existing.is_empty() {
        return Err(format!("not overwriting what is there: {}", existing.join(", ")));
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("a drill repository in {}:", dir.display());
    for (path, _) in &files {
        println!("  {}", path.strip_prefix(dir).unwrap_or(path).display());
    }
    println!("next: edit projects/example.toml, then `drillbook check` and `drillbook run --project example`");
    Ok(ExitCode::SUCCESS)
}

fn here() -> Result<Repo, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    Repo::find(&cwd).map_err(|e| e.to_string())
}

/// `run --project NAME`: the project's file in the repository.
pub fn project_path(name: &str) -> Result<PathBuf, String> {
    let repo = here()?;
    repo.project_file(name).ok_or_else(|| {
        let known: Vec<String> = repo::entries(&repo).into_iter().map(|e| e.name).collect();
        let near = crate::runbook::diagnostic::did_you_mean(name, known.iter().map(String::as_str))
            .map(|n| format!("; did you mean `{n}`?"))
            .unwrap_or_default();
        format!(
            "no project `{name}` in {} (it has: {}){near}",
            repo.projects.display(),
            if known.is_empty() { "none".into() } else { known.join(", ") }
        )
    })
}

/// `check` with no argument: every pattern and project of the repository.
pub fn everything_to_check() -> Result<Vec<PathBuf>, String> {
    let repo = here()?;
    let files: Vec<PathBuf> = repo.runbook_files().into_iter().chain(repo.project_files()).collect();
    if files.is_empty() {
        return Err(format!("{} has no runbooks or projects to check", repo.root.display()));
    }
    Ok(files)
}

/// `drillbook projects`: every project of the repository with its last
/// drill, read from the drills' summary.json (never a whole journal).
pub fn list(json: bool) -> Result<ExitCode, String> {
    let repo = here()?;
    let entries = repo::entries(&repo);
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let summaries = finished_summaries(&store);
    let rows: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            let last = entry.runbook_id.as_ref().ok().and_then(|id| {
                summaries
                    .iter()
                    .filter(|s| s.project.as_deref() == Some(entry.name.as_str()) && &s.runbook_id == id && !s.training)
                    .max_by(|a, b| a.started_at.cmp(&b.started_at))
            });
            serde_json::json!({
                "project": entry.name,
                "file": entry.file.strip_prefix(&repo.root).unwrap_or(&entry.file).display().to_string(),
                "runbook": entry.runbook_id.as_ref().ok(),
                "error": entry.runbook_id.as_ref().err(),
                "cadence": entry.cadence,
                "last_drill": last.map(|s| serde_json::json!({
                    "drill_id": s.drill_id, "started_at": s.started_at, "outcome": s.outcome,
                    "rto": s.rto.verdict, "rpo": s.rpo.verdict,
                })),
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no projects in {} (add one: see {})", repo.projects.display(), repo.root.join("README.md").display());
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            let runbook = match (&row["runbook"], &row["error"]) {
                (serde_json::Value::String(id), _) => id.clone(),
                (_, error) => format!("(unreadable: {})", text(error)),
            };
            let (last, outcome) = match &row["last_drill"] {
                serde_json::Value::Null => ("never drilled".to_string(), "-".to_string()),
                last => (
                    text(&last["started_at"]).get(..10).unwrap_or("-").to_string(),
                    format!("{} (RTO {}, RPO {})", text(&last["outcome"]), text(&last["rto"]), text(&last["rpo"])),
                ),
            };
            [text(&row["project"]), runbook, text(&row["cadence"]), last, outcome]
        })
        .collect();
    let header = ["PROJECT", "RUNBOOK", "CADENCE", "LAST DRILL", "OUTCOME"];
    let widths: Vec<usize> = (0..5)
        .map(|i| table.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: [&str; 5]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header);
    for row in &table {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary.json of every finished drill in the store.
fn finished_summaries(store: &DrillStore) -> Vec<Summary> {
    let Ok(entries) = std::fs::read_dir(store.root()) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("summary.json")).ok())
        .filter_map(|bytes| serde_json::from_slice::<Summary>(&bytes).ok())
        .collect()
}
