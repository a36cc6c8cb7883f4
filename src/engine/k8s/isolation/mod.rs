//! `k8s-isolation`: before DR's copy of the application starts, prove it
//! cannot reach production on its own. Four checks, all findings listed:
//!
//! 1. **Configuration.** Every container of every Deployment, StatefulSet
//!    and CronJob in DR gets its environment resolved as the kubelet would
//!    ([`env`]); so does production's. A DR variable whose key matches
//!    `keys` (and not `allow`) and whose value points at what a production
//!    variable of a matching key points at ([`target`]: by scheme, host,
//!    port, database or bucket, never by spelling) is a finding. Values are
//!    compared as SHA-256 fingerprints and never shown, journaled or logged.
//! 2. **Network.** With `network_policy = "require"`, every DR pod template
//!    must be selected by a NetworkPolicy restricting egress, and no such
//!    policy may open egress to everything.
//! 3. **Ingress.** A DR host that production's Ingresses also claim.
//! 4. **Schedules.** With `cronjobs = "suspended"`, a DR CronJob that is not
//!    suspended (DR running production's backup or mail jobs).
//!
//! The namespace's objects are read with one list per resource kind
//! ([`Cluster::config`]), never one request per workload.

pub mod config;
pub mod env;
pub mod target;

use std::collections::{BTreeSet, HashMap};

use self::config::{NamespaceConfig, OwnerKind};
use self::target::{Scope, Target};
use super::tag::RenderedTarget;
use super::{Cluster, ClusterTarget, K8sError};
use crate::drill::evidence::{IsolationCompared, IsolationFinding, IsolationResult};
use crate::engine::render::RenderError;
use crate::runbook::template::{TemplateContext, Templater};
use crate::runbook::{Enforce, K8sIsolationSpec};

/// The keys compared when the step names none.
pub const DEFAULT_KEYS: [&str; 7] =
    ["*DATABASE_URL*", "*_HOST", "*BUCKET*", "*BROKER_URL*", "*REDIS_URL*", "EMAIL_*", "*_DSN"];

/// The step with its templates rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationStep {
    pub dr: RenderedTarget,
    pub production: RenderedTarget,
    pub keys: Vec<String>,
    pub allow: Vec<String>,
    pub network_policy: Enforce,
    pub cronjobs: Enforce,
}

impl IsolationStep {
    pub fn render(
        spec: &K8sIsolationSpec,
        context: &TemplateContext,
        templater: &Templater,
    ) -> Result<IsolationStep, RenderError> {
        Ok(IsolationStep {
            dr: RenderedTarget::render(&spec.target, context, templater)?,
            production: RenderedTarget::render(&spec.production, context, templater)?,
            keys: spec.keys.clone(),
            allow: spec.allow.clone(),
            network_policy: spec.network_policy,
            cronjobs: spec.cronjobs,
        })
    }

    /// One line for the log and the plan.
    pub fn describe(&self) -> String {
        format!("k8s-isolation of {} against {}", self.dr.describe(), self.production.describe())
    }
}

/// Reads both namespaces (concurrently) and compares them.
pub async fn run(
    step: &IsolationStep,
    dr: &dyn Cluster,
    production: &dyn Cluster,
) -> Result<IsolationResult, IsolationError> {
    let (dr_config, production_config) =
        futures::future::join(dr.config(&step.dr.namespace), production.config(&step.production.namespace)).await;
    let dr_config = dr_config.map_err(|e| IsolationError::read(e, "DR"))?;
    let production_config = production_config.map_err(|e| IsolationError::read(e, "production"))?;
    Ok(analyse(step, dr.target(), &dr_config, production.target(), &production_config))
}

/// Why the check could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    /// A right is missing: one line naming the verb, resource and namespace.
    #[error(
        "cannot {verb} {resource} in {namespace} (context `{context}`): the drill's ServiceAccount needs get/list on \
         {resource} there ({side} namespace; assets/cronjob.yaml grants the rights this check needs)"
    )]
    Forbidden { verb: String, resource: String, namespace: String, context: String, side: &'static str },
    #[error("{side} namespace: {source}")]
    Cluster {
        side: &'static str,
        #[source]
        source: Box<K8sError>,
    },
}

impl IsolationError {
    fn read(error: K8sError, side: &'static str) -> IsolationError {
        match error {
            K8sError::Forbidden { verb, resource, namespace, context, .. } => {
                IsolationError::Forbidden { verb, resource, namespace, context, side }
            }
            source => IsolationError::Cluster { side, source: Box::new(source) },
        }
    }
}

/// Where a production value is used: `deployment/web (DATABASE_URL)`.
type Users = BTreeSet<String>;

/// Production's fingerprints: whole targets, and hosts (of URLs and bare).
#[derive(Default)]
struct Production {
    whole: HashMap<[u8; 32], Users>,
    url_hosts: HashMap<[u8; 32], Users>,
    bare_hosts: HashMap<[u8; 32], Users>,
    variables: u32,
}

