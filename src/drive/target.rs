//! Where a step acts, in words the operator checks before confirming:
//! "context prod-eu, namespace acme-dr", "bucket acme-backups", a URL. The
//! conductor puts it into confirmations; the TUI shows it beside the step.

use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{Action, K8sTarget, Step, Template};

/// Where `step` acts, rendered; `None` for steps that act on this machine
/// or on nothing (commands, manual steps, checklists).
pub fn step_target(step: &Step, context: &TemplateContext, templater: &Templater, training: bool) -> Option<String> {
    let render = |t: &Template| templater.render_plain(&t.text, context).unwrap_or_else(|_| t.text.clone());
    let k8s = |target: &K8sTarget| {
        if training {
            // Training works on the sandbox whatever the runbook says.
            format!("context sandbox (training), namespace {}", render(&target.namespace))
        } else {
            k8s_target(target, render)
        }
    };
    match &step.action {
        Action::K8sImageTag(s) => Some(k8s(&s.target)),
        Action::K8sWait(s) => Some(k8s(&s.target)),
        Action::K8sScale(s) => Some(k8s(&s.target)),
        Action::K8sIsolation(s) => Some(format!("{}, against production's {}", k8s(&s.target), k8s(&s.production))),
        // Training reads the sandbox's copy of the bucket and database, never the real ones.
        Action::S3Backup(s) if training => Some(format!("bucket {} (the sandbox's copy, training)", render(&s.bucket))),
        Action::S3Check(s) if training => Some(format!("bucket {} (the sandbox's copy, training)", render(&s.bucket))),
        Action::SqlCheck(_) if training => Some("the sandbox database (training)".to_string()),
        Action::DnsCheck(s) if training => {
            Some(format!("DNS name {} (the sandbox's answer, training)", render(&s.name)))
        }
        Action::S3Backup(s) => Some(format!("bucket {}", render(&s.bucket))),
        Action::S3Check(s) => Some(format!("bucket {}", render(&s.bucket))),
        Action::HttpCheck(s) => Some(render(&s.url)),
        Action::SqlCheck(s) => Some(format!("database {}", render(&s.database))),
        Action::DnsCheck(s) => Some(match &s.nameserver {
            Some(server) => format!("DNS name {} (asking {})", render(&s.name), render(server)),
            None => format!("DNS name {}", render(&s.name)),
        }),
        Action::BrowserCheck(_) if training => Some("the training sandbox site on 127.0.0.1".to_string()),
        Action::BrowserCheck(s) => Some(render(&s.url)),
        Action::Command(_) | Action::Manual | Action::Checklist(_) => None,
    }
}

fn k8s_target(target: &K8sTarget, render: impl Fn(&Template) -> String) -> String {
    let context = target.context.as_ref().map_or_else(
        || match std::env::var(crate::engine::k8s::CONTEXT_ENV) {
            Ok(context) if !context.is_empty() => format!("context {context}"),
            _ => "current context".to_string(),
        },
        |c| {
            let context = render(c);
            // The sandbox's directory says nothing to the operator.
            if context.starts_with(crate::engine::k8s::SANDBOX_PREFIX) {
                "context sandbox (simulated)".to_string()
            } else {
                format!("context {context}")
            }
        },
    );
    format!("{context}, namespace {}", render(&target.namespace))
}

/// What the operator types to confirm `step`: its namespace where it has
/// one, else the step id.
pub fn typed_target(step: &Step, context: &TemplateContext, templater: &Templater) -> String {
    let namespace = match &step.action {
        Action::K8sScale(s) => Some(&s.target.namespace),
        Action::K8sWait(s) => Some(&s.target.namespace),
        Action::K8sImageTag(s) => Some(&s.target.namespace),
        _ => None,
    };
    namespace.and_then(|ns| templater.render_plain(&ns.text, context).ok()).unwrap_or_else(|| step.id.clone())
}
