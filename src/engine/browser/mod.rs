//! `browser-check`: drive the system's headless Chromium over the DevTools
//! protocol (chromiumoxide) through the actions of a step: open pages, fill
//! and submit forms, wait for what a page must show, upload a file, take
//! screenshots. Each action's result is evidence; a failing action leaves a
//! screenshot of the page it failed on. What is typed into fields is never
//! journaled, logged or shown: the evidence names the selectors only, and
//! every text read back from the page is redacted of secrets.

pub mod launch;
pub mod site;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, EventFrameStartedLoading, EventFrameStoppedLoading,
};
use chromiumoxide::cdp::js_protocol::runtime::{CallArgument, CallFunctionOnParams};
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::drill::evidence::{BrowserActionResult, BrowserResult, Evidence};
use crate::engine::render::RenderError;
use crate::engine::{EngineEvent, OutputStream, SavedFile};
use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{BrowserCheckSpec, BrowserVerb};

pub use launch::{BROWSER_NAMES, find_browser};

/// How much of a page's visible text a failure quotes.
const PAGE_TEXT_CHARS: usize = 300;
/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(50);
/// How long after a click a navigation may take to start before the click
/// is taken to have loaded nothing.
const NAVIGATION_START: Duration = Duration::from_millis(400);
/// How much longer than its own limit an action may take before the browser
/// is taken to have stopped answering.
const OUTER_GRACE: Duration = Duration::from_secs(3);

/// A `browser-check` step with its templates rendered.
#[derive(Clone)]
pub struct BrowserStep {
    /// The base URL the actions run against (the sandbox site's, in training).
    pub base: String,
    /// `browser = "…"` as rendered.
    pub browser: Option<String>,
    pub viewport: (u32, u32),
    pub actions: Vec<Rendered>,
    /// Values to mask in whatever is read back from the page.
    pub secrets: Vec<String>,
    /// Runs against drillbook's sandbox site (training).
    pub sandbox: bool,
}

impl std::fmt::Debug for BrowserStep {
    // Never the fill values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserStep").field("base", &self.base).field("actions", &self.actions.len()).finish()
    }
}

/// One action, rendered.
#[derive(Clone)]
pub struct Rendered {
    pub action: Act,
    pub timeout: Duration,
}

#[derive(Clone)]
pub enum Act {
    Goto {
        path: String,
        url: String,
        expect_status: Option<u16>,
    },
    /// Selector → value (may be a secret).
    Fill(Vec<(String, String)>),
    Click(String),
    WaitFor(String),
    ExpectText(String),
    Upload {
        selector: String,
        file: PathBuf,
    },
    Screenshot(String),
}

impl Act {
    fn verb(&self) -> &'static str {
        match self {
            Act::Goto { .. } => "goto",
            Act::Fill(_) => "fill",
            Act::Click(_) => "click",
            Act::WaitFor(_) => "wait_for",
            Act::ExpectText(_) => "expect_text",
            Act::Upload { .. } => "upload",
            Act::Screenshot(_) => "screenshot",
        }
    }

    /// What it acts on, as the evidence and the log say it: never a value typed.
    fn target(&self) -> String {
        match self {
            Act::Goto { path, .. } => path.clone(),
            Act::Fill(fields) => fields.iter().map(|(selector, _)| selector.as_str()).collect::<Vec<_>>().join(", "),
            Act::Click(selector) | Act::WaitFor(selector) => selector.clone(),
            Act::ExpectText(text) => format!("\"{text}\""),
            Act::Upload { selector, file } => {
                format!("{selector} ← {}", file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
            }
            Act::Screenshot(name) => name.clone(),
        }
    }
}

/// Why a `browser-check` could not do its work (an action that found the
/// page otherwise than expected is not an error: it is in the evidence).
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(transparent)]
    Render(RenderError),
    #[error("{0}")]
    NoBrowser(String),
    #[error("cannot start the browser: {0}")]
    Launch(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot save a screenshot: {0}")]
    Save(String),
    #[error("cancelled")]
    Cancelled,
}

