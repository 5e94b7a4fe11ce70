//! One error type for a job run, whose kind the command line maps to the exit code a scheduler
//! acts on.

use std::fmt;

/// What went wrong, as a scheduler needs to know it: each kind is an exit code of `sessionlake
/// job run` (the command line's table, `sessionlake_cli::exit_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The job file is wrong: unknown key, wrong type, invalid value.
    Config,
    /// The input data is bad: a corrupt Parquet file, a schema that changed, a missing
    /// partition.
    Data,
    /// Worth retrying: another run of the job committed first, or the store did not answer.
    Transient,
    /// Anything else (a bug, a full disk, ...).
    Failed,
}

/// A job error: a kind and a one-line message naming the file, key or column at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub kind: ErrorKind,
    pub message: String,
}

impl JobError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A job file error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// A bad input data error.
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Data, message)
    }

    /// A transient error.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// Any other failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// The same error with `context: ` in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

/// A store error: a missing object is a data problem of the caller's choosing, a failed
/// precondition or an unreachable store is transient, the rest is a failure.
pub(crate) fn from_store(error: object_store::Error, what: impl fmt::Display) -> JobError {
    use object_store::Error as E;
    let kind = match &error {
        E::AlreadyExists { .. } | E::Precondition { .. } => ErrorKind::Transient,
        E::Generic { .. } => ErrorKind::Transient,
        _ => ErrorKind::Failed,
    };
    JobError::new(kind, format!("{what}: {error}"))
}

/// A DataFusion error met while computing: errors from reading Parquet or Arrow data are the
/// input's fault, the rest are failures.
pub(crate) fn from_datafusion(
    error: datafusion::error::DataFusionError,
    what: impl fmt::Display,
) -> JobError {
    use datafusion::error::DataFusionError as E;
    let root = error.find_root();
    let kind = match root {
        E::ParquetError(_) | E::ArrowError(..) | E::SchemaError(..) => ErrorKind::Data,
        E::ObjectStore(_) => ErrorKind::Transient,
        _ => ErrorKind::Failed,
    };
    JobError::new(kind, format!("{what}: {}", error.strip_backtrace()))
}
