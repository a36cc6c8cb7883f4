//! Finding and starting the system's Chromium, and making sure it is gone
//! when the step ends however it ends.
//!
//! drillbook starts the browser itself rather than through chromiumoxide's
//! launcher so that it controls what the launcher does not: the browser gets
//! its own process group (the renderer, GPU and zygote processes are killed
//! with it, not only the process drillbook started), dies with drillbook
//! (`PR_SET_PDEATHSIG`: a `kill -9` of drillbook leaves no browser behind),
//! and gets a throwaway profile directory outside the drill directory (its
//! cookies and form data may hold what was typed, a password included).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chromiumoxide::Browser;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::handler::viewport::Viewport;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::BrowserError;

/// Executables looked for on PATH, in this order.
pub const BROWSER_NAMES: [&str; 4] = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

/// How long Chromium may take to open its DevTools endpoint (a cold start
/// on a busy two-core machine takes a few seconds).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The browser executable: `browser = "…"` from the step (a path, or a
/// name looked up on PATH), else the first of [`BROWSER_NAMES`] on PATH.
pub fn find_browser(configured: Option<&str>) -> Result<PathBuf, BrowserError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path =
        |name: &str| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate));
    match configured.map(str::trim).filter(|c| !c.is_empty()) {
        Some(given) if given.contains('/') => {
            let given = PathBuf::from(given);
            if is_executable(&given) {
                Ok(given)
            } else {
                Err(BrowserError::NoBrowser(format!(
                    "`browser = \"{}\"` is not an executable file. Install Chromium (Debian/Ubuntu: `apt-get install \
                     chromium`) or fix the path",
                    given.display()
                )))
            }
        }
        Some(name) => on_path(name).ok_or_else(|| {
            BrowserError::NoBrowser(format!(
                "`browser = \"{name}\"` is not on PATH. Install Chromium (Debian/Ubuntu: `apt-get install chromium`) \
                 or give its full path"
            ))
        }),
        None => BROWSER_NAMES.iter().find_map(|name| on_path(name)).ok_or_else(|| {
            BrowserError::NoBrowser(format!(
                "no Chromium found: none of {} is on PATH. Install it (Debian/Ubuntu: `apt-get install chromium`; \
                 Fedora: `dnf install chromium`) or give `browser = \"/path/to/chromium\"` in the step",
                BROWSER_NAMES.join(", ")
            ))
        }),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running Chromium, connected over the DevTools protocol. Killed (with
/// every process of its group) and its profile removed by [`Chromium::close`]
/// or, if the step's task is dropped, when this is dropped.
pub struct Chromium {
    pub browser: Browser,
    /// `Chrome/156.0.8078.129`.
    pub version: String,
    child: tokio::process::Child,
    pgid: Option<i32>,
    profile: PathBuf,
    handler: tokio::task::JoinHandle<()>,
    closed: bool,
}

impl Chromium {
    pub async fn launch(executable: &Path, viewport: (u32, u32)) -> Result<Chromium, BrowserError> {
        let profile = std::env::temp_dir().join(format!("drillbook-browser-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&profile).map_err(|e| {
            BrowserError::Launch(format!("cannot create a profile directory {}: {e}", profile.display()))
        })?;
        let mut command = tokio::process::Command::new(executable);
        command
            .args([
                "--headless",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--disable-breakpad",
                "--disable-features=Translate,MediaRouter,OptimizationHints,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,AutofillServerCommunication",
                "--password-store=basic",
                "--use-mock-keychain",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={},{}", viewport.0, viewport.1))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // Chromium refuses to run as root with its sandbox (it needs user namespaces it cannot get).
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            command.arg("--no-sandbox");
        }
        command.arg("about:blank");
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                // The browser dies with drillbook, even a drillbook killed with SIGKILL.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(BrowserError::Launch(format!("cannot start {}: {error}", executable.display())));
            }
        };
        // process_group(0): the pid is the group id. Never 0 or 1 (kill(0) and kill(-1) hit far too much).
        let pgid = child.id().and_then(|p| i32::try_from(p).ok()).filter(|&p| p > 1);
        let mut chromium_guard = Guard { pgid, profile: Some(profile.clone()) };
        let stderr = child.stderr.take();
        let endpoint = tokio::time::timeout(LAUNCH_TIMEOUT, devtools_endpoint(stderr)).await;
        let ws = match endpoint {
            Ok(Ok(ws)) => ws,
            Ok(Err(said)) => {
                let status = child.try_wait().ok().flatten().map(|s| format!(" ({s})")).unwrap_or_default();
                return Err(BrowserError::Launch(format!(
                    "{} exited before opening its DevTools endpoint{status}{}",
                    executable.display(),
                    if said.is_empty() { String::new() } else { format!(": {said}") }
                )));
            }
            Err(_) => {
                return Err(BrowserError::Launch(format!(
                    "{} did not open its DevTools endpoint within {} s",
                    executable.display(),
                    LAUNCH_TIMEOUT.as_secs()
                )));
            }
        };
        let config = HandlerConfig {
            viewport: Some(Viewport { width: viewport.0, height: viewport.1, ..Viewport::default() }),
            ..HandlerConfig::default()
        };
        let (browser, mut handler) = Browser::connect_with_config(ws, config)
            .await
            .map_err(|e| BrowserError::Launch(format!("cannot connect to the browser's DevTools endpoint: {e}")))?;
        // The handler is what moves every message between the browser and the pages.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let version = match browser.version().await {
            Ok(version) => version.product,
            Err(_) => String::new(),
        };
        chromium_guard.disarm();
        Ok(Chromium { browser, version, child, pgid, profile, handler, closed: false })
    }

    /// Kills the browser (every process of its group), waits for it, and
    /// removes its profile.
    pub async fn close(mut self) {
        self.closed = true;
        kill_group(self.pgid);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        self.handler.abort();
        let _ = tokio::fs::remove_dir_all(&self.profile).await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if !self.closed {
            kill_group(self.pgid);
            self.handler.abort();
            let _ = std::fs::remove_dir_all(&self.profile);
        }
    }
}

/// Kills the group and removes the profile if the launch fails half way.
struct Guard {
    pgid: Option<i32>,
    profile: Option<PathBuf>,
}

impl Guard {
    fn disarm(&mut self) {
        self.pgid = None;
        self.profile = None;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        kill_group(self.pgid);
        if let Some(profile) = &self.profile {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

fn kill_group(pgid: Option<i32>) {
    if let Some(pgid) = pgid {
        // SAFETY: a plain syscall; pgid > 1 was checked when it was taken.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Reads the browser's stderr until it says where its DevTools endpoint is
/// (`DevTools listening on ws://…`), then keeps draining it in the
/// background so that a chatty browser never blocks on a full pipe.
/// `Err`: what it said before its stderr closed.
async fn devtools_endpoint(stderr: Option<tokio::process::ChildStderr>) -> Result<String, String> {
    let Some(stderr) = stderr else { return Err(String::new()) };
    let mut lines = BufReader::new(stderr).lines();
    let mut said: Vec<String> = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(at) = line.find("ws://") {
            let ws = line[at..].trim().to_string();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(ws);
        }
        said.push(line);
        if said.len() > 5 {
            said.remove(0);
        }
    }
    Err(said.join(" / "))
}
