//! `sessionlake-executor`: a Ballista executor with sessionlake installed.

use std::process::ExitCode;
use std::str::FromStr;

use ballista_executor::executor_process::ExecutorProcessConfig;
use clap::Parser;
use sessionlake_engine::memory::MemoryLimit;

/// A Ballista executor that runs sessionlake's operators and functions.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The scheduler, as HOST:PORT.
    #[arg(long, default_value = "localhost:50050")]
    scheduler: String,
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "0.0.0.0")]
    bind_host: String,
    /// The host name other executors and clients reach this executor by (default: the address
    /// the scheduler sees it connect from).
    #[arg(long)]
    external_host: Option<String>,
    /// Arrow Flight port, from which shuffle data and results are fetched.
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// gRPC port on which the scheduler hands out tasks.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks run at once (default: the number of cores).
    #[arg(long)]
    concurrent_tasks: Option<usize>,
    /// Directory for shuffle files (default: a new temporary directory).
    #[arg(long)]
    work_dir: Option<String>,
    /// Seconds between two heartbeats to the scheduler.
    #[arg(long, default_value_t = 60)]
    heartbeat_interval_seconds: u64,
    /// Memory for the executor's tasks, split evenly among them: a size such as `8g`, or `none`
    /// for no limit (nothing spills). Default: 70% of the host's memory, or of its cgroup's
    /// limit when lower.
    #[arg(short = 'm', long = "memory-limit", value_name = "SIZE|none", value_parser = MemoryLimit::from_str)]
    memory_limit: Option<MemoryLimit>,
    /// An S3-compatible server to read `s3://` lakes from instead of AWS, such as
    /// `http://127.0.0.1:9000`; credentials and region come from the `AWS_*` variables, as for
    /// the command line's `--lake s3://...`.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
}

fn main() -> ExitCode {
    sessionlake_cli::huge_pages::reexec_with_huge_pages();
    let args = Args::parse();
    sessionlake_ballista::init_logging();
    let Some((scheduler_host, scheduler_port)) = args
        .scheduler
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
    else {
        eprintln!(
            "sessionlake-executor: --scheduler: expected HOST:PORT, found '{}'",
            args.scheduler
        );
        return ExitCode::from(2);
    };
    let stores = match sessionlake_ballista::s3_settings(args.s3_endpoint.as_deref()) {
        Ok(s3) => {
            let host = args.external_host.as_deref().unwrap_or(&args.bind_host);
            sessionlake_ballista::object_stores(s3, &format!("executor {host}:{}", args.port))
        }
        Err(message) => {
            eprintln!("sessionlake-executor: {message}");
            return ExitCode::from(2);
        }
    };
    let mut config = ExecutorProcessConfig {
        scheduler_host,
        scheduler_port,
        bind_host: args.bind_host,
        external_host: args.external_host,
        port: args.port,
        grpc_port: args.grpc_port,
        work_dir: args.work_dir,
        executor_heartbeat_interval_seconds: args.heartbeat_interval_seconds,
        ..ExecutorProcessConfig::default()
    };
    if let Some(tasks) = args.concurrent_tasks {
        config.vcores = tasks.max(1);
    }
    // Ballista's own pool policy: a size in bytes, 0 for none, unset for its default share
    config.memory_pool_size = match args.memory_limit {
        Some(MemoryLimit::Bytes(bytes)) => Some(bytes as u64),
        Some(MemoryLimit::Unbounded) => Some(0),
        Some(MemoryLimit::Default) | None => None,
    };
    sessionlake_ballista::serve(
        "sessionlake-executor",
        sessionlake_ballista::run_executor(config, stores),
    )
}
