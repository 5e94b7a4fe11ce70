//! `sessionlake job run JOB.toml [--date D | --from D --to D] [--dry-run] [--full]
//! [--log-format F]`: the clap arguments, the logs, the progress bar and the exit code of a lake
//! job run; the work is `sessionlake_jobs`'. `sessionlake job report JOB.toml` draws the job's
//! HTML report again. Also the arguments of the `sessionlake-job` binary,
//! the same command without the SQL shell.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::ProgressBar;
use sessionlake_jobs::cluster::ConnectCluster;
use sessionlake_jobs::{
    Cluster, Dates, Job, OnProgress, Progress, RunOptions, RunSummary, run_job,
};

use crate::cluster::{self, ClusterConnect};
use crate::exit_code;

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
    /// Draw the job's HTML report, `_current/report.html` under its sink, again from the
    /// committed tables, and print where it is. Exit codes: 0 written, 1 failed, 65 nothing
    /// committed yet, 75 the store failed (retry), 78 bad job file.
    Report(ReportArgs),
}

/// `sessionlake job report ...`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The job file (TOML).
    #[arg(value_name = "JOB.toml")]
    pub job: PathBuf,
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

/// The `sessionlake-job` binary's arguments: `sessionlake-job run JOB.toml ...` is
/// `sessionlake job run JOB.toml ...` (without `--cluster`).
#[derive(Debug, Parser)]
#[command(
    name = "sessionlake-job",
    version,
    about = "Scheduled sessionlake jobs: incremental sessions and daily metrics tables, alerts \
             and cohort exports, committed atomically on disk or S3",
    long_about = None
)]
pub(crate) struct JobMain {
    #[command(subcommand)]
    command: JobCommand,
}

impl From<JobMain> for JobArgs {
    fn from(main: JobMain) -> Self {
        Self {
            command: main.command,
        }
    }
}

/// Runs `sessionlake job ...`, sessionizing on the cluster `--cluster` names when given
/// (through `connect`); returns the exit code.
pub async fn run(args: JobArgs, cluster: Option<&str>, connect: Option<ClusterConnect>) -> u8 {
    let cluster = match (cluster, connect) {
        (None, _) => None,
        (Some(url), Some(connect)) => {
            // a first context checks the URL before the job starts; each read window of the
            // run then makes its own
            if let Err(message) = connect(url.to_string()).await {
                eprintln!("sessionlake: --cluster {url}: {message}");
                return exit_code::FAILED;
            }
            let target = url.to_string();
            let connect_job: ConnectCluster = Arc::new(move || connect(target.clone()));
            Some(Cluster::new(url, connect_job))
        }
        (Some(_), None) => return cluster::needs_the_cluster_build(),
    };
    match args.command {
        JobCommand::Run(run) => run_command(run, cluster).await,
        JobCommand::Report(report) => report_command(report).await,
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // the run's own events (alert deliveries too) come from the jobs crate; the summary's from
    // here
    let filter = EnvFilter::try_from_env("SESSIONLAKE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,sessionlake_jobs=info,sessionlake_cli=info"));
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
async fn run_command(args: RunArgs, cluster: Option<Cluster>) -> u8 {
    init_logging(args.log_format);
    let dates = match (args.date, args.from, args.to) {
        (Some(d), None, None) => Dates::Range(d, d),
        (None, Some(from), Some(to)) if from <= to => Dates::Range(from, to),
        (None, Some(from), Some(to)) => {
            eprintln!("sessionlake job run: --from {from} is after --to {to}");
            return exit_code::USAGE;
        }
        _ => Dates::Pending,
    };
    let job = match Job::load(&args.job) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(error = %e, "bad job file");
            eprintln!("sessionlake job run: {e}");
            return exit_code::of_job_error(e.kind);
        }
    };
    // a bar on a terminal; JSON logs are for machines, and a bar would break their lines
    let bar = (std::io::stderr().is_terminal() && args.log_format == LogFormat::Text)
        .then(|| crate::progress::bar("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}"));
    let options = RunOptions {
        dates,
        dry_run: args.dry_run,
        full: args.full,
        progress: bar.clone().map(draw_on),
        cluster,
    };
    let result = run_job(&job, &options).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(summary) => report(&summary),
        Err(e) => {
            let code = exit_code::of_job_error(e.kind);
            tracing::error!(job = %job.name, error = %e, exit_code = code, "run failed");
            eprintln!("sessionlake job run: {e}");
            code
        }
    }
}

/// Runs `sessionlake job report JOB.toml`: prints the report's location on stdout and returns
/// the exit code.
async fn report_command(args: ReportArgs) -> u8 {
    let regenerated = match Job::load(&args.job) {
        Ok(job) => sessionlake_jobs::report::regenerate(&job).await,
        Err(e) => Err(e),
    };
    match regenerated {
        Ok(location) => {
            println!("{location}");
            exit_code::OK
        }
        Err(e) => {
            eprintln!("sessionlake job report: {e}");
            exit_code::of_job_error(e.kind)
        }
    }
}

/// The callback that draws a run's progress on `bar`.
fn draw_on(bar: ProgressBar) -> OnProgress {
    OnProgress::new(move |progress| match progress {
        Progress::Planned(steps) => bar.inc_length(steps),
        Progress::Done(step) => {
            bar.set_message(step);
            bar.inc(1);
        }
    })
}

/// Prints the alerts, the warnings (failed alert deliveries, which `run_job` made) and the
/// summary line; returns the exit code, which warnings do not change.
fn report(summary: &RunSummary) -> u8 {
    for alert in &summary.alerts {
        eprintln!("ALERT {} {}: {}", alert.day, alert.alert, alert.message);
    }
    for warning in &summary.warnings {
        eprintln!("sessionlake job run: warning: {warning}");
    }
    tracing::info!(
        job = %summary.job,
        status = %summary.status,
        version = summary.version,
        days = summary.days_rewritten.len(),
        sessions = summary.sessions_written,
        alerts = summary.alerts.len(),
        warnings = summary.warnings.len(),
        duration_s = summary.duration_s,
        "run finished"
    );
    eprintln!("{}", summary.one_line());
    if summary.alerts.is_empty() {
        exit_code::OK
    } else {
        exit_code::ALERT
    }
}
