//! [`Cluster`] on a real API server, through kube-rs and the user's kubeconfig.
//!
//! Everything the steps show is computed here from the raw objects, the way `kubectl`
//! computes it (a pod's STATUS column in particular), so that what drillbook prints during
//! a drill matches what an operator sees when they run kubectl next to it.
//!
//! Errors are mapped in one place (the `errors` module) into [`K8sError`]s that name the
//! verb and resource in RBAC terms, the namespace and the context: an operator who reads
//! "forbidden: cannot patch deployments/scale in namespace `prod`" knows which Role to fix.
//!
//! This module holds the cluster handle, its one-shot requests and the [`Cluster`] trait;
//! `client` connects through the kubeconfig, `watch` follows a namespace, `logs` reads a
//! pod's log, `convert` turns k8s-openapi objects into drillbook's types and `errors`
//! maps what goes wrong.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::io::AsyncBufRead;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::Client;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use serde::de::DeserializeOwned;

use self::convert::{count, deployment_workload, pod_info, revision_info, statefulset_workload};
use self::errors::Op;
use self::logs::LogLines;
use self::watch::NamespaceWatch;
use super::isolation::config::{HostClaim, NamespaceConfig};
use super::{Cluster, ClusterTarget, K8sError, LogOptions, PodInfo, RevisionInfo, WatchEvent, Workload, WorkloadKind};

mod client;
mod convert;
mod errors;
mod logs;
mod watch;

/// A one-shot request (get, list, patch) that gets no answer in this long is reported as an
/// unreachable server. Streams (watches, followed logs) are not bounded by it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A cluster reached through a kubeconfig context.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    target: ClusterTarget,
}

impl fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // kube::Client has no Debug; the target is what identifies the cluster anyway.
        f.debug_struct("KubeCluster").field("target", &self.target).finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// Runs a one-shot request with [`REQUEST_TIMEOUT`] and maps its error.
    async fn call<T>(&self, op: Op<'_>, request: impl Future<Output = Result<T, kube::Error>>) -> Result<T, K8sError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.error(op, err).await),
            Err(_) => Err(K8sError::Unreachable {
                server: self.target.server.clone(),
                context: self.target.context.clone(),
                reason: format!("no answer within {} s to: {}", REQUEST_TIMEOUT.as_secs(), op.describe()),
            }),
        }
    }

    /// The API server answers 200 and an empty list for a namespace that does not exist,
    /// so an empty answer is checked: a typo in a runbook's namespace must not read as
    /// "nothing running there".
    async fn empty_list_check(&self, namespace: &str) -> Result<(), K8sError> {
        match self.check_namespace_inner(namespace).await {
            Err(err @ K8sError::NamespaceNotFound { .. }) => Err(err),
            // Forbidden to read Namespaces (common for namespace-scoped roles) or a glitch:
            // the list itself succeeded, so trust it.
            _ => Ok(()),
        }
    }

    async fn check_namespace_inner(&self, namespace: &str) -> Result<(), K8sError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let op = Op::new("get", "namespaces", "namespace", namespace).named(namespace);
        self.call(op, api.get(namespace)).await.map(|_| ())
    }

    async fn list_workloads(&self, namespace: &str, kind: WorkloadKind) -> Result<Vec<Workload>, K8sError> {
        let op = Op::new("list", kind.resource(), kind.name(), namespace);
        let params = ListParams::default();
        let mut workloads: Vec<Workload> = match kind {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
                self.call(op, api.list(&params)).await?.items.iter().map(deployment_workload).collect()
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
                self.call(op, api.list(&params)).await?.items.iter().map(statefulset_workload).collect()
            }
        };
        if workloads.is_empty() {
            self.empty_list_check(namespace).await?;
        }
        workloads.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(workloads)
    }

    async fn list_revisions(&self, namespace: &str) -> Result<Vec<RevisionInfo>, K8sError> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        let op = Op::new("list", "replicasets", "replicaset", namespace);
        let list = self.call(op, api.list(&ListParams::default())).await?;
        let mut revisions: Vec<RevisionInfo> = list.items.iter().map(revision_info).collect();
        if revisions.is_empty() {
            self.empty_list_check(namespace).await?;
        }
        revisions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(revisions)
    }

    async fn list_pods(&self, namespace: &str) -> Result<Vec<PodInfo>, K8sError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let op = Op::new("list", "pods", "pod", namespace);
        let list = self.call(op, api.list(&ListParams::default())).await?;
        let mut pods: Vec<PodInfo> = list.items.iter().map(pod_info).collect();
        if pods.is_empty() {
            self.empty_list_check(namespace).await?;
        }
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pods)
    }

    /// Lists every object of kind `K` in the namespace (one request).
    async fn list_all<K>(&self, namespace: &str, resource: &'static str, kind: &'static str) -> Result<Vec<K>, K8sError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let op = Op::new("list", resource, kind, namespace);
        Ok(self.call(op, api.list(&ListParams::default())).await?.items)
    }

    /// Host names of Gateway API HTTPRoutes, where the cluster serves them
    /// (a 404 means it has no Gateway API: nothing to compare).
    async fn route_hosts(&self, namespace: &str) -> Result<Vec<HostClaim>, K8sError> {
        use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
        let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "httproutes");
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &resource);
        let routes = match tokio::time::timeout(REQUEST_TIMEOUT, api.list(&ListParams::default())).await {
            Ok(Ok(list)) => list.items,
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => return Ok(Vec::new()),
            Ok(Err(err)) => return Err(self.error(Op::new("list", "httproutes", "httproute", namespace), err).await),
            Err(_) => return Ok(Vec::new()),
        };
        Ok(routes
            .iter()
            .flat_map(|route| {
                let by = format!("HTTPRoute {}", route.metadata.name.clone().unwrap_or_default());
                let hosts = route.data["spec"]["hostnames"].as_array().cloned().unwrap_or_default();
                hosts
                    .into_iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .map(move |host| HostClaim { by: by.clone(), host })
            })
            .collect())
    }

    async fn namespace_config(&self, namespace: &str) -> Result<NamespaceConfig, K8sError> {
        let (deployments, statefulsets, cronjobs, config_maps, secrets, policies, ingresses, routes) = futures::try_join!(
            self.list_all::<Deployment>(namespace, "deployments", "deployment"),
            self.list_all::<StatefulSet>(namespace, "statefulsets", "statefulset"),
            self.list_all::<CronJob>(namespace, "cronjobs", "cronjob"),
            self.list_all::<ConfigMap>(namespace, "configmaps", "configmap"),
            self.list_all::<Secret>(namespace, "secrets", "secret"),
            self.list_all::<NetworkPolicy>(namespace, "networkpolicies", "networkpolicy"),
            self.list_all::<Ingress>(namespace, "ingresses", "ingress"),
            self.route_hosts(namespace),
        )?;
        if deployments.is_empty() && statefulsets.is_empty() && cronjobs.is_empty() && config_maps.is_empty() {
            self.empty_list_check(namespace).await?;
        }
        let mut config = NamespaceConfig::from_objects(
            namespace,
            &deployments,
            &statefulsets,
            &cronjobs,
            &config_maps,
            &secrets,
            &policies,
            &ingresses,
        );
        config.hosts.extend(routes);
        config.hosts.sort_by(|a, b| (&a.host, &a.by).cmp(&(&b.host, &b.by)));
        Ok(config)
    }

    async fn scale_workload(
        &self,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
        replicas: u32,
    ) -> Result<u32, K8sError> {
        let wanted = i32::try_from(replicas)
            .map_err(|_| K8sError::Other(format!("cannot scale {} `{name}` to {replicas} replicas", kind.name())))?;
        match kind {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
                self.scale_via(api, "deployments/scale", kind, namespace, name, wanted).await
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
                self.scale_via(api, "statefulsets/scale", kind, namespace, name, wanted).await
            }
        }
    }

    /// Through the Scale subresource, as `kubectl scale` does: it needs only the
    /// `deployments/scale` permission, not the right to rewrite the whole object, and a
    /// merge patch of `spec.replicas` cannot clobber a concurrent change to the template.
    async fn scale_via<K: Clone + DeserializeOwned>(
        &self,
        api: Api<K>,
        resource: &'static str,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i32,
    ) -> Result<u32, K8sError> {
        let current =
            self.call(Op::new("get", resource, kind.name(), namespace).named(name), api.get_scale(name)).await?;
        let previous = current.spec.and_then(|spec| spec.replicas).map_or(0, count);
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        let op = Op::new("patch", resource, kind.name(), namespace).named(name);
        self.call(op, api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))).await?;
        tracing::info!(context = %self.target.context, namespace, name, previous, replicas, "scaled {}", kind.name());
        Ok(previous)
    }

    /// Opens the log stream; the lines are read by [`LogLines`].
    async fn open_logs(
        &self,
        namespace: &str,
        pod: &str,
        options: &LogOptions,
    ) -> Result<Pin<Box<dyn AsyncBufRead + Send>>, K8sError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: options.container.clone(),
            follow: options.follow,
            tail_lines: options.tail_lines.map(i64::from),
            previous: options.previous,
            ..LogParams::default()
        };
        let op = Op::new("get", "pods/log", "pod", namespace).named(pod);
        let reader = self.call(op, api.log_stream(pod, &params)).await?;
        Ok(Box::pin(reader))
    }
}

