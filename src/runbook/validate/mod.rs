//! From the raw, spanned model to a [`Runbook`] the engine can run, with
//! every problem reported at `file:line:col` and all of them at once.
//!
//! This module walks the document (runbook header, steps and the keys every
//! step has) and collects the diagnostics; the checks of each step kind are in
//! `kinds`, those of `[vars]` in `vars`, and those of the templates in
//! `templates`.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use sha2::{Digest, Sha256};

use self::templates::{TemplateUse, collect_templates};
use super::diagnostic::{Diagnostic, Diagnostics, SourceText, did_you_mean};
use super::duration::parse_duration;
use super::model::{ALL_KINDS, RawCapture, RawConfirm, RawDocument, RawStep, RawVar, Sp, StepKind, allowed_keys};
use super::template::Templater;
use super::types::*;
use crate::digest::hex;

mod browser;
mod dns;
mod kinds;
mod sql;

pub use dns::{DEFAULT_DNS_TIMEOUT, DEFAULT_MIN_DAYS};
pub use sql::parse_point_in_time;
mod templates;
mod vars;

/// Parses and validates a runbook's text. `path` is only used in messages.
pub fn parse(path: &str, text: &str) -> Result<Runbook, Diagnostics> {
    let source = SourceText { path, text };
    let document: RawDocument = match toml::from_str(text) {
        Ok(document) => document,
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            return Err(Diagnostics(vec![Diagnostic::new(&source, span, explain_toml_error(error.message()))]));
        }
    };
    let mut validator = Validator { source, templater: Templater::new(), diagnostics: Vec::new() };
    let runbook = validator.runbook(document);
    if validator.diagnostics.is_empty() {
        Ok(runbook)
    } else {
        validator.diagnostics.sort_by_key(|d| (d.line, d.column));
        Err(Diagnostics(validator.diagnostics))
    }
}

/// serde's messages, with a "did you mean" where a key or kind is misspelt.
fn explain_toml_error(message: &str) -> String {
    let message = message.trim();
    let backticked = |text: &str| -> Vec<String> { text.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    for (prefix, what) in [("unknown field", "key"), ("unknown variant", "value")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let names = backticked(rest);
            if let Some((found, expected)) = names.split_first() {
                let mut text = format!("unknown {what} `{found}`");
                if let Some(suggestion) = did_you_mean(found, expected.iter().map(String::as_str)) {
                    text.push_str(&format!("; did you mean `{suggestion}`?"));
                }
                if what == "value" || expected.len() <= 12 {
                    let list = expected.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ");
                    text.push_str(&format!(" (expected one of {list})"));
                } else {
                    text.push_str(" (run `drillbook schema` for every key)");
                }
                return text;
            }
        }
    }
    if message.starts_with("data did not match any variant of untagged enum RawConfirm") {
        return "`confirm` must be true, false or \"typed\"".to_string();
    }
    if message.starts_with("data did not match any variant of untagged enum RawCapture") {
        return "`capture` must be a name (\"backup\") or { name = \"...\", regex = \"...\" }".to_string();
    }
    if message.starts_with("data did not match any variant of untagged enum RawExitCodes") {
        return "`expect_exit` must be an exit code or a list of exit codes".to_string();
    }
    if message.starts_with("data did not match any variant of untagged enum RawChecklistItem") {
        return "a checklist item must be a string or { text = \"...\", required = false }".to_string();
    }
    // `min_days = "21"`: say what a number is, not the Rust type.
    if message.starts_with("invalid type: ") && message.ends_with(", expected i64") {
        return message.replace(", expected i64", ", expected a whole number (without quotes)");
    }
    message.to_string()
}

/// What a step captures, for checking later references.
#[derive(Debug, Clone)]
struct CaptureInfo {
    step_id: String,
    line: usize,
    fields: Option<&'static [&'static str]>,
}

struct Validator<'a> {
    source: SourceText<'a>,
    templater: Templater,
    diagnostics: Vec<Diagnostic>,
}

