//! `k8s-isolation` end to end: the real binary (`run --plain`) reads DR and
//! production from the Kubernetes API emulator with the real kube client and
//! finds what would let DR reach production: a Secret holding production's
//! database (other credentials, another spelling of the port), a prefixed
//! `envFrom` and an `env` entry overriding a ConfigMap, an Ingress claiming
//! production's host, no default-deny egress policy, an unsuspended
//! CronJob. A 403 on secrets is one line; no Secret value reaches any file
//! or any output. The objects are cross-checked with the real kubectl.

use serde_json::{Value, json};

use crate::k8s::K8sEmulator;
use crate::support::{Home, stderr_of, stdout_of};

/// Values that must never appear anywhere drillbook writes or prints.
const PROD_PASSWORD: &str = "pr0d-Pa55word-7781";
const DR_PASSWORD: &str = "dr-Pa55word-1234";
const MAIL_PASSWORD: &str = "mail-Pa55word-9090";

fn runbook(extra: &str) -> String {
    format!(
        r#"
[runbook]
id = "isolation"
title = "Isolation check"

[[step]]
id = "check-isolation"
kind = "k8s-isolation"
namespace = "shop-dr"
production = {{ namespace = "shop-production" }}
allow = ["SENTRY_DSN"]
{extra}
"#
    )
}

struct Setup {
    emulator: K8sEmulator,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn create(&self, path: &str, object: Value) {
        let (status, body) = self.emulator.request("POST", path, Some(&object));
        assert_eq!(status, 201, "POST {path}: {body}");
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let output = self.emulator.kubectl(&self.kubeconfig, args);
        assert!(output.status.success(), "kubectl {args:?}: {}", stderr_of(&output));
        stdout_of(&output)
    }

    fn run(&self, home: &Home, runbook: &str) -> std::process::Output {
        let path = home.runbook("isolation.toml", runbook);
        let mut command = home.cmd_std();
        for (name, value) in self.emulator.kubectl_command(&self.kubeconfig, &[]).get_envs() {
            if let Some(value) = value {
                command.env(name, value);
            }
        }
        command.args(["run", "--plain", "--yes"]).arg(path).output().unwrap()
    }
}

fn deployment(name: &str, env: Value, env_from: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "shop:1", "env": env, "envFrom": env_from}]}
            }
        }
    })
}

