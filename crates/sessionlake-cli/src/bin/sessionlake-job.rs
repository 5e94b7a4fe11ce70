//! `sessionlake-job`: the job runner without the SQL shell, for schedulers and containers that
//! only run jobs. `sessionlake-job run JOB.toml ...` is `sessionlake job run JOB.toml ...`;
//! everything is in `sessionlake_cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // before the runtime starts its threads: the restart replaces the whole process
    sessionlake_cli::huge_pages::reexec_with_huge_pages();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    sessionlake_cli::job_main().await
}