impl BrowserStep {
    /// Renders the step. `sandbox`: the training site's base URL, which
    /// replaces the runbook's (and the origin of any absolute `goto`).
    pub fn render(
        spec: &BrowserCheckSpec,
        context: &TemplateContext,
        templater: &Templater,
        sandbox: Option<&str>,
    ) -> Result<BrowserStep, BrowserError> {
        let plain = |text: &str, key: &str| {
            templater.render_plain(text, context).map_err(RenderError::at(key)).map_err(BrowserError::Render)
        };
        let runbook_base = plain(&spec.url.text, "url")?.trim().to_string();
        crate::runbook::parse_http_url(&runbook_base).map_err(|e| BrowserError::Invalid(format!("`url`: {e}")))?;
        let base = sandbox.map_or_else(|| runbook_base.clone(), str::to_string);
        let browser = spec.browser.as_ref().map(|b| plain(&b.text, "browser")).transpose()?;
        let mut actions = Vec::new();
        for (index, action) in spec.actions.iter().enumerate() {
            let at = |key: &str| format!("action {} `{key}`", index + 1);
            let action_ = match &action.verb {
                BrowserVerb::Goto { path, expect_status } => {
                    let path = plain(&path.text, &at("goto"))?.trim().to_string();
                    let url = join(&base, &path, sandbox.is_some());
                    crate::runbook::parse_http_url(&url)
                        .map_err(|e| BrowserError::Invalid(format!("action {} `goto`: {e}", index + 1)))?;
                    Act::Goto { path, url, expect_status: *expect_status }
                }
                BrowserVerb::Fill(fields) => {
                    let mut rendered = Vec::new();
                    for (selector, value) in fields {
                        // A value may be a secret: rendered real, like a command's `env`.
                        let value = templater
                            .render_env(&value.text, context)
                            .map_err(RenderError::at(at("fill")))
                            .map_err(BrowserError::Render)?;
                        rendered.push((selector.clone(), value));
                    }
                    Act::Fill(rendered)
                }
                BrowserVerb::Click(t) => Act::Click(plain(&t.text, &at("click"))?),
                BrowserVerb::WaitFor(t) => Act::WaitFor(plain(&t.text, &at("wait_for"))?),
                BrowserVerb::ExpectText(t) => Act::ExpectText(plain(&t.text, &at("expect_text"))?),
                BrowserVerb::Upload { selector, file } => Act::Upload {
                    selector: plain(&selector.text, &at("upload.selector"))?,
                    file: PathBuf::from(plain(&file.text, &at("upload.file"))?.trim()),
                },
                BrowserVerb::Screenshot(name) => Act::Screenshot(name.clone()),
            };
            actions.push(Rendered { action: action_, timeout: action.timeout.unwrap_or(spec.timeout) });
        }
        Ok(BrowserStep {
            base,
            browser,
            viewport: spec.viewport,
            actions,
            secrets: context.secret_values(),
            sandbox: sandbox.is_some(),
        })
    }

    /// What the step's log says it does.
    pub fn describe(&self) -> String {
        format!("browser-check {} ({} actions)", self.base, self.actions.len())
    }

    /// Every file to upload must be there before a browser starts.
    pub fn check_uploads(&self) -> Result<(), BrowserError> {
        for (index, action) in self.actions.iter().enumerate() {
            if let Act::Upload { file, .. } = &action.action
                && !file.is_file()
            {
                return Err(BrowserError::Invalid(format!(
                    "action {} (upload): the file {} does not exist or is not a file",
                    index + 1,
                    file.display()
                )));
            }
        }
        Ok(())
    }

    fn redact(&self, text: &str) -> String {
        let mut lines = vec![text.to_string()];
        crate::engine::redact::redact_lines(&self.secrets, &mut lines);
        lines.pop().unwrap_or_default()
    }
}