/// Production: its database in a Secret, mail settings in a ConfigMap, a
/// host. DR: a copy with the mistakes of the issue, unless `clean`.
fn setup(clean: bool) -> Setup {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = emulator.kubeconfig(dir.path());
    let setup = Setup { emulator, kubeconfig, _dir: dir };
    for namespace in ["shop-production", "shop-dr"] {
        setup.emulator.create_namespace(namespace);
    }
    let prod = "/api/v1/namespaces/shop-production";
    setup.create(
        &format!("{prod}/secrets"),
        json!({"metadata": {"name": "shop-env"}, "stringData": {
            "DATABASE_URL": format!("postgresql://app:{PROD_PASSWORD}@db.prod.internal:5432/shop"),
            "EMAIL_HOST_PASSWORD": MAIL_PASSWORD
        }}),
    );
    setup.create(
        &format!("{prod}/configmaps"),
        json!({"metadata": {"name": "shop-config"}, "data": {"EMAIL_HOST": "smtp.mail.example", "MODE": "prod"}}),
    );
    setup.create(
        "/apis/apps/v1/namespaces/shop-production/deployments",
        deployment(
            "web",
            json!([{"name": "SENTRY_DSN", "value": "https://key@sentry.example/42"}]),
            json!([{"secretRef": {"name": "shop-env"}}, {"configMapRef": {"name": "shop-config"}}]),
        ),
    );
    setup.create(
        "/apis/networking.k8s.io/v1/namespaces/shop-production/ingresses",
        json!({"metadata": {"name": "shop"}, "spec": {"rules": [{"host": "shop.example"}]}}),
    );

    let dr = "/api/v1/namespaces/shop-dr";
    // Another user, password and spelling of production's database.
    let dr_database = if clean {
        format!("postgres://dr:{DR_PASSWORD}@db.dr.internal/shop")
    } else {
        format!("postgres://dr:{DR_PASSWORD}@DB.prod.internal/shop?sslmode=require")
    };
    setup.create(
        &format!("{dr}/secrets"),
        json!({"metadata": {"name": "shop-env"}, "stringData": {"DATABASE_URL": dr_database}}),
    );
    // The kubelet's rules: envFrom with a prefix gives APP_EMAIL_HOST (production's mail
    // server) and APP_DB_HOST, which an `env` entry then overrides.
    let mail_host = if clean { "smtp.dr.example" } else { "smtp.mail.example" };
    setup.create(
        &format!("{dr}/configmaps"),
        // DB_HOST still names production's database, but the `env` entry APP_DB_HOST replaces it.
        json!({"metadata": {"name": "dr-config"}, "data": {"EMAIL_HOST": mail_host, "DB_HOST": "db.prod.internal"}}),
    );
    setup.create(
        "/apis/apps/v1/namespaces/shop-dr/deployments",
        deployment(
            "web",
            json!([
                {"name": "SENTRY_DSN", "value": "https://key@sentry.example/42"},
                {"name": "APP_DB_HOST", "value": "db.dr.internal"},
                {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "shop-env", "key": "DATABASE_URL"}}}
            ]),
            json!([{"configMapRef": {"name": "dr-config"}, "prefix": "APP_"}]),
        ),
    );
    let dr_host = if clean { "dr.shop.example" } else { "shop.example" };
    setup.create(
        "/apis/networking.k8s.io/v1/namespaces/shop-dr/ingresses",
        json!({"metadata": {"name": "shop-dr"}, "spec": {"rules": [{"host": dr_host}]}}),
    );
    setup.create(
        "/apis/batch/v1/namespaces/shop-dr/cronjobs",
        json!({"metadata": {"name": "backup-job-daily"}, "spec": {
            "schedule": "0 3 * * *", "suspend": clean,
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "backup", "image": "backup:1"}]}}}}}}),
    );
    if clean {
        setup.create(
            "/apis/networking.k8s.io/v1/namespaces/shop-dr/networkpolicies",
            json!({"metadata": {"name": "default-deny-egress"},
                "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}),
        );
    }
    setup
}

/// Every file under the home, and the outputs, are free of every secret value.
fn assert_no_secret(home: &Home, outputs: &[&str]) {
    for value in [PROD_PASSWORD, DR_PASSWORD, MAIL_PASSWORD] {
        for output in outputs {
            assert!(!output.contains(value), "`{value}` printed: {output}");
        }
        for file in home.all_files() {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(value), "`{value}` written to {}", file.display());
        }
    }
}

