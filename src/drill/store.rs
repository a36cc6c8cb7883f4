//! Where drills live: `<home>/drills/<drill-id>/`, one directory each,
//! holding the runbook snapshot, the journal, the lock, logs and downloads.
//! `<home>` is `$DRILLBOOK_HOME` or the platform data dir.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no data directory: set DRILLBOOK_HOME to a writable directory")]
    NoHome,
    #[error("cannot {op} {path}: {source}. Set DRILLBOOK_HOME to a writable directory")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("no drill `{0}`: `drillbook list` shows the drills there are")]
    NotFound(String),
    #[error("`{prefix}` matches several drills ({matches}): give more of the id")]
    Ambiguous { prefix: String, matches: String },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { op, path: path.to_path_buf(), source }
}

#[derive(Debug, Clone)]
pub struct DrillStore {
    root: PathBuf,
}

impl DrillStore {
    /// The store under `$DRILLBOOK_HOME`, else the platform data directory.
    pub fn from_env() -> Result<Self, StoreError> {
        if let Some(home) = std::env::var_os("DRILLBOOK_HOME").filter(|h| !h.is_empty()) {
            return Ok(Self::at(PathBuf::from(home)));
        }
        let dirs = directories::ProjectDirs::from("", "", "drillbook").ok_or(StoreError::NoHome)?;
        Ok(Self::at(dirs.data_dir().to_path_buf()))
    }

    pub fn at(home: PathBuf) -> Self {
        DrillStore { root: home.join("drills") }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes a new drill directory with the runbook snapshot in it (and the
    /// files it was resolved from, `sources`). Fails before anything is
    /// journaled when the directory is not writable.
    pub fn create(&self, runbook_text: &str, sources: &[(String, String)]) -> Result<DrillDir, StoreError> {
        fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
        let id = uuid::Uuid::now_v7().to_string();
        let dir = DrillDir { path: self.root.join(&id), id };
        fs::create_dir(&dir.path).map_err(io("create", &dir.path))?;
        fs::create_dir(dir.logs()).map_err(io("create", &dir.path))?;
        fs::create_dir(dir.downloads()).map_err(io("create", &dir.path))?;
        let snapshot = dir.runbook_snapshot();
        let mut file = fs::File::create(&snapshot).map_err(io("write", &snapshot))?;
        file.write_all(runbook_text.as_bytes()).map_err(io("write", &snapshot))?;
        file.sync_all().map_err(io("write", &snapshot))?;
        for (name, text) in sources {
            let path = dir.path.join(name);
            fs::write(&path, text).and_then(|()| fs::File::open(&path)?.sync_all()).map_err(io("write", &path))?;
        }
        Ok(dir)
    }

    /// An empty directory for a drill that exists elsewhere (pulled from the
    /// archive), under its own id; fails if the drill is here already.
    pub fn adopt(&self, id: &str) -> Result<DrillDir, StoreError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(StoreError::NotFound(id.to_string()));
        }
        fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
        let dir = DrillDir { path: self.root.join(id), id: id.to_string() };
        fs::create_dir(&dir.path).map_err(io("create", &dir.path))?;
        fs::create_dir(dir.logs()).map_err(io("create", &dir.path))?;
        fs::create_dir(dir.downloads()).map_err(io("create", &dir.path))?;
        Ok(dir)
    }

    /// Every drill, oldest first (ids are UUIDv7, so they sort by time).
    pub fn list(&self) -> Result<Vec<DrillDir>, StoreError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(StoreError::Io { op: "read", path: self.root.clone(), source: error }),
        };
        let mut drills: Vec<DrillDir> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.join("journal.jsonl").is_file())
            .map(|path| DrillDir { id: file_name(&path), path })
            .collect();
        drills.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(drills)
    }

    /// A drill by id or unique id prefix.
    pub fn find(&self, id: &str) -> Result<DrillDir, StoreError> {
        let matches: Vec<DrillDir> = self.list()?.into_iter().filter(|d| d.id.starts_with(id)).collect();
        match matches.as_slice() {
            [] => Err(StoreError::NotFound(id.to_string())),
            [one] => Ok(one.clone()),
            _ if matches.iter().any(|d| d.id == id) => {
                Ok(matches.into_iter().find(|d| d.id == id).ok_or_else(|| StoreError::NotFound(id.to_string()))?)
            }
            many => Err(StoreError::Ambiguous {
                prefix: id.to_string(),
                matches: many.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(", "),
            }),
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The files of one drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillDir {
    pub id: String,
    pub path: PathBuf,
}

impl DrillDir {
    pub fn journal(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    pub fn runbook_snapshot(&self) -> PathBuf {
        self.path.join("runbook.toml")
    }

    pub fn logs(&self) -> PathBuf {
        self.path.join("logs")
    }

    pub fn downloads(&self) -> PathBuf {
        self.path.join("downloads")
    }

    /// Combined output of one attempt of a step.
    pub fn log_file(&self, step: &str, attempt: u32) -> PathBuf {
        self.logs().join(format!("{step}.{attempt}.log"))
    }

    /// Stderr alone of one attempt (kept apart so warnings never pollute captures).
    pub fn stderr_log_file(&self, step: &str, attempt: u32) -> PathBuf {
        self.logs().join(format!("{step}.{attempt}.stderr.log"))
    }

    /// The drill's own diagnostic log (tracing), never the terminal.
    pub fn trace_log(&self) -> PathBuf {
        self.path.join("drillbook.log")
    }
}
