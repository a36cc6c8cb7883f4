//! `k8s-image-tag`: which tag production runs. Reads the Deployments'
//! container images (the first container of each pod template: the app,
//! by convention, ahead of sidecars) and their ReplicaSet history, and
//! offers every tag seen: the one running now, and the earlier revisions
//! (what a rollback would go to).

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::image::ImageRef;
use super::{Cluster, ClusterTarget, K8sError, WorkloadKind};
use crate::drill::evidence::{Evidence, TagChoice};
use crate::engine::render::RenderError;
use crate::runbook::duration::format_duration;
use crate::runbook::template::{CaptureValue, TemplateContext, Templater};
use crate::runbook::{K8sImageTagSpec, K8sTarget, TagSelect};

/// Context and namespace of a Kubernetes step, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedTarget {
    pub context: Option<String>,
    pub namespace: String,
}

impl RenderedTarget {
    pub fn render(target: &K8sTarget, context: &TemplateContext, templater: &Templater) -> Result<Self, RenderError> {
        let namespace =
            templater.render_plain(&target.namespace.text, context).map_err(RenderError::at("namespace"))?;
        if namespace.trim().is_empty() {
            return Err(RenderError::Empty("namespace"));
        }
        let context = match &target.context {
            Some(t) => Some(templater.render_plain(&t.text, context).map_err(RenderError::at("context"))?),
            None => None,
        };
        Ok(RenderedTarget { context: context.filter(|c| !c.is_empty()), namespace })
    }
}

impl RenderedTarget {
    /// "namespace `ns` in context `ctx`", naming the context the step will
    /// use (the CLI's `--context` or the kubeconfig's current one when unset).
    pub fn describe(&self) -> String {
        let context = self
            .context
            .clone()
            .or_else(|| std::env::var(super::CONTEXT_ENV).ok().filter(|c| !c.is_empty()))
            .unwrap_or_else(|| "(current)".into());
        format!("namespace {} in context {context}", self.namespace)
    }
}

/// A `k8s-image-tag` step with its templates rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagStep {
    pub target: RenderedTarget,
    pub deployments: Vec<String>,
    pub select: TagSelect,
}

impl TagStep {
    pub fn render(
        spec: &K8sImageTagSpec,
        context: &TemplateContext,
        templater: &Templater,
    ) -> Result<Self, RenderError> {
        Ok(TagStep {
            target: RenderedTarget::render(&spec.target, context, templater)?,
            deployments: spec.deployments.clone(),
            select: spec.select,
        })
    }
}

/// One tag the operator may pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagOption {
    pub tag: String,
    /// An image with this tag (the first deployment's, or from history).
    pub image: ImageRef,
    /// Deployments running it now.
    pub running: Vec<String>,
    /// The newest ReplicaSet revision with this tag.
    pub revision: Option<u64>,
    /// When that revision was created.
    pub created: Option<Timestamp>,
}

/// What the namespace runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagListing {
    pub target: ClusterTarget,
    pub namespace: String,
    /// Current tags first (most deployments first), then history newest first.
    pub options: Vec<TagOption>,
    /// Deployment → image it runs now.
    pub running: BTreeMap<String, ImageRef>,
}

impl TagListing {
    /// The tag every listed deployment runs, when they agree.
    pub fn current(&self) -> Option<&TagOption> {
        let first = self.options.first()?;
        (first.running.len() == self.running.len()).then_some(first)
    }