/// `base` + a `goto` path; an absolute URL stays as it is, except in the
/// sandbox, where only its path is kept (training never leaves the sandbox).
fn join(base: &str, path: &str, sandbox: bool) -> String {
    let path = if path.starts_with("http://") || path.starts_with("https://") {
        if !sandbox {
            return path.to_string();
        }
        let after_scheme = path.split_once("://").map_or("", |(_, rest)| rest);
        after_scheme.find('/').map_or("/", |at| &after_scheme[at..])
    } else {
        path
    };
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// Where the step is, for its files.
pub struct StepPlace<'a> {
    pub step_id: &'a str,
    pub attempt: u32,
    pub drill_dir: &'a Path,
}

/// What a run found: the evidence, and what (if anything) fails the step.
pub struct Outcome {
    pub result: BrowserResult,
    pub failure: Option<String>,
}

/// Runs the actions in one fresh browser, which is gone when this returns.
pub async fn run(
    step: &BrowserStep,
    place: &StepPlace<'_>,
    events: &mpsc::Sender<EngineEvent>,
    cancel: &CancellationToken,
) -> Result<Outcome, BrowserError> {
    let say = |lines: Vec<String>| {
        let events = events.clone();
        let step_id = place.step_id.to_string();
        async move {
            let _ =
                events.send(EngineEvent::Output { step_id, stream: OutputStream::Stdout, lines: lines.into() }).await;
        }
    };
    step.check_uploads()?;
    let executable = find_browser(step.browser.as_deref())?;
    let chromium = tokio::select! {
        launched = launch::Chromium::launch(&executable, step.viewport) => launched?,
        () = cancel.cancelled() => return Err(BrowserError::Cancelled),
    };
    say(vec![format!("browser: {} ({})", chromium.version, executable.display())]).await;
    let outcome = drive(step, place, &chromium, events, cancel, &say).await;
    chromium.close().await;
    outcome
}

