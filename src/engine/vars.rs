//! Gives every runbook variable a value before a drill starts: `--var`,
//! then the variable's `env`, then its default (which may use other
//! variables), then a question to the operator. Secrets never come from the
//! command line (it shows up in `ps` and shell history).

use std::collections::BTreeMap;

use crate::runbook::template::{TemplateContext, TemplateError, Templater};
use crate::runbook::{Runbook, VarDef};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedVars {
    /// Non-secret values: journaled.
    pub values: BTreeMap<String, String>,
    /// Secret values: kept in memory only.
    pub secrets: BTreeMap<String, String>,
}

/// Why a variable could not be given a value.
#[derive(Debug, thiserror::Error)]
pub enum VarsError {
    /// A `--var` argument without `=`.
    #[error("--var `{0}`: expected NAME=VALUE")]
    Malformed(String),
    #[error("--var `{0}` is given twice")]
    GivenTwice(String),
    /// `--var` names a variable the runbook does not declare.
    #[error(
        "--var {name}: the runbook has no variable `{name}`; {}(it declares: {})",
        .suggestion.as_ref().map(|s| format!("did you mean `{s}`? ")).unwrap_or_default(),
        if .declared.is_empty() { "none".to_string() } else { .declared.join(", ") }
    )]
    Unknown { name: String, suggestion: Option<String>, declared: Vec<String> },
    /// `--var` gives a secret; `env` is where it belongs.
    #[error(
        "--var {name}: `{name}` is a secret and cannot be given on the command line (it would show in `ps` and shell history); set {env} instead"
    )]
    SecretGiven { name: String, env: String },
    #[error("variable defaults form a cycle through `{0}`")]
    Cycle(String),
    #[error("variable `{name}` = `{value}` is not one of: {}", .choices.join(", "))]
    NotAChoice { name: String, value: String, choices: Vec<String> },
    /// A default that does not parse.
    #[error(transparent)]
    DefaultSyntax(TemplateError),
    /// A default that does not render.
    #[error("default of variable `{name}`: {source}")]
    Default {
        name: String,
        #[source]
        source: TemplateError,
    },
    /// The operator could not be asked.
    #[error(transparent)]
    Prompt(#[from] std::io::Error),
    #[error("secret `{name}` has no value: set the environment variable {env} (or run in a terminal to be asked)")]
    NoSecretValue { name: String, env: String },
    /// `env`: the variable's own environment variable, if it has one.
    #[error(
        "variable `{name}` has no value: pass --var {name}=VALUE{}",
        .env.as_ref().map(|e| format!(" or set {e}")).unwrap_or_default()
    )]
    NoValue { name: String, env: Option<String> },
}

/// Asks the operator for a value. `Ok(None)`: no answer can be had (no
/// terminal, end of input).
pub trait Prompter {
    fn ask(&mut self, var: &VarDef, secret: bool) -> std::io::Result<Option<String>>;
}

/// A prompter for non-interactive runs: never has an answer.
pub struct NoPrompt;

impl Prompter for NoPrompt {
    fn ask(&mut self, _var: &VarDef, _secret: bool) -> std::io::Result<Option<String>> {
        Ok(None)
    }
}

/// Parses `--var name=value` arguments.
pub fn parse_var_args(args: &[String]) -> Result<BTreeMap<String, String>, VarsError> {
    let mut values = BTreeMap::new();
    for arg in args {
        let (name, value) = arg.split_once('=').ok_or_else(|| VarsError::Malformed(arg.clone()))?;
        if values.insert(name.trim().to_string(), value.to_string()).is_some() {
            return Err(VarsError::GivenTwice(name.to_string()));
        }
    }
    Ok(values)
}

