//! sessionlake on Apache DataFusion Ballista: the same SQL (`sessionize`, `sessions`, the
//! session aggregates) run by a scheduler and a set of executors instead of one process.
//!
//! ```no_run
//! # async fn example() -> datafusion::error::Result<()> {
//! let ctx = sessionlake_ballista::ballista_context("df://scheduler-host:50050").await?;
//! ctx.sql("CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '/shared/lake/'")
//!     .await?
//!     .collect()
//!     .await?;
//! ctx.sql("SELECT count(*) FROM sessions('events')").await?.show().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Three pieces, each of which installs sessionlake on one of Ballista's roles:
//! - the client, [`ballista_context`]: plans SQL with sessionlake's table functions and sends
//!   the logical plan to the scheduler through [`SessionLakeLogicalCodec`];
//! - the scheduler, [`with_sessionlake_scheduler`]: decodes that plan, plans it physically
//!   (sessionlake's functions registered on its sessions) and splits it into stages;
//! - the executors, [`with_sessionlake_executor`]: decode their stages' `SessionizeExec`
//!   through [`SessionLakePhysicalCodec`] and look the aggregates up by name in
//!   [`function_registry`].
//!
//! The binaries `sessionlake-scheduler` and `sessionlake-executor` run the last two.

use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use sessionlake_engine::UNSOUND_SORT_PRUNING;
use sessionlake_engine::location::S3Settings;

pub mod codec;
pub mod sql_client;
pub mod stores;

pub use codec::{SessionLakeLogicalCodec, SessionLakePhysicalCodec};

/// The configuration every Ballista role starts from: Ballista's defaults, sessionlake's
/// `sessionlake.*` options, and sessionlake's codecs.
pub fn session_config() -> SessionConfig {
    sessionlake_engine::with_sessionlake_defaults(SessionConfig::new_with_ballista())
        .with_ballista_logical_extension_codec(Arc::new(SessionLakeLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(SessionLakePhysicalCodec::default()))
}

/// A client [`SessionContext`] that runs its queries on the Ballista cluster whose scheduler is
/// at `url` (`df://HOST:PORT`), with everything of sessionlake registered.
///
/// Tables are registered on it as usual; a table that `sessionize` or `sessions` reads must be
/// one the scheduler can rebuild from its description (an external table such as Parquet on
/// storage every executor reaches at the same path or URL), not an in-memory table.
/// Connecting happens at the first query, so an unreachable scheduler fails there.
pub async fn ballista_context(url: &str) -> Result<SessionContext> {
    check_cluster_url(url)?;
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(session_config())
        .build();
    let mut ctx = SessionContext::remote_with_state(url, state).await?;
    // after the upgrade to Ballista, which replaces the state's function lists with its own
    sessionlake_engine::register_all(&mut ctx)?;
    Ok(ctx)
}

/// Checks that `url` names a scheduler as `df://HOST:PORT`.
pub fn check_cluster_url(url: &str) -> Result<()> {
    let valid = url.strip_prefix("df://").is_some_and(|rest| {
        rest.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.trim_end_matches('/').parse::<u16>().is_ok()
        })
    });
    if valid {
        Ok(())
    } else {
        Err(DataFusionError::Configuration(format!(
            "--cluster: expected the scheduler as df://HOST:PORT, for example \
             df://127.0.0.1:50050, found '{url}'"
        )))
    }
}

/// The object stores a scheduler or an executor (`role`, as errors name it: `executor
/// HOST:PORT`) opens lakes through: local files, and every `s3://` bucket a plan names, whose
/// client is made on first use from the `AWS_*` variables and `s3` (`--s3-endpoint`), as the
/// command line's `--lake s3://...` makes it. The client's lake URL reaches them unchanged in
/// the plan; an S3 failure names `role` and the bucket ([`stores`]).
pub fn object_stores(s3: S3Settings, role: &str) -> Arc<dyn ObjectStoreRegistry> {
    Arc::new(stores::RoleStores::new(s3, role))
}

/// The session state the scheduler plans a job in: Ballista's default state with sessionlake's
/// aggregate and window functions (the plan names them; they are looked up by name), the
/// object stores `stores` (it lists a lake's files to split the scan into tasks), and without
/// the optimizer rule that `sessionlake_engine::register_all` removes (the scheduler optimizes
/// the client's plan again).
pub fn scheduler_session_state(
    config: SessionConfig,
    stores: Arc<dyn ObjectStoreRegistry>,
) -> Result<SessionState> {
    let state = ballista_core::utils::default_session_builder(config)?;
    let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
        .with_object_store_registry(stores)
        .build_arc()?;
    let rules = state
        .optimizers()
        .iter()
        .filter(|rule| rule.name() != UNSOUND_SORT_PRUNING)
        .cloned()
        .collect();
    let session_id = state.session_id().to_string();
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_session_id(session_id)
        .with_runtime_env(runtime)
        .with_optimizer_rules(rules)
        .build();
    sessionlake_functions::register_all(&mut state)?;
    Ok(state)
}