async fn drive<F, Fut>(
    step: &BrowserStep,
    place: &StepPlace<'_>,
    chromium: &launch::Chromium,
    events: &mpsc::Sender<EngineEvent>,
    cancel: &CancellationToken,
    say: &F,
) -> Result<Outcome, BrowserError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut result = BrowserResult {
        url: step.base.clone(),
        browser: chromium.version.clone(),
        sandbox: step.sandbox,
        attempt: place.attempt,
        actions: Vec::new(),
    };
    let evidence = |result: &BrowserResult| EngineEvent::Evidence {
        step_id: place.step_id.to_string(),
        evidence: Evidence::Browser(result.clone()),
    };
    let page = tokio::select! {
        page = chromium.browser.new_page("about:blank") => {
            page.map_err(|e| BrowserError::Launch(format!("cannot open a page: {e}")))?
        }
        () = cancel.cancelled() => return Err(BrowserError::Cancelled),
    };
    let _ = events.send(evidence(&result)).await;
    let dir = place.drill_dir.join("evidence").join(place.step_id);
    for (index, action) in step.actions.iter().enumerate() {
        let number = index + 1;
        let started = Instant::now();
        let message = format!(
            "action {number}/{}: {} {}",
            step.actions.len(),
            action.action.verb(),
            step.redact(&action.action.target())
        );
        let _ = events.send(EngineEvent::Progress { step_id: place.step_id.to_string(), message }).await;
        let done = tokio::select! {
            // Each wait inside says what it waited for when its time is up; this
            // outer limit (a little longer) only catches a browser that stopped answering.
            done = tokio::time::timeout(action.timeout + OUTER_GRACE, perform(&page, &action.action, action.timeout)) => done,
            () = cancel.cancelled() => return Err(BrowserError::Cancelled),
        };
        let done = match done {
            Ok(done) => done,
            Err(_) => {
                Err(format!("did not finish within {}", crate::runbook::duration::format_duration(action.timeout)))
            }
        };
        let (status, screenshot_bytes, problem) = match done {
            Ok(Done { status, screenshot }) => (status, screenshot, None),
            Err(problem) => (None, None, Some(problem)),
        };
        let seen = tokio::time::timeout(Duration::from_secs(3), page_state(&page)).await.ok().flatten();
        let status = status.or(seen.as_ref().and_then(|s| s.status));
        let mut record = BrowserActionResult {
            index: number,
            verb: action.action.verb().to_string(),
            target: step.redact(&action.action.target()),
            url: seen.as_ref().map(|s| step.redact(&s.url)).unwrap_or_default(),
            status,
            duration_ms: started.elapsed().as_millis() as u64,
            ok: problem.is_none(),
            problem: None,
            screenshot: None,
        };
        if let (Act::Screenshot(name), Some(bytes)) = (&action.action, screenshot_bytes) {
            let saved = save(&dir, place, name, &bytes)?;
            record.screenshot = Some(saved.path.clone());
            let _ = events.send(EngineEvent::FileSaved { step_id: place.step_id.to_string(), file: saved }).await;
        }
        let failure = problem.map(|problem| {
            let mut text = format!("action {number} ({} {}): {problem}", record.verb, record.target);
            if let Some(seen) = &seen {
                let excerpt: String = seen.text.split_whitespace().collect::<Vec<_>>().join(" ");
                let mut excerpt: String = excerpt.chars().take(PAGE_TEXT_CHARS).collect();
                if seen.text.chars().count() > PAGE_TEXT_CHARS {
                    excerpt.push('…');
                }
                text.push_str(&format!(
                    "; the page was {} \"{}\"{}, showing: \"{}\"",
                    seen.url,
                    seen.title,
                    seen.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                    excerpt
                ));
            }
            step.redact(&text)
        });
        if let Some(failure) = &failure {
            record.problem = Some(failure.split_once("): ").map_or(failure.as_str(), |(_, p)| p).to_string());
            // The page it failed on, for the report.
            let shot = tokio::time::timeout(Duration::from_secs(5), screenshot(&page)).await.ok().and_then(Result::ok);
            if let Some(bytes) = shot {
                let saved = save(&dir, place, &format!("failed-{number}"), &bytes)?;
                record.screenshot = Some(saved.path.clone());
                let _ = events.send(EngineEvent::FileSaved { step_id: place.step_id.to_string(), file: saved }).await;
            }
        }
        say(vec![record.line()]).await;
        result.actions.push(record);
        let _ = events.send(evidence(&result)).await;
        if let Some(failure) = failure {
            return Ok(Outcome { result, failure: Some(failure) });
        }
    }
    Ok(Outcome { result, failure: None })
}

/// What an action found besides success.
struct Done {
    status: Option<u16>,
    screenshot: Option<Vec<u8>>,
}

impl Done {
    fn nothing() -> Done {
        Done { status: None, screenshot: None }
    }
}

