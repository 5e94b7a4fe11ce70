//! The HTML report of a job's committed outputs: one self-contained page (inline CSS and SVG,
//! no script) drawn from the `daily_metrics` and `alerts` tables. A run writes it beside its
//! outputs, `runs/<run>/report.html`, and after its commit copies it to `_current/report.html`;
//! `sessionlake job report` draws it again from the committed tables.

pub mod data;
pub mod page;
pub mod svg;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use object_store::{ObjectStoreExt, PutPayload};

use crate::compute;
use crate::error::{JobError, from_datafusion, from_store};
use crate::job_file::Job;
use crate::location::Place;
use crate::manifest::{self, ALERTS_TABLE, CURRENT_DIR, METRICS_TABLE, Manifest, RUNS_DIR};
use crate::reader::register_outputs;
pub use data::ReportData;
pub use page::ReportInfo;

/// The report's file name, in a run's directory and in `_current/`.
pub const REPORT_FILE: &str = "report.html";

/// The report of the current state, relative to the sink: `_current/report.html`.
pub fn current_key() -> String {
    format!("{CURRENT_DIR}/{REPORT_FILE}")
}

/// The report of run `run_id`, relative to the sink: `runs/<run_id>/report.html`.
pub fn run_key(run_id: &str) -> String {
    format!("{RUNS_DIR}/{run_id}/{REPORT_FILE}")
}

/// The page over `metrics` (batches of `daily_metrics`) and `alerts` (of the alerts table).
pub fn render(
    info: &ReportInfo,
    metrics: &[RecordBatch],
    alerts: &[RecordBatch],
) -> Result<String, JobError> {
    let data = ReportData::read(metrics, alerts)?;
    Ok(page::render(info, &data))
}

/// The time shown as the page's making, in UTC to the second.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// Writes `html` at `relative` under the sink.
pub async fn write(sink: &Place, relative: &str, html: &str) -> Result<(), JobError> {
    sink.store
        .put(
            &sink.key(relative),
            PutPayload::from(html.as_bytes().to_vec()),
        )
        .await
        .map_err(|e| from_store(e, format!("writing {}/{relative}", sink.shown)))?;
    Ok(())
}

/// Copies the committed run's report to `_current/report.html`, for a run killed after its
/// commit and before that copy. Best effort: a run without a report (an older version's, or
/// one whose report failed) leaves the copy as it is.
pub async fn repair_current(sink: &Place, committed: &Manifest) {
    let relative = run_key(&committed.run_id);
    let Ok(found) = sink.store.get(&sink.key(&relative)).await else {
        return;
    };
    let copied = match found.bytes().await {
        Ok(bytes) => sink
            .store
            .put(&sink.key(&current_key()), PutPayload::from(bytes))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = copied {
        tracing::warn!(error = %e, "copying {relative} to {} failed", current_key());
    }
}

/// Draws `_current/report.html` again from the committed tables of `job`; returns where a
/// reader finds it (a path, or an `s3://` URL). Fails with a data error before the first
/// commit.
pub async fn regenerate(job: &Job) -> Result<String, JobError> {
    let sink = Place::open(&job.sink, &job.storage)?;
    let ctx = compute::new_context(&[&sink])?;
    let Some(version) = register_outputs(&ctx, job).await? else {
        return Err(JobError::data(format!(
            "sink {}: nothing committed yet (run `sessionlake job run` on the job first)",
            sink.shown
        )));
    };
    let metrics = committed_rows(&ctx, METRICS_TABLE).await?;
    let alerts = committed_rows(&ctx, ALERTS_TABLE).await?;
    let info = ReportInfo {
        job: job.name.clone(),
        version: Some(version),
        generated_at: now(),
    };
    let html = render(&info, &metrics, &alerts)?;
    write(&sink, &current_key(), &html).await?;
    Ok(manifest::reader_location(&sink, &current_key()))
}

/// The rows of the registered table `table`; none when it has no files.
async fn committed_rows(ctx: &SessionContext, table: &str) -> Result<Vec<RecordBatch>, JobError> {
    if !ctx
        .table_exist(table)
        .map_err(|e| from_datafusion(e, table))?
    {
        return Ok(Vec::new());
    }
    ctx.table(table)
        .await
        .map_err(|e| from_datafusion(e, format!("reading {table}")))?
        .collect()
        .await
        .map_err(|e| from_datafusion(e, format!("reading {table}")))
}

#[cfg(test)]
mod tests;
