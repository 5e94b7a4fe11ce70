//! The `sessionlake` binary: everything is in the `sessionlake-cli` library.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    sessionlake_cli::huge_pages::reexec_with_huge_pages();
    sessionlake_cli::main().await
}