async fn perform(page: &Page, action: &Act, timeout: Duration) -> Result<Done, String> {
    let limit = crate::runbook::duration::format_duration(timeout);
    let deadline = Instant::now() + timeout;
    match action {
        Act::Goto { url, expect_status, .. } => {
            match tokio::time::timeout(timeout, page.goto(url.as_str())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("cannot load {url}: {}", describe(&e))),
                Err(_) => return Err(format!("{url} did not load within {limit}")),
            }
            wait_loaded(page, deadline).await;
            let status = document_status(page).await;
            if let Some(expected) = expect_status
                && status != Some(*expected)
            {
                let answered = status.map_or("an unknown status".to_string(), |s| s.to_string());
                return Err(format!("expected HTTP {expected}, the page answered {answered}"));
            }
            Ok(Done { status, screenshot: None })
        }
        Act::Fill(fields) => {
            for (selector, value) in fields {
                let element = element(page, selector, deadline, &limit, false).await?;
                let call = CallFunctionOnParams::builder()
                    .function_declaration(
                        "function(v) { this.focus(); this.value = v; \
                         this.dispatchEvent(new Event('input', {bubbles: true})); \
                         this.dispatchEvent(new Event('change', {bubbles: true})); }",
                    )
                    .object_id(element.remote_object_id.clone())
                    .argument(CallArgument::builder().value(serde_json::Value::String(value.clone())).build())
                    .build()
                    .map_err(|e| format!("cannot fill `{selector}`: {e}"))?;
                page.execute(call).await.map_err(|e| format!("cannot fill `{selector}`: {}", describe(&e)))?;
            }
            Ok(Done::nothing())
        }
        Act::Click(selector) => {
            let element = element(page, selector, deadline, &limit, true).await?;
            // Listen before clicking: the navigation a click starts may begin at once.
            let mut started = page.event_listener::<EventFrameStartedLoading>().await.map_err(|e| describe(&e))?;
            let mut stopped = page.event_listener::<EventFrameStoppedLoading>().await.map_err(|e| describe(&e))?;
            element.click().await.map_err(|e| format!("cannot click `{selector}`: {}", describe(&e)))?;
            if tokio::time::timeout(NAVIGATION_START, started.next()).await.is_ok() {
                // It loads a page: wait for it (the action's timeout bounds this).
                let left = deadline.saturating_duration_since(Instant::now());
                if tokio::time::timeout(left, stopped.next()).await.is_err() {
                    return Err(format!("the page the click opened did not load within {limit}"));
                }
                wait_loaded(page, deadline).await;
            }
            Ok(Done::nothing())
        }
        Act::WaitFor(selector) => {
            element(page, selector, deadline, &limit, true).await?;
            Ok(Done::nothing())
        }
        Act::ExpectText(text) => {
            let expression = format!(
                "(document.body ? document.body.innerText : '').includes({})",
                serde_json::Value::String(text.clone())
            );
            loop {
                let found: bool = evaluate(page, &expression).await.unwrap_or(false);
                if found {
                    return Ok(Done::nothing());
                }
                // One last look at (or after) the deadline: it waits its whole limit, never less.
                let now = Instant::now();
                if now >= deadline {
                    return Err(format!("the page does not show \"{text}\" (waited {limit})"));
                }
                tokio::time::sleep(POLL.min(deadline - now)).await;
            }
        }
        Act::Upload { selector, file } => {
            let element = element(page, selector, deadline, &limit, false).await?;
            let absolute = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            let params = SetFileInputFilesParams::builder()
                .files(vec![absolute.to_string_lossy().into_owned()])
                .object_id(element.remote_object_id.clone())
                .build()
                .map_err(|e| format!("cannot set the file of `{selector}`: {e}"))?;
            page.execute(params).await.map_err(|e| {
                format!("cannot set the file of `{selector}` (is it an input type=file?): {}", describe(&e))
            })?;
            Ok(Done::nothing())
        }
        Act::Screenshot(_) => {
            let bytes = screenshot(page).await.map_err(|e| format!("cannot take the screenshot: {e}"))?;
            Ok(Done { status: None, screenshot: Some(bytes) })
        }
    }
}