#[test]
fn every_way_dr_reaches_production_is_found_and_named_without_a_value() {
    let setup = setup(false);
    // What drillbook reads, kubectl sees.
    let cronjobs = setup.kubectl(&["-n", "shop-dr", "get", "cronjobs"]);
    assert!(cronjobs.contains("backup-job-daily") && cronjobs.contains("False"), "{cronjobs}");
    let ingresses = setup.kubectl(&["-n", "shop-dr", "get", "ingresses"]);
    assert!(ingresses.contains("shop.example"), "{ingresses}");

    let home = Home::new();
    let output = setup.run(&home, &runbook(""));
    let (stdout, stderr) = (stdout_of(&output), stderr_of(&output));
    assert!(!output.status.success(), "findings fail the step and the drill: {stdout}");
    let expected = [
        "FAIL configuration: deployment/web container app: DATABASE_URL: DATABASE_URL from Secret shop-env key \
         DATABASE_URL points at what production uses: deployment/web (DATABASE_URL)",
        "FAIL configuration: deployment/web container app: APP_EMAIL_HOST: APP_EMAIL_HOST from ConfigMap dr-config \
         (envFrom, prefix APP_) key EMAIL_HOST points at what production uses: deployment/web (EMAIL_HOST)",
        "FAIL ingress: Ingress shop-dr host shop.example: production serves the same host: shop.example (Ingress shop)",
        "FAIL network: pods of deployment/web, pods of cronjob/backup-job-daily: no NetworkPolicy restricting egress",
        "FAIL schedule: cronjob/backup-job-daily: runs in DR on `0 3 * * *`",
    ];
    for line in expected {
        assert!(stdout.contains(line), "missing `{line}`:\n{stdout}");
    }
    assert!(!stdout.contains("SENTRY_DSN:"), "shared on purpose (allow): {stdout}");
    assert!(!stdout.contains("APP_DB_HOST:"), "env replaced the ConfigMap's production DB_HOST: {stdout}");
    assert!(stdout.contains("5 isolation findings, the first:"), "{stdout}");
    assert!(stdout.contains("fix: kubectl -n shop-dr patch cronjob backup-job-daily"), "{stdout}");

    let journal = home.journal();
    assert!(journal.contains(r#""kind":"isolation""#), "typed evidence: {journal}");
    let drill = home.only_drill().file_name().unwrap().to_owned();
    let report = home.cmd_std().args(["report", "--format", "md"]).arg(&drill).output().unwrap();
    let report = stdout_of(&report);
    assert!(report.contains("FAIL ingress: Ingress shop-dr host shop.example"), "{report}");
    for format in ["html", "json", "junit"] {
        let out = home.cmd_std().args(["report", "--format", format]).arg(&drill).output().unwrap();
        assert!(stdout_of(&out).contains("backup-job-daily"), "{format} report lists the findings");
    }
    assert_no_secret(&home, &[&stdout, &stderr, &report]);
}

#[test]
fn a_clean_dr_passes_and_the_evidence_says_what_was_compared() {
    let setup = setup(true);
    let home = Home::new();
    let output = setup.run(&home, &runbook(""));
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    for line in [
        "configuration: 3 variable(s) matching",
        "in 2 container(s) of 2 DR workload(s) (deployment/web, cronjob/backup-job-daily)",
        "shared on purpose: SENTRY_DSN",
        "network policies (require): default-deny-egress (egress; (all pods))",
        "ingress hosts: dr.shop.example (Ingress shop-dr) (production has 1)",
        "cronjobs (suspended): backup-job-daily (suspended)",
        "no finding: nothing in DR points at production",
    ] {
        assert!(stdout.contains(line), "missing `{line}`:\n{stdout}");
    }
    assert_no_secret(&home, &[&stdout, &stderr_of(&output)]);
}

#[test]
fn warn_settings_list_the_gaps_without_failing() {
    let setup = setup(true);
    // Undo the clean set-up's policy and suspension.
    let (status, body) = setup.emulator.request(
        "DELETE",
        "/apis/networking.k8s.io/v1/namespaces/shop-dr/networkpolicies/default-deny-egress",
        None,
    );
    assert_eq!(status, 200, "{body}");
    setup.kubectl(&["-n", "shop-dr", "patch", "cronjob", "backup-job-daily", "-p", r#"{"spec":{"suspend":false}}"#]);

    let home = Home::new();
    let output = setup.run(&home, &runbook("network_policy = \"warn\"\ncronjobs = \"warn\""));
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "warnings do not fail the step: {stdout}");
    assert!(stdout.contains("WARN network: pods of deployment/web"), "{stdout}");
    assert!(stdout.contains("WARN schedule: cronjob/backup-job-daily"), "{stdout}");

    let home = Home::new();
    let output = setup.run(&home, &runbook(""));
    assert!(!output.status.success(), "`require` is the default: {}", stdout_of(&output));
}

#[test]
fn a_forbidden_secret_list_is_one_clear_line() {
    let setup = setup(true);
    setup.emulator.forbid("list", "secrets", "shop-production");
    let home = Home::new();
    let output = setup.run(&home, &runbook(""));
    let stdout = stdout_of(&output);
    assert!(!output.status.success());
    let line = "cannot list secrets in shop-production (context `emulator`): the drill's ServiceAccount needs \
                get/list on secrets there (production namespace";
    assert!(stdout.contains(line), "missing `{line}`:\n{stdout}");
}
