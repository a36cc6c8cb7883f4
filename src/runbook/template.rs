//! Templating of runbook values with minijinja in strict mode: an undefined
//! variable is an error, never an empty string.
//!
//! Three ways to render, one per place a value ends up:
//! - [`Templater::render_shell`] for a command's `run`: every `{{ value }}`
//!   is shell-quoted, so a tag or file name can never inject a command, and
//!   a secret renders as `"${ENV_NAME}"`, so it never appears on a command
//!   line, in the journal or in a log.
//! - [`Templater::render_plain`] for everything else (bucket names,
//!   namespaces, URLs); secrets are refused there by validation.
//! - [`Templater::eval_condition`] for `when`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Serde, Value};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use serde::{Deserialize, Serialize};

/// A value captured by a step. `value` is what a bare `{{ name }}` renders
/// (the local path of a backup, the tag of an image); `fields` are reached
/// as `{{ name.field }}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureValue {
    pub value: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, serde_json::Value>,
}

impl CaptureValue {
    pub fn plain(value: impl Into<String>) -> Self {
        CaptureValue { value: value.into(), fields: BTreeMap::new() }
    }
}

/// A typed capture inside a template: renders as its main value, exposes
/// its fields as attributes.
#[derive(Debug)]
struct CaptureObject(CaptureValue);

impl Object for CaptureObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let field = key.as_str()?;
        if field == "value" {
            return Some(Value::from(self.0.value.clone()));
        }
        self.0.fields.get(field).map(|value| Value::from(Serde(value)))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.value)
    }
}

/// A secret inside a `run` template: renders as a reference to the
/// environment variable that carries it, never as the value.
#[derive(Debug)]
struct SecretRef {
    env_name: String,
}

impl Object for SecretRef {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The values a template can see: variables, secrets and captures.
#[derive(Debug, Clone, Default)]
pub struct TemplateContext {
    values: BTreeMap<String, Value>,
    /// Secret values by variable name, for env rendering and redaction.
    secrets: BTreeMap<String, (String, String)>,
}

impl TemplateContext {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_var(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), Value::from(value));
    }

    /// A secret: `env_name` is the environment variable commands receive it in.
    pub fn set_secret(&mut self, name: &str, env_name: &str, value: &str) {
        self.values.insert(name.to_string(), Value::from_object(SecretRef { env_name: env_name.to_string() }));
        self.secrets.insert(name.to_string(), (env_name.to_string(), value.to_string()));
    }

    pub fn set_capture(&mut self, name: &str, capture: &CaptureValue) {
        let value = if capture.fields.is_empty() {
            Value::from(capture.value.clone())
        } else {
            Value::from_object(CaptureObject(capture.clone()))
        };
        self.values.insert(name.to_string(), value);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// `(ENV_NAME, value)` of every secret, to hand to a command's environment.
    pub fn secret_env(&self) -> Vec<(String, String)> {
        self.secrets.values().cloned().collect()
    }

    /// Every secret value, to redact from output.
    pub fn secret_values(&self) -> Vec<String> {
        self.secrets.values().map(|(_, value)| value.clone()).filter(|v| !v.is_empty()).collect()
    }

    /// The same context where secrets are their real values: only for
    /// rendering a command's `env`, which goes straight to the process.
    fn revealed(&self) -> BTreeMap<String, Value> {
        let mut values = self.values.clone();
        for (name, (_, value)) in &self.secrets {
            values.insert(name.clone(), Value::from(value.clone()));
        }
        values
    }
}