/// The element `selector` finds, waiting for it (and for it to be visible,
/// when `visible`) up to the action's limit.
async fn element(
    page: &Page,
    selector: &str,
    deadline: Instant,
    limit: &str,
    visible: bool,
) -> Result<chromiumoxide::Element, String> {
    let quoted = serde_json::Value::String(selector.to_string());
    // 0: none, 1: there but not visible, 2: visible; a bad selector throws.
    let probe = format!(
        "(() => {{ const e = document.querySelector({quoted}); if (!e) return 0; \
         const r = e.getBoundingClientRect(); \
         return (r.width > 0 || r.height > 0) && getComputedStyle(e).visibility !== 'hidden' ? 2 : 1; }})()"
    );
    let mut last = 0;
    loop {
        match page.evaluate_expression(probe.as_str()).await {
            Ok(result) => last = result.into_value::<u8>().unwrap_or(0),
            Err(error) => {
                let message = describe(&error);
                if message.contains("SyntaxError") || message.contains("not a valid selector") {
                    return Err(format!("`{selector}` is not a valid CSS selector"));
                }
            }
        }
        if last == 2 || (last == 1 && !visible) {
            return page
                .find_element(selector)
                .await
                .map_err(|e| format!("cannot reach `{selector}`: {}", describe(&e)));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(match last {
                0 => format!("no element matches `{selector}` (waited {limit})"),
                _ => format!("`{selector}` is on the page but not visible (waited {limit})"),
            });
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

/// Waits (briefly, within the action's limit) for the document to finish loading.
async fn wait_loaded(page: &Page, deadline: Instant) {
    while Instant::now() < deadline {
        let state: String = evaluate(page, "document.readyState").await.unwrap_or_default();
        if state == "complete" {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The HTTP status of the page's document (Chromium knows it from its
/// navigation timing), `None` for `about:blank` and error pages.
async fn document_status(page: &Page) -> Option<u16> {
    let status: Option<u16> = evaluate(
        page,
        "(() => { const n = performance.getEntriesByType('navigation')[0]; \
         return n && n.responseStatus ? n.responseStatus : null; })()",
    )
    .await?;
    status
}

struct PageState {
    url: String,
    title: String,
    text: String,
    status: Option<u16>,
}

async fn page_state(page: &Page) -> Option<PageState> {
    #[derive(serde::Deserialize)]
    struct Seen {
        url: String,
        title: String,
        text: String,
    }
    let seen: Seen = evaluate(
        page,
        "({ url: location.href, title: document.title, text: document.body ? document.body.innerText : '' })",
    )
    .await?;
    Some(PageState { url: seen.url, title: seen.title, text: seen.text, status: document_status(page).await })
}

async fn evaluate<T: serde::de::DeserializeOwned>(page: &Page, expression: &str) -> Option<T> {
    page.evaluate_expression(expression).await.ok()?.into_value().ok()
}

async fn screenshot(page: &Page) -> Result<Vec<u8>, String> {
    let params = ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).build();
    page.screenshot(params).await.map_err(|e| describe(&e))
}

/// Writes a screenshot under `evidence/STEP/` and syncs it. A later attempt
/// never overwrites an earlier one's: attempt N writes `NAME.N.png`, and a
/// name already taken gets the next free number.
fn save(dir: &Path, place: &StepPlace<'_>, name: &str, bytes: &[u8]) -> Result<SavedFile, BrowserError> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| BrowserError::Save(format!("{}: {e}", dir.display())))?;
    let mut number = place.attempt.max(1);
    loop {
        let file_name = if number == 1 { format!("{name}.png") } else { format!("{name}.{number}.png") };
        let path = dir.join(&file_name);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                file.write_all(bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| BrowserError::Save(format!("{}: {e}", path.display())))?;
                // The directory entry too: the journal will say the file exists.
                if let Ok(handle) = std::fs::File::open(dir) {
                    let _ = handle.sync_all();
                }
                return Ok(SavedFile {
                    path: format!("evidence/{}/{file_name}", place.step_id),
                    sha256: crate::digest::hex(&Sha256::digest(bytes)),
                    bytes: bytes.len() as u64,
                    label: name.to_string(),
                });
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => number += 1,
            Err(error) => return Err(BrowserError::Save(format!("{}: {error}", path.display()))),
        }
    }
}

/// A DevTools error in one line.
fn describe(error: &chromiumoxide::error::CdpError) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goto_paths_join_the_base() {
        assert_eq!(join("https://dr.acme.com", "/admin/", false), "https://dr.acme.com/admin/");
        assert_eq!(join("https://dr.acme.com/", "admin/", false), "https://dr.acme.com/admin/");
        assert_eq!(join("https://dr.acme.com", "https://other.example/x", false), "https://other.example/x");
        // Training never leaves the sandbox.
        assert_eq!(join("http://127.0.0.1:9", "https://other.example/x?y=1", true), "http://127.0.0.1:9/x?y=1");
        assert_eq!(join("http://127.0.0.1:9", "https://other.example", true), "http://127.0.0.1:9/");
    }
}
