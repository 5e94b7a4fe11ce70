//! The sessionlake command line as a library: [`main`] parses the arguments, validates them,
//! runs the SQL and returns the process exit code; the binary's `main` only calls it.
//!
//! Exit codes: [`EXIT_OK`] (also when stdout is closed early, as by `| head`), [`EXIT_QUERY`]
//! when a statement fails, [`EXIT_USAGE`] for bad arguments. Results go to stdout; errors and
//! the `N rows in X s` lines go to stderr.

use std::io::{IsTerminal, Read, Write};
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;

pub mod args;
pub mod print;

use args::{Args, LakeArg};

/// Success, including a closed stdout.
pub const EXIT_OK: u8 = 0;
/// A statement failed: bad SQL, a missing table, bad data.
pub const EXIT_QUERY: u8 = 1;
/// The command line was wrong.
pub const EXIT_USAGE: u8 = 2;

/// Runs the command line given in `std::env::args` and returns the exit code.
pub async fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // clap prints help and version on stdout with success, mistakes on stderr
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    if let Some(args::Command::Job(job)) = &args.command {
        return ExitCode::from(sessionlake_jobs::cli::run(job.clone()).await);
    }
    ExitCode::from(run(args).await)
}

/// Runs parsed arguments; returns the exit code.
pub async fn run(args: Args) -> u8 {
    let lakes = match args
        .lakes
        .iter()
        .map(|l| LakeArg::parse(l))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(lakes) => lakes,
        Err(message) => {
            eprintln!("sessionlake: {message}");
            return EXIT_USAGE;
        }
    };
    let scripts = match gather_scripts(&args) {
        Ok(scripts) => scripts,
        Err(message) => {
            eprintln!("sessionlake: {message}");
            return EXIT_USAGE;
        }
    };

    let mut config = sessionlake_engine::session_config();
    if let Some(partitions) = args.partitions {
        if partitions == 0 {
            eprintln!("sessionlake: --partitions must be at least 1");
            return EXIT_USAGE;
        }
        config = config.with_target_partitions(partitions);
    }
    let ctx = match new_context(config, args.memory_limit) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("Error: {e}");
            return EXIT_QUERY;
        }
    };
    for lake in &lakes {
        if let Err(e) = register_lake(&ctx, lake).await {
            eprintln!(
                "sessionlake: --lake {}={}: {e}",
                lake.name,
                lake.path.display()
            );
            return EXIT_USAGE;
        }
    }

    for script in &scripts {
        match run_script(&ctx, script, &args).await {
            Ok(()) => {}
            Err(Failure::BrokenPipe) => return EXIT_OK,
            Err(Failure::Query(e)) => {
                eprintln!("Error: {e}");
                return EXIT_QUERY;
            }
        }
    }
    EXIT_OK
}

/// A context with sessionlake registered; with `memory_limit`, on a runtime whose memory pool is
/// a [`FairSpillPool`](datafusion::execution::memory_pool::FairSpillPool) of that many bytes.
fn new_context(config: SessionConfig, memory_limit: Option<usize>) -> Result<SessionContext> {
    let Some(bytes) = memory_limit else {
        return sessionlake_engine::new_context_with_config(config);
    };
    // the tracking wrapper names the largest consumers in a ResourcesExhausted error
    const NAMED_CONSUMERS: NonZeroUsize = NonZeroUsize::new(5).expect("5 is not 0");
    let pool = TrackConsumersPool::new(FairSpillPool::new(bytes), NAMED_CONSUMERS);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()?;
    let mut ctx = SessionContext::new_with_config_rt(config, runtime);
    sessionlake_engine::register_all(&mut ctx)?;
    Ok(ctx)
}

/// The SQL to run, in order: every `-c`, then every `-f`; stdin when neither is given and stdin
/// is not a terminal.
fn gather_scripts(args: &Args) -> Result<Vec<String>, String> {
    let mut scripts = args.commands.clone();
    for file in &args.files {
        if file == Path::new("-") {
            scripts.push(read_stdin()?);
        } else {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read -f {}: {e}", file.display()))?;
            scripts.push(text);
        }
    }
    if scripts.is_empty() {
        if std::io::stdin().is_terminal() {
            return Err(
                "nothing to run: give SQL with -c \"...\" or -f FILE (the interactive shell is \
                 not part of this build)"
                    .to_string(),
            );
        }
        scripts.push(read_stdin()?);
    }
    Ok(scripts)
}

fn read_stdin() -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(text)
}

/// Registers a hive-partitioned Parquet directory as a table.
async fn register_lake(ctx: &SessionContext, lake: &LakeArg) -> Result<(), String> {
    let path = &lake.path;
    if !path.is_dir() {
        return Err(format!("directory '{}' not found", path.display()));
    }
    let mut location = path.display().to_string();
    if !location.ends_with('/') {
        location.push('/');
    }
    let sql = format!(
        "CREATE EXTERNAL TABLE \"{}\" STORED AS PARQUET LOCATION '{}'",
        lake.name,
        location.replace('\'', "''")
    );
    ctx.sql(&sql).await.map_err(|e| e.strip_backtrace())?;
    Ok(())
}

enum Failure {
    BrokenPipe,
    Query(DataFusionError),
}

impl From<DataFusionError> for Failure {
    fn from(e: DataFusionError) -> Self {
        if is_broken_pipe(&e) {
            Failure::BrokenPipe
        } else {
            Failure::Query(e)
        }
    }
}

fn is_broken_pipe(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::IoError(io) => io.kind() == std::io::ErrorKind::BrokenPipe,
        DataFusionError::ArrowError(arrow, _) => {
            matches!(arrow.as_ref(), datafusion::arrow::error::ArrowError::IoError(_, io)
                if io.kind() == std::io::ErrorKind::BrokenPipe)
        }
        DataFusionError::Context(_, inner) => is_broken_pipe(inner),
        _ => false,
    }
}

/// Runs every statement of `script` in order and prints each result.
async fn run_script(ctx: &SessionContext, script: &str, args: &Args) -> Result<(), Failure> {
    let statements = DFParser::parse_sql(script)?;
    for statement in statements {
        let started = Instant::now();
        let state = ctx.state();
        let plan = state.statement_to_plan(statement).await?;
        let frame = ctx.execute_logical_plan(plan).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        // statements such as CREATE and SET return no columns: nothing to print
        if schema.fields().is_empty() {
            continue;
        }
        // formatted in memory first, so that a closed stdout shows as a plain I/O error
        let mut text = Vec::new();
        print::print_batches(&mut text, &schema, &batches, args.format, args.maxrows)?;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout.write_all(&text).and_then(|()| stdout.flush()) {
            return Err(if e.kind() == std::io::ErrorKind::BrokenPipe {
                Failure::BrokenPipe
            } else {
                Failure::Query(DataFusionError::IoError(e))
            });
        }
        drop(stdout);
        if !args.quiet {
            let _ = writeln!(
                std::io::stderr(),
                "{rows} row{} in {:.3} s",
                if rows == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
