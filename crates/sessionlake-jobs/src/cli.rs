//! `sessionlake job run JOB.toml [--date D | --from D --to D] [--dry-run] [--log-format F]`:
//! the clap arguments and the function that runs them and returns the exit code.

use std::io::IsTerminal;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};

use crate::cluster::Cluster;
use crate::error::{EXIT_ALERT, EXIT_OK, EXIT_USAGE};
use crate::job_file::Job;
use crate::runner::{Dates, RunOptions, RunSummary, run_job};

/// `sessionlake job ...`: scheduled lake jobs.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    #[command(subcommand)]
    pub command: JobCommand,
}

/// The job subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum JobCommand {
    /// Run a job once: process new source partitions (or the given days) and commit the
    /// outputs. Exit codes: 0 done, 1 failed, 2 usage, 3 an alert tripped, 65 bad input data,
    /// 75 transient (another run committed first; retry), 78 bad job file.
    Run(RunArgs),
}

/// `sessionlake job run ...`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The job file (TOML).
    #[arg(value_name = "JOB.toml")]
    pub job: PathBuf,

    /// Process this source partition (YYYY-MM-DD).
    #[arg(long, value_name = "D", conflicts_with_all = ["from", "to"])]
    pub date: Option<NaiveDate>,

    /// Process the source partitions from this day (with --to).
    #[arg(long, value_name = "D", requires = "to")]
    pub from: Option<NaiveDate>,

    /// Process the source partitions up to this day, inclusive (with --from).
    #[arg(long, value_name = "D", requires = "from")]
    pub to: Option<NaiveDate>,

    /// Compute and report; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Recompute every output day from the whole lake (after rows were deleted from a
    /// processed partition, for example).
    #[arg(long)]
    pub full: bool,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How `tracing` logs are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Runs `sessionlake job ...` and returns the process exit code; with a `cluster`, the runs
/// sessionize on it (`--cluster`).
pub async fn run(args: JobArgs, cluster: Option<Cluster>) -> u8 {
    match args.command {
        JobCommand::Run(run) => run_command(run, cluster).await,
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SESSIONLAKE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,sessionlake_jobs=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // a second initialization (tests calling this twice) is harmless: keep the first
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs `sessionlake job run ...` (sessionizing on `cluster` if given) and returns the exit
/// code.
pub async fn run_command(args: RunArgs, cluster: Option<Cluster>) -> u8 {
    init_logging(args.log_format);
    let dates = match (args.date, args.from, args.to) {
        (Some(d), None, None) => Dates::Range(d, d),
        (None, Some(from), Some(to)) if from <= to => Dates::Range(from, to),
        (None, Some(from), Some(to)) => {
            eprintln!("sessionlake job run: --from {from} is after --to {to}");
            return EXIT_USAGE;
        }
        _ => Dates::Pending,
    };
    let job = match Job::load(&args.job) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(error = %e, "bad job file");
            eprintln!("sessionlake job run: {e}");
            return e.exit_code();
        }
    };
    let options = RunOptions {
        dates,
        dry_run: args.dry_run,
        full: args.full,
        progress: std::io::stderr().is_terminal() && args.log_format == LogFormat::Text,
        cluster,
    };
    match run_job(&job, &options).await {
        Ok(summary) => report(&job, &summary).await,
        Err(e) => {
            tracing::error!(job = %job.name, error = %e, exit_code = e.exit_code(), "run failed");
            eprintln!("sessionlake job run: {e}");
            e.exit_code()
        }
    }
}

/// Prints the alerts and the summary line, posts the webhook; returns the exit code.
async fn report(job: &Job, summary: &RunSummary) -> u8 {
    for alert in &summary.alerts {
        eprintln!("ALERT {} {}: {}", alert.day, alert.alert, alert.message);
    }
    if !summary.alerts.is_empty()
        && summary.status == "committed"
        && let Some(url) = &job.webhook
    {
        match crate::alerts::post_webhook(url, &job.name, &summary.alerts).await {
            Ok(()) => tracing::info!(url = %url, alerts = summary.alerts.len(), "alerts posted"),
            Err(e) => {
                tracing::error!(error = %e, "alert webhook failed");
                eprintln!("sessionlake job run: {e}");
            }
        }
    }
    tracing::info!(
        job = %summary.job,
        status = %summary.status,
        version = summary.version,
        days = summary.days_rewritten.len(),
        sessions = summary.sessions_written,
        alerts = summary.alerts.len(),
        duration_s = summary.duration_s,
        "run finished"
    );
    eprintln!("{}", summary.one_line());
    if summary.alerts.is_empty() {
        EXIT_OK
    } else {
        EXIT_ALERT
    }
}
