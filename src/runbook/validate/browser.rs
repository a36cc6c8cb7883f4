//! The checks of a `browser-check` step: a base `url`, a viewport that fits
//! a screen, and actions that each do exactly one thing with a selector
//! that is not empty. Screenshot names are literal file names, so no
//! variable (and no secret) can ever name a file.

use std::collections::HashSet;
use std::time::Duration;

use super::{Validator, template};
use crate::runbook::model::{RawBrowserAction, RawStep, Sp};
use crate::runbook::types::*;

/// Each action's limit when neither it nor the step gives one.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_VIEWPORT: (u32, u32) = (1280, 800);

impl Validator<'_> {
    pub(super) fn browser_check(&mut self, raw: &Sp<RawStep>) -> Option<BrowserCheckSpec> {
        let Some(url) = raw.url.as_ref() else {
            self.error(
                raw.kind.span(),
                format!(
                    "a `browser-check` step needs `url`, the site's base URL (step `{}`): e.g. url = \"https://dr.example.com\"",
                    raw.id.as_str()
                ),
            );
            return None;
        };
        if !url.contains("{{")
            && let Err(message) = parse_http_url(url)
        {
            self.error(url.span(), format!("`url`: {message}"));
        }
        let viewport = match &raw.viewport {
            None => DEFAULT_VIEWPORT,
            Some(viewport) => {
                let width = self.ranged(&viewport.width, "viewport.width", 200, 7680).unwrap_or(1280);
                let height = self.ranged(&viewport.height, "viewport.height", 200, 4320).unwrap_or(800);
                (width as u32, height as u32)
            }
        };
        if let Some(browser) = &raw.browser
            && browser.trim().is_empty()
        {
            self.error(browser.span(), "`browser` is empty: give the path of chromium, or leave it out to use PATH");
        }
        let mut actions = Vec::new();
        let mut names = HashSet::new();
        match &raw.action {
            None => self.error(
                raw.kind.span(),
                "a `browser-check` step needs `[[step.action]]` entries (goto, fill, click, wait_for, expect_text, \
                 upload, screenshot): otherwise it checks nothing",
            ),
            Some(list) if list.is_empty() => self.error(list.span(), "`action` is empty"),
            Some(list) => {
                for (index, action) in list.iter().enumerate() {
                    if let Some(action) = self.browser_action(index + 1, action, &mut names) {
                        actions.push(action);
                    }
                }
            }
        }
        Some(BrowserCheckSpec {
            url: template(url),
            viewport,
            timeout: self.duration(&raw.timeout, "timeout").unwrap_or(DEFAULT_ACTION_TIMEOUT),
            browser: raw.browser.as_ref().map(template),
            actions,
        })
    }

    fn browser_action(
        &mut self,
        number: usize,
        raw: &Sp<RawBrowserAction>,
        names: &mut HashSet<String>,
    ) -> Option<BrowserAction> {
        let mut verbs: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
        macro_rules! present {
            ($($field:ident),*) => {$(
                if let Some(value) = &raw.$field {
                    verbs.push((stringify!($field), value.span()));
                }
            )*};
        }
        present!(goto, fill, click, wait_for, expect_text, upload, screenshot);
        let at = format!("action {number}");
        match verbs.as_slice() {
            [] => {
                self.error(
                    raw.span(),
                    format!(
                        "{at} does nothing: give it one of goto, fill, click, wait_for, expect_text, upload, screenshot"
                    ),
                );
                return None;
            }
            [_] => {}
            [_, second, ..] => {
                let list = verbs.iter().map(|(verb, _)| format!("`{verb}`")).collect::<Vec<_>>().join(" and ");
                self.error(
                    second.1.clone(),
                    format!("{at} has {list}: each action does one thing; split it into separate [[step.action]]"),
                );
                return None;
            }
        }
        if let Some(status) = &raw.expect_status
            && raw.goto.is_none()
        {
            self.error(
                status.span(),
                format!("{at}: `expect_status` goes with `goto` (the status of the page it loads)"),
            );
        }
        let timeout = self.duration(&raw.timeout, "timeout");
        let verb = if let Some(goto) = &raw.goto {
            if goto.trim().is_empty() {
                self.error(goto.span(), format!("{at}: `goto` is empty: give a path such as \"/admin/\""));
            }
            let expect_status = raw.expect_status.as_ref().and_then(|s| self.ranged(s, "expect_status", 100, 599));
            BrowserVerb::Goto { path: template(goto), expect_status: expect_status.map(|s| s as u16) }
        } else if let Some(fill) = &raw.fill {
            if fill.is_empty() {
                self.error(fill.span(), format!("{at}: `fill` is empty: give {{ \"selector\" = \"value\" }}"));
            }
            let fields = fill
                .iter()
                .map(|(key, value)| {
                    if key.trim().is_empty() {
                        self.error(value.span(), format!("{at}: a `fill` selector is empty"));
                    }
                    (key.clone(), template(value))
                })
                .collect();
            BrowserVerb::Fill(fields)
        } else if let Some(click) = &raw.click {
            BrowserVerb::Click(self.selector(&at, click, "click"))
        } else if let Some(wait_for) = &raw.wait_for {
            BrowserVerb::WaitFor(self.selector(&at, wait_for, "wait_for"))
        } else if let Some(text) = &raw.expect_text {
            if text.trim().is_empty() {
                self.error(text.span(), format!("{at}: `expect_text` is empty"));
            }
            BrowserVerb::ExpectText(template(text))
        } else if let Some(upload) = &raw.upload {
            let selector = self.selector(&at, &upload.selector, "upload");
            if upload.file.trim().is_empty() {
                self.error(upload.file.span(), format!("{at}: `upload.file` is empty"));
            }
            BrowserVerb::Upload { selector, file: template(&upload.file) }
        } else if let Some(name) = &raw.screenshot {
            let text = name.trim();
            let valid = !text.is_empty()
                && text.len() <= 64
                && !text.starts_with('.')
                && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !valid {
                self.error(
                    name.span(),
                    format!(
                        "{at}: screenshot name `{text}` must be a file name of letters, digits, `-`, `_` and `.` \
                         (no variables: a file name is never secret), e.g. \"after-login\""
                    ),
                );
            } else if text.starts_with("failed-") {
                self.error(
                    name.span(),
                    format!("{at}: `failed-…` names the screenshot of a failing page: choose another"),
                );
            } else if !names.insert(text.to_string()) {
                self.error(name.span(), format!("{at}: another screenshot of this step is named `{text}`"));
            }
            BrowserVerb::Screenshot(text.strip_suffix(".png").unwrap_or(text).to_string())
        } else {
            return None;
        };
        Some(BrowserAction { verb, timeout })
    }

    fn selector(&mut self, at: &str, value: &Sp<String>, key: &str) -> Template {
        if value.trim().is_empty() {
            self.error(value.span(), format!("{at}: the `{key}` selector is empty"));
        }
        template(value)
    }
}
