//! Mapping what kube reports (API statuses, transport failures, watcher errors) into
//! [`K8sError`]s that name the verb and resource in RBAC terms, the namespace and the
//! context, so that an operator knows which Role or which context to fix.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::watcher;

use super::{KubeCluster, REQUEST_TIMEOUT};
use crate::engine::k8s::K8sError;

impl KubeCluster {
    /// The one place where kube errors become [`K8sError`]s. Async because a 404 is
    /// ambiguous: a missing object and a missing namespace look the same on a namespaced
    /// call, and only asking for the Namespace tells them apart.
    pub(super) async fn error(&self, op: Op<'_>, err: kube::Error) -> K8sError {
        let context = self.target.context.clone();
        match err {
            kube::Error::Api(status) if status.code == 403 => K8sError::Forbidden {
                verb: op.verb.to_owned(),
                resource: op.resource.to_owned(),
                namespace: op.namespace.to_owned(),
                context,
                message: status.message,
            },
            kube::Error::Api(status) if status.code == 404 => {
                if op.resource == "namespaces" || self.namespace_missing(op.namespace).await {
                    K8sError::NamespaceNotFound { namespace: op.namespace.to_owned(), context }
                } else {
                    K8sError::NotFound {
                        kind: op.kind.to_owned(),
                        name: op.name.unwrap_or_default().to_owned(),
                        namespace: op.namespace.to_owned(),
                    }
                }
            }
            kube::Error::Api(status) => K8sError::Other(format!(
                "cannot {} (context `{context}`): {} ({}, HTTP {})",
                op.describe(),
                status.message,
                if status.reason.is_empty() { "no reason given" } else { status.reason.as_str() },
                status.code
            )),
            // The transport: refused, reset, timed out, TLS, DNS. All mean "not reachable
            // as configured", which is what the operator must fix.
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
                K8sError::Unreachable { server: self.target.server.clone(), context, reason: chain(&err) }
            }
            other => K8sError::Other(format!("cannot {} (context `{context}`): {}", op.describe(), chain(&other))),
        }
    }

    /// Whether the server says, clearly, that the namespace does not exist (any other
    /// answer, such as forbidden, leaves the question open: no).
    async fn namespace_missing(&self, namespace: &str) -> bool {
        let api: Api<Namespace> = Api::all(self.client.clone());
        matches!(
            tokio::time::timeout(REQUEST_TIMEOUT, api.get(namespace)).await,
            Ok(Err(kube::Error::Api(status))) if status.code == 404
        )
    }

    /// Maps an error of the watcher of `resource` (`deployments`, `pods`).
    pub(super) async fn watcher_error(&self, namespace: &str, resource: &'static str, err: watcher::Error) -> K8sError {
        let kind = resource.trim_end_matches('s');
        match err {
            watcher::Error::InitialListFailed(err) => self.error(Op::new("list", resource, kind, namespace), err).await,
            watcher::Error::WatchStartFailed(err) | watcher::Error::WatchFailed(err) => {
                self.error(Op::new("watch", resource, kind, namespace), err).await
            }
            watcher::Error::WatchError(status) => {
                self.error(Op::new("watch", resource, kind, namespace), kube::Error::Api(status)).await
            }
            watcher::Error::NoResourceVersion => K8sError::Other(format!(
                "cannot watch {resource} in namespace `{namespace}` (context `{}`): the server sent no resourceVersion",
                self.target.context
            )),
        }
    }
}

/// What a request was doing, for its error.
#[derive(Debug, Clone, Copy)]
pub(super) struct Op<'a> {
    /// kubectl's (and RBAC's) verb: get, list, watch, patch, update.
    verb: &'static str,
    /// As RBAC names it: `deployments`, `deployments/scale`, `pods/log`.
    resource: &'static str,
    /// The singular kind, for "deployment `web` not found".
    kind: &'static str,
    namespace: &'a str,
    name: Option<&'a str>,
}

impl<'a> Op<'a> {
    pub(super) fn new(verb: &'static str, resource: &'static str, kind: &'static str, namespace: &'a str) -> Op<'a> {
        Op { verb, resource, kind, namespace, name: None }
    }

    pub(super) fn named(self, name: &'a str) -> Op<'a> {
        Op { name: Some(name), ..self }
    }

    pub(super) fn describe(&self) -> String {
        let what = match self.name {
            Some(name) if self.resource == "namespaces" => return format!("{} namespace `{name}`", self.verb),
            Some(name) => format!("{} `{name}`", self.resource),
            None => self.resource.to_owned(),
        };
        format!("{} {what} in namespace `{}`", self.verb, self.namespace)
    }
}

/// An error and its sources as one line: "client error (Connect): tcp connect error:
/// Connection refused (os error 111)". Skips a source whose text its parent already shows.
pub(super) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    parts.join(": ")
}
