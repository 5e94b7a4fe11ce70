//! `sessionlake-job`: the job runner without the SQL shell, for schedulers and containers that
//! only run jobs. `sessionlake-job run JOB.toml ...` is `sessionlake job run JOB.toml ...`.

use std::process::ExitCode;

use clap::Parser;
use sessionlake_jobs::cli::{JobArgs, JobCommand};

/// Run sessionlake lake jobs.
#[derive(Debug, Parser)]
#[command(name = "sessionlake-job", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: JobCommand,
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => ExitCode::from(
            sessionlake_jobs::cli::run(
                JobArgs {
                    command: cli.command,
                },
                None,
            )
            .await,
        ),
        Err(e) => {
            // clap prints help and version on stdout with success, mistakes on stderr
            let _ = e.print();
            ExitCode::from(if e.use_stderr() {
                sessionlake_jobs::EXIT_USAGE
            } else {
                sessionlake_jobs::EXIT_OK
            })
        }
    }
}
