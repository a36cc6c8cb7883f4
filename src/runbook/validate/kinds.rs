//! The checks of each step kind: the keys it needs, their values and ranges,
//! turned into the kind's [`Action`].

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Validator, is_env_name, template};
use crate::runbook::diagnostic::did_you_mean;
use crate::runbook::model::{RawBucketExpect, RawCapture, RawChecklistItem, RawExitCodes, RawStep, Sp, StepKind};
use crate::runbook::types::*;

impl Validator<'_> {
    fn require<'r, T>(&mut self, raw: &Sp<RawStep>, value: &'r Option<Sp<T>>, key: &str) -> Option<&'r Sp<T>> {
        if value.is_none() {
            self.error(
                raw.kind.span(),
                format!("a `{}` step needs `{key}` (step `{}`)", raw.kind.name(), raw.id.as_str()),
            );
        }
        value.as_ref()
    }

    pub(super) fn action(&mut self, raw: &Sp<RawStep>, kind: StepKind) -> Option<Action> {
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
            StepKind::SqlCheck => Action::SqlCheck(self.sql_check(raw)?),
            StepKind::DnsCheck => Action::DnsCheck(self.dns_check(raw)?),
            StepKind::BrowserCheck => Action::BrowserCheck(self.browser_check(raw)?),
            StepKind::S3Backup => {
                let bucket = template(self.require(raw, &raw.bucket, "bucket")?);
                let select = self.backup_select(raw);
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
            StepKind::S3Check => Action::S3Check(self.s3_check(raw)?),
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
            StepKind::K8sIsolation => Action::K8sIsolation(self.k8s_isolation(raw)?),
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

    fn k8s_isolation(&mut self, raw: &Sp<RawStep>) -> Option<K8sIsolationSpec> {
        let target = self.target(raw)?;
        let production = self.require(raw, &raw.production, "production")?;
        let production = K8sTarget {
            context: production.context.as_ref().map(template),
            namespace: template(&production.namespace),
        };
        if production.namespace.text == target.namespace.text
            && production.context.as_ref().map(|c| &c.text) == target.context.as_ref().map(|c| &c.text)
        {
            self.error(
                raw.production.as_ref().map_or(0..0, |p| p.span()),
                "`production` names the DR namespace itself: compare DR with production's namespace",
            );
        }
        let patterns = |this: &mut Self, list: &Option<Sp<Vec<Sp<String>>>>, key: &str| -> Vec<String> {
            let Some(list) = list else { return Vec::new() };
            if list.is_empty() && key == "keys" {
                this.error(list.span(), "`keys` is empty: leave it out for the defaults, or name the keys to compare");
            }
            list.iter()
                .filter_map(|pattern| {
                    let ok = !pattern.trim().is_empty()
                        && pattern.chars().all(|c| c.is_ascii_alphanumeric() || "_-.*?".contains(c));
                    if !ok {
                        this.error(
                            pattern.span(),
                            format!(
                                "`{key}` entry `{}`: a variable name, with `*` and `?` as wildcards",
                                pattern.as_str()
                            ),
                        );
                    }
                    ok.then(|| pattern.to_string())
                })
                .collect()
        };
        let keys = patterns(self, &raw.keys, "keys");
        let allow = patterns(self, &raw.allow, "allow");
        let network_policy = self.enforce(&raw.network_policy, "network_policy", "require");
        let cronjobs = self.enforce(&raw.cronjobs, "cronjobs", "suspended");
        Some(K8sIsolationSpec {
            target,
            production,
            keys,
            allow,
            network_policy,
            cronjobs,
            timeout: self.duration(&raw.timeout, "timeout"),
        })
    }

    /// `require`/`suspended`, `warn` or `ignore` (default: the strict one).
    fn enforce(&mut self, value: &Option<Sp<String>>, key: &str, strict: &str) -> Enforce {
        match value.as_ref().map(|v| (v.as_str(), v.span())) {
            None => Enforce::Require,
            Some((word, _)) if word == strict => Enforce::Require,
            Some(("warn", _)) => Enforce::Warn,
            Some(("ignore", _)) => Enforce::Ignore,
            Some((other, span)) => {
                self.error(span, format!("`{key}` = `{other}`: expected \"{strict}\", \"warn\" or \"ignore\""));
                Enforce::Require
            }
        }
    }

    fn s3_check(&mut self, raw: &Sp<RawStep>) -> Option<S3CheckSpec> {
        let bucket = template(self.require(raw, &raw.bucket, "bucket")?);
        const FLAGS: [&str; 6] =
            ["versioning", "encryption", "public_access_blocked", "replication", "object_lock", "ownership_enforced"];
        const VALUES: [&str; 1] = ["object_ownership"];
        const OWNERSHIPS: [&str; 3] = ["BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"];
        let (mut expect, mut expect_values) = (BTreeMap::new(), BTreeMap::new());
        if let Some(raw_expect) = &raw.expect {
            for (key, value) in raw_expect.get_ref() {
                match (FLAGS.contains(&key.as_str()), VALUES.contains(&key.as_str()), value) {
                    (true, _, RawBucketExpect::Flag(flag)) => {
                        expect.insert(key.clone(), *flag);
                    }
                    (true, _, RawBucketExpect::Text(_)) => {
                        self.error(raw_expect.span(), format!("`expect.{key}` takes true or false"))
                    }
                    (_, true, RawBucketExpect::Text(text)) if OWNERSHIPS.contains(&text.as_str()) => {
                        expect_values.insert(key.clone(), text.clone());
                    }
                    (_, true, _) => self.error(
                        raw_expect.span(),
                        format!("`expect.{key}` takes one of {}", OWNERSHIPS.map(|o| format!("\"{o}\"")).join(", ")),
                    ),
                    (false, false, _) => {
                        let known: Vec<&str> = FLAGS.iter().chain(VALUES.iter()).copied().collect();
                        let hint = did_you_mean(key, known.iter().copied())
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        self.error(
                            raw_expect.span(),
                            format!("unknown bucket property `{key}` in `expect`{hint} (known: {})", known.join(", ")),
                        );
                    }
                }
            }
        }
        let access = self.access_probe(raw);
        let replica = raw.replica_of.as_ref().map(|source| ReplicaSpec {
            source: template(source),
            max_missing: raw.max_missing.as_ref().and_then(|m| self.ranged(m, "max_missing", 0, i64::MAX)).unwrap_or(0)
                as u64,
            max_lag: self.duration(&raw.max_lag, "max_lag"),
            sample: raw.sample.as_ref().and_then(|s| self.ranged(s, "sample", 0, 1000)).unwrap_or(20) as u32,
        });
        if raw.replica_of.is_none() {
            for (key, span) in [
                ("max_missing", raw.max_missing.as_ref().map(|v| v.span())),
                ("max_lag", raw.max_lag.as_ref().map(|v| v.span())),
                ("sample", raw.sample.as_ref().map(|v| v.span())),
            ] {
                if let Some(span) = span {
                    self.error(
                        span,
                        format!("`{key}` applies to a replica check: add `replica_of = \"SOURCE-BUCKET\"`"),
                    );
                }
            }
        }
        if raw.expect.is_none()
            && raw.same_as.is_none()
            && raw.replicated_from.is_none()
            && raw.other_region_than.is_none()
            && raw.as_identity.is_none()
            && raw.replica_of.is_none()
        {
            self.error(
                raw.kind.span(),
                "an `s3-check` step needs `expect`, `same_as`, `other_region_than`, `replicated_from`, `as` (with \
                 `can`/`cannot`) or `replica_of`: otherwise it checks nothing",
            );
        }
        Some(S3CheckSpec {
            bucket,
            prefix: raw.prefix.as_ref().map(template),
            expect,
            expect_values,
            access: access.map(Box::new),
            replica: replica.map(Box::new),
            same_as: raw.same_as.as_ref().map(template),
            other_region_than: raw.other_region_than.as_ref().map(template),
            replicated_from: raw.replicated_from.as_ref().map(template),
            profile: raw.profile.as_ref().map(template),
            region: raw.region.as_ref().map(template),
            endpoint: raw.endpoint.as_ref().map(template),
        })
    }

    /// `as`, `can` and `cannot`: who is probed and for what.
    fn access_probe(&mut self, raw: &Sp<RawStep>) -> Option<AccessSpec> {
        let permissions = |list: &Option<Sp<Vec<Sp<String>>>>, key: &str, this: &mut Self| -> Vec<Permission> {
            let mut out: Vec<Permission> = Vec::new();
            for name in list.iter().flat_map(|l| l.iter()) {
                match Permission::parse(name) {
                    Some(p) if out.contains(&p) => {
                        this.error(name.span(), format!("`{}` is listed twice", name.as_str()))
                    }
                    Some(p) => out.push(p),
                    None => {
                        let names = Permission::ALL.map(Permission::name);
                        let hint =
                            did_you_mean(name, names).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                        this.error(
                            name.span(),
                            format!(
                                "unknown permission `{}` in `{key}`{hint} (known: {})",
                                name.as_str(),
                                names.join(", ")
                            ),
                        );
                    }
                }
            }
            out
        };
        let can = permissions(&raw.can, "can", self);
        let cannot = permissions(&raw.cannot, "cannot", self);
        for p in &can {
            if cannot.contains(p) {
                let span = raw.cannot.as_ref().map_or(0..0, |c| c.span());
                self.error(span, format!("`{}` is in both `can` and `cannot`", p.name()));
            }
        }
        let Some(identity) = &raw.as_identity else {
            if let Some(list) = raw.can.as_ref().or(raw.cannot.as_ref()) {
                self.error(
                    list.span(),
                    "`can` and `cannot` need `as`: the identity to probe, e.g. as = { profile = \"shop-backup\" }",
                );
            }
            return None;
        };
        if can.is_empty() && cannot.is_empty() {
            self.error(identity.span(), "`as` needs `can` or `cannot`: the permissions to probe");
        }
        let identity = match (&identity.access_key_id, &identity.secret_access_key, &identity.profile) {
            (Some(id), Some(secret), None) => {
                ProbeIdentity::Keys { access_key_id: template(id), secret_access_key: template(secret) }
            }
            (None, None, Some(profile)) => ProbeIdentity::Profile(template(profile)),
            _ => {
                self.error(
                    identity.span(),
                    "`as` takes `access_key_id` and `secret_access_key` (from secret variables), or `profile`",
                );
                return None;
            }
        };
        Some(AccessSpec { identity, can, cannot })
    }

    pub(super) fn ranged(&mut self, value: &Sp<i64>, key: &str, min: i64, max: i64) -> Option<i64> {
        if (min..=max).contains(&**value) {
            Some(**value)
        } else {
            self.error(value.span(), format!("`{key}` = {} is out of range {min}..={max}", **value));
            None
        }
    }
}

fn deployments(raw: &RawStep) -> Vec<String> {
    raw.deployments.as_ref().map(|d| d.to_vec()).unwrap_or_default()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
