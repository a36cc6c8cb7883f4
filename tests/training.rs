//! Training mode and `drillbook demo`: any runbook runs on the sandbox (a
//! directory bucket seeded with backups, a simulated cluster seeded with
//! the runbook's namespaces), command steps run their `simulate` script or
//! are shown and never executed, and everything stays in the drill's
//! directory.

use crate::support;

use support::{Home, stderr_of, stdout_of};

#[test]
fn the_demo_runs_the_quarterly_drill_offline_and_reports() {
    let home = Home::new();
    let output = home.cmd_std().args(["demo", "--plain", "--yes"]).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("[training]"), "{stdout}");
    assert!(stdout.contains("training: sandbox bucket `acme-hosting-services`: 8 backups under `acme/`"), "{stdout}");
    assert!(stdout.contains("captured backup = "), "{stdout}");
    assert!(stdout.contains("pg_restore: processing data for table"), "the restore is simulated: {stdout}");
    assert!(stdout.contains("captured tag = main-4f2a9c1"), "{stdout}");
    assert!(stdout.contains("all Ready: web 2/2 ready · worker 1/1 ready"), "{stdout}");
    assert!(stdout.contains("all pods are gone"), "{stdout}");
    assert!(stdout.contains("RPO PASS"), "{stdout}");
    let drill = home.only_drill();
    let report = home.cmd_std().arg("report").arg(drill.file_name().unwrap()).output().unwrap();
    let report = stdout_of(&report);
    assert!(report.to_lowercase().contains("training"), "{report}");
    // The newest seeded backup was taken at 03:00 UTC: the RPO is under a day.
    let journal = home.journal();
    assert!(journal.contains("daily-acme-"), "{journal}");
}