/// A template that does not compile, render or evaluate: minijinja's error,
/// shown on one line (the message and, where known, the template line).
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct TemplateError(#[from] Error);

/// Compiles and renders runbook templates.
pub struct Templater {
    plain: Environment<'static>,
    shell: Environment<'static>,
}

impl Default for Templater {
    fn default() -> Self {
        Self::new()
    }
}

impl Templater {
    pub fn new() -> Self {
        let mut plain = Environment::new();
        plain.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut shell = Environment::new();
        shell.set_undefined_behavior(UndefinedBehavior::Strict);
        shell.set_formatter(shell_formatter);
        Templater { plain, shell }
    }

    /// Names a template refers to that it does not define itself, with
    /// attribute paths (`backup.path`). Errors are syntax errors.
    pub fn referenced_names(&self, source: &str) -> Result<BTreeSet<String>, TemplateError> {
        let template = self.plain.template_from_str(source)?;
        Ok(template.undeclared_variables(true).into_iter().collect())
    }

    /// Names an expression (`when`) refers to.
    pub fn referenced_names_in_expression(&self, source: &str) -> Result<BTreeSet<String>, TemplateError> {
        let expression = self.plain.compile_expression(source)?;
        Ok(expression.undeclared_variables(true).into_iter().collect())
    }

    pub fn render_plain(&self, source: &str, context: &TemplateContext) -> Result<String, TemplateError> {
        self.plain.render_str(source, &context.values).map_err(TemplateError)
    }

    /// Renders a command's `run`: values shell-quoted, secrets as `"${ENV}"`.
    pub fn render_shell(&self, source: &str, context: &TemplateContext) -> Result<String, TemplateError> {
        self.shell.render_str(source, &context.values).map_err(TemplateError)
    }

    /// Renders a command's `env` value: secrets are real here, because the
    /// result goes only into the child's environment.
    pub fn render_env(&self, source: &str, context: &TemplateContext) -> Result<String, TemplateError> {
        self.plain.render_str(source, context.revealed()).map_err(TemplateError)
    }

    pub fn eval_condition(&self, source: &str, context: &TemplateContext) -> Result<bool, TemplateError> {
        let expression = self.plain.compile_expression(source)?;
        expression.eval(&context.values).map(|value| value.is_true()).map_err(TemplateError)
    }
}

fn shell_formatter(out: &mut minijinja::Output, _state: &mut minijinja::State, value: &Value) -> Result<(), Error> {
    let write_failed = |_| Error::new(ErrorKind::WriteFailure, "could not write template output");
    if let Some(secret) = value.downcast_object_ref::<SecretRef>() {
        return out.write_str(&format!("\"${{{}}}\"", secret.env_name)).map_err(write_failed);
    }
    if value.is_safe() {
        // `| safe` is the deliberate escape hatch for raw shell text.
        return out.write_str(&value.to_string()).map_err(write_failed);
    }
    let text = value.to_string();
    let quoted = shlex::try_quote(&text).map_err(|_| {
        Error::new(ErrorKind::InvalidOperation, "a value containing a NUL byte cannot be passed to a shell")
    })?;
    out.write_str(&quoted).map_err(write_failed)
}

/// minijinja's errors, made one line: the message and, where known, what
/// was undefined.
fn describe(error: &Error) -> String {
    let mut text = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if let Some(line) = error.line() {
        text.push_str(&format!(" (template line {line})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> TemplateContext {
        let mut context = TemplateContext::new();
        context.set_var("project", "acme");
        context.set_var("evil", "x; rm -rf /");
        context.set_secret("db_password", "DR_DB_PASSWORD", "hunter2");
        let mut fields = BTreeMap::new();
        fields.insert("key".to_string(), serde_json::json!("acme/daily-acme-202611270300.pgdump"));
        fields.insert("size".to_string(), serde_json::json!(1234));
        context.set_capture("backup", &CaptureValue { value: "/data/backup file.pgdump".into(), fields });
        context
    }

    #[test]
    fn shell_rendering_quotes_every_value() {
        let templater = Templater::new();
        let rendered = templater.render_shell("echo {{ evil }} --project={{ project }}", &context()).unwrap();
        assert_eq!(rendered, "echo 'x; rm -rf /' --project=acme");
        let words = shlex::split(&rendered).unwrap();
        assert_eq!(words, ["echo", "x; rm -rf /", "--project=acme"]);
    }

    #[test]
    fn quoting_survives_quotes_and_newlines() {
        let mut context = TemplateContext::new();
        context.set_var("nasty", "it's \"$(reboot)\"\n`id`");
        let rendered = Templater::new().render_shell("printf %s {{ nasty }}", &context).unwrap();
        assert_eq!(shlex::split(&rendered).unwrap()[2], "it's \"$(reboot)\"\n`id`");
    }

    #[test]
    fn secrets_render_as_env_references_in_run_and_real_in_env() {
        let templater = Templater::new();
        let context = context();
        let run = templater.render_shell("psql --password={{ db_password }}", &context).unwrap();
        assert_eq!(run, "psql --password=\"${DR_DB_PASSWORD}\"");
        assert!(!run.contains("hunter2"));
        assert_eq!(templater.render_env("{{ db_password }}", &context).unwrap(), "hunter2");
        assert_eq!(templater.render_plain("{{ db_password }}", &context).unwrap(), "***");
        assert_eq!(context.secret_env(), vec![("DR_DB_PASSWORD".to_string(), "hunter2".to_string())]);
    }

    #[test]
    fn captures_render_main_value_bare_and_fields_by_name() {
        let templater = Templater::new();
        let context = context();
        assert_eq!(templater.render_plain("{{ backup }}", &context).unwrap(), "/data/backup file.pgdump");
        assert_eq!(templater.render_plain("{{ backup.size }}", &context).unwrap(), "1234");
        assert_eq!(
            templater.render_shell("pg_restore {{ backup }}", &context).unwrap(),
            "pg_restore '/data/backup file.pgdump'"
        );
        assert!(templater.render_plain("{{ backup.nope }}", &context).is_err());
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let error = Templater::new().render_plain("{{ projct }}", &context()).unwrap_err().to_string();
        assert!(error.contains("undefined"), "{error}");
    }

    #[test]
    fn reports_referenced_names() {
        let names = Templater::new().referenced_names("{{ backup.path }} {{ tag }} {% set x = 1 %}{{ x }}").unwrap();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["backup.path", "tag"]);
        assert!(Templater::new().referenced_names("{{ unclosed").is_err());
    }

    #[test]
    fn conditions_evaluate() {
        let templater = Templater::new();
        assert!(templater.eval_condition("project == 'acme'", &context()).unwrap());
        assert!(!templater.eval_condition("project == 'other'", &context()).unwrap());
        assert!(templater.eval_condition("nope == 1", &context()).is_err());
    }
}
