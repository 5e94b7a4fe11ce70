//! `sessionlake-scheduler`: a Ballista scheduler with sessionlake installed.

use std::process::ExitCode;

use ballista_scheduler::config::SchedulerConfig;
use clap::Parser;

/// A Ballista scheduler that plans sessionlake SQL. Clients connect with
/// `df://EXTERNAL_HOST:PORT`; executors with `--scheduler EXTERNAL_HOST:PORT`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "0.0.0.0")]
    bind_host: String,
    /// gRPC port for clients and executors.
    #[arg(long, default_value_t = 50050)]
    port: u16,
    /// The host name clients and executors reach this scheduler by.
    #[arg(long, default_value = "localhost")]
    external_host: String,
    /// Seconds without a heartbeat after which an executor counts as lost and its tasks are
    /// run again elsewhere.
    #[arg(long, default_value_t = 180)]
    executor_timeout_seconds: u64,
    /// Seconds between two checks for lost executors.
    #[arg(long, default_value_t = 15)]
    expire_dead_executor_interval_seconds: u64,
    /// An S3-compatible server to list `s3://` lakes on instead of AWS, such as
    /// `http://127.0.0.1:9000`; credentials and region come from the `AWS_*` variables, as for
    /// the command line's `--lake s3://...`.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    sessionlake_ballista::init_logging();
    let stores = match sessionlake_ballista::s3_settings(args.s3_endpoint.as_deref()) {
        Ok(s3) => sessionlake_ballista::object_stores(s3, "the scheduler"),
        Err(message) => {
            eprintln!("sessionlake-scheduler: {message}");
            return ExitCode::from(2);
        }
    };
    let mut config = SchedulerConfig::default()
        .with_hostname(args.external_host)
        .with_port(args.port);
    config.bind_host = args.bind_host;
    config.executor_timeout_seconds = args.executor_timeout_seconds;
    config.no_executors_grace_period_seconds = args.executor_timeout_seconds;
    config.expire_dead_executor_interval_seconds = args.expire_dead_executor_interval_seconds;
    sessionlake_ballista::serve(
        "sessionlake-scheduler",
        sessionlake_ballista::run_scheduler(config, stores),
    )
}