#[test]
fn training_never_runs_a_command_without_a_simulation() {
    let home = Home::new();
    let marker = home.path().join("touched");
    let runbook = home.runbook(
        "cmd.toml",
        &format!(
            "[runbook]\nid = \"c\"\ntitle = \"C\"\n[[step]]\nid = \"danger\"\nkind = \"command\"\nrun = \"touch {}\"\n\
             [[step]]\nid = \"simulated\"\nkind = \"command\"\nrun = \"rm -rf /nonexistent-drillbook\"\n\
             simulate = \"echo simulated in $DRILLBOOK_TRAINING\"\n",
            marker.display()
        ),
    );
    let output = home.cmd_std().args(["run", "--training", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(!marker.exists(), "the real command must not run in training");
    assert!(stdout.contains("training: this command is shown, not run:"), "{stdout}");
    assert!(stdout.contains("simulated in 1"), "{stdout}");
    // The journal keeps the real command: the report shows what the drill would do.
    assert!(home.journal().contains("touch "), "{}", home.journal());
}

#[test]
fn training_seeds_the_namespaces_and_buckets_of_any_runbook() {
    let home = Home::new();
    let runbook = home.runbook(
        "custom.toml",
        "[runbook]\nid = \"x\"\ntitle = \"X\"\n[vars.project]\ndefault = \"globex\"\n\
         [[step]]\nid = \"fetch\"\nkind = \"s3-backup\"\nbucket = \"globex-backups\"\nprefix = \"db/\"\n\
         pattern = \"^db/backup-\\\\d{12}\\\\.dump$\"\nendpoint = \"https://s3.example.com\"\ncapture = \"backup\"\n\
         [[step]]\nid = \"tag\"\nkind = \"k8s-image-tag\"\ncontext = \"prod-cluster\"\nnamespace = \"globex-prod\"\n\
         deployments = [\"api\"]\ncapture = \"tag\"\n\
         [[step]]\nid = \"down\"\nkind = \"k8s-scale\"\ncontext = \"prod-cluster\"\nnamespace = \"globex-dr\"\n\
         deployments = [\"api\"]\nreplicas = 0\n",
    );
    let output = home.cmd_std().args(["run", "--training", "--plain", "--yes"]).arg(&runbook).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("db/backup-"), "the pattern's shape is used: {stdout}");
    assert!(stdout.contains("captured tag = main-4f2a9c1 (registry.example.com/globex/api:main-4f2a9c1)"), "{stdout}");
    assert!(stdout.contains("deployment/api: 1 → 0"), "{stdout}");
    assert!(!stdout.contains("s3.example.com"), "no real endpoint is contacted: {stdout}");
}

#[test]
fn abort_runs_the_teardown_steps_and_records_the_drill_aborted() {
    let home = Home::new();
    // Paused at the demo's first manual step (no input), then aborted.
    let first = home.cmd_std().args(["demo", "--plain"]).stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(first.status.code(), Some(2), "{}", stdout_of(&first));
    let aborted = home.cmd_std().args(["abort", "--yes"]).stdin(std::process::Stdio::null()).output().unwrap();
    let stdout = stdout_of(&aborted);
    assert_eq!(aborted.status.code(), Some(1), "an aborted drill is not a success: {stdout}\n{}", stderr_of(&aborted));
    assert!(stdout.contains("Aborting: only the teardown steps"), "{stdout}");
    assert!(stdout.contains("Scale DR to zero (scale-down)"), "the teardown ran: {stdout}");
    assert!(!stdout.contains("(fetch-backup)"), "nothing else ran: {stdout}");
    let journal = home.journal();
    assert!(journal.contains(r#""outcome":"aborted""#), "{journal}");
    let list = stdout_of(&home.cmd_std().arg("list").output().unwrap());
    assert!(list.contains("aborted"), "{list}");
}

#[test]
fn the_reports_are_written_when_a_drill_ends() {
    let home = Home::new();
    let output = home.cmd_std().args(["demo", "--plain", "--yes"]).output().unwrap();
    assert!(output.status.success(), "{}", stdout_of(&output));
    let drill = home.only_drill();
    for name in ["report.md", "report.html", "report.json", "report.junit.xml"] {
        let text = std::fs::read_to_string(drill.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.len() > 500, "{name} is too short:\n{text}");
    }
    let html = std::fs::read_to_string(drill.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.to_lowercase().contains("training"), "timeline and training marker");
    let junit = std::fs::read_to_string(drill.join("report.junit.xml")).unwrap();
    assert!(junit.contains("<testsuite") && junit.contains("scale-down"), "{junit}");
}

use crate::moto;

/// A scheduled drill: `--report-to s3://…` uploads the four reports to moto when it ends.
#[test]
fn a_scheduled_drill_uploads_its_reports_to_s3() {
    let moto = moto::Moto::start();
    moto.create_bucket("drill-reports");
    let home = Home::new();
    let output = home
        .cmd_std()
        .envs(moto.env())
        .args(["demo", "--yes", "--report-to", "s3://drill-reports/acme/quarterly"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    let drill = home.only_drill();
    let id = drill.file_name().unwrap().to_string_lossy().into_owned();
    for name in ["report.md", "report.html", "report.json", "report.junit.xml"] {
        let key = format!("acme/quarterly/{id}/{name}");
        assert!(stdout.contains(&format!("uploaded s3://drill-reports/{key}")), "{stdout}");
        let response = moto.request("GET", &format!("/drill-reports/{key}"), &[], b"");
        assert_eq!(response.status, 200, "{key}");
        assert_eq!(response.body, std::fs::read(drill.join(name)).unwrap(), "{key} uploaded intact");
    }
    // A bucket that does not exist fails the scheduled drill, loudly.
    let home = Home::new();
    let output = home
        .cmd_std()
        .envs(moto.env())
        .args(["demo", "--yes", "--report-to", "s3://no-such-bucket/x/"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("could not upload the reports: no such bucket: s3://no-such-bucket"), "{stdout}");
    let bad = home.cmd_std().args(["demo", "--yes", "--report-to", "https://example.com"]).output().unwrap();
    assert!(stderr_of(&bad).contains("expected s3://BUCKET/PREFIX/"), "{}", stderr_of(&bad));
}
