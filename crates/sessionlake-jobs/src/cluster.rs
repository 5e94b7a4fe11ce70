//! Running a job's heavy part (reading the lake and sessionizing it) on a cluster: the engine
//! context comes from outside, so that this crate knows no cluster engine. The
//! `sessionlake-ballista` build passes one that connects to a Ballista scheduler.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use datafusion::prelude::SessionContext;

use crate::error::JobError;

/// Makes a new engine context whose queries run on the cluster, with sessionlake registered;
/// an `Err` is a message saying why it cannot.
pub type ConnectCluster = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<SessionContext, String>> + Send>> + Send + Sync,
>;

/// A cluster a run computes its sessions on (see `docs/jobs.md`, "On a cluster").
#[derive(Clone)]
pub struct Cluster {
    /// What it is called in messages and the run summary, such as `df://host:50050`.
    pub name: String,
    /// Makes a context on it; called once per read window.
    pub connect: ConnectCluster,
}

impl Cluster {
    /// A cluster called `name`, reached through `connect`.
    pub fn new(name: impl Into<String>, connect: ConnectCluster) -> Self {
        Self {
            name: name.into(),
            connect,
        }
    }

    /// A new context on the cluster.
    pub async fn context(&self) -> Result<SessionContext, JobError> {
        (self.connect)()
            .await
            .map_err(|message| JobError::failed(format!("--cluster {}: {message}", self.name)))
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
