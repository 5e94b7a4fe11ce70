//! The command line, parsed by clap and then validated into typed values before anything runs.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Parser, ValueEnum};
use sessionlake_engine::memory::MemoryLimit;

/// Session analytics as SQL over Parquet event lakes.
#[derive(Debug, Parser)]
#[command(name = "sessionlake", version, about, long_about = None)]
pub struct Args {
    /// Run this SQL statement and exit (repeatable; statements run in order).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub commands: Vec<String>,

    /// Run the SQL statements of this file, separated by `;` (repeatable; `-` reads stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Register a hive-partitioned Parquet lake as a table: `NAME=PATH` for a local directory or
    /// `NAME=s3://bucket/prefix/` (credentials from the `AWS_*` variables) (repeatable).
    #[arg(long = "lake", value_name = "NAME=PATH|URL")]
    pub lakes: Vec<String>,

    /// The S3-compatible server for `s3://` lakes, e.g. `http://127.0.0.1:9000` (default:
    /// `AWS_ENDPOINT_URL`, else AWS).
    #[arg(long = "s3-endpoint", value_name = "URL", value_parser = sessionlake_engine::location::parse_s3_endpoint)]
    pub s3_endpoint: Option<String>,

    /// How results are printed (`parquet` only with `-o`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Write results to this file instead of stdout. The file appears only when every statement
    /// succeeded (it is written beside and renamed into place), so it is never half-written.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Run this file's statements and backslash commands first (default: `~/.sessionlakerc` if
    /// it exists).
    #[arg(short = 'r', long = "rc", value_name = "FILE")]
    pub rc: Option<PathBuf>,

    /// Colour SQL keywords and strings as they are typed in the shell: `auto` when the shell
    /// runs on a terminal and `NO_COLOR` is not set.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Print no `N rows in X s` line after each result.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Rows printed in table format at most (`inf` for all).
    #[arg(long, value_name = "N|inf", default_value = "40", value_parser = parse_max_rows)]
    pub maxrows: MaxRows,

    /// Partitions a query runs on (DataFusion's `target_partitions`; default: the core count).
    #[arg(long, value_name = "N")]
    pub partitions: Option<usize>,

    /// Run queries, and the sessionizing of `job run`, on a Ballista cluster whose scheduler is
    /// at `df://HOST:PORT` (only in the cluster-enabled build, `sessionlake-ballista`; see
    /// crates/sessionlake-ballista).
    // global: `sessionlake job run JOB.toml --cluster URL` reads as naturally as a query's flag
    #[arg(long, value_name = "df://HOST:PORT", global = true)]
    pub cluster: Option<String>,

    /// Memory for query execution: a size such as `2g` or `512m`, or `none` for no limit.
    /// Operators that can spill (sorts, aggregations, sessionizing) spill to disk beyond it; a
    /// query that cannot fit even then fails with an error naming its largest consumers.
    /// Default: 75% of the machine's memory (or of the cgroup's limit, when lower); `\memory`
    /// in the shell shows it.
    #[arg(
        short = 'm',
        long = "memory-limit",
        value_name = "SIZE|none",
        default_value = "default",
        hide_default_value = true,
        value_parser = MemoryLimit::from_str
    )]
    pub memory_limit: MemoryLimit,

    /// A subcommand instead of SQL.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Scheduled lake jobs: `sessionlake job run JOB.toml [--date D | --from D --to D]`;
    /// `sessionlake job report JOB.toml` draws the job's HTML report again.
    Job(crate::job::JobArgs),
    /// Event exports into a Parquet lake: `sessionlake import amplitude INPUT --out LAKE
    /// [--skip-bad-lines]`.
    #[cfg(feature = "import")]
    Import(crate::import::ImportArgs),
}

/// When the shell colours its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// The printed formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// Tab-separated values with a header line.
    Tsv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    NdJson,
    /// A Parquet file (only with `-o FILE`; holds one result).
    Parquet,
}

impl OutputFormat {
    /// The name used on the command line and by `\pset format`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Csv => "csv",
            Self::Tsv => "tsv",
            Self::Json => "json",
            Self::NdJson => "nd-json",
            Self::Parquet => "parquet",
        }
    }
}

/// How many rows the table format shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxRows {
    Limited(usize),
    Unlimited,
}

pub fn parse_max_rows(text: &str) -> Result<MaxRows, String> {
    if text.eq_ignore_ascii_case("inf") {
        return Ok(MaxRows::Unlimited);
    }
    text.parse::<usize>()
        .map(MaxRows::Limited)
        .map_err(|_| format!("'{text}' is not a row count or 'inf'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_rows_parse() {
        assert_eq!(parse_max_rows("inf").unwrap(), MaxRows::Unlimited);
        assert_eq!(parse_max_rows("7").unwrap(), MaxRows::Limited(7));
        assert!(parse_max_rows("lots").is_err());
    }
}
