//! `--cluster df://HOST:PORT`: the function a cluster-enabled build passes in to reach its
//! cluster, and the usage error of a build without one. Queries and `job run` both use them.

use std::future::Future;
use std::pin::Pin;

use datafusion::prelude::SessionContext;

use crate::exit_code;

/// Connects to a cluster: given the `--cluster` URL, a context whose queries run there, with
/// sessionlake registered. Builds that can run on a cluster pass one to
/// [`crate::main_with_cluster`].
pub type ClusterConnect =
    fn(String) -> Pin<Box<dyn Future<Output = Result<SessionContext, String>> + Send>>;

/// `--cluster` given to a build that has no cluster client: prints why and returns the exit
/// code.
pub(crate) fn needs_the_cluster_build() -> u8 {
    eprintln!(
        "sessionlake: --cluster: this build runs queries in this process; the cluster-enabled \
         build of the same command line is `sessionlake-ballista` (crates/sessionlake-ballista)"
    );
    exit_code::USAGE
}
