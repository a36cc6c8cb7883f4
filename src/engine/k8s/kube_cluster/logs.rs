//! A pod's log, read line by line: what [`KubeCluster`]'s `Cluster::logs` streams.

use std::pin::Pin;

use futures::AsyncBufReadExt;
use futures::io::AsyncBufRead;

use super::KubeCluster;
use super::errors::chain;
use crate::engine::k8s::{K8sError, LogOptions};

/// The state behind [`Cluster::logs`](crate::engine::k8s::Cluster::logs): the request is
/// sent on the first poll.
pub(super) struct LogLines {
    pub(super) cluster: KubeCluster,
    pub(super) namespace: String,
    pub(super) pod: String,
    pub(super) options: LogOptions,
    pub(super) reader: Option<Pin<Box<dyn AsyncBufRead + Send>>>,
    pub(super) done: bool,
}

impl LogLines {
    pub(super) async fn next(&mut self) -> Option<Result<String, K8sError>> {
        if self.done {
            return None;
        }
        if self.reader.is_none() {
            match self.cluster.open_logs(&self.namespace, &self.pod, &self.options).await {
                Ok(reader) => self.reader = Some(reader),
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
        let reader = self.reader.as_mut()?;
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                // A log is whatever the program wrote; a stray byte must not end the stream.
                Some(Ok(String::from_utf8_lossy(&line).into_owned()))
            }
            Err(err) => {
                self.done = true;
                Some(Err(K8sError::Unreachable {
                    server: self.cluster.target.server.clone(),
                    context: self.cluster.target.context.clone(),
                    reason: format!("the log stream of pod `{}` broke: {}", self.pod, chain(&err)),
                }))
            }
        }
    }
}
