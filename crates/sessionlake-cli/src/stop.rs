//! Stopping on a signal: a scheduler's timeout (cron, Airflow and systemd send SIGTERM), a
//! closed terminal (SIGHUP) or Ctrl-C (SIGINT), in a script run (`-c`, `-f`, piped input) or a
//! lake job. (The REPL cancels a query on Ctrl-C and carries on; it waits for input in a
//! blocking read, so other signals keep their default action there and end it at once.)
//!
//! The work in progress is dropped rather than the process exited on the spot, so what a query
//! holds is released in order: its streams stop, DataFusion's spill files and their temporary
//! directory are removed when the runtime lets go of them, and an output file being written
//! (`-o`, a job's outputs) is never left behind half written. The exit code is 128 plus the
//! signal's number, as a shell reports a process ended by it.

use std::future::Future;

/// A signal that stops the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Interrupt,
    Terminate,
    HangUp,
}

impl Stop {
    /// The signal's name, as `kill -l` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
            Stop::HangUp => "SIGHUP",
        }
    }

    /// The exit code of a run the signal stopped: 128 plus its number.
    pub fn exit_code(self) -> u8 {
        128 + match self {
            Stop::HangUp => 1,
            Stop::Interrupt => 2,
            Stop::Terminate => 15,
        }
    }
}

/// Runs `work` to its exit code, or until a signal stops it: then `work` is dropped (see the
/// module documentation), a line naming the signal goes to stderr and the exit code is the
/// signal's.
pub async fn until_stopped(work: impl Future<Output = u8>) -> u8 {
    tokio::select! {
        code = work => code,
        stop = stop_signal() => {
            eprintln!("sessionlake: stopped by {}", stop.name());
            stop.exit_code()
        }
    }
}

/// The first stopping signal to arrive. A signal whose handler cannot be installed is not
/// waited for.
#[cfg(unix)]
async fn stop_signal() -> Stop {
    use tokio::signal::unix::{SignalKind, signal};

    let listening = [
        (SignalKind::terminate(), Stop::Terminate),
        (SignalKind::hangup(), Stop::HangUp),
        (SignalKind::interrupt(), Stop::Interrupt),
    ];
    let waits = listening
        .into_iter()
        .filter_map(|(kind, stop)| {
            let mut stream = signal(kind).ok()?;
            Some(Box::pin(async move {
                stream.recv().await;
                stop
            }))
        })
        .collect::<Vec<_>>();
    if waits.is_empty() {
        return std::future::pending().await;
    }
    futures::future::select_all(waits).await.0
}

#[cfg(not(unix))]
async fn stop_signal() -> Stop {
    match tokio::signal::ctrl_c().await {
        Ok(()) => Stop::Interrupt,
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal_number() {
        assert_eq!(Stop::HangUp.exit_code(), 129);
        assert_eq!(Stop::Interrupt.exit_code(), 130);
        assert_eq!(Stop::Terminate.exit_code(), 143);
    }

    #[tokio::test]
    async fn work_that_ends_gives_its_own_code() {
        assert_eq!(until_stopped(async { 7 }).await, 7);
    }
}