/// The functions an executor resolves names in: Ballista's defaults and sessionlake's.
pub fn function_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for udaf in sessionlake_functions::all_default_aggregate_functions() {
        for name in std::iter::once(udaf.name()).chain(udaf.aliases().iter().map(String::as_str)) {
            registry
                .aggregate_functions
                .insert(name.to_string(), Arc::clone(&udaf));
        }
    }
    for udwf in sessionlake_functions::all_default_window_functions() {
        for name in std::iter::once(udwf.name()).chain(udwf.aliases().iter().map(String::as_str)) {
            registry
                .window_functions
                .insert(name.to_string(), Arc::clone(&udwf));
        }
    }
    registry
}

/// `config` with sessionlake installed: its options, codecs and functions, and `stores` (see
/// [`object_stores`]).
pub fn with_sessionlake_scheduler(
    mut config: SchedulerConfig,
    stores: Arc<dyn ObjectStoreRegistry>,
) -> SchedulerConfig {
    config.override_config_producer = Some(Arc::new(session_config));
    config.override_session_builder = Some(Arc::new(move |session_config| {
        scheduler_session_state(session_config, Arc::clone(&stores))
    }));
    config.override_logical_codec = Some(Arc::new(SessionLakeLogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(SessionLakePhysicalCodec::default()));
    config
}

/// `config` with sessionlake installed: its options, codecs and functions, and `stores` (see
/// [`object_stores`]) for the files its tasks read. Operators spill under `config.work_dir`
/// when it is set, else in the system's temporary directory; Ballista sizes each task's memory
/// pool on top of this runtime.
pub fn with_sessionlake_executor(
    mut config: ExecutorProcessConfig,
    stores: Arc<dyn ObjectStoreRegistry>,
) -> ExecutorProcessConfig {
    let work_dir = config.work_dir.clone();
    config.override_runtime_producer = Some(Arc::new(move |_config| {
        let mut runtime = RuntimeEnvBuilder::new().with_object_store_registry(Arc::clone(&stores));
        if let Some(dir) = &work_dir {
            runtime = runtime.with_temp_file_path(dir);
        }
        runtime.build_arc()
    }));
    config.override_config_producer = Some(Arc::new(session_config));
    config.override_function_registry = Some(Arc::new(function_registry()));
    config.override_logical_codec = Some(Arc::new(SessionLakeLogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(SessionLakePhysicalCodec::default()));
    config
}

/// Runs a scheduler with sessionlake installed on `config`, opening lakes through `stores`,
/// until the process is stopped.
pub async fn run_scheduler(
    config: SchedulerConfig,
    stores: Arc<dyn ObjectStoreRegistry>,
) -> ballista_core::error::Result<()> {
    let config = with_sessionlake_scheduler(config, stores);
    let address = format!("{}:{}", config.bind_host, config.bind_port)
        .parse()
        .map_err(|e| {
            ballista_core::error::BallistaError::Configuration(format!(
                "scheduler address {}:{}: {e}",
                config.bind_host, config.bind_port
            ))
        })?;
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, address, Arc::new(config)).await
}

/// Runs an executor with sessionlake installed on `config`, reading lakes through `stores`,
/// until the process is stopped.
pub async fn run_executor(
    config: ExecutorProcessConfig,
    stores: Arc<dyn ObjectStoreRegistry>,
) -> ballista_core::error::Result<()> {
    start_executor_process(Arc::new(with_sessionlake_executor(config, stores))).await
}

/// The S3 settings of `--s3-endpoint URL` (checked as the command line checks it), for
/// [`object_stores`]; the rest comes from the `AWS_*` variables.
pub fn s3_settings(endpoint: Option<&str>) -> std::result::Result<S3Settings, String> {
    S3Settings::from_endpoint(endpoint).map_err(|e| format!("--s3-endpoint: {e}"))
}

/// The body of the `sessionlake-scheduler` and `sessionlake-executor` binaries: runs `server`
/// (from [`run_scheduler`] or [`run_executor`]) on a multi-thread runtime and turns a failure
/// into one line on stderr, named after the binary `program`, and a failing exit code.
pub fn serve(
    program: &str,
    server: impl Future<Output = ballista_core::error::Result<()>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Ballista's log lines on stderr, at `RUST_LOG`'s level (default `info`), for the binaries.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}

#[cfg(test)]
mod tests {
    use datafusion::execution::registry::FunctionRegistry;

    use super::*;

    #[test]
    fn cluster_urls() {
        assert!(check_cluster_url("df://127.0.0.1:50050").is_ok());
        assert!(check_cluster_url("df://scheduler.internal:50050/").is_ok());
        for bad in [
            "127.0.0.1:50050",
            "df://:50050",
            "df://host",
            "http://h:1",
            "df://h:x",
        ] {
            let err = check_cluster_url(bad).unwrap_err().to_string();
            assert!(err.contains("df://HOST:PORT"), "{bad}: {err}");
        }
    }

    #[test]
    fn executors_know_every_sessionlake_function() {
        let registry = function_registry();
        for udaf in sessionlake_functions::all_default_aggregate_functions() {
            assert!(registry.udaf(udaf.name()).is_ok(), "{}", udaf.name());
        }
        for udwf in sessionlake_functions::all_default_window_functions() {
            assert!(registry.udwf(udwf.name()).is_ok(), "{}", udwf.name());
        }
        // Ballista's own functions stay
        assert!(registry.udaf("count").is_ok());
    }
}
