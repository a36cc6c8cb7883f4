//! What an isolation check reads of a namespace: every pod template's
//! environment (Deployments, StatefulSets, CronJobs), the ConfigMaps and
//! Secrets it may refer to, the NetworkPolicies, the hosts Ingresses and
//! HTTPRoutes claim, and whether CronJobs are suspended. Built from the
//! k8s-openapi objects by the same functions for the real API and for the
//! sandbox, so both are judged alike.
//!
//! Secret values live here in memory only, as [`SecretText`], whose Debug
//! never prints them: the check hashes them and drops them, and nothing of
//! this module is journaled.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodTemplateSpec, Secret};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Everything the check compares, for one namespace.
#[derive(Debug, Clone, Default)]
pub struct NamespaceConfig {
    pub namespace: String,
    /// Sorted by kind, then name.
    pub workloads: Vec<PodOwner>,
    /// ConfigMap name → key → value.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secret name → key → value (decoded).
    pub secrets: BTreeMap<String, BTreeMap<String, SecretText>>,
    pub network_policies: Vec<PolicyInfo>,
    /// The host names Ingresses (and HTTPRoutes) claim.
    pub hosts: Vec<HostClaim>,
}

/// A secret's value: held for hashing, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(…)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OwnerKind {
    Deployment,
    StatefulSet,
    CronJob,
}

impl OwnerKind {
    pub fn name(self) -> &'static str {
        match self {
            OwnerKind::Deployment => "deployment",
            OwnerKind::StatefulSet => "statefulset",
            OwnerKind::CronJob => "cronjob",
        }
    }
}

/// A workload with a pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodOwner {
    pub kind: OwnerKind,
    pub name: String,
    /// The pod template's labels: what NetworkPolicies select.
    pub labels: BTreeMap<String, String>,
    /// Init containers first, then containers, each in spec order.
    pub containers: Vec<ContainerEnv>,
    /// A CronJob's `spec.suspend`; `None` for the other kinds.
    pub suspended: Option<bool>,
    /// A CronJob's schedule.
    pub schedule: Option<String>,
}

impl PodOwner {
    /// `deployment/web`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind.name(), self.name)
    }
}

/// A container's environment as its spec gives it, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEnv {
    pub name: String,
    pub init: bool,
    pub env_from: Vec<EnvFrom>,
    pub env: Vec<EnvEntry>,
}

/// One `envFrom` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFrom {
    pub source: Source,
    /// The object's name.
    pub name: String,
    pub prefix: String,
    pub optional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ConfigMap,
    Secret,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::ConfigMap => "ConfigMap",
            Source::Secret => "Secret",
        }
    }
}

/// One `env` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    pub name: String,
    pub value: EnvValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `value` (may refer to earlier variables as `$(NAME)`).
    Literal(String),
    /// `valueFrom.configMapKeyRef` / `secretKeyRef`.
    Key { source: Source, name: String, key: String, optional: bool },
    /// `fieldRef`, `resourceFieldRef`: the pod's own facts, never shared with production.
    Downward,
}

/// A NetworkPolicy as the check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub name: String,
    pub selector: Selector,
    /// `policyTypes` contains `Egress` (given, or implied by egress rules).
    pub restricts_egress: bool,
    /// Why its egress rules let a pod reach anything (`to` empty, `0.0.0.0/0`,
    /// every namespace); `None` when they are limited.
    pub egress_open: Option<String>,
}

/// A label selector: `matchLabels` and `matchExpressions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub labels: BTreeMap<String, String>,
    /// (key, operator, values).
    pub expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    /// Whether a pod with `labels` is selected (an empty selector selects every pod).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(key, operator, values)| {
                let value = labels.get(key);
                match operator.as_str() {
                    "In" => value.is_some_and(|v| values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    // An operator the API server would have refused: select nothing.
                    _ => false,
                }
            })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.expressions.is_empty()
    }

    /// `app=web,tier in (a,b)` or `(all pods)`.
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return "(all pods)".into();
        }
        let mut parts: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.extend(self.expressions.iter().map(|(k, op, values)| match op.as_str() {
            "Exists" => k.clone(),
            "DoesNotExist" => format!("!{k}"),
            _ => format!("{k} {} ({})", op.to_lowercase(), values.join(",")),
        }));
        parts.join(",")
    }
}

/// A host name an Ingress or HTTPRoute claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostClaim {
    /// `Ingress shop` or `HTTPRoute shop`.
    pub by: String,
    pub host: String,
}

