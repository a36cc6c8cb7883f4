//! Where the drill acted (Kubernetes contexts and namespaces, S3 buckets)
//! and whether DR runs the tag production runs, from what its steps journaled.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::drill::evidence::Evidence;
use crate::drill::state::DrillState;
use crate::runbook::template::CaptureValue;

/// Where the drill acted, as journaled by its steps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Environment {
    pub kubernetes: Vec<KubeTarget>,
    pub s3: Vec<S3Target>,
}

impl Environment {
    pub fn is_empty(&self) -> bool {
        self.kubernetes.is_empty() && self.s3.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubeTarget {
    pub context: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Steps that read or changed this namespace.
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Target {
    /// `None`: the AWS default for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub steps: Vec<String>,
}

/// Does DR run the image tag production runs?
#[derive(Debug, Clone, Serialize)]
pub struct TagComparison {
    pub production: Option<ProductionTag>,
    pub dr: Option<DrTags>,
    /// `match`, `mismatch` or `n/a`.
    pub verdict: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProductionTag {
    pub tag: String,
    pub image: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    /// The k8s-image-tag step that captured it.
    pub step: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrTags {
    /// Workload → tag its pods run, when the k8s-wait step succeeded.
    pub running: BTreeMap<String, String>,
    pub expect_tag: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    /// The k8s-wait step that recorded them.
    pub step: String,
}

fn capture_text<'a>(capture: &'a CaptureValue, key: &str) -> Option<&'a str> {
    capture.fields.get(key).and_then(|v| v.as_str()).filter(|v| !v.is_empty())
}

/// Kubernetes contexts and namespaces (from choices and captures that name
/// them) and S3 buckets with their endpoints (from backup captures), in
/// step order.
pub(super) fn environment(state: &DrillState) -> Environment {
    let mut env = Environment::default();
    let mut kube = |context: &str, namespace: &str, server: Option<&str>, step: &str| {
        let target = match env.kubernetes.iter_mut().find(|t| t.context == context && t.namespace == namespace) {
            Some(target) => target,
            None => {
                env.kubernetes.push(KubeTarget {
                    context: context.into(),
                    namespace: namespace.into(),
                    server: None,
                    steps: Vec::new(),
                });
                let last = env.kubernetes.len() - 1;
                &mut env.kubernetes[last]
            }
        };
        if target.server.is_none() {
            target.server = server.map(str::to_string);
        }
        if !target.steps.iter().any(|s| s == step) {
            target.steps.push(step.to_string());
        }
    };
    for step in &state.steps {
        let id = step.outline.id.as_str();
        if let Some((context, namespace, server)) = step.evidence.as_ref().and_then(Evidence::cluster)
            && !context.is_empty()
            && !namespace.is_empty()
        {
            kube(context, namespace, Some(server).filter(|s| !s.is_empty()), id);
        }
        for (from, capture) in state.captures.values() {
            if from == id
                && let (Some(context), Some(namespace)) =
                    (capture_text(capture, "context"), capture_text(capture, "namespace"))
            {
                kube(context, namespace, None, id);
            }
        }
    }
    for step in &state.steps {
        let id = step.outline.id.as_str();
        for (from, capture) in state.captures.values() {
            let Some(bucket) = capture_text(capture, "bucket") else { continue };
            if from != id {
                continue;
            }
            let endpoint = capture_text(capture, "endpoint").map(str::to_string);
            match env.s3.iter_mut().find(|t| t.bucket == bucket && t.endpoint == endpoint) {
                Some(target) if !target.steps.iter().any(|s| s == id) => target.steps.push(id.to_string()),
                Some(_) => {}
                None => env.s3.push(S3Target { endpoint, bucket: bucket.into(), steps: vec![id.to_string()] }),
            }
        }
    }
    env
}

/// Production's tag is what the k8s-image-tag step captured; DR's is what
/// the pods ran when the k8s-wait step succeeded.
pub(super) fn tags(state: &DrillState) -> TagComparison {
    let production = state.steps.iter().filter(|s| s.outline.kind == "k8s-image-tag").find_map(|step| {
        let (_, (_, capture)) = state.captures.iter().find(|(_, (from, _))| *from == step.outline.id)?;
        Some(ProductionTag {
            tag: capture_text(capture, "tag").unwrap_or(&capture.value).to_string(),
            image: capture_text(capture, "image").map(str::to_string),
            context: capture_text(capture, "context").map(str::to_string),
            namespace: capture_text(capture, "namespace").map(str::to_string),
            step: step.outline.id.clone(),
        })
    });
    let dr = state.steps.iter().rev().filter(|s| s.outline.kind == "k8s-wait").find_map(|step| {
        let Some(Evidence::Wait(wait)) = &step.evidence else { return None };
        let named = |text: &str| Some(text.to_string()).filter(|t| !t.is_empty());
        Some(DrTags {
            running: wait.running.clone(),
            expect_tag: wait.expect_tag.clone().filter(|t| !t.is_empty()),
            context: named(&wait.context),
            namespace: named(&wait.namespace),
            step: step.outline.id.clone(),
        })
    });
    let (verdict, detail) = match (&production, &dr) {
        (Some(production), Some(dr)) if !dr.running.is_empty() => {
            let differing: Vec<String> = dr
                .running
                .iter()
                .filter(|(_, tag)| **tag != production.tag)
                .map(|(workload, tag)| format!("{workload} runs `{tag}`"))
                .collect();
            if differing.is_empty() {
                let workloads: Vec<&str> = dr.running.keys().map(String::as_str).collect();
                ("match", format!("DR runs `{}` in {}, as production does", production.tag, workloads.join(", ")))
            } else {
                ("mismatch", format!("production runs `{}` but in DR {}", production.tag, differing.join(", ")))
            }
        }
        (None, _) => ("n/a", "no k8s-image-tag step captured the tag production runs".to_string()),
        (Some(_), _) => ("n/a", "no k8s-wait step recorded the tags DR runs".to_string()),
    };
    TagComparison { production, dr, verdict: verdict.into(), detail }
}
