//! Project files: one project's fill-in of a shared runbook (the team's
//! pattern). A project file names the pattern, sets its variables, replaces
//! keys of steps (`[[override]]`), inserts steps (`[[add]]`) and drops
//! optional ones with a reason (`[[remove]]`):
//!
//! ```toml
//! [project]
//! name = "shop"
//! runbook = "../runbooks/backup-verification.toml"
//! cadence = "quarterly"
//! [vars]
//! prod_namespace = "shop-production"
//! [[override]]
//! step = "restore"
//! run = "inv dr deploy.db-restore --filename={{ backup.path }}"
//! ```
//!
//! [`load`] resolves it into an ordinary [`Runbook`] whose text (the
//! resolved runbook, what a drill snapshots and resumes from) says in its
//! header which project and pattern it came from. Problems of the project
//! file are reported at `file:line:col` in the project file, those of the
//! pattern in the pattern, with a "did you mean" for a misspelt step or var.

pub mod repo;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::runbook::diagnostic::{Diagnostic, Diagnostics, SourceText, did_you_mean};
use crate::runbook::model::{StepKind, allowed_keys};
use crate::runbook::{self, Runbook};

/// What a drill directory calls its copies of the project file and pattern.
pub const PROJECT_SNAPSHOT: &str = "project.toml";
pub const PATTERN_SNAPSHOT: &str = "pattern.toml";

/// Keys every step has, whatever its kind (`id` and `kind` cannot be
/// overridden); the others are the kind's (`model::allowed_keys`).
const COMMON_KEYS: [&str; 6] = ["title", "help", "when", "optional", "on_failure", "always"];

/// A project file resolved against its pattern.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub path: PathBuf,
    pub pattern_path: PathBuf,
    pub cadence: Option<String>,
    pub owner: Option<String>,
    /// The resolved runbook (its `text` is the resolved TOML).
    pub runbook: Runbook,
    /// Steps dropped, with the reason the report shows.
    pub removed: Vec<(String, String)>,
    pub project_text: String,
    pub pattern_text: String,
}

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Whether `text` is a project file (a `[project]` table naming a `runbook`)
/// rather than a runbook.
pub fn is_project(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|table| table.get("project").and_then(|p| p.as_table()).map(|p| p.contains_key("runbook")))
        .unwrap_or(false)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProjectFile {
    project: Spanned<RawProject>,
    #[serde(default)]
    vars: Option<Spanned<toml::Table>>,
    #[serde(default, rename = "override")]
    overrides: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    add: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    remove: Vec<Spanned<RawRemove>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: Spanned<String>,
    runbook: Spanned<String>,
    cadence: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemove {
    step: Spanned<String>,
    reason: Option<Spanned<String>>,
}

/// Reads a project file and its pattern and resolves them.
pub fn load(path: &Path) -> Result<Project, ProjectError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ProjectError::Read { path: display.clone(), source })?;
    resolve(path, &text)
}

/// Resolves a project file's text (read from `path`) against its pattern.
pub fn resolve(path: &Path, text: &str) -> Result<Project, ProjectError> {
    let display = path.display().to_string();
    let source = SourceText { path: &display, text };
    let error = |span: Range<usize>, message: String| Diagnostic::new(&source, span, message);
    let raw: RawProjectFile = toml::from_str(text).map_err(|e| {
        ProjectError::Invalid(Diagnostics(vec![error(e.span().unwrap_or(0..0), e.message().trim().to_string())]))
    })?;
    let project = raw.project.get_ref();
    let pattern_path = path.parent().unwrap_or(Path::new(".")).join(project.runbook.get_ref());
    let pattern_text = std::fs::read_to_string(&pattern_path).map_err(|e| {
        ProjectError::Invalid(Diagnostics(vec![error(
            project.runbook.span(),
            format!("the runbook `{}` cannot be read ({}): {e}", project.runbook.get_ref(), pattern_path.display()),
        )]))
    })?;
    resolve_with(path, text, raw, &pattern_path, pattern_text)
}