/// Checks the `--var` values given: each names a variable of the runbook
/// that is not a secret (a secret on the command line shows in `ps`).
pub fn check_given(runbook: &Runbook, given: &BTreeMap<String, String>) -> Result<(), VarsError> {
    for name in given.keys() {
        match runbook.var(name) {
            None => {
                let declared: Vec<&str> = runbook.vars.iter().map(|v| v.name.as_str()).collect();
                let suggestion = crate::runbook::diagnostic::did_you_mean(name, declared.iter().copied());
                return Err(VarsError::Unknown {
                    name: name.clone(),
                    suggestion: suggestion.map(|s| s.to_string()),
                    declared: declared.iter().map(|d| d.to_string()).collect(),
                });
            }
            Some(var) if var.secret => {
                return Err(VarsError::SecretGiven { name: name.clone(), env: var.secret_env_name() });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Resolves every variable of the runbook.
pub fn resolve_vars(
    runbook: &Runbook,
    given: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
    prompter: &mut dyn Prompter,
) -> Result<ResolvedVars, VarsError> {
    check_given(runbook, given)?;
    let mut resolver = Resolver {
        runbook,
        given,
        env,
        prompter,
        templater: Templater::new(),
        resolved: ResolvedVars::default(),
        in_progress: Vec::new(),
    };
    for var in &runbook.vars {
        resolver.resolve(var)?;
    }
    Ok(resolver.resolved)
}

struct Resolver<'a> {
    runbook: &'a Runbook,
    given: &'a BTreeMap<String, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
    prompter: &'a mut dyn Prompter,
    templater: Templater,
    resolved: ResolvedVars,
    in_progress: Vec<String>,
}

impl Resolver<'_> {
    fn resolve(&mut self, var: &VarDef) -> Result<(), VarsError> {
        if self.resolved.values.contains_key(&var.name) || self.resolved.secrets.contains_key(&var.name) {
            return Ok(());
        }
        if self.in_progress.contains(&var.name) {
            return Err(VarsError::Cycle(var.name.clone()));
        }
        self.in_progress.push(var.name.clone());
        let value = self.value_of(var)?;
        self.in_progress.pop();
        if !var.choices.is_empty() && !var.choices.contains(&value) {
            return Err(VarsError::NotAChoice { name: var.name.clone(), value, choices: var.choices.clone() });
        }
        if var.secret {
            self.resolved.secrets.insert(var.name.clone(), value);
        } else {
            self.resolved.values.insert(var.name.clone(), value);
        }
        Ok(())
    }

    fn value_of(&mut self, var: &VarDef) -> Result<String, VarsError> {
        if let Some(value) = self.given.get(&var.name) {
            return Ok(value.clone());
        }
        let env_name = if var.secret { Some(var.secret_env_name()) } else { var.env.clone() };
        if let Some(value) = env_name.as_deref().and_then(|name| (self.env)(name)) {
            return Ok(value);
        }
        if let Some(default) = &var.default {
            // Resolve what the default refers to first.
            let names = self.templater.referenced_names(&default.text).map_err(VarsError::DefaultSyntax)?;
            for name in names {
                if let Some(dependency) = self.runbook.var(name.split('.').next().unwrap_or(&name)) {
                    self.resolve(dependency)?;
                }
            }
            let mut context = TemplateContext::new();
            for (name, value) in &self.resolved.values {
                context.set_var(name, value);
            }
            return self
                .templater
                .render_plain(&default.text, &context)
                .map_err(|source| VarsError::Default { name: var.name.clone(), source });
        }
        match self.prompter.ask(var, var.secret)? {
            Some(value) if !value.is_empty() => Ok(value),
            _ if var.secret => Err(VarsError::NoSecretValue { name: var.name.clone(), env: var.secret_env_name() }),
            _ => Err(VarsError::NoValue { name: var.name.clone(), env: var.env.clone() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runbook() -> Runbook {
        crate::runbook::parse(
            "t.toml",
            r#"
[runbook]
id = "t"
title = "T"
[vars.project]
prompt = "Project"
[vars.dr_namespace]
default = "{{ project }}-dr"
[vars.env_name]
choices = ["staging", "production"]
default = "staging"
[vars.token]
secret = true
env = "T_TOKEN"
[[step]]
id = "a"
kind = "command"
run = "echo {{ dr_namespace }} {{ token }}"
"#,
        )
        .unwrap()
    }

    struct Answers(Vec<&'static str>);
    impl Prompter for Answers {
        fn ask(&mut self, _: &VarDef, _: bool) -> std::io::Result<Option<String>> {
            Ok(self.0.pop().map(str::to_string))
        }
    }

    #[test]
    fn resolves_given_defaults_env_and_prompts() {
        let env = |name: &str| (name == "T_TOKEN").then(|| "s3cret".to_string());
        let resolved = resolve_vars(&runbook(), &BTreeMap::new(), &env, &mut Answers(vec!["acme"])).unwrap();
        assert_eq!(resolved.values["project"], "acme");
        assert_eq!(resolved.values["dr_namespace"], "acme-dr");
        assert_eq!(resolved.values["env_name"], "staging");
        assert_eq!(resolved.secrets["token"], "s3cret");
        assert!(!resolved.values.contains_key("token"));
    }

    #[test]
    fn explains_missing_values() {
        let env = |_: &str| None;
        let error = resolve_vars(&runbook(), &BTreeMap::new(), &env, &mut NoPrompt).unwrap_err().to_string();
        assert!(error.contains("--var project=VALUE"), "{error}");
        let given = parse_var_args(&["project=acme".into()]).unwrap();
        let error = resolve_vars(&runbook(), &given, &env, &mut NoPrompt).unwrap_err().to_string();
        assert!(error.contains("T_TOKEN"), "{error}");
    }

    #[test]
    fn refuses_unknown_secret_and_out_of_choice_vars() {
        let env = |_: &str| Some("x".to_string());
        let given = parse_var_args(&["projct=acme".into()]).unwrap();
        assert!(
            resolve_vars(&runbook(), &given, &env, &mut NoPrompt)
                .unwrap_err()
                .to_string()
                .contains("did you mean `project`")
        );
        let given = parse_var_args(&["token=x".into()]).unwrap();
        assert!(
            resolve_vars(&runbook(), &given, &env, &mut NoPrompt)
                .unwrap_err()
                .to_string()
                .contains("cannot be given on the command line")
        );
        let given = parse_var_args(&["project=a".into(), "env_name=prod".into()]).unwrap();
        assert!(resolve_vars(&runbook(), &given, &env, &mut NoPrompt).unwrap_err().to_string().contains("not one of"));
        assert!(parse_var_args(&["novalue".into()]).is_err());
    }
}
