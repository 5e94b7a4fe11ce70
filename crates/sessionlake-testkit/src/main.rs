//! `sessionlake-gen`: writes a seeded, Amplitude-like event lake of Parquet files partitioned by
//! day (see `sessionlake_testkit::lake`). Exit codes: 0 written, 1 failed while writing, 2 bad
//! arguments or an output directory it will not touch.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use chrono::NaiveDate;
use clap::Parser;
use sessionlake_testkit::app_lake::write_app_lake;
use sessionlake_testkit::lake::{
    DEFAULT_ROW_GROUP_ROWS, LakeError, LakeSpec, PARTITION_COLUMN, write_lake,
};

/// Write a seeded, Amplitude-like event lake: DIR/event_date=YYYY-MM-DD/part-N.parquet.
#[derive(Debug, Parser)]
#[command(name = "sessionlake-gen", version)]
struct Args {
    /// Output directory; must be missing or empty unless --force.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Exact number of rows to write.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    events: u64,
    /// Number of day partitions.
    #[arg(long, value_name = "D", default_value_t = 7)]
    days: u32,
    /// Size of the user population.
    #[arg(long, value_name = "U", default_value_t = 2_000)]
    users: u64,
    /// Seed: the same arguments always write the same bytes.
    #[arg(long, value_name = "S", default_value_t = 42)]
    seed: u64,
    /// First day (UTC) of the lake.
    #[arg(long, value_name = "YYYY-MM-DD", default_value = "2024-01-01", value_parser = parse_date)]
    start_date: NaiveDate,
    /// Parquet files per day.
    #[arg(long, value_name = "K", default_value_t = 2)]
    files_per_day: usize,
    /// Maximum rows per Parquet row group.
    #[arg(long, value_name = "ROWS", default_value_t = DEFAULT_ROW_GROUP_ROWS)]
    row_group_rows: usize,
    /// Replace DIR if it already holds a lake (only event_date=... directories).
    #[arg(long)]
    force: bool,
    /// Write the lake as an app that measures its sessions logs it: closing `session_end`
    /// events with `duration_ms`, and a `timeout_ms` on every event (see
    /// sessionlake_testkit::app_lake).
    #[arg(long)]
    app_events: bool,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("expected a date as YYYY-MM-DD, got {text:?} ({e})"))
}

/// Why the run failed, and the exit code it maps to.
enum Failure {
    Usage(String),
    Write(String),
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("sessionlake-gen: error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Write(msg)) => {
            eprintln!("sessionlake-gen: error: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    let spec = LakeSpec {
        seed: args.seed,
        events: args.events,
        days: args.days,
        users: args.users,
        start_date: args.start_date,
        files_per_day: args.files_per_day,
        row_group_rows: args.row_group_rows,
    };
    spec.validate().map_err(|e| Failure::Usage(e.to_string()))?;
    if args.force {
        clear_lake_dir(&args.out)?;
    }
    let started = Instant::now();
    let write = if args.app_events {
        write_app_lake
    } else {
        write_lake
    };
    let summary = write(&spec, &args.out).map_err(|e| match e {
        LakeError::InvalidSpec(_) | LakeError::NotEmpty(_) => Failure::Usage(format!(
            "{e}{}",
            if matches!(e, LakeError::NotEmpty(_)) {
                "; pass --force to replace it"
            } else {
                ""
            }
        )),
        other => Failure::Write(other.to_string()),
    })?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "sessionlake-gen: wrote {} in {seconds:.1}s ({:.0} events/s): {summary}",
        args.out.display(),
        summary.rows as f64 / seconds.max(1e-9),
    );
    Ok(())
}

/// Removes `dir` for `--force`, but only if it looks like a lake: a typo must not delete a
/// directory of other files.
fn clear_lake_dir(dir: &Path) -> Result<(), Failure> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(Failure::Usage(format!(
            "--out {} exists and is not a directory",
            dir.display()
        )));
    }
    let entries =
        fs::read_dir(dir).map_err(|e| Failure::Write(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| Failure::Write(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name();
        let is_partition = entry.path().is_dir()
            && name
                .to_str()
                .is_some_and(|n| n.starts_with(&format!("{PARTITION_COLUMN}=")));
        if !is_partition {
            return Err(Failure::Usage(format!(
                "refusing to --force replace {}: it holds {:?}, which is not an \
                 {PARTITION_COLUMN}=... partition directory",
                dir.display(),
                entry.path()
            )));
        }
    }
    fs::remove_dir_all(dir).map_err(|e| Failure::Write(format!("removing {}: {e}", dir.display())))
}
