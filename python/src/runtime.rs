//! The one tokio runtime the module's queries and jobs run on, and [`wait`], which runs a future
//! there with the GIL released and gives up when Python has a signal to raise.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
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

/// Runs `future` as a task on the shared runtime and waits for it with the GIL released. Every
/// [`SIGNAL_POLL`] the waiting thread lets Python check for signals; when one raises
/// (`KeyboardInterrupt` after Ctrl-C or `_thread.interrupt_main()`), the task is aborted, which
/// drops the query's streams and so cancels its tasks, and that exception is returned.
///
/// The waiting is done with a plain channel, not on the runtime: while the query's tasks keep
/// every worker busy, nothing drives the runtime's timers.
pub fn wait<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = runtime()?;
    let (sender, receiver) = sync_channel(1);
    let task = runtime.spawn(async move {
        // the receiver is gone only when the wait was interrupted
        let _ = sender.send(future.await);
    });
    py.detach(move || {
        loop {
            match receiver.recv_timeout(SIGNAL_POLL) {
                Ok(output) => return Ok(output),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(interrupt) = Python::attach(|py| py.check_signals()) {
                        task.abort();
                        return Err(interrupt);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err(
                        "sessionlake: the query's task stopped without an answer (a bug: please \
                         report it)",
                    ));
                }
            }
        }
    })
}
