//! The sandbox for a `k8s-isolation` step in training: production and DR
//! configured as a team would configure them (a Secret and a ConfigMap
//! each, an Ingress, a nightly backup CronJob, DR behind a default-deny
//! egress policy), with two mistakes planted in DR for the trainee to find:
//! its ConfigMap still names production's database host (copied from
//! production and half edited), and its copy of the backup CronJob is not
//! suspended. Both are what the issue that asked for the check saw happen.

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar};
use serde_json::json;

use super::k8s::sim::{SimCluster, SimObjects};
use super::k8s::{K8sError, WorkloadKind};

/// Seeds both namespaces; the workloads must exist already (`seed_cluster`).
pub fn seed(cluster: &SimCluster, project: &str, dr: &str, production: &str) -> Result<Vec<String>, K8sError> {
    let prod_db = format!("db.{production}.internal");
    let dr_db = format!("db.{dr}.internal");
    // (namespace, database host in the URL, DB_HOST in the ConfigMap, host, backup suspended)
    let sides = [
        (production, prod_db.clone(), prod_db.clone(), format!("{project}.example.com"), false, false),
        // DR: the URL was edited, DB_HOST was not; the CronJob was copied as it runs in production.
        (dr, dr_db, prod_db, format!("dr.{project}.example.com"), false, true),
    ];
    for (namespace, url_host, db_host, host, suspended, deny_egress) in sides {
        let objects = SimObjects {
            config_maps: vec![from(json!({
                "metadata": {"name": format!("{project}-config")},
                "data": {"DB_HOST": db_host, "EMAIL_BACKEND": "smtp", "SITE_NAME": project}
            }))?],
            secrets: vec![from(json!({
                "metadata": {"name": format!("{project}-env")},
                // The sandbox keeps what a real server would have encoded into `data`.
                "stringData": {
                    "DATABASE_URL": format!("postgres://{project}:sandbox-password@{url_host}:5432/{project}"),
                    "SECRET_KEY": "sandbox-secret-key"
                }
            }))?],
            network_policies: if deny_egress {
                vec![from(json!({
                    "metadata": {"name": "default-deny-egress"},
                    "spec": {"podSelector": {}, "policyTypes": ["Egress"]}
                }))?]
            } else {
                Vec::new()
            },
            ingresses: vec![from(json!({
                "metadata": {"name": project},
                "spec": {"rules": [{"host": host}]}
            }))?],
            cron_jobs: vec![from(json!({
                "metadata": {"name": "backup-job-daily"},
                "spec": {
                    "schedule": "0 3 * * *",
                    "suspend": suspended,
                    "jobTemplate": {"spec": {"template": {
                        "metadata": {"labels": {"app": "backup-job-daily"}},
                        "spec": {"restartPolicy": "OnFailure", "containers": [{
                            "name": "backup",
                            "image": format!("registry.example.com/{project}/backup:1"),
                            "envFrom": [{"secretRef": {"name": format!("{project}-env")}}]
                        }]}
                    }}}
                }
            }))?],
        };
        cluster.add_objects(namespace, objects)?;
        let env_from: Vec<EnvFromSource> = vec![
            from(json!({"configMapRef": {"name": format!("{project}-config")}}))?,
            from(json!({"secretRef": {"name": format!("{project}-env")}}))?,
        ];
        let env: Vec<EnvVar> = vec![from(json!({"name": "SENTRY_DSN", "value": "https://key@sentry.example.com/1"}))?];
        for workload in cluster.workloads_in(namespace)? {
            cluster.set_env(namespace, WorkloadKind::Deployment, &workload, env.clone(), env_from.clone())?;
        }
    }
    Ok(vec![format!(
        "sandbox configuration of `{dr}` and `{production}` (with two isolation mistakes in `{dr}` to find)"
    )])
}

fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, K8sError> {
    serde_json::from_value(value).map_err(|e| K8sError::Other(format!("sandbox configuration: {e}")))
}
