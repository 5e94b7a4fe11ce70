//! `run_job`: a lake job run as `sessionlake job run` runs it, returning its summary.

use std::path::PathBuf;

use chrono::NaiveDate;
use pyo3::prelude::*;
use sessionlake_cli::exit_code;
use sessionlake_jobs::{Dates, Job, JobError, RunOptions, run_job as run};

use crate::errors::new_error;
use crate::runtime::wait;

/// Runs the job file `job` (see `sessionlake.run_job`) and returns its summary as JSON, the
/// `_summary.json` the run wrote. A failed run raises `JobError` with the exit code
/// `sessionlake job run` would end with.
#[pyfunction]
#[pyo3(signature = (job, start = None, end = None, full = false, dry_run = false))]
pub fn run_job(
    py: Python<'_>,
    job: PathBuf,
    start: Option<&str>,
    end: Option<&str>,
    full: bool,
    dry_run: bool,
) -> PyResult<String> {
    let usage = |message: String| new_error(py, "JobError", (message, exit_code::USAGE));
    let date = |name: &str, text: &str| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| usage(format!("{name} '{text}' is not a date such as 2024-01-31")))
    };
    let dates = match (start, end) {
        (None, None) => Dates::Pending,
        (Some(start), Some(end)) => {
            let (first, last) = (date("start", start)?, date("end", end)?);
            if first > last {
                return Err(usage(format!("start {first} is after end {last}")));
            }
            Dates::Range(first, last)
        }
        _ => return Err(usage("give both start and end, or neither".to_string())),
    };
    let failed = |e: JobError| {
        new_error(
            py,
            "JobError",
            (e.to_string(), exit_code::of_job_error(e.kind)),
        )
    };
    let loaded = Job::load(&job).map_err(failed)?;
    let options = RunOptions {
        dates,
        dry_run,
        progress: None,
        full,
        cluster: None,
    };
    let summary = wait(py, async move { run(&loaded, &options).await })?.map_err(failed)?;
    serde_json::to_string(&summary)
        .map_err(|e| new_error(py, "Error", (format!("the run's summary: {e}"),)))
}