    /// "web runs v1, worker runs v2": why there is no single current tag.
    pub fn disagreement(&self) -> String {
        self.running
            .iter()
            .map(|(name, image)| format!("{name} runs {}", image.tag_or_digest()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn find(&self, tag: &str) -> Option<&TagOption> {
        self.options.iter().find(|o| o.tag == tag)
    }
}

/// Reads the deployments and their history.
pub async fn list(cluster: &dyn Cluster, step: &TagStep) -> Result<TagListing, K8sError> {
    let namespace = step.target.namespace.as_str();
    super::require_namespace(cluster, namespace).await?;
    let deployments = cluster.workloads(namespace, WorkloadKind::Deployment).await?;
    let context = &cluster.target().context;
    if deployments.is_empty() {
        return Err(K8sError::Other(format!("no deployments in namespace `{namespace}` (context `{context}`)")));
    }
    let names: Vec<&str> = deployments.iter().map(|d| d.name.as_str()).collect();
    for wanted in &step.deployments {
        if !names.contains(&wanted.as_str()) {
            return Err(K8sError::Other(format!(
                "deployment `{wanted}` not found in namespace `{namespace}` (context `{context}`; it has: {})",
                names.join(", ")
            )));
        }
    }
    let listed = |name: &str| step.deployments.is_empty() || step.deployments.iter().any(|d| d == name);
    let mut running = BTreeMap::new();
    let mut options: Vec<TagOption> = Vec::new();
    for deployment in deployments.iter().filter(|d| listed(&d.name)) {
        let Some((_, image)) = deployment.containers.first() else { continue };
        let image =
            ImageRef::parse(image).map_err(|e| K8sError::Other(format!("deployment `{}`: {e}", deployment.name)))?;
        let tag = image.tag_or_digest();
        running.insert(deployment.name.clone(), image.clone());
        match options.iter_mut().find(|o| o.tag == tag) {
            Some(option) => {
                option.running.push(deployment.name.clone());
                option.revision = option.revision.max(deployment.revision);
            }
            None => options.push(TagOption {
                tag,
                image,
                running: vec![deployment.name.clone()],
                revision: deployment.revision,
                created: None,
            }),
        }
    }
    options.sort_by(|a, b| b.running.len().cmp(&a.running.len()).then_with(|| a.tag.cmp(&b.tag)));
    let current_count = options.len();
    let mut history: Vec<RevisionHistory> = Vec::new();
    for revision in cluster.revisions(namespace).await? {
        let Some(owner) = revision.deployment.as_deref().filter(|d| listed(d) && running.contains_key(*d)) else {
            continue;
        };
        let Some((_, image)) = revision.containers.first() else { continue };
        let Ok(image) = ImageRef::parse(image) else { continue };
        let _ = owner;
        history.push(RevisionHistory { image, revision: revision.revision, created: revision.created });
    }
    for entry in &history {
        let tag = entry.image.tag_or_digest();
        match options.iter_mut().find(|o| o.tag == tag) {
            Some(option) => {
                option.revision = option.revision.max(entry.revision);
                option.created = option.created.max(entry.created);
            }
            None => options.push(TagOption {
                tag,
                image: entry.image.clone(),
                running: Vec::new(),
                revision: entry.revision,
                created: entry.created,
            }),
        }
    }
    options[current_count..].sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.revision.cmp(&a.revision)));
    Ok(TagListing { target: cluster.target().clone(), namespace: namespace.to_string(), options, running })
}

struct RevisionHistory {
    image: ImageRef,
    revision: Option<u64>,
    created: Option<Timestamp>,
}

/// Picker cells: tag, deployments running it, revision, age, current.
pub fn describe(option: &TagOption, now: Timestamp) -> [String; 5] {
    [
        option.tag.clone(),
        if option.running.is_empty() { "-".into() } else { option.running.join(", ") },
        option.revision.map_or_else(|| "-".into(), |r| r.to_string()),
        option.created.map_or_else(
            || "-".into(),
            |c| format_duration(std::time::Duration::from_secs(now.duration_since(c).as_secs().max(0) as u64)),
        ),
        if option.running.is_empty() { String::new() } else { "current".into() },
    ]
}

/// The choice as journaled: a resumed step takes the same tag.
pub fn choice(listing: &TagListing, option: &TagOption) -> Evidence {
    Evidence::Tag(TagChoice {
        tag: option.tag.clone(),
        image: option.image.to_string(),
        context: listing.target.context.clone(),
        server: listing.target.server.clone(),
        namespace: listing.namespace.clone(),
    })
}

pub fn find_choice<'a>(listing: &'a TagListing, choice: &Evidence) -> Option<&'a TagOption> {
    let Evidence::Tag(choice) = choice else { return None };
    listing.find(&choice.tag)
}

/// `{{ tag }}` renders the tag; `.image .repository .digest .deployments
/// .namespace .context` the rest.
pub fn capture(listing: &TagListing, option: &TagOption) -> CaptureValue {
    let mut fields = BTreeMap::new();
    let mut put = |name: &str, value: serde_json::Value| {
        fields.insert(name.to_string(), value);
    };
    put("tag", option.tag.clone().into());
    put("image", option.image.to_string().into());
    put("repository", option.image.repository().into());
    put("digest", option.image.digest.clone().map_or(serde_json::Value::Null, Into::into));
    put("deployments", option.running.join(",").into());
    put("namespace", listing.namespace.clone().into());
    put("context", listing.target.context.clone().into());
    if let Some(revision) = option.revision {
        put("revision", revision.into());
    }
    CaptureValue { value: option.tag.clone(), fields }
}

