//! The comparison on hand-built namespaces: what is found, what is not,
//! and that no value ever reaches the result.

use serde_json::json;

use super::config::NamespaceConfig;
use super::*;
use crate::runbook::Enforce;

fn cluster(server: &str) -> ClusterTarget {
    ClusterTarget { context: "dr-cluster".into(), server: server.into() }
}

fn step() -> IsolationStep {
    IsolationStep {
        dr: RenderedTarget { context: None, namespace: "shop-dr".into() },
        production: RenderedTarget { context: None, namespace: "shop-production".into() },
        keys: Vec::new(),
        allow: vec!["SENTRY_DSN".into()],
        network_policy: Enforce::Require,
        cronjobs: Enforce::Require,
    }
}

fn objects<T: serde::de::DeserializeOwned>(items: serde_json::Value) -> Vec<T> {
    serde_json::from_value(items).unwrap()
}

fn deployment(name: &str, env: serde_json::Value, env_from: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "shop:1", "env": env, "envFrom": env_from}]}
            }
        }
    })
}

/// Production: the database in a Secret, the broker in a ConfigMap, Sentry, a host.
fn production() -> NamespaceConfig {
    NamespaceConfig::from_objects(
        "shop-production",
        &objects(json!([deployment(
            "web",
            json!([
                {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "shop-env", "key": "DATABASE_URL"}}},
                {"name": "SENTRY_DSN", "value": "https://key@sentry.example/42"}
            ]),
            json!([{"configMapRef": {"name": "shop-config"}}])
        )])),
        &[],
        &[],
        &objects(
            json!([{"metadata": {"name": "shop-config"}, "data": {"BROKER_URL": "amqp://mq.prod.internal/shop"}}]),
        ),
        &objects(json!([{"metadata": {"name": "shop-env"}, "data": {
            // base64 of postgresql://app:prod-secret@db.prod.internal:5432/shop
            "DATABASE_URL": "cG9zdGdyZXNxbDovL2FwcDpwcm9kLXNlY3JldEBkYi5wcm9kLmludGVybmFsOjU0MzIvc2hvcA=="
        }}])),
        &[],
        &objects(json!([{"metadata": {"name": "shop"}, "spec": {"rules": [{"host": "shop.example"}]}}])),
    )
}

fn dr(env: serde_json::Value, policies: serde_json::Value, cronjobs: serde_json::Value) -> NamespaceConfig {
    NamespaceConfig::from_objects(
        "shop-dr",
        &objects(json!([deployment("web", env, json!([{"secretRef": {"name": "dr-env"}, "prefix": "APP_"}]))])),
        &[],
        &objects(cronjobs),
        &objects(json!([{"metadata": {"name": "dr-config"}, "data": {"DB_HOST": "db.dr.internal"}}])),
        &objects(
            json!([{"metadata": {"name": "dr-env"}, "stringData": {"BROKER_URL": "amqp://user:pw@MQ.prod.internal:5672/shop"}}]),
        ),
        &objects(policies),
        &objects(
            json!([{"metadata": {"name": "dr"}, "spec": {"rules": [{"host": "shop.example"}, {"host": "dr.shop.example"}]}}]),
        ),
    )
}

