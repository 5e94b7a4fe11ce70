//! Reading a job's committed outputs: always through the current manifest, never by listing
//! directories (which may hold files of runs that lost, died or were superseded).

use std::sync::Arc;

use datafusion::prelude::SessionContext;

use crate::compute;
use crate::error::{JobError, from_datafusion};
use crate::job_file::Job;
use crate::location::Place;
use crate::manifest;

/// The current files of `table` (`sessions`, `daily_metrics`, `alerts`, `exports/<name>`) as
/// URLs (`file:///...` or `s3://...`), or an empty list before the first commit.
pub async fn current_files(job: &Job, table: &str) -> Result<Vec<String>, JobError> {
    let sink = Place::open(&job.sink, &job.storage)?;
    let Some(current) = manifest::read_current(&sink).await? else {
        return Ok(Vec::new());
    };
    Ok(current
        .files(table)
        .iter()
        .map(|f| sink.url(&sink.key(f)))
        .collect())
}

/// Registers the job's current Parquet tables on `ctx` as `sessions`, `daily_metrics`,
/// `alerts` and `users` (those that have files); returns the manifest version read, if any.
pub async fn register_outputs(ctx: &SessionContext, job: &Job) -> Result<Option<u64>, JobError> {
    let sink = Place::open(&job.sink, &job.storage)?;
    if sink.store_url.scheme() != "file" {
        ctx.register_object_store(&sink.store_url, Arc::clone(&sink.store));
    }
    let Some(current) = manifest::read_current(&sink).await? else {
        return Ok(None);
    };
    for table in [
        manifest::SESSIONS_TABLE,
        manifest::METRICS_TABLE,
        manifest::ALERTS_TABLE,
        manifest::USERS_TABLE,
    ] {
        let urls: Vec<String> = current
            .files(table)
            .iter()
            .map(|f| sink.url(&sink.key(f)))
            .collect();
        if urls.is_empty() {
            continue;
        }
        let provider = compute::files_table(ctx, &urls, None).await?;
        ctx.register_table(table, provider)
            .map_err(|e| from_datafusion(e, format!("registering {table}")))?;
    }
    Ok(Some(current.version))
}