/// Lines for the log: what each deployment runs.
pub fn summary(listing: &TagListing) -> Vec<String> {
    let mut lines = vec![format!(
        "context `{}`, namespace `{}`: {} deployment(s)",
        listing.target.context,
        listing.namespace,
        listing.running.len()
    )];
    lines.extend(listing.running.iter().map(|(name, image)| format!("  {name}: {image}")));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::k8s::sim::SimCluster;

    fn step(namespace: &str, deployments: &[&str]) -> TagStep {
        TagStep {
            target: RenderedTarget { context: None, namespace: namespace.into() },
            deployments: deployments.iter().map(|d| d.to_string()).collect(),
            select: TagSelect::Current,
        }
    }

    fn cluster() -> (tempfile::TempDir, SimCluster) {
        let dir = tempfile::tempdir().unwrap();
        let cluster = SimCluster::create(dir.path(), std::time::Duration::from_millis(100)).unwrap();
        (dir, cluster)
    }

    #[tokio::test]
    async fn current_tag_history_and_capture() {
        let (_dir, cluster) = cluster();
        let web = WorkloadKind::Deployment;
        cluster.apply("prod", web, "web", "reg.io:5000/acme/web:main-1a2b3c4", 2).unwrap();
        cluster.apply("prod", web, "worker", "reg.io:5000/acme/worker:main-9f8e7d6", 1).unwrap();
        cluster.set_image("prod", "web", "reg.io:5000/acme/web:main-9f8e7d6").unwrap();
        let listing = list(&cluster, &step("prod", &[])).await.unwrap();
        let current = listing.current().expect("both run main-9f8e7d6");
        assert_eq!(
            (current.tag.as_str(), current.running.clone()),
            ("main-9f8e7d6", vec!["web".into(), "worker".into()])
        );
        assert_eq!(current.revision, Some(2));
        let history: Vec<&str> = listing.options.iter().map(|o| o.tag.as_str()).collect();
        assert_eq!(history, ["main-9f8e7d6", "main-1a2b3c4"]);
        assert!(listing.options[1].running.is_empty());
        let capture = capture(&listing, current);
        assert_eq!(capture.value, "main-9f8e7d6");
        assert_eq!(capture.fields["repository"], "reg.io:5000/acme/web");
        assert_eq!(capture.fields["deployments"], "web,worker");
        assert_eq!(capture.fields["namespace"], "prod");
        assert_eq!(capture.fields["context"], "sandbox");
        let choice = choice(&listing, current);
        assert_eq!(find_choice(&listing, &choice), Some(current));
    }

    #[tokio::test]
    async fn disagreeing_deployments_have_no_current_tag() {
        let (_dir, cluster) = cluster();
        cluster.apply("prod", WorkloadKind::Deployment, "web", "acme/web:v2", 1).unwrap();
        cluster.apply("prod", WorkloadKind::Deployment, "worker", "acme/worker:v1", 1).unwrap();
        let listing = list(&cluster, &step("prod", &[])).await.unwrap();
        assert_eq!(listing.current(), None);
        assert_eq!(listing.disagreement(), "web runs v2, worker runs v1");
        // Listing only one of them agrees with itself.
        let web = list(&cluster, &step("prod", &["web"])).await.unwrap();
        assert_eq!(web.current().map(|o| o.tag.as_str()), Some("v2"));
    }

    #[tokio::test]
    async fn missing_namespace_deployment_or_workloads_are_clear_errors() {
        let (_dir, cluster) = cluster();
        cluster.create_namespace("empty").unwrap();
        cluster.apply("prod", WorkloadKind::Deployment, "web", "acme/web:v2", 1).unwrap();
        let missing = list(&cluster, &step("nope", &[])).await.unwrap_err();
        assert_eq!(missing.to_string(), "namespace `nope` not found in context `sandbox`");
        let empty = list(&cluster, &step("empty", &[])).await.unwrap_err();
        assert_eq!(empty.to_string(), "no deployments in namespace `empty` (context `sandbox`)");
        let unknown = list(&cluster, &step("prod", &["api"])).await.unwrap_err();
        assert!(unknown.to_string().contains("deployment `api` not found in namespace `prod`"), "{unknown}");
        assert!(unknown.to_string().contains("it has: web"), "{unknown}");
    }
}