impl Cluster for KubeCluster {
    fn target(&self) -> &ClusterTarget {
        &self.target
    }

    fn check_namespace<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<(), K8sError>> {
        self.check_namespace_inner(namespace).boxed()
    }

    fn workloads<'a>(
        &'a self,
        namespace: &'a str,
        kind: WorkloadKind,
    ) -> BoxFuture<'a, Result<Vec<Workload>, K8sError>> {
        self.list_workloads(namespace, kind).boxed()
    }

    fn revisions<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<RevisionInfo>, K8sError>> {
        self.list_revisions(namespace).boxed()
    }

    fn pods<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<PodInfo>, K8sError>> {
        self.list_pods(namespace).boxed()
    }

    fn watch(&self, namespace: &str) -> BoxStream<'static, Result<WatchEvent, K8sError>> {
        // Everything runs inside the stream, nothing is spawned: dropping the stream drops
        // the watch connections and timers with it.
        let watch = NamespaceWatch::new(self.clone(), namespace.to_owned());
        futures::stream::unfold(watch, |mut watch| async move {
            let item = watch.next().await?;
            Some((item, watch))
        })
        .boxed()
    }

    fn logs(&self, namespace: &str, pod: &str, options: LogOptions) -> BoxStream<'static, Result<String, K8sError>> {
        let lines = LogLines {
            cluster: self.clone(),
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            options,
            reader: None,
            done: false,
        };
        futures::stream::unfold(lines, |mut lines| async move {
            let item = lines.next().await?;
            Some((item, lines))
        })
        .boxed()
    }

    fn config<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<NamespaceConfig, K8sError>> {
        self.namespace_config(namespace).boxed()
    }

    fn scale<'a>(
        &'a self,
        namespace: &'a str,
        kind: WorkloadKind,
        name: &'a str,
        replicas: u32,
    ) -> BoxFuture<'a, Result<u32, K8sError>> {
        self.scale_workload(namespace, kind, name, replicas).boxed()
    }
}
