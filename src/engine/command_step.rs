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
    Ok(PreparedCommand { request, display: script })
}
