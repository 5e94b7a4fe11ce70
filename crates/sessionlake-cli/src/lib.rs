//! The sessionlake command line as a library: [`main`] parses the arguments, validates them,
//! runs the SQL and returns the process exit code; the binary's `main` only calls it.
//!
//! Exit codes are in one table, [`exit_code`]: the SQL shell ends with [`exit_code::OK`] (also
//! when stdout is closed early, as by `| head`), [`exit_code::FAILED`] when a statement fails,
//! [`exit_code::USAGE`] for bad arguments; `job run` uses the whole table. Results go to stdout;
//! errors and the `N rows in X s` lines go to stderr.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use datafusion::common::Result;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use sessionlake_engine::location::S3Settings;
use sessionlake_engine::memory::MemoryBudget;

pub mod args;
pub mod cluster;
pub mod command;
pub mod editor;
pub mod exit_code;
pub mod huge_pages;
#[cfg(feature = "import")]
pub mod import;
pub mod job;
pub mod lake;
pub mod print;
pub mod progress;
pub mod repl;
pub mod script;
pub mod shell;
pub mod stop;

use args::{Args, OutputFormat};
pub use cluster::ClusterConnect;
use lake::LakeArg;
use shell::{Failure, Flow, PrintOptions, Shell, Sink, Source};

/// Runs the command line given in `std::env::args` and returns the exit code.
pub async fn main() -> ExitCode {
    main_with_cluster(None).await
}

/// Runs the `sessionlake-job` command line given in `std::env::args` (`sessionlake job ...`
/// without the SQL shell and `--cluster`) and returns the exit code.
pub async fn job_main() -> ExitCode {
    match parse_args::<job::JobMain>() {
        Ok(args) => ExitCode::from(stop::until_stopped(job::run(args.into(), None, None)).await),
        Err(code) => code,
    }
}

/// [`main`] for a build that can also run queries on a cluster (`--cluster`) through `connect`.
pub async fn main_with_cluster(connect: Option<ClusterConnect>) -> ExitCode {
    let args = match parse_args::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    if let Some(args::Command::Job(job)) = &args.command {
        let run = job::run(job.clone(), args.cluster.as_deref(), connect);
        return ExitCode::from(stop::until_stopped(run).await);
    }
    #[cfg(feature = "import")]
    if let Some(args::Command::Import(import)) = &args.command {
        return ExitCode::from(import::run(import.clone()));
    }
    ExitCode::from(run(args, connect).await)
}

/// The arguments in `std::env::args`, or the exit code once clap has printed help or the
/// version (on stdout, success) or the mistake (on stderr, usage).
fn parse_args<P: Parser>() -> std::result::Result<P, ExitCode> {
    P::try_parse().map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() {
            exit_code::USAGE
        } else {
            exit_code::OK
        })
    })
}

/// Runs parsed arguments; returns the exit code. `connect` serves `--cluster`.
pub async fn run(args: Args, connect: Option<ClusterConnect>) -> u8 {
    let lakes = match args
        .lakes
        .iter()
        .map(|l| LakeArg::parse(l))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(lakes) => lakes,
        Err(message) => return usage_error(&message),
    };
    let scripts = match gather_scripts(&args) {
        Ok(scripts) => scripts,
        Err(message) => return usage_error(&message),
    };
    let rc = match read_rc(args.rc.as_deref()) {
        Ok(rc) => rc,
        Err(message) => return usage_error(&message),
    };
    let sink = match (&args.output, args.format) {
        (Some(path), _) => match Sink::file(path) {
            Ok(sink) => sink,
            Err(message) => return usage_error(&message),
        },
        (None, OutputFormat::Parquet) => {
            return usage_error("--format parquet writes a file: give one with -o FILE");
        }
        (None, _) => Sink::stdout(),
    };

    let mut config = sessionlake_engine::session_config();
    if let Some(partitions) = args.partitions {
        if partitions == 0 {
            return usage_error("--partitions must be at least 1");
        }
        config = config.with_target_partitions(partitions);
    }
    let s3 = match S3Settings::from_endpoint(args.s3_endpoint.as_deref()) {
        Ok(s3) => s3,
        Err(e) => return usage_error(&format!("--s3-endpoint: {e}")),
    };
    let memory = args.memory_limit.resolve();
    let ctx = match (&args.cluster, connect) {
        (None, _) => match new_context(config, &memory, s3.clone()) {
            Ok(ctx) => ctx,
            Err(e) => {
                eprintln!("Error: {}", e.strip_backtrace());
                return exit_code::FAILED;
            }
        },
        (Some(url), Some(connect)) => match connect(url.clone()).await {
            Ok(ctx) => ctx,
            Err(message) => {
                eprintln!("sessionlake: --cluster {url}: {message}");
                return exit_code::FAILED;
            }
        },
        (Some(_), None) => return cluster::needs_the_cluster_build(),
    };
    for lake in &lakes {
        if let Err(e) = lake::register_lake(&ctx, lake, &s3).await {
            return usage_error(&format!(
                "--lake {}={}: {e}",
                lake.name,
                lake.location.as_directory()
            ));
        }
    }

    let options = PrintOptions {
        format: args.format,
        max_rows: args.maxrows,
        quiet: args.quiet,
    };
    let mut shell = Shell::new(ctx, options, sink);
    if args.cluster.is_none() {
        shell.memory = Some(memory);
    }
    let colour = editor::colour_enabled(
        args.color,
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
        |key| std::env::var(key).ok(),
    );
    let code = match scripts {
        None => run_all(&mut shell, rc, None, colour).await,
        scripts => stop::until_stopped(run_all(&mut shell, rc, scripts, colour)).await,
    };
    if code != exit_code::OK {
        return code;
    }
    match shell.finish() {
        Ok(()) => exit_code::OK,
        Err(failure) => report(failure),
    }
}

