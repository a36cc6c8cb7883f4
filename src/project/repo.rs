//! A team drill repository: `drillbook.toml` at its root (found by walking
//! up from the current directory, as cargo finds `Cargo.toml`, or named by
//! `DRILLBOOK_REPO`), the team's patterns in `runbooks/` and one file per
//! project in `projects/`. `drillbook init` writes one.
//!
//! ```toml
//! # drillbook.toml
//! [repository]
//! runbooks = "runbooks"      # where the patterns live (default)
//! projects = "projects"      # one project file each (default)
//! cadence = "quarterly"      # a project's cadence when it names none
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::fleet::roster::{Roster, RosterProject};
use crate::runbook::duration::parse_cadence;

/// The file that marks a repository's root.
pub const REPO_FILE: &str = "drillbook.toml";
/// Names a repository from anywhere.
pub const REPO_ENV: &str = "DRILLBOOK_REPO";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub root: PathBuf,
    pub runbooks: PathBuf,
    pub projects: PathBuf,
    pub cadence: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(
        "not in a drill repository: no {REPO_FILE} here or in any parent directory (create one with `drillbook init`, \
         or set {REPO_ENV})"
    )]
    NotFound,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRepoFile {
    #[serde(default)]
    repository: RawRepository,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRepository {
    runbooks: Option<String>,
    projects: Option<String>,
    cadence: Option<String>,
}

impl Repo {
    /// The repository `DRILLBOOK_REPO` names, else the nearest `drillbook.toml`
    /// at or above `start`.
    pub fn find(start: &Path) -> Result<Repo, RepoError> {
        if let Some(root) = std::env::var_os(REPO_ENV).filter(|r| !r.is_empty()) {
            return Repo::open(Path::new(&root));
        }
        let mut dir = Some(start);
        while let Some(here) = dir {
            if here.join(REPO_FILE).is_file() {
                return Repo::open(here);
            }
            dir = here.parent();
        }
        Err(RepoError::NotFound)
    }

    /// Reads the repository rooted at `root`.
    pub fn open(root: &Path) -> Result<Repo, RepoError> {
        let path = root.join(REPO_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| RepoError::Read { path: path.clone(), source })?;
        let raw: RawRepoFile = toml::from_str(&text)
            .map_err(|e| RepoError::Invalid { path: path.clone(), message: e.message().trim().to_string() })?;
        let cadence = raw.repository.cadence.unwrap_or_else(|| "quarterly".into());
        parse_cadence(&cadence)
            .map_err(|e| RepoError::Invalid { path: path.clone(), message: format!("cadence `{cadence}`: {e}") })?;
        Ok(Repo {
            root: root.to_path_buf(),
            runbooks: root.join(raw.repository.runbooks.unwrap_or_else(|| "runbooks".into())),
            projects: root.join(raw.repository.projects.unwrap_or_else(|| "projects".into())),
            cadence,
        })
    }

    /// Every `*.toml` in `dir`, sorted by name.
    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        files.sort();
        files
    }

    pub fn project_files(&self) -> Vec<PathBuf> {
        Repo::files(&self.projects)
    }

    pub fn runbook_files(&self) -> Vec<PathBuf> {
        Repo::files(&self.runbooks)
    }

    /// `projects/NAME.toml`, if there is one.
    pub fn project_file(&self, name: &str) -> Option<PathBuf> {
        let path = self.projects.join(format!("{name}.toml"));
        path.is_file().then_some(path)
    }
}

/// A project as the list and the register need it, read without resolving
/// its pattern in full: its name, the pattern's id and the cadence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectEntry {
    pub name: String,
    pub file: PathBuf,
    /// The pattern's `[runbook] id`, or why it could not be read.
    pub runbook_id: Result<String, String>,
    pub cadence: String,
}

/// Reads every project file's header and its pattern's id. A pattern read
/// once serves every project that names it.
pub fn entries(repo: &Repo) -> Vec<ProjectEntry> {
    #[derive(Deserialize)]
    struct Head {
        project: HeadProject,
    }
    #[derive(Deserialize)]
    struct HeadProject {
        name: String,
        runbook: String,
        cadence: Option<String>,
    }
    #[derive(Deserialize)]
    struct PatternHead {
        runbook: PatternMeta,
    }
    #[derive(Deserialize)]
    struct PatternMeta {
        id: String,
        cadence: Option<String>,
    }
    let mut patterns: std::collections::HashMap<PathBuf, Result<(String, Option<String>), String>> =
        std::collections::HashMap::new();
    repo.project_files()
        .into_iter()
        .map(|file| {
            let fallback = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let head = std::fs::read_to_string(&file)
                .map_err(|e| e.to_string())
                .and_then(|text| toml::from_str::<Head>(&text).map_err(|e| e.message().trim().to_string()));
            let head = match head {
                Ok(head) => head,
                Err(error) => {
                    return ProjectEntry {
                        name: fallback,
                        file,
                        runbook_id: Err(error),
                        cadence: repo.cadence.clone(),
                    };
                }
            };
            let pattern_path = file.parent().unwrap_or(Path::new(".")).join(&head.project.runbook);
            let pattern = patterns
                .entry(pattern_path.clone())
                .or_insert_with(|| {
                    std::fs::read_to_string(&pattern_path)
                        .map_err(|e| format!("{}: {e}", pattern_path.display()))
                        .and_then(|text| {
                            toml::from_str::<PatternHead>(&text)
                                .map(|p| (p.runbook.id, p.runbook.cadence))
                                .map_err(|e| format!("{}: {}", pattern_path.display(), e.message().trim()))
                        })
                })
                .clone();
            let cadence = head
                .project
                .cadence
                .or_else(|| pattern.as_ref().ok().and_then(|(_, c)| c.clone()))
                .unwrap_or_else(|| repo.cadence.clone());
            ProjectEntry { name: head.project.name, file, runbook_id: pattern.map(|(id, _)| id), cadence }
        })
        .collect()
}

/// The register's roster: every project the repository lists, complete
/// (a project with drills and no file any more is retired).
pub fn roster(entries: &[ProjectEntry]) -> Roster {
    Roster {
        projects: entries
            .iter()
            .filter_map(|e| {
                Some(RosterProject {
                    name: e.name.clone(),
                    runbooks: vec![e.runbook_id.clone().ok()?],
                    cadence: Some(e.cadence.clone()),
                })
            })
            .collect(),
        complete: true,
    }
}
