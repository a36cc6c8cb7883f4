//! The S3 drill shared by `s3.rs` and `reliability_faults_s3.rs`: a runbook that
//! downloads the newest daily backup and prints what it got, and a runner.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;

use crate::support::Home;

pub const BUCKET: &str = "acme-hosting-services";

pub fn backup_runbook(extra: &str) -> String {
    format!(
        r#"[runbook]
id = "s3-test"
title = "S3 test"
rpo_target = "24h"
[vars.project]
default = "acme"
[[step]]
id = "fetch-backup"
kind = "s3-backup"
bucket = "{{{{ project }}}}-hosting-services"
prefix = "{{{{ project }}}}/"
pattern = "^{{{{ project }}}}/daily-"
capture = "backup"
{extra}
[[step]]
id = "use"
kind = "command"
run = "echo key={{{{ backup.key }}}} sha={{{{ backup.sha256 }}}} size={{{{ backup.size }}}}"
"#
    )
}

/// Runs `drillbook ARGS [RUNBOOK]` with `backend_env`, feeding `input`.
pub fn run(
    home: &Home,
    backend_env: &[(String, String)],
    runbook: &Path,
    args: &[&str],
    input: &str,
) -> std::process::Output {
    let mut command = home.cmd_std();
    command.args(args);
    if !runbook.as_os_str().is_empty() {
        command.arg(runbook);
    }
    for (k, v) in backend_env {
        command.env(k, v);
    }
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}
