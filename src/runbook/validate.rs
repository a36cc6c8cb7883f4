//! From the raw, spanned model to a [`Runbook`] the engine can run, with
//! every problem reported at `file:line:col` and all of them at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::diagnostic::{Diagnostic, Diagnostics, SourceText, did_you_mean};
use super::duration::parse_duration;
use super::model::{
    ALL_KINDS, RawCapture, RawChecklistItem, RawConfirm, RawDocument, RawExitCodes, RawStep, RawVar, Sp, StepKind,
    allowed_keys,
};
use super::template::Templater;
use super::types::*;

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
    message.to_string()
}

/// Where a template's value ends up decides what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TemplateUse {
    /// A command's `run`: shell-quoted; secrets become env references.
    Shell,
    /// A command's `env` value: may hold secrets.
    Env,
    /// Anything else; shown on screen and journaled, so no secrets.
    Plain,
    /// A `when` expression.
    Condition,
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

const TEMPLATE_GLOBALS: [&str; 6] = ["range", "dict", "namespace", "debug", "cycler", "joiner"];

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
            vars,
            steps,
        }
    }

    fn var(&mut self, name: &Sp<String>, var: &Sp<RawVar>) -> VarDef {
        if name.as_str() == BUILTIN_DRILL {
            self.error(
                name.span(),
                "`drill` is reserved (templates use `{{ drill.id }}`, `{{ drill.dir }}`, `{{ drill.downloads }}`)",
            );
        }
        if !is_identifier(name) {
            self.error(
                name.span(),
                format!("variable name `{}` must be letters, digits and `_`, not starting with a digit (templates use it as `{{{{ name }}}}`)", name.as_str()),
            );
        }
        if let Some(env) = &var.env
            && !is_env_name(env)
        {
            self.error(env.span(), format!("`env` = `{}` is not a valid environment variable name", env.as_str()));
        }
        if var.secret
            && let Some(default) = &var.default
        {
            self.error(
                default.span(),
                format!(
                    "secret `{}` cannot have a default: the value would sit in the runbook file; use `env` or a prompt",
                    name.as_str()
                ),
            );
        }
        let choices = var.choices.as_ref().map(|c| c.to_vec()).unwrap_or_default();
        if let Some(raw_choices) = &var.choices {
            if choices.is_empty() {
                self.error(raw_choices.span(), "`choices` is empty");
            }
            if var.secret {
                self.error(raw_choices.span(), "a secret cannot have `choices`");
            }
            if let Some(default) = &var.default
                && !default.contains("{{")
                && !choices.iter().any(|c| c == default.as_str())
            {
                self.error(default.span(), format!("default `{}` is not one of `choices`", default.as_str()));
            }
        }
        VarDef {
            name: name.to_string(),
            default: var.default.as_ref().map(template),
            prompt: var.prompt.as_ref().map(|p| p.to_string()),
            help: var.help.as_ref().map(|h| h.to_string()),
            secret: var.secret,
            env: var.env.as_ref().map(|e| e.to_string()),
            choices,
        }
    }

    /// Defaults may use other variables, but not secrets and not in a cycle.
    fn check_var_defaults(&mut self, raw_vars: &[(&Sp<String>, &Sp<RawVar>)], vars: &[VarDef]) {
        let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for var in vars {
            let Some(default) = &var.default else { continue };
            let names = self.check_names(default, TemplateUse::Plain, vars, &HashMap::new(), &HashMap::new(), "");
            let deps = names
                .iter()
                .filter_map(|name| vars.iter().find(|v| &v.name == name).map(|v| v.name.as_str()))
                .collect();
            graph.insert(var.name.as_str(), deps);
        }
        for (name, raw) in raw_vars {
            if let Some(cycle) = find_cycle(name.as_str(), &graph) {
                let span = raw.default.as_ref().map_or(name.span(), |d| d.span());
                self.error(span, format!("variable defaults form a cycle: {}", cycle.join(" -> ")));
            }
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
            if let Some(name) = capture_name(raw) {
                let capture_span = raw.capture.as_ref().map_or(raw.span(), |c| c.span());
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
            if let Some(name) = capture_name(raw)
                && let Some(info) = all_captures.get(&name)
                && info.step_id == raw.id.as_str()
            {
                earlier.insert(name, info.clone());
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
        for (template, usage) in &templates {
            self.check_names(template, *usage, vars, earlier, all_captures, &raw.id);
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

    fn require<'r, T>(&mut self, raw: &Sp<RawStep>, value: &'r Option<Sp<T>>, key: &str) -> Option<&'r Sp<T>> {
        if value.is_none() {
            self.error(
                raw.kind.span(),
                format!("a `{}` step needs `{key}` (step `{}`)", raw.kind.name(), raw.id.as_str()),
            );
        }
        value.as_ref()
    }

    fn action(&mut self, raw: &Sp<RawStep>, kind: StepKind) -> Option<Action> {
        let action = match kind {
            StepKind::Manual => Action::Manual,
            StepKind::Checklist => {
                let items = self.require(raw, &raw.items, "items")?;
                if items.is_empty() {
                    self.error(items.span(), "`items` is empty: a checklist needs at least one item");
                }
                let items = items
                    .iter()
                    .map(|item| match item {
                        RawChecklistItem::Text(text) => ChecklistItem { text: text.clone(), required: true },
                        RawChecklistItem::Full(full) => {
                            ChecklistItem { text: full.text.clone(), required: full.required }
                        }
                    })
                    .collect();
                Action::Checklist(ChecklistSpec { items })
            }
            StepKind::Command => Action::Command(self.command(raw)?),
            StepKind::S3Backup => {
                let bucket = template(self.require(raw, &raw.bucket, "bucket")?);
                let select = match raw.select.as_ref().map(|s| s.as_str()) {
                    None | Some("latest") => BackupSelect::Latest,
                    Some("choose") => BackupSelect::Choose,
                    Some(other) => {
                        self.error(
                            raw.select.as_ref().map_or(0..0, |s| s.span()),
                            format!("`select` = `{other}`: expected \"latest\" or \"choose\""),
                        );
                        BackupSelect::Latest
                    }
                };
                if let Some(pattern) = &raw.pattern
                    && !pattern.contains("{{")
                    && let Err(error) = regex::Regex::new(pattern)
                {
                    self.error(
                        pattern.span(),
                        format!("`pattern` is not a valid regex: {}", one_line(&error.to_string())),
                    );
                }
                let parts = raw.parts.as_ref().and_then(|p| self.ranged(p, "parts", 1, 64)).map(|p| p as u32);
                self.require_typed_capture(raw);
                Action::S3Backup(S3BackupSpec {
                    bucket,
                    prefix: raw.prefix.as_ref().map(template),
                    pattern: raw.pattern.as_ref().map(template),
                    select,
                    versions: raw.versions.as_ref().is_some_and(|v| **v),
                    profile: raw.profile.as_ref().map(template),
                    region: raw.region.as_ref().map(template),
                    endpoint: raw.endpoint.as_ref().map(template),
                    parts,
                    timeout: self.duration(&raw.timeout, "timeout"),
                })
            }
            StepKind::S3Check => {
                let bucket = template(self.require(raw, &raw.bucket, "bucket")?);
                const KNOWN: [&str; 6] = [
                    "versioning",
                    "encryption",
                    "public_access_blocked",
                    "replication",
                    "object_lock",
                    "ownership_enforced",
                ];
                let expect = raw.expect.as_ref().map(|e| e.get_ref().clone()).unwrap_or_default();
                if let Some(raw_expect) = &raw.expect {
                    for key in expect.keys() {
                        if !KNOWN.contains(&key.as_str()) {
                            let hint =
                                did_you_mean(key, KNOWN).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                            self.error(
                                raw_expect.span(),
                                format!(
                                    "unknown bucket property `{key}` in `expect`{hint} (known: {})",
                                    KNOWN.join(", ")
                                ),
                            );
                        }
                    }
                }
                if raw.expect.is_none()
                    && raw.same_as.is_none()
                    && raw.replicated_from.is_none()
                    && raw.other_region_than.is_none()
                {
                    self.error(raw.kind.span(), "an `s3-check` step needs `expect`, `same_as`, `other_region_than` or `replicated_from`: otherwise it checks nothing");
                }
                Action::S3Check(S3CheckSpec {
                    bucket,
                    expect,
                    same_as: raw.same_as.as_ref().map(template),
                    other_region_than: raw.other_region_than.as_ref().map(template),
                    replicated_from: raw.replicated_from.as_ref().map(template),
                    profile: raw.profile.as_ref().map(template),
                    region: raw.region.as_ref().map(template),
                    endpoint: raw.endpoint.as_ref().map(template),
                })
            }
            StepKind::K8sImageTag => {
                let target = self.target(raw)?;
                let select = match raw.select.as_ref().map(|s| s.as_str()) {
                    None | Some("current") => TagSelect::Current,
                    Some("choose") => TagSelect::Choose,
                    Some(other) => {
                        self.error(
                            raw.select.as_ref().map_or(0..0, |s| s.span()),
                            format!("`select` = `{other}`: expected \"current\" or \"choose\""),
                        );
                        TagSelect::Current
                    }
                };
                self.require_typed_capture(raw);
                Action::K8sImageTag(K8sImageTagSpec { target, deployments: deployments(raw), select })
            }
            StepKind::K8sWait => Action::K8sWait(K8sWaitSpec {
                target: self.target(raw)?,
                deployments: deployments(raw),
                expect_tag: raw.expect_tag.as_ref().map(template),
                timeout: self.duration(&raw.timeout, "timeout"),
            }),
            StepKind::K8sScale => {
                let target = self.target(raw)?;
                let all = raw.all.as_ref().is_some_and(|a| **a);
                if all && raw.deployments.is_some() {
                    self.error(raw.kind.span(), "use either `all = true` or `deployments = [...]`, not both");
                } else if !all && raw.deployments.is_none() {
                    self.error(raw.kind.span(), "a `k8s-scale` step needs `all = true` or `deployments = [...]`");
                }
                if let Some(statefulsets) = raw.statefulsets.as_ref().filter(|s| ***s)
                    && raw.deployments.is_some()
                {
                    self.error(
                        statefulsets.span(),
                        "`statefulsets = true` scales every StatefulSet in the namespace: use it with `all = true`, \
                         not with a `deployments` list",
                    );
                }
                let replicas = self.require(raw, &raw.replicas, "replicas")?;
                let replicas = self.ranged(replicas, "replicas", 0, 10_000).unwrap_or(0) as u32;
                Action::K8sScale(K8sScaleSpec {
                    target,
                    deployments: deployments(raw),
                    all,
                    statefulsets: raw.statefulsets.as_ref().is_some_and(|s| **s),
                    replicas,
                    wait: raw.wait.as_ref().is_none_or(|w| **w),
                    timeout: self.duration(&raw.timeout, "timeout"),
                })
            }
            StepKind::HttpCheck => {
                let url = template(self.require(raw, &raw.url, "url")?);
                let method = raw.method.as_ref().map_or_else(|| "GET".to_string(), |m| m.to_ascii_uppercase());
                if !["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"].contains(&method.as_str()) {
                    self.error(
                        raw.method.as_ref().map_or(0..0, |m| m.span()),
                        format!("unknown HTTP method `{method}`"),
                    );
                }
                if !url.text.contains("{{")
                    && let Err(message) = parse_http_url(&url.text)
                {
                    self.error(url.span.clone(), format!("`url`: {message}"));
                }
                if let (Some(_), Some(older)) = (&raw.expect_status, &raw.status) {
                    self.error(
                        older.span(),
                        "`status` is the older spelling of `expect_status`: give one of them, not both",
                    );
                }
                let (key, status) = match (&raw.expect_status, &raw.status) {
                    (Some(status), _) => ("expect_status", Some(status)),
                    (None, status) => ("status", status.as_ref()),
                };
                let status = status.and_then(|s| self.ranged(s, key, 100, 599)).unwrap_or(200) as u16;
                let retries = raw.retries.as_ref().and_then(|r| self.ranged(r, "retries", 0, 1000)).unwrap_or(0) as u32;
                if method == "HEAD"
                    && let Some(contains) = &raw.contains
                {
                    self.error(contains.span(), "a HEAD response has no body: `contains` needs another `method`");
                }
                self.require_typed_capture(raw);
                Action::HttpCheck(HttpCheckSpec {
                    url,
                    method,
                    status,
                    contains: raw.contains.as_ref().map(template),
                    retries,
                    interval: self.duration(&raw.interval, "interval").unwrap_or(Duration::from_secs(5)),
                    timeout: self.duration(&raw.timeout, "timeout"),
                    ca_file: raw.ca_file.as_ref().map(template),
                })
            }
        };
        Some(action)
    }

    fn command(&mut self, raw: &Sp<RawStep>) -> Option<CommandSpec> {
        let run = template(self.require(raw, &raw.run, "run")?);
        if run.text.trim().is_empty() {
            self.error(run.span.clone(), "`run` is empty");
        }
        let expect_exit = match raw.expect_exit.as_ref() {
            None => vec![0],
            Some(codes) => {
                let list = match codes.get_ref() {
                    RawExitCodes::One(code) => vec![*code],
                    RawExitCodes::Many(codes) => codes.clone(),
                };
                if list.is_empty() {
                    self.error(codes.span(), "`expect_exit` is empty");
                }
                for code in &list {
                    if !(0..=255).contains(code) {
                        self.error(codes.span(), format!("exit code {code} is out of range 0..=255"));
                    }
                }
                list.into_iter().map(|c| c.clamp(0, 255) as i32).collect()
            }
        };
        let capture = match raw.capture.as_ref() {
            None => None,
            Some(capture) => match capture.get_ref() {
                RawCapture::Name(name) => {
                    self.error(
                        capture.span(),
                        format!(
                            "a `command` step captures with a regex: capture = {{ name = \"{name}\", regex = \"...\" }}"
                        ),
                    );
                    None
                }
                RawCapture::Regex(rule) => {
                    let stream = match rule.stream.as_deref() {
                        None | Some("stdout") => CaptureStream::Stdout,
                        Some("stderr") => CaptureStream::Stderr,
                        Some("both") => CaptureStream::Both,
                        Some(other) => {
                            self.error(
                                capture.span(),
                                format!("capture `stream` = `{other}`: expected \"stdout\", \"stderr\" or \"both\""),
                            );
                            CaptureStream::Stdout
                        }
                    };
                    match regex::Regex::new(&rule.regex) {
                        Ok(regex) => Some(RegexCapture { name: rule.name.clone(), regex, stream }),
                        Err(error) => {
                            self.error(
                                capture.span(),
                                format!("capture regex is invalid: {}", one_line(&error.to_string())),
                            );
                            None
                        }
                    }
                }
            },
        };
        let env = raw
            .env
            .as_ref()
            .map(|env| {
                env.iter()
                    .map(|(name, value)| {
                        if !is_env_name(name) {
                            self.error(value.span(), format!("`{name}` is not a valid environment variable name"));
                        }
                        (name.clone(), template(value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(CommandSpec {
            run,
            cwd: raw.cwd.as_ref().map(template),
            env,
            timeout: self.duration(&raw.timeout, "timeout"),
            expect_exit,
            tty: raw.tty.as_ref().is_some_and(|t| **t),
            simulate: raw.simulate.as_ref().map(template),
            capture,
        })
    }

    fn require_typed_capture(&mut self, raw: &Sp<RawStep>) {
        if let Some(capture) = &raw.capture
            && let RawCapture::Regex(_) = capture.get_ref()
        {
            self.error(
                capture.span(),
                format!("a `{}` step captures an object: use capture = \"name\"", raw.kind.name()),
            );
        }
    }

    fn target(&mut self, raw: &Sp<RawStep>) -> Option<K8sTarget> {
        let namespace = template(self.require(raw, &raw.namespace, "namespace")?);
        Some(K8sTarget { context: raw.context.as_ref().map(template), namespace })
    }

    fn ranged(&mut self, value: &Sp<i64>, key: &str, min: i64, max: i64) -> Option<i64> {
        if (min..=max).contains(&**value) {
            Some(**value)
        } else {
            self.error(value.span(), format!("`{key}` = {} is out of range {min}..={max}", **value));
            None
        }
    }

    /// Checks every name a template uses exists at this point of the drill.
    /// Returns the root names used.
    fn check_names(
        &mut self,
        template: &Template,
        usage: TemplateUse,
        vars: &[VarDef],
        earlier: &HashMap<String, CaptureInfo>,
        all_captures: &HashMap<String, CaptureInfo>,
        step_id: &str,
    ) -> BTreeSet<String> {
        let names = if usage == TemplateUse::Condition {
            self.templater.referenced_names_in_expression(&template.text)
        } else {
            self.templater.referenced_names(&template.text)
        };
        let names = match names {
            Ok(names) => names,
            Err(message) => {
                self.error(template.span.clone(), format!("template error: {message}"));
                return BTreeSet::new();
            }
        };
        let mut roots = BTreeSet::new();
        for name in names {
            let (root, field) = match name.split_once('.') {
                Some((root, field)) => (root, Some(field.split('.').next().unwrap_or(field))),
                None => (name.as_str(), None),
            };
            roots.insert(root.to_string());
            if TEMPLATE_GLOBALS.contains(&root) {
                continue;
            }
            let span = self.name_span(template, root);
            if root == BUILTIN_DRILL {
                if let Some(field) = field
                    && !DRILL_FIELDS.contains(&field)
                {
                    self.error(span, format!("`drill` has no field `{field}` (fields: {})", DRILL_FIELDS.join(", ")));
                }
            } else if let Some(var) = vars.iter().find(|v| v.name == root) {
                if var.secret && matches!(usage, TemplateUse::Plain | TemplateUse::Condition) {
                    self.error(span, format!("secret `{root}` can only be used in a command's `run` or `env`: anywhere else it would be shown or written to disk"));
                } else if let Some(field) = field {
                    self.error(span, format!("variable `{root}` is a string: it has no field `{field}`"));
                }
            } else if let Some(capture) = earlier.get(root) {
                match (field, capture.fields) {
                    (Some(field), Some(fields)) if !fields.contains(&field) => {
                        let hint = did_you_mean(field, fields.iter().copied())
                            .map(|s| format!("did you mean `{s}`? "))
                            .unwrap_or_default();
                        self.error(
                            span,
                            format!("capture `{root}` has no field `{field}`; {hint}(fields: {})", fields.join(", ")),
                        );
                    }
                    (Some(field), None) => {
                        self.error(
                            span,
                            format!(
                                "capture `{root}` (from step `{}`) is a string: it has no field `{field}`",
                                capture.step_id
                            ),
                        );
                    }
                    _ => {}
                }
            } else if let Some(capture) = all_captures.get(root) {
                let when = if capture.step_id == step_id {
                    "by this same step".to_string()
                } else {
                    format!("by step `{}` at line {}, which runs later", capture.step_id, capture.line)
                };
                self.error(span, format!("`{root}` is used before it is captured: it is captured {when}"));
            } else {
                let candidates: Vec<&str> =
                    vars.iter().map(|v| v.name.as_str()).chain(earlier.keys().map(String::as_str)).collect();
                let hint = did_you_mean(root, candidates.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                self.error(span, format!("undefined variable `{root}`{hint} (declare it as [vars.{root}] or capture it in an earlier step)"));
            }
        }
        roots
    }

    /// Template values are shell-quoted already; quoting them again in the
    /// script would pass the quotes through literally.
    fn check_unquoted(&mut self, template: &Template) {
        if let Some(offset) = first_template_inside_quotes(&template.text) {
            let start = self.inner_offset(template, offset);
            self.error(start..start + 2, "don't put quotes around `{{ ... }}` in `run`: values are shell-quoted automatically, so these quotes would become part of the value");
        }
    }

    fn check_protected(&mut self, namespace: &Template, protected: &[Template], vars: &[VarDef]) {
        let literal = |t: &Template| -> Option<String> {
            if !t.text.contains("{{") {
                return Some(t.text.clone());
            }
            // `{{ var }}` whose var has a literal default is as good as literal.
            let name = t.text.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
            let default = vars.iter().find(|v| v.name == name)?.default.as_ref()?;
            (!default.text.contains("{{")).then(|| default.text.clone())
        };
        for guarded in protected {
            let same_text = guarded.text.trim() == namespace.text.trim();
            let same_literal = matches!((literal(guarded), literal(namespace)), (Some(a), Some(b)) if a == b);
            if same_text || same_literal {
                self.error(
                    namespace.span.clone(),
                    format!(
                        "namespace `{}` is protected ([runbook] protected): a `k8s-scale` step may not write to it",
                        namespace.text
                    ),
                );
            }
        }
    }

    fn name_span(&self, template: &Template, name: &str) -> Range<usize> {
        match template.text.find(name) {
            Some(offset) => {
                let start = self.inner_offset(template, offset);
                start..start + name.len()
            }
            None => template.span.clone(),
        }
    }

    /// Maps an offset inside a template's text to the source, skipping the
    /// opening quotes (exact for strings without escapes).
    fn inner_offset(&self, template: &Template, offset: usize) -> usize {
        let raw = self.source.text.get(template.span.clone()).unwrap_or("");
        let mut skip = if raw.starts_with("\"\"\"") || raw.starts_with("'''") { 3 } else { 1 };
        if skip == 3 && raw[3..].starts_with('\n') {
            skip += 1;
        } else if skip == 3 && raw[3..].starts_with("\r\n") {
            skip += 2;
        }
        (template.span.start + skip + offset).min(template.span.end.saturating_sub(1).max(template.span.start))
    }
}

fn collect_templates(action: &Action, out: &mut Vec<(Template, TemplateUse)>) {
    let mut plain = |t: &Option<Template>| {
        if let Some(t) = t {
            out.push((t.clone(), TemplateUse::Plain));
        }
    };
    match action {
        Action::Manual | Action::Checklist(_) => {}
        Action::Command(command) => {
            plain(&command.cwd);
            out.push((command.run.clone(), TemplateUse::Shell));
            if let Some(simulate) = &command.simulate {
                out.push((simulate.clone(), TemplateUse::Shell));
            }
            for value in command.env.values() {
                out.push((value.clone(), TemplateUse::Env));
            }
        }
        Action::S3Backup(s3) => {
            for t in [&s3.prefix, &s3.pattern, &s3.profile, &s3.region, &s3.endpoint] {
                plain(t);
            }
            out.push((s3.bucket.clone(), TemplateUse::Plain));
        }
        Action::S3Check(s3) => {
            for t in [&s3.same_as, &s3.other_region_than, &s3.replicated_from, &s3.profile, &s3.region, &s3.endpoint] {
                plain(t);
            }
            out.push((s3.bucket.clone(), TemplateUse::Plain));
        }
        Action::K8sImageTag(k8s) => push_target(&k8s.target, out),
        Action::K8sWait(k8s) => {
            if let Some(tag) = &k8s.expect_tag {
                out.push((tag.clone(), TemplateUse::Plain));
            }
            push_target(&k8s.target, out);
        }
        Action::K8sScale(k8s) => push_target(&k8s.target, out),
        // The `url` is checked with every step's common keys.
        Action::HttpCheck(http) => {
            plain(&http.contains);
            plain(&http.ca_file);
        }
    }
}

fn push_target(target: &K8sTarget, out: &mut Vec<(Template, TemplateUse)>) {
    out.push((target.namespace.clone(), TemplateUse::Plain));
    if let Some(context) = &target.context {
        out.push((context.clone(), TemplateUse::Plain));
    }
}

fn deployments(raw: &RawStep) -> Vec<String> {
    raw.deployments.as_ref().map(|d| d.to_vec()).unwrap_or_default()
}

fn capture_name(raw: &RawStep) -> Option<String> {
    raw.capture.as_ref().map(|capture| match capture.get_ref() {
        RawCapture::Name(name) => name.clone(),
        RawCapture::Regex(rule) => rule.name.clone(),
    })
}

fn template(value: &Sp<String>) -> Template {
    Template { text: value.to_string(), span: value.span() }
}

/// Offset of the first `{{` that sits inside shell quotes, if any. A
/// command substitution `$( … )` starts a fresh quoting context, as in sh.
fn first_template_inside_quotes(script: &str) -> Option<usize> {
    let bytes = script.as_bytes();
    let (mut single, mut double) = (false, false);
    let mut outer: Vec<(bool, bool)> = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if bytes[index..].starts_with(b"{{") {
            if single || double {
                return Some(index);
            }
            // Skip the expression itself: quotes inside it are template syntax.
            match script[index..].find("}}") {
                Some(end) => {
                    index += end + 2;
                    continue;
                }
                None => return None,
            }
        }
        if bytes[index..].starts_with(b"{%") {
            match script[index..].find("%}") {
                Some(end) => {
                    index += end + 2;
                    continue;
                }
                None => return None,
            }
        }
        match byte {
            b'\\' if !single => index += 1,
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'$' if !single && bytes.get(index + 1) == Some(&b'(') => {
                outer.push((single, double));
                (single, double) = (false, false);
                index += 1;
            }
            b')' if !single && !double => {
                if let Some(state) = outer.pop() {
                    (single, double) = state;
                }
            }
            _ => {}
        }
        index += 1;
    }
    None
}

fn find_cycle<'a>(start: &'a str, graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        start: &str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        seen: &mut BTreeSet<&'a str>,
    ) -> bool {
        for &next in graph.get(node).map(Vec::as_slice).unwrap_or(&[]) {
            if next == start {
                path.push(next);
                return true;
            }
            if seen.insert(next) {
                path.push(next);
                if visit(next, start, graph, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start];
    let mut seen = BTreeSet::new();
    visit(start, start, graph, &mut path, &mut seen).then(|| path.into_iter().map(str::to_string).collect())
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

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_templates_inside_quotes() {
        assert_eq!(first_template_inside_quotes("echo {{ x }}"), None);
        assert_eq!(first_template_inside_quotes("echo \"{{ x }}\""), Some(6));
        assert_eq!(first_template_inside_quotes("echo 'a' {{ x }} \"b\""), None);
        assert_eq!(first_template_inside_quotes("echo {{ x | replace('a', \"b\") }} ok"), None);
        assert_eq!(first_template_inside_quotes("echo \\\" {{ x }}"), None);
        assert_eq!(first_template_inside_quotes("echo \"$(ls \"$d\"/{{ x }} | wc -l)\" files"), None);
        assert_eq!(first_template_inside_quotes("echo \"$(echo '{{ x }}')\""), Some(14));
    }

    #[test]
    fn cycles_are_found() {
        let mut graph = BTreeMap::new();
        graph.insert("a", vec!["b"]);
        graph.insert("b", vec!["a"]);
        graph.insert("c", vec!["a"]);
        assert_eq!(find_cycle("a", &graph), Some(vec!["a".into(), "b".into(), "a".into()]));
        assert_eq!(find_cycle("c", &graph), None);
    }
}
