//! Shared helpers for tests that run the real `drillbook` binary, and the pieces every
//! other support file builds on: the one HTTP client ([`http`]), the one way to start a
//! server ([`server`]) and the one way to wait ([`wait_for`]).
//!
//! tests/main.rs declares it once (`mod support;`), and the servers' harnesses
//! (`moto.rs`, `k8s.rs`, `postgres.rs`, `fault_proxy.rs`, `tmux.rs`…) next to it at the
//! crate root (`#[path = "support/NAME.rs"] mod NAME;`); they use it as `crate::support`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

/// A private DRILLBOOK_HOME for one test.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Home { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `drillbook` with this home, no colour, no inherited CI flag.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("drillbook").expect("binary");
        cmd.env("DRILLBOOK_HOME", self.path()).env("NO_COLOR", "1").env_remove("CI");
        cmd
    }

    pub fn drills(&self) -> Vec<PathBuf> {
        let mut drills: Vec<PathBuf> = std::fs::read_dir(self.path().join("drills"))
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        drills.sort();
        drills
    }

    pub fn only_drill(&self) -> PathBuf {
        let drills = self.drills();
        assert_eq!(drills.len(), 1, "expected one drill, found {drills:?}");
        drills[0].clone()
    }

    pub fn journal(&self) -> String {
        std::fs::read_to_string(self.only_drill().join("journal.jsonl")).expect("journal")
    }

    /// Writes a runbook into the home's parent temp dir and returns its path.
    pub fn runbook(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write runbook");
        path
    }

    /// Every file under the home, recursively (for secret greps).
    pub fn all_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

impl Home {
    /// A `std::process::Command` for spawning (assert_cmd's waits).
    pub fn cmd_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("drillbook"));
        cmd.env("DRILLBOOK_HOME", self.path()).env("NO_COLOR", "1").env_remove("CI");
        cmd
    }

    /// `drillbook run --plain --yes RUNBOOK` in the background: no stdin,
    /// stdout and stderr piped for `wait_with_output`.
    pub fn spawn_run(&self, runbook: &Path) -> std::process::Child {
        self.cmd_std()
            .args(["run", "--plain", "--yes"])
            .arg(runbook)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn drillbook")
    }

    /// `drillbook run --plain RUNBOOK` that holds its drill open: it waits on
    /// stdin (kept open) once the journal contains `journaled`. Returns the
    /// process, the drill directory and the drill id.
    pub fn spawn_holder(&self, runbook: &Path, journaled: &str) -> (std::process::Child, PathBuf, String) {
        let holder = self
            .cmd_std()
            .args(["run", "--plain"])
            .arg(runbook)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn drillbook");
        let drill = wait_for("the drill's journal", HOLDER_PATIENCE, || {
            self.drills().first().cloned().filter(|d| d.join("journal.jsonl").exists())
        });
        let id = drill.file_name().expect("drill id").to_string_lossy().to_string();
        wait_for("the drill's lock", HOLDER_PATIENCE, || {
            std::fs::read_to_string(drill.join("lock")).ok().filter(|l| l.contains("pid"))
        });
        wait_for(&format!("{journaled:?} in the journal"), HOLDER_PATIENCE, || {
            Some(()).filter(|()| self.journal().contains(journaled))
        });
        (holder, drill, id)
    }
}

/// How long [`Home::spawn_holder`] waits for each sign of the drill.
const HOLDER_PATIENCE: Duration = Duration::from_secs(10);

pub mod frontends;
pub mod http;
/// The reliability suite's summary (see `tests/support/reliability.rs`).
pub mod reliability;
pub mod server;
pub mod wait;

// Not every test binary waits, or waits in async code.
#[allow(unused_imports)]
pub use wait::{wait_for, wait_for_async};
