//! The roster (`--roster FILE`): which projects are expected to drill which
//! runbooks, and how often. A project in the roster with no drill at all is
//! what the register exists to catch: it shows as OVERDUE, "never drilled".
//!
//! ```toml
//! [[project]]
//! name = "acme"
//! runbooks = ["backup-verification"]
//! cadence = "quarterly"      # optional: the runbook's own, else quarterly
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::runbook::duration::parse_cadence;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    pub projects: Vec<RosterProject>,
    /// The roster lists every project there is (a drill repository's
    /// project files): a project with drills and no entry is retired.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterProject {
    pub name: String,
    pub runbooks: Vec<String>,
    /// As written, checked to parse.
    pub cadence: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("cannot read the roster {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("roster {}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoster {
    #[serde(default)]
    project: Vec<RawProject>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: String,
    runbooks: Vec<String>,
    cadence: Option<String>,
}

impl Roster {
    pub fn load(path: &Path) -> Result<Roster, RosterError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| RosterError::Read { path: path.to_path_buf(), source })?;
        Roster::parse(&text).map_err(|message| RosterError::Invalid { path: path.to_path_buf(), message })
    }

    /// Parses and checks a roster; the error names the line.
    pub fn parse(text: &str) -> Result<Roster, String> {
        let raw: RawRoster = toml::from_str(text).map_err(|error| {
            let place = error
                .span()
                .map(|span| format!("line {}: ", text[..span.start.min(text.len())].matches('\n').count() + 1))
                .unwrap_or_default();
            format!("{place}{}", error.message().trim())
        })?;
        let mut projects: Vec<RosterProject> = Vec::new();
        for project in raw.project {
            let name = project.name.trim().to_string();
            if name.is_empty() {
                return Err("a [[project]] has an empty `name`".into());
            }
            if project.runbooks.is_empty() || project.runbooks.iter().any(|r| r.trim().is_empty()) {
                return Err(format!("project `{name}`: `runbooks` must list at least one runbook id"));
            }
            if let Some(cadence) = &project.cadence {
                parse_cadence(cadence).map_err(|e| {
                    format!("project `{name}`: cadence `{cadence}`: {e} (or weekly, monthly, quarterly, yearly)")
                })?;
            }
            if projects.iter().any(|p| p.name == name) {
                return Err(format!("project `{name}` is listed twice"));
            }
            let runbooks = project.runbooks.iter().map(|r| r.trim().to_string()).collect();
            projects.push(RosterProject { name, runbooks, cadence: project.cadence });
        }
        Ok(Roster { projects, complete: false })
    }

    /// The roster's entry for a project's runbook: `Some(cadence)` when expected.
    pub fn expects(&self, project: Option<&str>, runbook: &str) -> Option<Option<&str>> {
        let project = self.projects.iter().find(|p| Some(p.name.as_str()) == project)?;
        project.runbooks.iter().any(|r| r == runbook).then_some(project.cadence.as_deref())
    }

    /// Every (project, runbook) the roster expects.
    pub fn expected(&self) -> impl Iterator<Item = (&str, &str)> {
        self.projects.iter().flat_map(|p| p.runbooks.iter().map(move |r| (p.name.as_str(), r.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_lists_projects_with_their_runbooks_and_cadence() {
        let roster = Roster::parse(
            "[[project]]\nname = \"acme\"\nrunbooks = [\"backup-verification\", \"dr\"]\ncadence = \"30d\"\n\
             [[project]]\nname = \"beta\"\nrunbooks = [\"backup-verification\"]\n",
        )
        .unwrap();
        assert_eq!(roster.expects(Some("acme"), "dr"), Some(Some("30d")));
        assert_eq!(roster.expects(Some("beta"), "backup-verification"), Some(None));
        assert_eq!(roster.expects(Some("beta"), "dr"), None);
        assert_eq!(roster.expects(None, "dr"), None);
        assert_eq!(roster.expected().count(), 3);
    }

    #[test]
    fn mistakes_are_named() {
        let error = Roster::parse("[[project]]\nname = \"a\"\nrunbook = [\"x\"]\n").unwrap_err();
        assert!(error.starts_with("line 3: unknown field `runbook`"), "{error}");
        let error = Roster::parse("[[project]]\nname = \"a\"\nrunbooks = [\"x\"]\ncadence = \"often\"\n").unwrap_err();
        assert!(error.contains("cadence `often`"), "{error}");
        let error = Roster::parse("[[project]]\nname = \"a\"\nrunbooks = []\n").unwrap_err();
        assert!(error.contains("at least one runbook"), "{error}");
        let twice = "[[project]]\nname = \"a\"\nrunbooks = [\"x\"]\n";
        let error = Roster::parse(&format!("{twice}{twice}")).unwrap_err();
        assert!(error.contains("listed twice"), "{error}");
    }
}