impl Production {
    /// The production users of what `target` points at.
    fn users(&self, target: &Target) -> Option<&Users> {
        if let Some(users) = self.whole.get(&target.whole) {
            return Some(users);
        }
        // A bare host against a URL's host, and a URL's host against a bare host.
        let host = target.host.as_ref()?;
        if target.bare_host { self.url_hosts.get(host) } else { self.bare_hosts.get(host) }
    }
}

/// The comparison itself: pure, so the tests can give it any two namespaces.
pub fn analyse(
    step: &IsolationStep,
    dr_cluster: &ClusterTarget,
    dr: &NamespaceConfig,
    production_cluster: &ClusterTarget,
    production: &NamespaceConfig,
) -> IsolationResult {
    let keys: Vec<String> =
        if step.keys.is_empty() { DEFAULT_KEYS.iter().map(|k| k.to_string()).collect() } else { step.keys.clone() };
    let compared_key = |name: &str| {
        keys.iter().any(|pattern| glob_match(pattern, name)) && !step.allow.iter().any(|a| glob_match(a, name))
    };
    let namespaces = [dr.namespace.as_str(), production.namespace.as_str()];
    let dr_scope = Scope { namespace: &dr.namespace, cluster: &dr_cluster.server, namespaces: &namespaces };
    let production_scope =
        Scope { namespace: &production.namespace, cluster: &production_cluster.server, namespaces: &namespaces };

    let mut prod = Production::default();
    for workload in &production.workloads {
        for container in &workload.containers {
            for var in env::resolve(container, production) {
                let Some(value) = var.value.as_ref().filter(|_| compared_key(&var.name)) else { continue };
                prod.variables += 1;
                let Some(target) = target::target(&var.name, &value.0, production_scope) else { continue };
                let user = format!("{} ({})", workload.id(), var.name);
                prod.whole.entry(target.whole).or_default().insert(user.clone());
                if let Some(host) = target.host {
                    let hosts = if target.bare_host { &mut prod.bare_hosts } else { &mut prod.url_hosts };
                    hosts.entry(host).or_default().insert(user);
                }
            }
        }
    }

    let mut findings = Vec::new();
    let mut compared = IsolationCompared {
        keys: keys.clone(),
        allow: step.allow.clone(),
        production_workloads: production.workloads.len() as u32,
        production_variables: prod.variables,
        network_policy: step.network_policy.name("require").into(),
        cronjobs_rule: step.cronjobs.name("suspended").into(),
        production_hosts: production.hosts.len() as u32,
        ..IsolationCompared::default()
    };
    for workload in &dr.workloads {
        compared.workloads.push(workload.id());
        for container in &workload.containers {
            compared.containers += 1;
            for var in env::resolve(container, dr) {
                if !compared_key(&var.name) {
                    continue;
                }
                compared.variables += 1;
                let Some(value) = var.value.as_ref() else { continue };
                let Some(target) = target::target(&var.name, &value.0, dr_scope) else { continue };
                let Some(users) = prod.users(&target) else { continue };
                let container_kind = if container.init { "init container" } else { "container" };
                findings.push(IsolationFinding {
                    area: "configuration".into(),
                    severity: "fail".into(),
                    subject: format!("{} {container_kind} {}: {}", workload.id(), container.name, var.name),
                    finding: format!(
                        "{} from {} points at what production uses: {}",
                        var.name,
                        var.origin,
                        users.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    fix: format!(
                        "point {} at DR's own service in {}, or add it to `allow` if sharing it is intended",
                        var.name,
                        source_object(&var.origin)
                    ),
                });
            }
        }
    }

    network(step, dr, &mut compared, &mut findings);
    ingress(dr, production, &mut compared, &mut findings);
    schedules(step, dr, &mut compared, &mut findings);

    IsolationResult {
        context: dr_cluster.context.clone(),
        server: dr_cluster.server.clone(),
        namespace: dr.namespace.clone(),
        production_context: production_cluster.context.clone(),
        production_namespace: production.namespace.clone(),
        findings,
        compared,
    }
}

/// A variable name against a pattern of `keys`/`allow`: `*` is any run of
/// characters, `?` one; letters match in either case (`*_host` finds `DB_HOST`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (pattern, name): (Vec<char>, Vec<char>) =
        (pattern.to_ascii_uppercase().chars().collect(), name.to_ascii_uppercase().chars().collect());
    // The classic two-pointer match with one backtrack point per `*`.
    let (mut p, mut n, mut star, mut mark) = (0, 0, None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(at) = star {
            p = at + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// `Secret shop-env` out of `Secret shop-env key DATABASE_URL`; the pod spec otherwise.
fn source_object(origin: &str) -> String {
    match origin.split_once(" key ") {
        Some((object, _)) => object.split(" (").next().unwrap_or(object).to_string(),
        None => "the pod spec".into(),
    }
}

fn severity(rule: Enforce) -> Option<&'static str> {
    match rule {
        Enforce::Require => Some("fail"),
        Enforce::Warn => Some("warn"),
        Enforce::Ignore => None,
    }
}

fn network(
    step: &IsolationStep,
    dr: &NamespaceConfig,
    compared: &mut IsolationCompared,
    findings: &mut Vec<IsolationFinding>,
) {
    compared.policies = dr
        .network_policies
        .iter()
        .map(|p| {
            let egress = if p.restricts_egress { "egress" } else { "ingress only" };
            format!("{} ({egress}; {})", p.name, p.selector.describe())
        })
        .collect();
    let Some(severity) = severity(step.network_policy) else { return };
    let egress: Vec<_> = dr.network_policies.iter().filter(|p| p.restricts_egress).collect();
    let unselected: Vec<String> = dr
        .workloads
        .iter()
        .filter(|w| !egress.iter().any(|p| p.selector.matches(&w.labels)))
        .map(|w| format!("pods of {}", w.id()))
        .collect();
    if !unselected.is_empty() {
        findings.push(IsolationFinding {
            area: "network".into(),
            severity: severity.into(),
            subject: unselected.join(", "),
            finding: "no NetworkPolicy restricting egress selects these pods: they can reach production".into(),
            fix: format!(
                "add a default-deny egress policy to {} (podSelector {{}}, policyTypes [Egress]) and allow only \
                 what DR needs (DNS, DR's database)",
                dr.namespace
            ),
        });
    }
    for policy in egress {
        let Some(open) = &policy.egress_open else { continue };
        let selected: Vec<String> =
            dr.workloads.iter().filter(|w| policy.selector.matches(&w.labels)).map(|w| w.id()).collect();
        if selected.is_empty() {
            continue;
        }
        findings.push(IsolationFinding {
            area: "network".into(),
            severity: severity.into(),
            subject: format!("NetworkPolicy {} (selects {})", policy.name, selected.join(", ")),
            finding: format!("{open}: egress is not restricted"),
            fix: "list the destinations DR needs instead of everything".into(),
        });
    }
}

fn ingress(
    dr: &NamespaceConfig,
    production: &NamespaceConfig,
    compared: &mut IsolationCompared,
    findings: &mut Vec<IsolationFinding>,
) {
    compared.hosts = dr.hosts.iter().map(|h| format!("{} ({})", h.host, h.by)).collect();
    for claim in &dr.hosts {
        let theirs: Vec<String> = production
            .hosts
            .iter()
            .filter(|p| hosts_overlap(&claim.host, &p.host))
            .map(|p| format!("{} ({})", p.host, p.by))
            .collect();
        if theirs.is_empty() {
            continue;
        }
        findings.push(IsolationFinding {
            area: "ingress".into(),
            severity: "fail".into(),
            subject: format!("{} host {}", claim.by, claim.host),
            finding: format!("production serves the same host: {}", theirs.join(", ")),
            fix: "give DR its own host name (dr.… ), so scaling DR up cannot take production's traffic".into(),
        });
    }
}

/// The same host, or one a wildcard (`*.shop.example`) covers.
fn hosts_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.').to_ascii_lowercase(), b.trim_end_matches('.').to_ascii_lowercase());
    let covers = |wild: &str, host: &str| {
        wild.strip_prefix("*.").is_some_and(|domain| {
            host.strip_suffix(domain)
                .is_some_and(|label| label.ends_with('.') && !label[..label.len() - 1].contains('.'))
        })
    };
    a == b || covers(&a, &b) || covers(&b, &a)
}

fn schedules(
    step: &IsolationStep,
    dr: &NamespaceConfig,
    compared: &mut IsolationCompared,
    findings: &mut Vec<IsolationFinding>,
) {
    let cronjobs = dr.workloads.iter().filter(|w| w.kind == OwnerKind::CronJob);
    let mut running = Vec::new();
    for cronjob in cronjobs {
        let suspended = cronjob.suspended == Some(true);
        let state = if suspended { "suspended" } else { "NOT suspended" };
        compared.cronjobs.push(format!("{} ({state})", cronjob.name));
        if !suspended {
            running.push(cronjob);
        }
    }
    let Some(severity) = severity(step.cronjobs) else { return };
    for cronjob in running {
        let schedule = cronjob.schedule.as_deref().map(|s| format!(" on `{s}`")).unwrap_or_default();
        findings.push(IsolationFinding {
            area: "schedule".into(),
            severity: severity.into(),
            subject: format!("cronjob/{}", cronjob.name),
            finding: format!("runs in DR{schedule}: DR would do production's scheduled work (backups, mail)"),
            fix: format!(
                "kubectl -n {} patch cronjob {} -p '{{\"spec\":{{\"suspend\":true}}}}'",
                dr.namespace, cronjob.name
            ),
        });
    }
}

#[cfg(test)]
mod tests;
