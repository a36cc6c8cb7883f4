//! `browser-check` end to end through the real binary and the system's real
//! headless Chromium, against a site served by this test on 127.0.0.1 (the
//! admin of the site the reference drill restores: a login form with a CSRF
//! token, the Site object, a page editor, an image upload, a page that
//! answers 500): the happy path with its screenshots journaled and hashed, a
//! wrong password (the failure names `expect_text` and keeps the page's
//! screenshot), a selector that never appears (its timeout), an error page,
//! a missing browser, training against drillbook's own sandbox site, and a
//! secret typed into a field that reaches no file of the drill.
//!
//! Chromium must be installed (`./scripts/test` installs it): without it
//! every test here fails saying so; none is skipped.

use crate::support;

use std::path::{Path, PathBuf};

use drillbook::engine::browser::site::{Site, SiteOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{Home, stderr_of, stdout_of};

const USER: &str = "admin";
const PASSWORD: &str = "browser-secret-7c41d9";

/// Fails (never skips) when no Chromium is installed.
fn require_chromium() {
    if let Err(error) = drillbook::engine::browser::find_browser(None) {
        panic!("these tests drive the system's Chromium and found none: {error}");
    }
}

/// The test site, served on its own runtime for as long as the test holds it.
struct TestSite {
    site: Option<Site>,
    runtime: tokio::runtime::Runtime,
}

impl TestSite {
    fn start() -> TestSite {
        require_chromium();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let options = SiteOptions { credentials: Some((USER.into(), PASSWORD.into())) };
        let site = runtime.block_on(Site::start(options)).expect("serve the test site");
        TestSite { site: Some(site), runtime }
    }

    fn url(&self) -> String {
        self.site.as_ref().unwrap().url()
    }
}

impl Drop for TestSite {
    fn drop(&mut self) {
        let _guard = self.runtime.enter();
        self.site.take();
    }
}

fn sample_image() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-upload.png")
}

fn runbook(url: &str, actions: &str) -> String {
    format!(
        r#"[runbook]
id = "browser-drill"
title = "Browser drill"
[vars.admin_password]
secret = true
env = "TEST_ADMIN_PASSWORD"
[vars.sample_image]
default = "{image}"
[[step]]
id = "smoke-browser"
kind = "browser-check"
url = "{url}"
timeout = "10s"
viewport = {{ width = 1024, height = 700 }}
{actions}
"#,
        image = sample_image().display()
    )
}

const LOGIN: &str = r##"
[[step.action]]
goto = "/admin/login/"
expect_status = 200
[[step.action]]
fill = { "#id_username" = "admin", "#id_password" = "{{ admin_password }}" }
[[step.action]]
click = "button[type=submit]"
"##;

fn run(home: &Home, text: &str, password: &str) -> std::process::Output {
    let path = home.runbook("browser.toml", text);
    home.cmd_std()
        .args(["run", "--plain", "--yes"])
        .arg(path)
        .env("TEST_ADMIN_PASSWORD", password)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run drillbook")
}

fn events(home: &Home) -> Vec<Value> {
    home.journal().lines().map(|line| serde_json::from_str::<Value>(line).unwrap()["event"].clone()).collect()
}

/// The last browser evidence of the step.
fn browser_evidence(home: &Home) -> Value {
    events(home)
        .into_iter()
        .rev()
        .find(|e| e["type"] == "chosen" && e["choice"]["kind"] == "browser")
        .map(|e| e["choice"].clone())
        .unwrap_or_else(|| panic!("no browser evidence in\n{}", home.journal()))
}

fn attached(home: &Home) -> Vec<Value> {
    events(home).into_iter().filter(|e| e["type"] == "file_attached").collect()
}

fn finished(home: &Home) -> Value {
    events(home)
        .into_iter()
        .rev()
        .find(|e| e["type"] == "step_finished" && e["step"] == "smoke-browser")
        .unwrap_or_else(|| panic!("the step did not finish:\n{}", home.journal()))
}

