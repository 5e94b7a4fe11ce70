//! `sessionlake import amplitude INPUT --out LAKE [--skip-bad-lines]`: the clap arguments, the
//! progress bar and the exit code of an import; the work is `sessionlake_import`'s.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use sessionlake_import::{ImportOptions, Progress, import_amplitude};

use crate::exit_code;

/// `sessionlake import ...`: event exports into a Parquet lake.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub source: ImportSource,
}

/// The export formats.
#[derive(Debug, Clone, Subcommand)]
pub enum ImportSource {
    /// Amplitude's Export API (the zip it returns, or a directory of its .json.gz files) into
    /// LAKE/event_date=YYYY-MM-DD/part-00000.parquet, one file per UTC day of event_time.
    /// Exit codes: 0 done, 1 bad data (a bad line, a corrupt file) or an unwritable lake,
    /// 2 usage (a missing input, not an export).
    Amplitude(AmplitudeArgs),
}

/// `sessionlake import amplitude ...`.
#[derive(Debug, Clone, Args)]
pub struct AmplitudeArgs {
    /// The export: the Export API's zip, or a directory holding its .json.gz files.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// The lake directory (created if missing). Each imported day's file is replaced
    /// atomically; other days are left alone.
    #[arg(long, value_name = "LAKE")]
    pub out: PathBuf,

    /// Count malformed lines and lines without a valid event_time, and go on, instead of
    /// failing on the first.
    #[arg(long)]
    pub skip_bad_lines: bool,
}

/// Runs an import; prints the summary line (or the error) on stderr and returns the exit code.
pub fn run(args: ImportArgs) -> u8 {
    match args.source {
        ImportSource::Amplitude(args) => run_amplitude(&args),
    }
}

fn run_amplitude(args: &AmplitudeArgs) -> u8 {
    let bar = progress_bar();
    let options = ImportOptions {
        skip_bad_lines: args.skip_bad_lines,
    };
    let result = import_amplitude(&args.input, &args.out, options, &mut |progress| {
        if let Some(bar) = &bar {
            show(bar, progress);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            exit_code::OK
        }
        Err(e) => {
            eprintln!("sessionlake import amplitude: {e}");
            exit_code::of_import_error(e.kind())
        }
    }
}

/// A bar over the export's compressed bytes, when stderr is a terminal.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    std::io::stderr()
        .is_terminal()
        .then(|| crate::progress::bar("{bar:40} {bytes}/{total_bytes} {msg} ({elapsed})"))
}

fn show(bar: &indicatif::ProgressBar, progress: Progress) {
    bar.set_length(progress.bytes_total);
    bar.set_position(progress.bytes_done);
    bar.set_message(format!(
        "files {}/{}, {} lines",
        progress.files_done, progress.files_total, progress.lines
    ));
}