/// Resolves a project whose pattern is given (the demo's bundled project
/// and runbook, which are no files).
pub fn resolve_bundled(
    path: &Path,
    text: &str,
    pattern_path: &Path,
    pattern_text: &str,
) -> Result<Project, ProjectError> {
    let display = path.display().to_string();
    let source = SourceText { path: &display, text };
    let raw: RawProjectFile = toml::from_str(text).map_err(|e| {
        ProjectError::Invalid(Diagnostics(vec![Diagnostic::new(
            &source,
            e.span().unwrap_or(0..0),
            e.message().trim().to_string(),
        )]))
    })?;
    resolve_with(path, text, raw, pattern_path, pattern_text.to_string())
}

fn resolve_with(
    path: &Path,
    text: &str,
    raw: RawProjectFile,
    pattern_path: &Path,
    pattern_text: String,
) -> Result<Project, ProjectError> {
    let display = path.display().to_string();
    let source = SourceText { path: &display, text };
    let error = |span: Range<usize>, message: String| Diagnostic::new(&source, span, message);
    let project = raw.project.get_ref();
    // The pattern on its own first: its problems are reported where they are.
    let pattern = runbook::parse(&pattern_path.display().to_string(), &pattern_text).map_err(ProjectError::Invalid)?;
    let mut document: toml::Table = toml::from_str(&pattern_text).map_err(|e| {
        ProjectError::Invalid(Diagnostics(vec![error(project.runbook.span(), format!("the runbook: {e}"))]))
    })?;

    let mut problems = Vec::new();
    let name = project.name.get_ref().trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        problems.push(error(project.name.span(), "`name`: letters, digits, `-` and `_` only".into()));
    }
    apply_vars(&raw, &pattern, &mut document, &mut problems, &error);
    let steps = document.get_mut("step").and_then(|s| s.as_array_mut()).map(std::mem::take).unwrap_or_default();
    let mut steps: Vec<toml::Table> = steps.into_iter().filter_map(|s| s.as_table().cloned()).collect();
    apply_overrides(&raw, &pattern, &mut steps, &mut problems, &error);
    let removed = apply_removes(&raw, &pattern, &mut steps, &mut problems, &error);
    apply_adds(&raw, &mut steps, &mut problems, &error);
    if !problems.is_empty() {
        problems.sort_by_key(|d| (d.line, d.column));
        return Err(ProjectError::Invalid(Diagnostics(problems)));
    }

    // The header says where the resolved runbook came from.
    if let Some(header) = document.get_mut("runbook").and_then(|r| r.as_table_mut()) {
        header.insert("project".into(), name.into());
        if let Some(cadence) = &project.cadence {
            header.insert("cadence".into(), cadence.get_ref().clone().into());
        }
    }
    document.insert("step".into(), toml::Value::Array(steps.into_iter().map(toml::Value::Table).collect()));
    let body = toml::to_string(&document).map_err(|e| {
        ProjectError::Invalid(Diagnostics(vec![error(0..0, format!("cannot write the resolved runbook: {e}"))]))
    })?;
    let resolved_text = format!(
        "# The runbook of project `{name}`, resolved by drillbook from {} and {}.\n# Edit those files, not this one.\n\n{body}",
        display,
        pattern_path.display()
    );
    let mut runbook =
        runbook::parse(&format!("{display} (resolved)"), &resolved_text).map_err(ProjectError::Invalid)?;
    runbook.path = path.to_path_buf();
    runbook.sources =
        vec![(PROJECT_SNAPSHOT.into(), text.to_string()), (PATTERN_SNAPSHOT.into(), pattern_text.clone())];
    Ok(Project {
        name: name.to_string(),
        path: path.to_path_buf(),
        pattern_path: pattern_path.to_path_buf(),
        cadence: project.cadence.as_ref().map(|c| c.get_ref().clone()),
        owner: project.owner.as_ref().map(|o| o.get_ref().clone()),
        runbook,
        removed,
        project_text: text.to_string(),
        pattern_text,
    })
}

