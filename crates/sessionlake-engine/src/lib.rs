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
//! `sessions`, and every function of [`sessionlake_functions`]. The semantics are in
//! `docs/semantics.md`.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;

pub mod assign;
pub mod columns;
#[cfg(feature = "delta")]
pub mod delta;
pub mod exec;
pub mod options;
pub mod table_function;

pub use exec::{SessionOutput, SessionizeExec};
pub use options::{SessionLakeConfig, SessionMode, SessionOptions};
pub use table_function::{SessionizeTable, SessionizeTableFunction};

/// A [`SessionConfig`] with sessionlake's options registered (and the information schema on,
/// so `SHOW ALL` lists them).
pub fn session_config() -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(true)
        .with_option_extension(SessionLakeConfig::default())
}

/// A new [`SessionContext`] with everything of sessionlake registered.
pub fn new_context() -> Result<SessionContext> {
    new_context_with_config(session_config())
}

/// A new [`SessionContext`] from `config` with everything of sessionlake registered.
pub fn new_context_with_config(config: SessionConfig) -> Result<SessionContext> {
    let mut ctx = SessionContext::new_with_config(config);
    register_all(&mut ctx)?;
    Ok(ctx)
}

/// Registers sessionlake's options, table functions and function pack on `ctx`.
pub fn register_all(ctx: &mut SessionContext) -> Result<()> {
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        let options = state.config_mut().options_mut();
        if options.extensions.get::<SessionLakeConfig>().is_none() {
            options.extensions.insert(SessionLakeConfig::default());
        }
    }
    for output in [SessionOutput::Events, SessionOutput::Sessions] {
        let function = SessionizeTableFunction::new(output);
        ctx.register_udtf(function.name(), Arc::new(function));
    }
    sessionlake_functions::register_all(ctx)
}
