//! The embeddable sessionlake engine: session analytics as SQL on a DataFusion
//! [`SessionContext`].
//!
//! ```no_run
//! # async fn example() -> datafusion::error::Result<()> {
//! use datafusion::prelude::SessionContext;
//!
//! let mut ctx = SessionContext::new();
//! sessionlake_engine::register_all(&mut ctx)?;
//! ctx.sql("SELECT count(*) FROM sessions('events')").await?.show().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`register_all`] installs the `sessionlake.*` options, the table functions `sessionize` and
//! `sessions`, every function of [`sessionlake_functions`], and lake discovery ([`lake`]) for
//! `CREATE EXTERNAL TABLE ... STORED AS PARQUET` and for paths used as table names. The
//! semantics are in `docs/semantics.md`.

use std::sync::Arc;

use datafusion::catalog::{DynamicFileCatalog, UrlTableFactory};
use datafusion::common::Result;
use datafusion::common::config::SpillCompression;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;

pub mod assign;
pub mod columns;
#[cfg(feature = "delta")]
pub mod delta;
pub mod exec;
pub mod intern;
pub mod lake;
pub mod layout;
pub mod location;
pub mod memory;
pub mod options;
pub mod output;
pub mod rows;
pub mod stitch;
pub mod table_function;

pub use exec::{SessionOutput, SessionizeExec};
pub use options::{SessionLakeConfig, SessionMode, SessionOptions};
pub use table_function::{SessionizeTable, SessionizeTableFunction};

/// A [`SessionConfig`] with sessionlake's options and defaults ([`with_sessionlake_defaults`]).
pub fn session_config() -> SessionConfig {
    with_sessionlake_defaults(SessionConfig::new())
}

/// The spill compression sessionlake's configurations start with.
///
/// Lakes larger than memory spill about as many bytes as they hold events times the width of
/// the columns a query keeps, uncompressed: some 70 bytes an event for `top_pages` of the
/// benchmark, 35 GB at 500M events. LZ4 frames cut that to less than half at no cost in wall
/// time on the benchmark (zstd to a quarter, with a higher peak while it compresses);
/// `SET datafusion.execution.spill_compression` chooses another.
pub const DEFAULT_SPILL_COMPRESSION: SpillCompression = SpillCompression::Lz4Frame;

/// `config` with sessionlake's options registered, the information schema on (so `SHOW ALL`
/// lists them) and spill files compressed ([`DEFAULT_SPILL_COMPRESSION`]).
pub fn with_sessionlake_defaults(config: SessionConfig) -> SessionConfig {
    let mut config = config
        .with_information_schema(true)
        .with_option_extension(SessionLakeConfig::default());
    config.options_mut().execution.spill_compression = DEFAULT_SPILL_COMPRESSION;
    config
}

/// A new [`SessionContext`] with everything of sessionlake registered, on a runtime whose
/// memory pool is the default budget of [`memory`] (a spilling pool of 75% of the memory
/// available).
pub fn new_context() -> Result<SessionContext> {
    new_context_with_config(session_config())
}

/// A new [`SessionContext`] from `config` with everything of sessionlake registered, on the
/// default memory budget as [`new_context`].
pub fn new_context_with_config(config: SessionConfig) -> Result<SessionContext> {
    let runtime = memory::MemoryLimit::Default
        .resolve()
        .apply(RuntimeEnvBuilder::new())
        .build_arc()?;
    let mut ctx = SessionContext::new_with_config_rt(config, runtime);
    register_all(&mut ctx)?;
    Ok(ctx)
}

/// Registers sessionlake's options, table functions and function pack on `ctx`, and reads
/// lakes through [`lake`]: `CREATE EXTERNAL TABLE ... STORED AS PARQUET` uses
/// [`lake::LakeTableFactory`], and a path or URL where a table name is expected
/// (`FROM 'data/lake/'`) is opened as a lake.
pub fn register_all(ctx: &mut SessionContext) -> Result<()> {
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        let options = state.config_mut().options_mut();
        if options.extensions.get::<SessionLakeConfig>().is_none() {
            options.extensions.insert(SessionLakeConfig::default());
        }
        state.table_factories_mut().insert(
            "PARQUET".to_string(),
            Arc::new(lake::LakeTableFactory::default()),
        );
    }
    let catalogs = Arc::clone(ctx.state().catalog_list());
    let installed: &dyn std::any::Any = catalogs.as_ref();
    if !installed.is::<DynamicFileCatalog>() {
        let factory = Arc::new(lake::LakeUrlTableFactory::default());
        factory.with_state(ctx.state_weak_ref());
        ctx.register_catalog_list(Arc::new(DynamicFileCatalog::new(
            catalogs,
            factory as Arc<dyn UrlTableFactory>,
        )));
    }
    for output in [SessionOutput::Events, SessionOutput::Sessions] {
        let function = SessionizeTableFunction::new(output);
        ctx.register_udtf(function.name(), Arc::new(function));
    }
    // DataFusion 55 drops ORDER BY keys that an earlier key determines by the plan's functional
    // dependencies, but UNNEST keeps its input's dependencies although it repeats each row: after
    // `GROUP BY g` and `unnest(HIST(..))`, `ORDER BY g, lo` is cut to `ORDER BY g` and the bins
    // come out in any order (sql/events_per_session_distribution.sql did). Without this rule a
    // sort keeps every key it was given; duplicates only cost a comparison.
    ctx.remove_optimizer_rule(UNSOUND_SORT_PRUNING);
    sessionlake_functions::register_all(ctx)
}

/// The optimizer rule [`register_all`] removes: it prunes sort keys by functional dependencies
/// that UNNEST does not keep.
pub const UNSOUND_SORT_PRUNING: &str = "eliminate_duplicated_expr";

/// `text` with every run of whitespace, line breaks included, as one space: error text of
/// other crates may span lines; ours is one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
