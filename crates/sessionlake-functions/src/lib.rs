//! sessionlake's SQL function pack for Apache DataFusion.
//!
//! - [`sessionize::sessionize_udwf`]: `sessionize(time [, gap]) OVER (PARTITION BY user ORDER BY
//!   time)`, the session key of each row;
//! - [`session_split`]: the session-splitting kernels shared with the engine's operator;
//! - [`time_unit`]: interval and timestamp-unit conversions.
//!
//! [`register_all`] installs every function on a [`FunctionRegistry`].

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::WindowUDF;

pub mod session_split;
pub mod sessionize;
pub mod time_unit;

/// Every window function of the pack.
pub fn all_default_window_functions() -> Vec<Arc<WindowUDF>> {
    vec![sessionize::sessionize_udwf()]
}

/// Registers every function of the pack on `registry`.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for udwf in all_default_window_functions() {
        registry.register_udwf(udwf)?;
    }
    Ok(())
}