type Report<'a> = dyn Fn(Range<usize>, String) -> Diagnostic + 'a;

/// `[vars]`: each sets the pattern var's `default`; a secret var may only
/// name the environment variable it is read from (`{ env = "NAME" }`).
fn apply_vars(
    raw: &RawProjectFile,
    pattern: &Runbook,
    document: &mut toml::Table,
    problems: &mut Vec<Diagnostic>,
    error: &Report<'_>,
) {
    let given = raw.vars.as_ref();
    let vars = document.entry("vars").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(vars) = vars.as_table_mut() else { return };
    for declared in &pattern.vars {
        let set = given.is_some_and(|g| g.get_ref().contains_key(&declared.name));
        // The project's name fills the pattern's `project` var unless set.
        if !set && declared.name == "project" {
            if let Some(entry) = vars.get_mut("project").and_then(|v| v.as_table_mut()) {
                entry.insert("default".into(), raw.project.get_ref().name.get_ref().clone().into());
            }
            continue;
        }
        if !set && declared.default.is_none() && declared.env.is_none() && !declared.secret {
            let span = given.map_or(raw.project.span(), |g| g.span());
            problems
                .push(error(span, format!("the runbook's var `{}` has no default: set it in `[vars]`", declared.name)));
        }
    }
    let Some(given) = given else { return };
    for (name, value) in given.get_ref() {
        // The key's own span is not kept by toml::Table: the table's is the closest.
        let span = given.span();
        let Some(declared) = pattern.vars.iter().find(|v| &v.name == name) else {
            let mut message = format!("`{name}` is not a var of the runbook");
            if let Some(near) = did_you_mean(name, pattern.vars.iter().map(|v| v.name.as_str())) {
                message.push_str(&format!("; did you mean `{near}`?"));
            }
            problems.push(error(span, message));
            continue;
        };
        let entry = vars.entry(name.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(entry) = entry.as_table_mut() else { continue };
        match value {
            toml::Value::Table(table) if table.len() == 1 && table.get("env").is_some_and(|e| e.is_str()) => {
                entry.insert("env".into(), table["env"].clone());
            }
            _ if declared.secret => problems.push(error(
                span,
                format!(
                    "`{name}` is a secret: a project file may only name the environment variable it is read from \
                     (`{name} = {{ env = \"NAME\" }}`), never hold its value"
                ),
            )),
            toml::Value::String(text) => {
                entry.insert("default".into(), text.clone().into());
            }
            other => {
                entry.insert("default".into(), other.to_string().into());
            }
        }
    }
}

fn step_id(step: &toml::Table) -> &str {
    step.get("id").and_then(|i| i.as_str()).unwrap_or_default()
}

/// `did you mean` for a step id.
fn unknown_step(what: &str, id: &str, steps: &[toml::Table]) -> String {
    let mut message = format!("{what} `{id}`: the runbook has no such step");
    if let Some(near) = did_you_mean(id, steps.iter().map(step_id)) {
        message.push_str(&format!("; did you mean `{near}`?"));
    }
    message
}

fn apply_overrides(
    raw: &RawProjectFile,
    pattern: &Runbook,
    steps: &mut [toml::Table],
    problems: &mut Vec<Diagnostic>,
    error: &Report<'_>,
) {
    for entry in &raw.overrides {
        let table = entry.get_ref();
        let Some(id) = table.get("step").and_then(|s| s.as_str()) else {
            problems.push(error(entry.span(), "an `[[override]]` needs `step`, the id of the step it changes".into()));
            continue;
        };
        let Some(step) = steps.iter_mut().find(|s| step_id(s) == id) else {
            let ids: Vec<toml::Table> = pattern.steps.iter().map(|s| step_with_id(&s.id)).collect();
            problems.push(error(entry.span(), unknown_step("`[[override]]` of step", id, &ids)));
            continue;
        };
        let kind = pattern.step(id).map(|s| s.kind);
        for (key, value) in table.iter().filter(|(key, _)| key.as_str() != "step") {
            if key == "id" || key == "kind" {
                problems.push(error(
                    entry.span(),
                    format!("`{key}` cannot be overridden: `[[remove]]` the step and `[[add]]` another"),
                ));
                continue;
            }
            if let Some(kind) = kind
                && !applies(kind, key)
            {
                problems.push(error(
                    entry.span(),
                    format!("`{key}` does not apply to step `{id}` (a `{}` step)", kind.name()),
                ));
                continue;
            }
            step.insert(key.clone(), value.clone());
        }
    }
}

fn step_with_id(id: &str) -> toml::Table {
    let mut table = toml::Table::new();
    table.insert("id".into(), id.into());
    table
}

/// Whether a step of `kind` takes `key`.
fn applies(kind: StepKind, key: &str) -> bool {
    COMMON_KEYS.contains(&key) || allowed_keys(kind).contains(&key)
}

fn apply_removes(
    raw: &RawProjectFile,
    pattern: &Runbook,
    steps: &mut Vec<toml::Table>,
    problems: &mut Vec<Diagnostic>,
    error: &Report<'_>,
) -> Vec<(String, String)> {
    let mut removed = Vec::new();
    for entry in &raw.remove {
        let remove = entry.get_ref();
        let id = remove.step.get_ref();
        let Some(step) = pattern.step(id) else {
            problems.push(error(remove.step.span(), unknown_step("`[[remove]]` of step", id, steps)));
            continue;
        };
        if !step.optional {
            problems.push(error(
                remove.step.span(),
                format!("step `{id}` is required by the runbook: only an optional step can be removed"),
            ));
            continue;
        }
        let Some(reason) = remove.reason.as_ref().map(|r| r.get_ref().trim()).filter(|r| !r.is_empty()) else {
            problems.push(error(entry.span(), format!("removing `{id}` needs a `reason` (the report shows it)")));
            continue;
        };
        steps.retain(|s| step_id(s) != id);
        removed.push((id.clone(), reason.to_string()));
    }
    removed
}

/// `[[add]]`: each goes right after the step it names (which may be
/// another added step); adds that never find their place are a cycle or
/// name an unknown step.
fn apply_adds(raw: &RawProjectFile, steps: &mut Vec<toml::Table>, problems: &mut Vec<Diagnostic>, error: &Report<'_>) {
    let mut pending: Vec<&Spanned<toml::Table>> = Vec::new();
    for entry in &raw.add {
        let table = entry.get_ref();
        match (table.get("after").and_then(|a| a.as_str()), table.get("id").and_then(|i| i.as_str())) {
            (None, _) => problems.push(error(entry.span(), "an `[[add]]` needs `after`, the step it follows".into())),
            (_, None) => problems.push(error(entry.span(), "an `[[add]]` needs an `id`".into())),
            (Some(_), Some(id)) if steps.iter().any(|s| step_id(s) == id) => problems
                .push(error(entry.span(), format!("`[[add]]` of `{id}`: the runbook has a step `{id}` already"))),
            _ => pending.push(entry),
        }
    }
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|entry| {
            let table = entry.get_ref();
            let after = table.get("after").and_then(|a| a.as_str()).unwrap_or_default();
            let Some(at) = steps.iter().position(|s| step_id(s) == after) else { return true };
            let mut step = table.clone();
            step.remove("after");
            steps.insert(at + 1, step);
            false
        });
        if pending.len() == before {
            let added: Vec<&str> =
                pending.iter().filter_map(|e| e.get_ref().get("id").and_then(|i| i.as_str())).collect();
            for entry in &pending {
                let after = entry.get_ref().get("after").and_then(|a| a.as_str()).unwrap_or_default();
                let message = if added.contains(&after) {
                    format!("`[[add]]` after `{after}`: the added steps follow each other in a cycle")
                } else {
                    unknown_step("`[[add]]` after", after, steps)
                };
                problems.push(error(entry.span(), message));
            }
            break;
        }
    }
}

#[cfg(test)]
mod tests;
