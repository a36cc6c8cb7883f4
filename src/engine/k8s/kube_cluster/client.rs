//! Connecting: reading the kubeconfig (kubectl's merge of `KUBECONFIG`, or one file),
//! picking the context, and building the kube client for it.

use std::path::Path;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use super::KubeCluster;
use super::errors::chain;
use crate::engine::k8s::{ClusterTarget, K8sError};

/// An unreachable server should fail a step in seconds, not after kube's default 30 s: a
/// drill is timed, and a wrong context is the most common mistake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl KubeCluster {
    /// The user's kubeconfig: every file in `KUBECONFIG` (merged the way kubectl merges
    /// them), else `~/.kube/config`. `context`: that context, else the current one.
    pub async fn connect(context: Option<&str>) -> Result<KubeCluster, K8sError> {
        let kubeconfig = Kubeconfig::read().map_err(kubeconfig_error)?;
        KubeCluster::from_parsed(kubeconfig, context).await
    }

    /// One kubeconfig file, as tests and `--kubeconfig`-style callers need.
    pub async fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<KubeCluster, K8sError> {
        let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
        KubeCluster::from_parsed(kubeconfig, context).await
    }

    /// Picks the context and builds the client. Nothing is sent to the server yet, so this
    /// is quick even when the server is down; the first request reports that.
    async fn from_parsed(kubeconfig: Kubeconfig, context: Option<&str>) -> Result<KubeCluster, K8sError> {
        let known: Vec<String> = kubeconfig.contexts.iter().map(|named| named.name.clone()).collect();
        let name = match context {
            Some(name) => name.to_owned(),
            None => match kubeconfig.current_context.as_deref().filter(|name| !name.is_empty()) {
                Some(name) => name.to_owned(),
                None if known.is_empty() => {
                    return Err(K8sError::NoKubeconfig("the kubeconfig has no contexts".into()));
                }
                None => {
                    return Err(K8sError::Other(format!(
                        "the kubeconfig sets no current-context: name one of its contexts ({})",
                        known.join(", ")
                    )));
                }
            },
        };
        let Some(named) = kubeconfig.contexts.iter().find(|named| named.name == name) else {
            return Err(K8sError::UnknownContext { context: name, known });
        };
        let server = named
            .context
            .as_ref()
            .and_then(|ctx| kubeconfig.clusters.iter().find(|cluster| cluster.name == ctx.cluster))
            .and_then(|cluster| cluster.cluster.as_ref())
            .and_then(|cluster| cluster.server.clone())
            .unwrap_or_default();
        let options = KubeConfigOptions { context: Some(name.clone()), ..KubeConfigOptions::default() };
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|err| {
            K8sError::Other(format!("cannot use context `{name}` of the kubeconfig: {}", chain(&err)))
        })?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        let client = Client::try_from(config).map_err(|err| {
            K8sError::Other(format!("cannot build a client for context `{name}` ({server}): {}", chain(&err)))
        })?;
        Ok(KubeCluster { client, target: ClusterTarget { context: name, server } })
    }
}

fn kubeconfig_error(err: KubeconfigError) -> K8sError {
    match &err {
        KubeconfigError::ReadConfig(io, path) if io.kind() == std::io::ErrorKind::NotFound => {
            K8sError::NoKubeconfig(format!("{} does not exist", path.display()))
        }
        KubeconfigError::FindPath => K8sError::NoKubeconfig("no home directory to find ~/.kube/config in".into()),
        _ => K8sError::Other(format!("cannot read the kubeconfig: {}", chain(&err))),
    }
}
