//! `sessionlake._native`: the Python package's native module, a thin layer over the command
//! line's context (`sessionlake_cli::new_context`, the same lake registration and defaults) and
//! `sessionlake_jobs::run_job`. The public API, its docstrings and the exception classes are in
//! the Python package (`sessionlake/__init__.py`); this module only runs things.
//!
//! Every call that runs a query or a job releases the GIL and blocks on one shared tokio
//! runtime, checking for signals (Ctrl-C) between polls: a `KeyboardInterrupt` drops the
//! query's future, which cancels its tasks.

mod connection;
mod errors;
mod job;
mod render;
mod runtime;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<connection::Connection>()?;
    m.add_class::<connection::Query>()?;
    m.add_function(wrap_pyfunction!(job::run_job, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