/// Built into every template: `{{ drill.id }}`, `{{ drill.dir }}`, `{{ drill.downloads }}`.
pub const BUILTIN_DRILL: &str = "drill";
pub const DRILL_FIELDS: [&str; 4] = ["id", "dir", "downloads", "value"];

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let diagnostic = Diagnostic::new(&self.source, span, message);
        self.diagnostics.push(diagnostic);
    }

    fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.source.text.len());
        self.source.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn duration(&mut self, value: &Option<Sp<String>>, key: &str) -> Option<Duration> {
        let value = value.as_ref()?;
        match parse_duration(value) {
            Ok(duration) if duration.is_zero() => {
                self.error(value.span(), format!("`{key}` must be longer than zero"));
                None
            }
            Ok(duration) => Some(duration),
            Err(message) => {
                self.error(value.span(), format!("`{key}`: {message}"));
                None
            }
        }
    }

    fn runbook(&mut self, document: RawDocument) -> Runbook {
        let meta = &document.runbook;
        if !is_slug(&meta.id) {
            self.error(
                meta.id.span(),
                "runbook `id` must be lowercase letters, digits, `-` or `_` (e.g. \"backup-verification\")",
            );
        }
        if meta.title.trim().is_empty() {
            self.error(meta.title.span(), "runbook `title` is empty");
        }
        let rto_target = self.duration(&meta.rto_target, "rto_target");
        let rpo_target = self.duration(&meta.rpo_target, "rpo_target");

        let mut raw_vars: Vec<(&Sp<String>, &Sp<RawVar>)> = document.vars.iter().collect();
        raw_vars.sort_by_key(|(name, _)| name.span().start);
        let vars: Vec<VarDef> = raw_vars.iter().map(|(name, var)| self.var(name, var)).collect();
        self.check_var_defaults(&raw_vars, &vars);

        let protected: Vec<Template> = meta.protected.iter().map(template).collect();
        for namespace in &protected {
            self.check_names(namespace, TemplateUse::Plain, &vars, &HashMap::new(), &HashMap::new(), "");
        }

        let project = meta.project.as_ref().map(template);
        if let Some(project) = &project {
            self.check_names(project, TemplateUse::Plain, &vars, &HashMap::new(), &HashMap::new(), "");
        }
        let cadence = meta.cadence.as_ref().and_then(|cadence| match super::duration::parse_cadence(cadence) {
            Ok(every) if !every.is_zero() => Some((cadence.trim().to_string(), every)),
            _ => {
                self.error(
                    cadence.span(),
                    format!(
                        "`cadence` = `{}`: expected quarterly, monthly, weekly, yearly or a duration such as \"30d\"",
                        cadence.as_str()
                    ),
                );
                None
            }
        });

        let steps = self.steps(&document.steps, &vars, &protected);

        let mut hasher = Sha256::new();
        hasher.update(self.source.text.as_bytes());
        Runbook {
            path: self.source.path.into(),
            text: self.source.text.to_string(),
            sha256: hex(&hasher.finalize()),
            id: meta.id.to_string(),
            title: meta.title.to_string(),
            description: meta.description.as_ref().map(|d| d.to_string()),
            rto_target,
            rpo_target,
            protected,
            project,
            cadence,
            vars,
            steps,
            sources: Vec::new(),
        }
    }

    fn steps(&mut self, raw_steps: &[Sp<RawStep>], vars: &[VarDef], protected: &[Template]) -> Vec<Step> {
        let mut seen_ids: HashMap<String, usize> = HashMap::new();
        let mut all_captures: HashMap<String, CaptureInfo> = HashMap::new();
        for raw in raw_steps {
            let line = self.line_of(&raw.span());
            if let Some(first_line) = seen_ids.get(raw.id.as_str()) {
                self.error(
                    raw.id.span(),
                    format!("duplicate step id `{}`: already used by the step at line {first_line}", raw.id.as_str()),
                );
            } else {
                seen_ids.insert(raw.id.to_string(), line);
            }
            for (name, capture_span) in capture_names(raw) {
                if name == BUILTIN_DRILL {
                    self.error(capture_span, "`drill` is reserved: choose another capture name");
                } else if vars.iter().any(|v| v.name == name) {
                    self.error(capture_span, format!("capture `{name}` has the same name as a variable"));
                } else if let Some(other) = all_captures.get(&name) {
                    self.error(
                        capture_span,
                        format!("capture `{name}` is already made by step `{}` (line {})", other.step_id, other.line),
                    );
                } else if !is_identifier(&name) {
                    self.error(capture_span, format!("capture name `{name}` must be letters, digits and `_`"));
                } else {
                    let fields = capture_fields(*raw.kind);
                    all_captures.insert(name, CaptureInfo { step_id: raw.id.to_string(), line, fields });
                }
            }
        }

        let mut earlier: HashMap<String, CaptureInfo> = HashMap::new();
        let mut steps = Vec::new();
        for (index, raw) in raw_steps.iter().enumerate() {
            let line = self.line_of(&raw.span());
            // A step's text runs from its header to the next step's.
            let end = raw_steps.get(index + 1).map_or(self.source.text.len(), |next| next.span().start);
            let source = self.source.text.get(raw.span().start..end).unwrap_or_default().trim().to_string();
            if let Some(mut step) = self.step(raw, line, vars, &earlier, &all_captures, protected) {
                step.source = source;
                steps.push(step);
            }
            for (name, _) in capture_names(raw) {
                if let Some(info) = all_captures.get(&name)
                    && info.step_id == raw.id.as_str()
                {
                    earlier.insert(name, info.clone());
                }
            }
        }
        if raw_steps.is_empty() {
            self.error(0..0, "the runbook has no steps: add at least one [[step]]");
        }
        steps
    }

    fn step(
        &mut self,
        raw: &Sp<RawStep>,
        line: usize,
        vars: &[VarDef],
        earlier: &HashMap<String, CaptureInfo>,
        all_captures: &HashMap<String, CaptureInfo>,
        protected: &[Template],
    ) -> Option<Step> {
        let kind = *raw.kind;
        if !is_slug(&raw.id) {
            self.error(
                raw.id.span(),
                "step `id` must be lowercase letters, digits, `-` or `_` (e.g. \"fetch-backup\")",
            );
        }
        for (key, span) in raw.kind_specific_keys() {
            if !allowed_keys(kind).contains(&key) {
                let users: Vec<&str> =
                    ALL_KINDS.iter().filter(|k| allowed_keys(**k).contains(&key)).map(|k| k.name()).collect();
                self.error(
                    span,
                    format!("`{key}` does not apply to a `{}` step (it is used by: {})", kind.name(), users.join(", ")),
                );
            }
        }
        let confirm = self.confirm(raw);
        let on_failure = match raw.on_failure.as_ref().map(|o| o.as_str()) {
            None | Some("stop") => OnFailure::Stop,
            Some("continue") => OnFailure::Continue,
            Some(other) => {
                let span = raw.on_failure.as_ref().map_or(0..0, |o| o.span());
                self.error(span, format!("`on_failure` = `{other}`: expected \"stop\" or \"continue\""));
                OnFailure::Stop
            }
        };
        let action = self.action(raw, kind)?;

        // Every template of the step, checked against what exists at this point.
        let mut templates: Vec<(Template, TemplateUse)> = Vec::new();
        if let Some(when) = &raw.when {
            templates.push((template(when), TemplateUse::Condition));
        }
        if let Some(url) = &raw.url {
            templates.push((template(url), TemplateUse::Plain));
        }
        if let Some(help) = &raw.help {
            templates.push((template(help), TemplateUse::Plain));
        }
        collect_templates(&action, &mut templates);
        let mut uses = std::collections::BTreeSet::new();
        for (template, usage) in &templates {
            let roots = self.check_names(template, *usage, vars, earlier, all_captures, &raw.id);
            uses.extend(roots.into_iter().filter(|root| earlier.contains_key(root)));
            if *usage == TemplateUse::Shell {
                self.check_unquoted(template);
            }
        }
        if let Action::K8sScale(scale) = &action {
            self.check_protected(&scale.target.namespace, protected, vars);
        }

        Some(Step {
            id: raw.id.to_string(),
            title: raw.title.as_ref().map_or_else(|| raw.id.to_string(), |t| t.to_string()),
            help: raw.help.as_ref().map(|h| h.to_string()),
            kind,
            when: raw.when.as_ref().map(template),
            optional: raw.optional,
            on_failure,
            always: raw.always,
            confirm,
            url: raw.url.as_ref().map(template),
            capture: capture_name(raw),
            uses: uses.into_iter().collect(),
            action,
            line,
            source: String::new(),
        })
    }

    fn confirm(&mut self, raw: &RawStep) -> Confirm {
        let destructive = raw.kind.get_ref() == &StepKind::K8sScale;
        match raw.confirm.as_ref() {
            None if destructive => Confirm::Typed,
            None => Confirm::No,
            Some(confirm) => match confirm.get_ref() {
                RawConfirm::Flag(true) => Confirm::YesNo,
                RawConfirm::Flag(false) if destructive => {
                    self.error(confirm.span(), "a `k8s-scale` step always asks for confirmation: use `confirm = true` or `confirm = \"typed\"`");
                    Confirm::Typed
                }
                RawConfirm::Flag(false) => Confirm::No,
                RawConfirm::Word(word) if word == "typed" => Confirm::Typed,
                RawConfirm::Word(word) => {
                    self.error(confirm.span(), format!("`confirm` = `{word}`: expected true, false or \"typed\""));
                    Confirm::No
                }
            },
        }
    }
}

fn capture_name(raw: &RawStep) -> Option<String> {
    raw.capture.as_ref().map(|capture| match capture.get_ref() {
        RawCapture::Name(name) => name.clone(),
        RawCapture::Regex(rule) => rule.name.clone(),
    })
}

/// Every capture a step makes, with where it is named: the step's own and
/// those of a `sql-check`'s checks.
fn capture_names(raw: &Sp<RawStep>) -> Vec<(String, std::ops::Range<usize>)> {
    let own = capture_name(raw).map(|name| (name, raw.capture.as_ref().map_or(raw.span(), |c| c.span())));
    let checks = raw
        .check
        .iter()
        .flat_map(|checks| checks.iter())
        .filter_map(|check| check.capture.as_ref().map(|capture| (capture.to_string(), capture.span())));
    own.into_iter().chain(checks).collect()
}

fn template(value: &Sp<String>) -> Template {
    Template { text: value.to_string(), span: value.span() }
}

fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_identifier(text: &str) -> bool {
    text.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_env_name(text: &str) -> bool {
    is_identifier(text)
}
