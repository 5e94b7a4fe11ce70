//! Named points in a run where tests can stop the process, to show that a kill at any of them
//! leaves the committed output as it was.
//!
//! `SESSIONLAKE_JOB_KILL_AT=<step>` aborts the process at that step (no destructor, no cleanup;
//! the same for the store as SIGKILL). `SESSIONLAKE_JOB_WAIT_AT=<step>:<file>` creates
//! `<file>.reached` at that step and then waits until `<file>` exists, so a test can SIGKILL
//! the process there or release two runs at the same moment. Neither is set in production.

use std::path::PathBuf;
use std::time::Duration;

/// The steps of a run, in order (`write` steps repeat, one per file written).
pub const STEPS: [&str; 6] = [
    "planned",
    "computed",
    "write",
    "before_commit",
    "after_commit",
    "after_current",
];

/// The steps only a Delta sink reaches, between `after_commit` and `after_current`
/// (`delta_commit` repeats, once per table published).
pub const DELTA_STEPS: [&str; 1] = ["delta_commit"];

/// Stops here if a test asked for it.
pub async fn checkpoint(step: &str) {
    if let Ok(kill_at) = std::env::var("SESSIONLAKE_JOB_KILL_AT")
        && kill_at == step
    {
        tracing::warn!(step, "SESSIONLAKE_JOB_KILL_AT: aborting");
        std::process::abort();
    }
    if let Ok(wait_at) = std::env::var("SESSIONLAKE_JOB_WAIT_AT")
        && let Some((wanted, file)) = wait_at.split_once(':')
        && wanted == step
    {
        let release = PathBuf::from(file);
        let reached = PathBuf::from(format!("{file}.reached.{}", std::process::id()));
        let _ = std::fs::write(&reached, step);
        while !release.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