/// The rc file, then the scripts, or the REPL when there are none.
async fn run_all(
    shell: &mut Shell,
    rc: Option<(String, Source)>,
    scripts: Option<Vec<(String, Source)>>,
    colour: bool,
) -> u8 {
    if let Some((text, source)) = rc {
        match shell.run_script(&text, &source).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => return exit_code::OK,
            Err(failure) => return report(failure),
        }
    }
    let Some(scripts) = scripts else {
        return repl::run(shell, colour).await;
    };
    for (text, source) in &scripts {
        match shell.run_script(text, source).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => break,
            Err(failure) => return report(failure),
        }
    }
    exit_code::OK
}

/// Prints a failure and gives its exit code.
fn report(failure: Failure) -> u8 {
    match failure {
        Failure::BrokenPipe => exit_code::OK,
        Failure::Error(message) => {
            eprintln!("Error: {message}");
            exit_code::FAILED
        }
    }
}

fn usage_error(message: &str) -> u8 {
    eprintln!("sessionlake: {message}");
    exit_code::USAGE
}

/// The rc file's text: the `-r` file (which must exist), else `~/.sessionlakerc` if it exists.
fn read_rc(explicit: Option<&Path>) -> Result<Option<(String, Source)>, String> {
    if let Some(path) = explicit {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read -r {}: {e}", path.display()))?;
        return Ok(Some((text, Source::File(path.to_path_buf()))));
    }
    let Some(path) = dirs::home_dir().map(|home| home.join(".sessionlakerc")) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((
            text,
            Source::File(PathBuf::from("~/.sessionlakerc")),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read ~/.sessionlakerc: {e}")),
    }
}

/// The context the command line runs SQL in (the Python package uses it too): sessionlake
/// registered, `s3://` buckets reached with `s3`, on a runtime whose memory pool is `memory`'s
/// (see `sessionlake_engine::memory`).
pub fn new_context(
    config: SessionConfig,
    memory: &MemoryBudget,
    s3: S3Settings,
) -> Result<SessionContext> {
    let runtime = memory.apply(
        RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(lake::StoreRegistry::new(s3))),
    );
    let mut ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
    sessionlake_engine::register_all(&mut ctx)?;
    Ok(ctx)
}

/// The scripts to run, in order: every `-c`, then every `-f`; stdin when neither is given and
/// stdin is not a terminal; `None` (the REPL) when neither is given and stdin is a terminal.
/// Files are read before anything runs, so a missing one changes nothing.
fn gather_scripts(args: &Args) -> Result<Option<Vec<(String, Source)>>, String> {
    let mut scripts: Vec<(String, Source)> = args
        .commands
        .iter()
        .map(|command| (command.clone(), Source::Command))
        .collect();
    for file in &args.files {
        if file == Path::new("-") {
            scripts.push((read_stdin()?, Source::Stdin));
        } else {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read -f {}: {e}", file.display()))?;
            scripts.push((text, Source::File(file.clone())));
        }
    }
    if scripts.is_empty() {
        if std::io::stdin().is_terminal() {
            return Ok(None);
        }
        scripts.push((read_stdin()?, Source::Stdin));
    }
    Ok(Some(scripts))
}

fn read_stdin() -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(text)
}