/// Every attached file exists under the drill with the journaled SHA-256 and size, and is a PNG.
fn assert_files_match(home: &Home) -> Vec<String> {
    let drill = home.only_drill();
    let mut paths = Vec::new();
    for file in attached(home) {
        assert_eq!(file["origin"], "screenshot", "{file}");
        let path = file["path"].as_str().unwrap();
        let bytes = std::fs::read(drill.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{path} is not a PNG");
        assert_eq!(file["bytes"].as_u64(), Some(bytes.len() as u64), "{path}");
        assert_eq!(file["sha256"].as_str().unwrap(), drillbook::digest::hex(&Sha256::digest(&bytes)), "{path}");
        paths.push(path.to_string());
    }
    paths
}

fn action_verdicts(evidence: &Value) -> Vec<(String, bool)> {
    evidence["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["verb"].as_str().unwrap().to_string(), a["ok"].as_bool().unwrap()))
        .collect()
}

#[test]
fn the_happy_path_logs_in_edits_uploads_and_keeps_hashed_screenshots() {
    let site = TestSite::start();
    let home = Home::new();
    // The site answers the upload with the size it received.
    let size = std::fs::metadata(sample_image()).unwrap().len();
    let actions = format!(
        r##"{LOGIN}
[[step.action]]
expect_text = "Dashboard"
[[step.action]]
screenshot = "after-login"
[[step.action]]
goto = "/admin/sites/site/1/change/"
[[step.action]]
fill = {{ "#id_name" = "acme (DR drill)" }}
[[step.action]]
click = "button[type=submit]"
[[step.action]]
expect_text = "was changed successfully"
[[step.action]]
goto = "/admin/pages/add/"
[[step.action]]
fill = {{ "#id_title" = "DR drill page", "#id_body" = "Created by the drill." }}
[[step.action]]
click = "button[type=submit]"
[[step.action]]
wait_for = ".success"
timeout = "5s"
[[step.action]]
goto = "/admin/images/add/"
[[step.action]]
upload = {{ selector = "input[type=file]", file = "{{{{ sample_image }}}}" }}
[[step.action]]
click = "button[type=submit]"
[[step.action]]
expect_text = "Uploaded sample-upload.png ({size} bytes)"
[[step.action]]
goto = "/admin/"
[[step.action]]
expect_text = "DR drill page"
[[step.action]]
screenshot = "dashboard"
"##
    );
    let output = run(&home, &runbook(&site.url(), &actions), PASSWORD);
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{}", stderr_of(&output));

    let evidence = browser_evidence(&home);
    let verdicts = action_verdicts(&evidence);
    assert_eq!(verdicts.len(), 20, "{evidence:#}");
    assert!(verdicts.iter().all(|(_, ok)| *ok), "{evidence:#}");
    assert_eq!(evidence["url"], site.url());
    assert!(evidence["browser"].as_str().unwrap().contains("Chrome"), "{evidence:#}");
    let first = &evidence["actions"][0];
    assert_eq!((first["verb"].as_str(), first["status"].as_u64()), (Some("goto"), Some(200)), "{first}");
    assert_eq!(first["url"], format!("{}/admin/login/", site.url()));
    // After the login's click the browser is on the dashboard.
    assert_eq!(evidence["actions"][2]["url"], format!("{}/admin/", site.url()), "{evidence:#}");
    let upload = evidence["actions"].as_array().unwrap().iter().find(|a| a["verb"] == "upload").unwrap();
    assert!(upload["target"].as_str().unwrap().contains("sample-upload.png"), "{upload}");
    assert!(stdout.contains("ok 17. expect_text"), "{stdout}");

    let files = assert_files_match(&home);
    assert_eq!(files, ["evidence/smoke-browser/after-login.png", "evidence/smoke-browser/dashboard.png"]);
    let shots: Vec<&Value> =
        evidence["actions"].as_array().unwrap().iter().filter(|a| a["verb"] == "screenshot").collect();
    assert_eq!(shots[0]["screenshot"], "evidence/smoke-browser/after-login.png");
    assert_eq!(finished(&home)["result"], "succeeded");

    // The reports list the actions and the screenshots.
    let drill = home.only_drill();
    let markdown = std::fs::read_to_string(drill.join("report.md")).unwrap();
    assert!(markdown.contains("upload input[type=file] ← sample-upload.png"), "{markdown}");
    assert!(markdown.contains("after-login.png"), "{markdown}");
    let html = std::fs::read_to_string(drill.join("report.html")).unwrap();
    assert!(html.contains("What the browser did") && html.contains("dashboard.png"), "html report");
}

#[test]
fn a_wrong_password_fails_naming_expect_text_and_keeps_the_page() {
    let site = TestSite::start();
    let home = Home::new();
    let actions = format!("{LOGIN}\n[[step.action]]\nexpect_text = \"Dashboard\"\ntimeout = \"2s\"\n");
    let output = run(&home, &runbook(&site.url(), &actions), "not-the-password");
    assert!(!output.status.success(), "a wrong password must fail the drill");
    let stdout = stdout_of(&output);

    let done = finished(&home);
    assert_eq!(done["result"], "failed");
    let reason = done["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("action 4 (expect_text \"Dashboard\")"), "{reason}");
    assert!(reason.contains("does not show \"Dashboard\""), "{reason}");
    // What the page showed: the login form's error.
    assert!(reason.contains("Please enter the correct username and password"), "{reason}");
    assert!(reason.contains("/admin/login/"), "{reason}");

    let evidence = browser_evidence(&home);
    let verdicts = action_verdicts(&evidence);
    assert_eq!(verdicts.last().unwrap(), &("expect_text".to_string(), false), "{evidence:#}");
    assert!(verdicts[..3].iter().all(|(_, ok)| *ok), "{evidence:#}");
    let failing = evidence["actions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(failing["screenshot"], "evidence/smoke-browser/failed-4.png", "{failing}");
    assert_eq!(assert_files_match(&home), ["evidence/smoke-browser/failed-4.png"]);
    assert!(stdout.contains("FAILED 4. expect_text"), "{stdout}");
    assert!(!home.journal().contains("not-the-password"), "a secret's value reached the journal");
}

#[test]
fn a_selector_that_never_appears_fails_when_its_timeout_is_up() {
    let site = TestSite::start();
    let home = Home::new();
    let actions = format!(
        "{LOGIN}\n[[step.action]]\nexpect_text = \"Dashboard\"\n[[step.action]]\nclick = \"#publish-everything\"\ntimeout = \"1s\"\n"
    );
    let output = run(&home, &runbook(&site.url(), &actions), PASSWORD);
    assert!(!output.status.success());
    let reason = finished(&home)["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("action 5 (click #publish-everything)"), "{reason}");
    assert!(reason.contains("no element matches `#publish-everything` (waited 1s)"), "{reason}");
    assert!(reason.contains("showing: \"") && reason.contains("Dashboard"), "{reason}");
    let evidence = browser_evidence(&home);
    let failing = evidence["actions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((failing["verb"].as_str(), failing["ok"].as_bool()), (Some("click"), Some(false)), "{failing}");
    assert!(failing["duration_ms"].as_u64().unwrap() >= 1000, "it waited its timeout: {failing}");
    assert_eq!(assert_files_match(&home), ["evidence/smoke-browser/failed-5.png"]);
}

#[test]
fn an_error_page_fails_expect_status_with_what_it_answered() {
    let site = TestSite::start();
    let home = Home::new();
    let actions = "[[step.action]]\ngoto = \"/error/\"\nexpect_status = 200\n";
    let output = run(&home, &runbook(&site.url(), actions), PASSWORD);
    assert!(!output.status.success());
    let reason = finished(&home)["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("action 1 (goto /error/): expected HTTP 200, the page answered 500"), "{reason}");
    assert!(reason.contains("Server Error (500)"), "{reason}");
    let evidence = browser_evidence(&home);
    assert_eq!(evidence["actions"][0]["status"], 500, "{evidence:#}");
}

#[test]
fn a_secret_typed_into_a_field_reaches_no_file_of_the_drill() {
    let site = TestSite::start();
    let home = Home::new();
    // The password is typed, the login succeeds, the page is screenshotted with
    // the field filled (the step fails afterwards so a failing page is kept too).
    let actions = r##"
[[step.action]]
goto = "/admin/login/"
[[step.action]]
fill = { "#id_username" = "admin", "#id_password" = "{{ admin_password }}" }
[[step.action]]
screenshot = "filled-in"
[[step.action]]
click = "button[type=submit]"
[[step.action]]
expect_text = "Dashboard"
[[step.action]]
expect_text = "no such text"
timeout = "1s"
"##;
    let output = run(&home, &runbook(&site.url(), actions), PASSWORD);
    assert!(!output.status.success(), "the last action fails");
    let evidence = browser_evidence(&home);
    assert_eq!(action_verdicts(&evidence).iter().filter(|(_, ok)| *ok).count(), 5, "{evidence:#}");
    let files = assert_files_match(&home);
    assert_eq!(files, ["evidence/smoke-browser/filled-in.png", "evidence/smoke-browser/failed-6.png"]);
    let drill = home.only_drill();
    for name in ["report.md", "report.html", "report.json"] {
        assert!(drill.join(name).exists(), "{name} was written");
    }
    let mut checked = 0;
    for file in home.all_files() {
        let bytes = std::fs::read(&file).unwrap();
        assert!(memchr::memmem::find(&bytes, PASSWORD.as_bytes()).is_none(), "the secret is in {}", file.display());
        assert!(!file.to_string_lossy().contains(PASSWORD), "the secret names {}", file.display());
        checked += 1;
    }
    assert!(checked >= 6, "journal, log, reports, screenshots: {checked} files");
    let output = format!("{}{}", stdout_of(&output), stderr_of(&output));
    assert!(!output.contains(PASSWORD), "the secret is in drillbook's output");
}

#[test]
fn a_missing_browser_says_how_to_install_one() {
    require_chromium();
    let home = Home::new();
    let text = runbook("http://127.0.0.1:9", "browser = \"/nonexistent/chromium\"\n[[step.action]]\ngoto = \"/\"\n");
    let output = run(&home, &text, PASSWORD);
    assert!(!output.status.success());
    let reason = finished(&home)["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("`browser = \"/nonexistent/chromium\"` is not an executable file"), "{reason}");
    assert!(reason.contains("apt-get install chromium"), "{reason}");
}

#[test]
fn training_drives_the_sandbox_site_not_the_runbooks() {
    require_chromium();
    let home = Home::new();
    let runbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/browser-smoke.toml");
    let output = home
        .cmd_std()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--training", "--plain", "--yes", "--var", "project=acme"])
        .arg(&runbook)
        .env("DR_ADMIN_PASSWORD", "training-password")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{}", stderr_of(&output));
    let evidence = browser_evidence(&home);
    assert_eq!(evidence["sandbox"], true, "{evidence:#}");
    assert!(evidence["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{evidence:#}");
    assert!(action_verdicts(&evidence).iter().all(|(_, ok)| *ok), "{evidence:#}");
    assert!(!stdout.contains("dr.acme.com/admin"), "training never visits the runbook's site:\n{stdout}");
    assert_eq!(assert_files_match(&home).len(), 2);
}
