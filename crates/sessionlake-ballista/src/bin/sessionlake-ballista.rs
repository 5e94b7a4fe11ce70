//! `sessionlake-ballista`: the `sessionlake` command line (same flags, REPL, formats and exit
//! codes) built with Ballista, so that `--cluster df://HOST:PORT` runs the queries on a cluster.
//! Without `--cluster` it runs them in this process, as `sessionlake` does.

use std::process::ExitCode;

fn connect(
    url: String,
) -> std::pin::Pin<
    Box<dyn Future<Output = Result<datafusion::prelude::SessionContext, String>> + Send>,
> {
    Box::pin(async move {
        sessionlake_ballista::ballista_context(&url)
            .await
            .map_err(|e| e.strip_backtrace())
    })
}

fn main() -> ExitCode {
    // before the runtime starts its threads: the restart replaces the whole process
    sessionlake_cli::huge_pages::reexec_with_huge_pages();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    sessionlake_cli::main_with_cluster(Some(connect)).await
}
