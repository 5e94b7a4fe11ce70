//! What a run reports as it goes, for its caller to show (the command line draws a progress
//! bar): steps planned and steps done, through a callback in the run options.

use std::fmt;
use std::sync::Arc;

/// One report of a run's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// This many more steps lie ahead: a run learns its steps as it goes (the read windows once
    /// it has planned, the files once it has computed).
    Planned(u64),
    /// A step is done; what it did (`computed 2024-03-01..2024-03-02`, a file written,
    /// `committed`).
    Done(String),
}

/// The callback a run reports its [`Progress`] to, on the run's own task: it should return
/// quickly.
#[derive(Clone)]
pub struct OnProgress(Arc<dyn Fn(Progress) + Send + Sync>);

impl OnProgress {
    /// A callback calling `report`.
    pub fn new(report: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(report))
    }
}

impl fmt::Debug for OnProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnProgress(..)")
    }
}

/// The run's side: reports to the callback when there is one.
pub(crate) struct Reporter<'a>(Option<&'a OnProgress>);

impl<'a> Reporter<'a> {
    pub(crate) fn new(callback: Option<&'a OnProgress>) -> Self {
        Self(callback)
    }

    /// `steps` more steps lie ahead.
    pub(crate) fn add(&self, steps: u64) {
        if let Some(callback) = self.0 {
            (callback.0)(Progress::Planned(steps));
        }
    }

    /// A step is done.
    pub(crate) fn step(&self, message: impl Into<String>) {
        if let Some(callback) = self.0 {
            (callback.0)(Progress::Done(message.into()));
        }
    }
}
