//! Scheduled lake jobs: one idempotent command that turns a Parquet event lake into a sessions
//! table and daily metrics, raises alerts and writes cohort exports, incrementally and safely
//! (atomic commits on a local disk or S3).
//!
//! ```no_run
//! # async fn example() -> Result<(), sessionlake_jobs::JobError> {
//! use sessionlake_jobs::{Dates, Job, RunOptions, run_job};
//!
//! let job = Job::load(std::path::Path::new("data/sample_job.toml"))?;
//! let options = RunOptions {
//!     dates: Dates::Pending,
//!     dry_run: false,
//!     progress: None,
//!     full: false,
//!     cluster: None,
//! };
//! let summary = run_job(&job, &options).await?;
//! eprintln!("{}", summary.one_line());
//! # Ok(())
//! # }
//! ```
//!
//! The job file, the incremental rule and the commit protocol are described in `docs/jobs.md`.
//! Each commit also writes an HTML page of the committed tables ([`report`]), which
//! `report::regenerate` draws again.
//! This crate has no command line: `sessionlake job run` (flags, logs, the progress bar drawn
//! from [`RunOptions::progress`], exit codes from [`ErrorKind`]) is `sessionlake-cli`'s.

pub mod alerting;
pub mod alerts;
pub mod checkpoint;
pub mod cluster;
pub mod compute;
#[cfg(feature = "delta")]
pub mod delta_sink;
pub mod email_message;
pub mod encode;
pub mod error;
pub mod exports;
pub mod identities;
pub mod job_file;
pub mod lake;
pub mod location;
pub mod manifest;
pub mod max_gap;
pub mod metrics;
pub mod notify;
pub mod progress;
pub mod quality;
pub mod reader;
pub mod report;
pub mod runner;
pub mod slack_message;
pub mod sql;
pub mod users;
pub mod window;

pub use cluster::Cluster;
pub use error::{ErrorKind, JobError};
pub use job_file::Job;
pub use manifest::{Manifest, read_current};
pub use progress::{OnProgress, Progress};
pub use reader::{current_files, register_outputs};
pub use runner::{Dates, RunOptions, RunSummary, run_job};