fn deny_all() -> serde_json::Value {
    json!([{"metadata": {"name": "deny-egress"}, "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}])
}

fn suspended() -> serde_json::Value {
    json!([{"metadata": {"name": "backup-job-daily"}, "spec": {"schedule": "0 3 * * *", "suspend": true,
        "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "backup", "image": "b:1"}]}}}}}}])
}

fn analysed(dr: &NamespaceConfig, step: &IsolationStep) -> IsolationResult {
    analyse(step, &cluster("https://k8s"), dr, &cluster("https://k8s"), &production())
}

#[test]
fn a_leaked_database_url_and_a_prefixed_broker_are_found_and_named_without_values() {
    let config = dr(
        json!([
            {"name": "DATABASE_URL", "value": "postgres://dr:other@DB.prod.internal/shop?sslmode=require"},
            {"name": "SENTRY_DSN", "value": "https://key@sentry.example/42"}
        ]),
        deny_all(),
        suspended(),
    );
    let result = analysed(&config, &step());
    let config_findings: Vec<_> = result.findings.iter().filter(|f| f.area == "configuration").collect();
    assert_eq!(config_findings.len(), 2, "{:#?}", result.findings);
    let database = config_findings.iter().find(|f| f.subject.ends_with("DATABASE_URL")).unwrap();
    assert_eq!(database.subject, "deployment/web container app: DATABASE_URL");
    assert!(database.finding.contains("from env value"), "{}", database.finding);
    assert!(database.finding.contains("deployment/web (DATABASE_URL)"), "{}", database.finding);
    let broker = config_findings.iter().find(|f| f.subject.ends_with("APP_BROKER_URL")).unwrap();
    assert!(broker.finding.contains("Secret dr-env (envFrom, prefix APP_) key BROKER_URL"), "{}", broker.finding);
    assert!(broker.fix.contains("Secret dr-env"), "{}", broker.fix);
    // SENTRY_DSN is shared on purpose.
    assert!(result.findings.iter().all(|f| !f.subject.contains("SENTRY")));
    let text = serde_json::to_string(&result).unwrap() + &result.lines().join("\n");
    for value in ["prod-secret", "db.prod.internal", "mq.prod.internal", "other", "sentry.example"] {
        assert!(!text.to_lowercase().contains(value), "`{value}` leaked into the evidence: {text}");
    }
}

#[test]
fn a_dr_config_pointing_at_its_own_services_is_clean_and_says_what_was_compared() {
    let config =
        dr(json!([{"name": "DATABASE_URL", "value": "postgres://db.dr.internal/shop"}]), deny_all(), suspended());
    let mut config = config;
    // DR's broker is its own, and its Ingress no longer claims production's host.
    config.secrets.clear();
    config.hosts.retain(|h| h.host.starts_with("dr."));
    let result = analysed(&config, &step());
    assert!(result.findings.is_empty(), "{:#?}", result.findings);
    assert_eq!(result.compared.workloads, ["deployment/web", "cronjob/backup-job-daily"]);
    assert_eq!(result.compared.variables, 1);
    assert_eq!(result.compared.production_variables, 2, "DATABASE_URL and BROKER_URL (SENTRY_DSN is allowed)");
    assert_eq!(result.compared.policies, ["deny-egress (egress; (all pods))"]);
    let lines = result.lines().join("\n");
    assert!(lines.contains("no finding"), "{lines}");
    assert!(lines.contains("cronjobs (suspended): backup-job-daily (suspended)"), "{lines}");
}

#[test]
fn ingress_network_and_schedule_findings_follow_their_settings() {
    let config = dr(
        json!([]),
        json!([]),
        json!([{"metadata": {"name": "backup-job-daily"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}]),
    );
    let result = analysed(&config, &step());
    let areas: Vec<(&str, &str)> = result.findings.iter().map(|f| (f.area.as_str(), f.severity.as_str())).collect();
    assert!(areas.contains(&("ingress", "fail")), "{areas:?}");
    assert!(areas.contains(&("network", "fail")), "{areas:?}");
    assert!(areas.contains(&("schedule", "fail")), "{areas:?}");
    let network = result.findings.iter().find(|f| f.area == "network").unwrap();
    assert_eq!(network.subject, "pods of deployment/web, pods of cronjob/backup-job-daily");
    let ingress = result.findings.iter().find(|f| f.area == "ingress").unwrap();
    assert_eq!(ingress.subject, "Ingress dr host shop.example");
    let schedule = result.findings.iter().find(|f| f.area == "schedule").unwrap();
    assert!(schedule.fix.contains("kubectl -n shop-dr patch cronjob backup-job-daily"), "{}", schedule.fix);

    let lenient = IsolationStep { network_policy: Enforce::Warn, cronjobs: Enforce::Ignore, ..step() };
    let result = analysed(&config, &lenient);
    assert!(result.findings.iter().any(|f| f.area == "network" && f.severity == "warn"));
    assert!(result.findings.iter().all(|f| f.area != "schedule"));
    assert!(result.compared.cronjobs.iter().any(|c| c.contains("NOT suspended")), "still listed");
}

#[test]
fn an_open_egress_policy_is_a_finding() {
    let policies = json!([{"metadata": {"name": "allow-all"}, "spec": {"podSelector": {},
        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}]);
    let result = analysed(&dr(json!([]), policies, suspended()), &step());
    let open = result.findings.iter().find(|f| f.subject.starts_with("NetworkPolicy allow-all")).unwrap();
    assert!(open.finding.contains("0.0.0.0/0"), "{}", open.finding);
}

#[test]
fn production_in_another_cluster_does_not_share_cluster_local_services() {
    let config = dr(json!([{"name": "REDIS_URL", "value": "redis://redis:6379/0"}]), deny_all(), suspended());
    let mut prod = production();
    prod.config_maps.get_mut("shop-config").unwrap().insert("REDIS_URL".into(), "redis://redis/0".into());
    let same = analyse(&step(), &cluster("https://k8s"), &config, &cluster("https://k8s"), &prod);
    assert!(same.findings.iter().all(|f| !f.subject.ends_with("REDIS_URL")), "each namespace has its own `redis`");
}

#[test]
fn key_patterns_match_as_globs_in_either_case() {
    assert!(glob_match("*DATABASE_URL*", "APP_DATABASE_URL_RO"));
    assert!(glob_match("*_host", "DB_HOST"));
    assert!(glob_match("EMAIL_*", "EMAIL_HOST_PASSWORD"));
    assert!(!glob_match("EMAIL_*", "MY_EMAIL_HOST"));
    assert!(glob_match("A?C", "ABC") && !glob_match("A?C", "AC"));
}