impl NamespaceConfig {
    /// Builds the namespace's config from its objects, as listed.
    #[allow(clippy::too_many_arguments)]
    pub fn from_objects(
        namespace: &str,
        deployments: &[Deployment],
        statefulsets: &[StatefulSet],
        cronjobs: &[CronJob],
        config_maps: &[ConfigMap],
        secrets: &[Secret],
        policies: &[NetworkPolicy],
        ingresses: &[Ingress],
    ) -> NamespaceConfig {
        let name =
            |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| meta.name.clone().unwrap_or_default();
        let mut workloads = Vec::new();
        for deployment in deployments {
            let template = deployment.spec.as_ref().map(|s| &s.template);
            workloads.push(pod_owner(OwnerKind::Deployment, name(&deployment.metadata), template, None));
        }
        for statefulset in statefulsets {
            let template = statefulset.spec.as_ref().map(|s| &s.template);
            workloads.push(pod_owner(OwnerKind::StatefulSet, name(&statefulset.metadata), template, None));
        }
        for cronjob in cronjobs {
            let spec = cronjob.spec.as_ref();
            let template = spec.and_then(|s| s.job_template.spec.as_ref()).map(|j| &j.template);
            let mut owner = pod_owner(OwnerKind::CronJob, name(&cronjob.metadata), template, None);
            owner.suspended = Some(spec.and_then(|s| s.suspend).unwrap_or(false));
            owner.schedule = spec.map(|s| s.schedule.clone());
            workloads.push(owner);
        }
        workloads.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        let config_maps = config_maps
            .iter()
            .map(|map| {
                let mut values = map.data.clone().unwrap_or_default();
                // Binary data cannot be an environment variable's value; kept
                // as text so an `envFrom` still names its keys.
                for (key, bytes) in map.binary_data.iter().flatten() {
                    values.entry(key.clone()).or_insert_with(|| String::from_utf8_lossy(&bytes.0).into_owned());
                }
                (name(&map.metadata), values.into_iter().collect())
            })
            .collect();
        let secrets = secrets
            .iter()
            .map(|secret| {
                let mut values: BTreeMap<String, SecretText> = secret
                    .data
                    .iter()
                    .flatten()
                    .map(|(key, bytes)| (key.clone(), SecretText(String::from_utf8_lossy(&bytes.0).into_owned())))
                    .collect();
                // `stringData` is write-only on a real server; a sandbox may keep it.
                for (key, value) in secret.string_data.iter().flatten() {
                    values.insert(key.clone(), SecretText(value.clone()));
                }
                (name(&secret.metadata), values)
            })
            .collect();
        let mut network_policies: Vec<PolicyInfo> = policies.iter().map(policy_info).collect();
        network_policies.sort_by(|a, b| a.name.cmp(&b.name));
        let mut hosts: Vec<HostClaim> = ingresses
            .iter()
            .flat_map(|ingress| {
                let by = format!("Ingress {}", name(&ingress.metadata));
                let spec = ingress.spec.as_ref();
                let rules = spec.and_then(|s| s.rules.as_ref()).into_iter().flatten().filter_map(|r| r.host.clone());
                let tls = spec
                    .and_then(|s| s.tls.as_ref())
                    .into_iter()
                    .flatten()
                    .flat_map(|t| t.hosts.clone().unwrap_or_default());
                let mut hosts: Vec<String> = rules.chain(tls).collect();
                hosts.sort();
                hosts.dedup();
                hosts.into_iter().map(move |host| HostClaim { by: by.clone(), host })
            })
            .collect();
        hosts.sort_by(|a, b| (&a.host, &a.by).cmp(&(&b.host, &b.by)));
        NamespaceConfig { namespace: namespace.to_string(), workloads, config_maps, secrets, network_policies, hosts }
    }
}

fn pod_owner(kind: OwnerKind, name: String, template: Option<&PodTemplateSpec>, schedule: Option<String>) -> PodOwner {
    let labels = template.and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
    let spec = template.and_then(|t| t.spec.as_ref());
    let init = spec.and_then(|s| s.init_containers.as_ref()).into_iter().flatten().map(|c| container_env(c, true));
    let main = spec.into_iter().flat_map(|s| s.containers.iter()).map(|c| container_env(c, false));
    PodOwner {
        kind,
        name,
        labels: labels.into_iter().collect(),
        containers: init.chain(main).collect(),
        suspended: None,
        schedule,
    }
}

