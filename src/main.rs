//! The `sessionlake` binary: everything is in the `sessionlake-cli` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    // before the runtime starts its threads: the restart replaces the whole process
    sessionlake_cli::huge_pages::reexec_with_huge_pages();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    sessionlake_cli::main().await
}
