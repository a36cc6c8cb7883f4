//! Turns a runbook `command` step into a [`CommandRequest`]: values filled
//! in and shell-quoted, secrets passed as environment variables only.

use std::path::PathBuf;

use super::command::{CaptureRule, CaptureStream, CommandRequest};
use super::render::RenderError;
use crate::drill::store::DrillDir;
use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{self, CommandSpec};

/// A command ready to run, and how to show it.
#[derive(Debug)]
pub struct PreparedCommand {
    pub request: CommandRequest,
    /// The script as run: values filled in, secrets as `"${ENV}"` references.
    /// Safe to show and to journal.
    pub display: String,
}

pub fn prepare(
    step_id: &str,
    spec: &CommandSpec,
    context: &TemplateContext,
    templater: &Templater,
    dir: &DrillDir,
    attempt: u32,
    training: Option<&std::path::Path>,
) -> Result<PreparedCommand, RenderError> {
    const DRILLBOOK_ENV: &str = "DRILLBOOK";
    let script = templater.render_shell(&spec.run.text, context).map_err(RenderError::at("run"))?;
    let cwd = match &spec.cwd {
        Some(cwd) => Some(PathBuf::from(templater.render_plain(&cwd.text, context).map_err(RenderError::at("cwd"))?)),
        None => None,
    };
    let mut env = context.secret_env();
    // `"$DRILLBOOK" sandbox …` reaches this very binary, however it was
    // started (`cargo run`, a path, PATH): the sandbox drill needs it. A
    // `DRILLBOOK` already set names the binary for a process that is not
    // drillbook itself (a test driving the library).
    let outer = std::env::var(DRILLBOOK_ENV).ok().filter(|exe| !exe.is_empty());
    if let Some(exe) = outer.or_else(|| std::env::current_exe().ok().map(|exe| exe.display().to_string())) {
        env.push((DRILLBOOK_ENV.to_string(), exe));
    }
    for (name, value) in &spec.env {
        let value = templater.render_env(&value.text, context).map_err(RenderError::at(format!("env.{name}")))?;
        env.push((name.clone(), value));
    }
    // Training never runs the real command: its `simulate` script (which may
    // drive the sandbox), or a line saying what would have run.
    let run = match training {
        None => script.clone(),
        Some(drill_dir) => {
            env.extend(crate::engine::training::command_env(drill_dir));
            match &spec.simulate {
                Some(simulate) => {
                    templater.render_shell(&simulate.text, context).map_err(RenderError::at("simulate"))?
                }
                None => {
                    format!("printf '%s\\n' 'training: this command is shown, not run:' {}", shlex::try_quote(&script)?)
                }
            }
        }
    };
    let mut request =
        CommandRequest::new(step_id, run, dir.log_file(step_id, attempt), dir.stderr_log_file(step_id, attempt));
    request.cwd = cwd;
    request.env = env;
    request.timeout = spec.timeout;
    request.expect_exit = spec.expect_exit.clone();
    request.redact = context.secret_values();
    request.capture = spec.capture.as_ref().map(|rule| CaptureRule {
        name: rule.name.clone(),
        regex: rule.regex.clone(),
        stream: match rule.stream {
            runbook::CaptureStream::Stdout => CaptureStream::Stdout,
            runbook::CaptureStream::Stderr => CaptureStream::Stderr,
            runbook::CaptureStream::Both => CaptureStream::Both,
        },
    });
    Ok(PreparedCommand { request, display: shown_as_run(&script) })
}

/// The command as it will run: `$DRILLBOOK_KUBE_CONTEXT` (what `--context`
/// names) filled in, including the `${DRILLBOOK_KUBE_CONTEXT:+--context …}`
/// idiom, so the operator confirming it sees which cluster it hits.
/// Secrets stay `"${ENV}"` references: they are never shown.
pub fn shown_as_run(script: &str) -> String {
    let name = crate::engine::k8s::CONTEXT_ENV;
    let value = std::env::var(name).ok().filter(|v| !v.is_empty());
    expand_variable(script, name, value.as_deref())
}

/// Expands `${NAME:+word}`, `${NAME:-word}`, `${NAME}` and `$NAME` the way a
/// POSIX shell would, for one variable.
fn expand_variable(script: &str, name: &str, value: Option<&str>) -> String {
    let escaped = regex::escape(name);
    let patterns = [(format!(r"\$\{{{escaped}:\+([^}}]*)\}}"), true), (format!(r"\$\{{{escaped}:-([^}}]*)\}}"), false)];
    let mut text = script.to_string();
    for (pattern, when_set) in patterns {
        let Ok(re) = regex::Regex::new(&pattern) else { continue };
        text = re
            .replace_all(&text, |caps: &regex::Captures| match (value, when_set) {
                (Some(_), true) => caps[1].to_string(),
                (None, true) => String::new(),
                (Some(value), false) => value.to_string(),
                (None, false) => caps[1].to_string(),
            })
            .into_owned();
    }
    let plain = format!(r"\$\{{{escaped}\}}|\${escaped}\b");
    match regex::Regex::new(&plain) {
        Ok(re) => re.replace_all(&text, value.unwrap_or_default()).into_owned(),
        Err(_) => text,
    }
}

#[cfg(test)]
mod tests {
    use super::expand_variable;

    #[test]
    fn the_context_is_filled_in_as_the_shell_would() {
        let idiom = r#"kubectl ${DRILLBOOK_KUBE_CONTEXT:+--context "$DRILLBOOK_KUBE_CONTEXT"} -n acme-dr get pods"#;
        let shown = expand_variable(idiom, "DRILLBOOK_KUBE_CONTEXT", Some("prod-eu"));
        assert_eq!(shown, r#"kubectl --context "prod-eu" -n acme-dr get pods"#);
        let unset = expand_variable(idiom, "DRILLBOOK_KUBE_CONTEXT", None);
        assert_eq!(unset, "kubectl  -n acme-dr get pods");
        let default = expand_variable("echo ${DRILLBOOK_KUBE_CONTEXT:-current}", "DRILLBOOK_KUBE_CONTEXT", None);
        assert_eq!(default, "echo current");
        let braces = expand_variable(
            "echo ${DRILLBOOK_KUBE_CONTEXT} $DRILLBOOK_KUBE_CONTEXTS",
            "DRILLBOOK_KUBE_CONTEXT",
            Some("c"),
        );
        assert_eq!(braces, "echo c $DRILLBOOK_KUBE_CONTEXTS", "another variable's name is left alone");
    }
}
