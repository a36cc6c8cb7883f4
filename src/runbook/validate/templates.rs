//! Checks of the templates a runbook uses: every name they refer to exists
//! where the template is used (variables, earlier captures, `drill`), secrets
//! only go where they cannot be shown, shell templates are not quoted twice,
//! and no `k8s-scale` step writes to a protected namespace.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use super::{BUILTIN_DRILL, CaptureInfo, DRILL_FIELDS, Validator};
use crate::runbook::diagnostic::did_you_mean;
use crate::runbook::types::{Action, BackupSelect, BrowserVerb, DnsExpect, K8sTarget, ProbeIdentity, Template, VarDef};

/// Where a template's value ends up decides what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TemplateUse {
    /// A command's `run`: shell-quoted; secrets become env references.
    Shell,
    /// A command's `env` value: may hold secrets.
    Env,
    /// Anything else; shown on screen and journaled, so no secrets.
    Plain,
    /// A `when` expression.
    Condition,
}

/// minijinja's global functions: names a template may use without declaring them.
const TEMPLATE_GLOBALS: [&str; 6] = ["range", "dict", "namespace", "debug", "cycler", "joiner"];

impl Validator<'_> {
    /// Checks every name a template uses exists at this point of the drill.
    /// Returns the root names used.
    pub(super) fn check_names(
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
    pub(super) fn check_unquoted(&mut self, template: &Template) {
        if let Some(offset) = first_template_inside_quotes(&template.text) {
            let start = self.inner_offset(template, offset);
            self.error(start..start + 2, "don't put quotes around `{{ ... }}` in `run`: values are shell-quoted automatically, so these quotes would become part of the value");
        }
    }

    pub(super) fn check_protected(&mut self, namespace: &Template, protected: &[Template], vars: &[VarDef]) {
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

pub(super) fn collect_templates(action: &Action, out: &mut Vec<(Template, TemplateUse)>) {
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
            if let BackupSelect::Before(before) = &s3.select {
                out.push((before.clone(), TemplateUse::Plain));
            }
            out.push((s3.bucket.clone(), TemplateUse::Plain));
        }
        Action::S3Check(s3) => {
            for t in [
                &s3.prefix,
                &s3.same_as,
                &s3.other_region_than,
                &s3.replicated_from,
                &s3.profile,
                &s3.region,
                &s3.endpoint,
            ] {
                plain(t);
            }
            out.push((s3.bucket.clone(), TemplateUse::Plain));
            if let Some(replica) = &s3.replica {
                out.push((replica.source.clone(), TemplateUse::Plain));
            }
            match s3.access.as_ref().map(|a| &a.identity) {
                // Like a command's `env`: keys reach the S3 client only (the evidence shows the
                // access key id masked to its last 4 characters).
                Some(ProbeIdentity::Keys { access_key_id, secret_access_key }) => {
                    out.push((access_key_id.clone(), TemplateUse::Env));
                    out.push((secret_access_key.clone(), TemplateUse::Env));
                }
                Some(ProbeIdentity::Profile(profile)) => out.push((profile.clone(), TemplateUse::Plain)),
                None => {}
            }
        }
        Action::K8sImageTag(k8s) => push_target(&k8s.target, out),
        Action::K8sWait(k8s) => {
            if let Some(tag) = &k8s.expect_tag {
                out.push((tag.clone(), TemplateUse::Plain));
            }
            push_target(&k8s.target, out);
        }
        Action::K8sScale(k8s) => push_target(&k8s.target, out),
        Action::K8sIsolation(k8s) => {
            push_target(&k8s.target, out);
            push_target(&k8s.production, out);
        }
        // The `url` is checked with every step's common keys.
        Action::HttpCheck(http) => {
            plain(&http.contains);
            plain(&http.ca_file);
        }
        Action::DnsCheck(dns) => {
            plain(&dns.ca_file);
            plain(&dns.nameserver);
            out.push((dns.name.clone(), TemplateUse::Plain));
            match &dns.expect {
                DnsExpect::Resolves => {}
                DnsExpect::Cname(cname) => out.push((cname.clone(), TemplateUse::Plain)),
                DnsExpect::Addresses(addresses) => {
                    out.extend(addresses.iter().map(|a| (a.clone(), TemplateUse::Plain)));
                }
            }
        }
        Action::SqlCheck(sql) => {
            out.push((sql.database.clone(), TemplateUse::Plain));
            // Like a command's `env`: may hold a secret, which reaches the server only.
            if let Some(password) = &sql.password {
                out.push((password.clone(), TemplateUse::Env));
            }
        }
        // The `url` is checked with every step's common keys.
        Action::BrowserCheck(browser) => {
            plain(&browser.browser);
            for action in &browser.actions {
                match &action.verb {
                    BrowserVerb::Goto { path, .. } => out.push((path.clone(), TemplateUse::Plain)),
                    // Like a command's `env`: a value typed into a field may be a secret (a password).
                    BrowserVerb::Fill(fields) => {
                        out.extend(fields.iter().map(|(_, value)| (value.clone(), TemplateUse::Env)));
                    }
                    BrowserVerb::Click(t) | BrowserVerb::WaitFor(t) | BrowserVerb::ExpectText(t) => {
                        out.push((t.clone(), TemplateUse::Plain));
                    }
                    BrowserVerb::Upload { selector, file } => {
                        out.push((selector.clone(), TemplateUse::Plain));
                        out.push((file.clone(), TemplateUse::Plain));
                    }
                    BrowserVerb::Screenshot(_) => {}
                }
            }
        }
    }
}

fn push_target(target: &K8sTarget, out: &mut Vec<(Template, TemplateUse)>) {
    out.push((target.namespace.clone(), TemplateUse::Plain));
    if let Some(context) = &target.context {
        out.push((context.clone(), TemplateUse::Plain));
    }
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
}
