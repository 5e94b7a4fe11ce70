//! The one tokio runtime the module's queries and jobs run on, and [`wait`], which blocks on a
//! future with the GIL released and gives up when Python has a signal to raise.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How often a waiting call looks for a pending signal (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The shared multi-threaded runtime, started on first use.
pub fn runtime() -> PyResult<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("sessionlake")
                .build()
                .map_err(|e| format!("cannot start the query runtime: {e}"))
        })
        .as_ref()
        .map_err(|message| PyRuntimeError::new_err(message.clone()))
}

/// Runs `future` to completion on the shared runtime with the GIL released. Every
/// [`SIGNAL_POLL`] it lets Python check for signals; when one raises (`KeyboardInterrupt` after
/// Ctrl-C or `_thread.interrupt_main()`), the future is dropped, which cancels the query's
/// tasks, and that exception is returned.
pub fn wait<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    py.detach(|| {
        runtime.block_on(async {
            tokio::select! {
                output = future => Ok(output),
                interrupt = interrupted() => Err(interrupt),
            }
        })
    })
}

/// Resolves with the exception a pending signal raises; never resolves without one.
async fn interrupted() -> PyErr {
    loop {
        tokio::time::sleep(SIGNAL_POLL).await;
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            return e;
        }
    }
}