fn container_env(container: &Container, init: bool) -> ContainerEnv {
    let env_from = container
        .env_from
        .iter()
        .flatten()
        .filter_map(|from| {
            let prefix = from.prefix.clone().unwrap_or_default();
            if let Some(map) = &from.config_map_ref {
                Some(EnvFrom {
                    source: Source::ConfigMap,
                    name: map.name.clone(),
                    prefix,
                    optional: map.optional.unwrap_or(false),
                })
            } else {
                from.secret_ref.as_ref().map(|secret| EnvFrom {
                    source: Source::Secret,
                    name: secret.name.clone(),
                    prefix,
                    optional: secret.optional.unwrap_or(false),
                })
            }
        })
        .collect();
    let env = container
        .env
        .iter()
        .flatten()
        .map(|var| {
            let from = var.value_from.as_ref();
            let value = if let Some(key) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
                EnvValue::Key {
                    source: Source::ConfigMap,
                    name: key.name.clone(),
                    key: key.key.clone(),
                    optional: key.optional.unwrap_or(false),
                }
            } else if let Some(key) = from.and_then(|f| f.secret_key_ref.as_ref()) {
                EnvValue::Key {
                    source: Source::Secret,
                    name: key.name.clone(),
                    key: key.key.clone(),
                    optional: key.optional.unwrap_or(false),
                }
            } else if from.is_some() {
                EnvValue::Downward
            } else {
                EnvValue::Literal(var.value.clone().unwrap_or_default())
            };
            EnvEntry { name: var.name.clone(), value }
        })
        .collect();
    ContainerEnv { name: container.name.clone(), init, env_from, env }
}

fn selector(selector: Option<&LabelSelector>) -> Selector {
    let Some(selector) = selector else { return Selector::default() };
    Selector {
        labels: selector.match_labels.clone().unwrap_or_default().into_iter().collect(),
        expressions: selector
            .match_expressions
            .iter()
            .flatten()
            .map(|e| (e.key.clone(), e.operator.clone(), e.values.clone().unwrap_or_default()))
            .collect(),
    }
}

fn policy_info(policy: &NetworkPolicy) -> PolicyInfo {
    let spec = policy.spec.as_ref();
    let rules = spec.and_then(|s| s.egress.as_ref());
    // The API server's default: Ingress always, Egress when egress rules are given.
    let restricts_egress = match spec.and_then(|s| s.policy_types.as_ref()) {
        Some(types) => types.iter().any(|t| t == "Egress"),
        None => rules.is_some(),
    };
    let egress_open = rules.into_iter().flatten().find_map(|rule| {
        let Some(peers) = rule.to.as_ref().filter(|to| !to.is_empty()) else {
            return Some("an egress rule with no `to` allows every destination".to_string());
        };
        peers.iter().find_map(|peer| {
            if let Some(block) = &peer.ip_block
                && matches!(block.cidr.as_str(), "0.0.0.0/0" | "::/0")
            {
                return Some(format!("an egress rule allows {}", block.cidr));
            }
            let every_namespace = peer.namespace_selector.as_ref().is_some_and(|s| selector(Some(s)).is_empty());
            let every_pod = peer.pod_selector.as_ref().is_none_or(|s| selector(Some(s)).is_empty());
            (every_namespace && every_pod)
                .then(|| "an egress rule allows every pod of every namespace (`namespaceSelector: {}`)".to_string())
        })
    });
    PolicyInfo {
        name: policy.metadata.name.clone().unwrap_or_default(),
        selector: selector(spec.and_then(|s| s.pod_selector.as_ref())),
        restricts_egress,
        egress_open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: serde_json::Value) -> PolicyInfo {
        policy_info(&serde_json::from_value(json).unwrap())
    }

    #[test]
    fn a_default_deny_egress_policy_restricts_every_pod() {
        let p = policy(serde_json::json!({
            "metadata": {"name": "deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}
        }));
        assert!(p.restricts_egress && p.egress_open.is_none() && p.selector.is_empty());
    }

    #[test]
    fn egress_rules_imply_the_egress_type_and_open_rules_are_named() {
        let p = policy(serde_json::json!({
            "metadata": {"name": "open"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}
        }));
        assert!(p.restricts_egress);
        assert_eq!(p.egress_open.as_deref(), Some("an egress rule allows 0.0.0.0/0"));
        let p = policy(serde_json::json!({
            "metadata": {"name": "ns"},
            "spec": {"podSelector": {}, "egress": [{"to": [{"namespaceSelector": {}}]}]}
        }));
        assert!(p.egress_open.unwrap().contains("every namespace"));
        let p = policy(serde_json::json!({
            "metadata": {"name": "ingress-only"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}
        }));
        assert!(!p.restricts_egress);
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let s = Selector {
            labels: [("app".to_string(), "web".to_string())].into(),
            expressions: vec![("tier".into(), "In".into(), vec!["front".into()])],
        };
        let pod = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(s.matches(&pod(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&pod(&[("app", "web")])));
        assert_eq!(s.describe(), "app=web,tier in (front)");
        assert!(Selector::default().matches(&pod(&[])));
    }
}
