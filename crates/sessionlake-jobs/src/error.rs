//! One error type for a job run, whose kind maps to the exit code a scheduler acts on.

use std::fmt;

/// Everything went through and no alert tripped.
pub const EXIT_OK: u8 = 0;
/// The run failed for a reason that is none of the others (a bug, a full disk, ...).
pub const EXIT_FAILED: u8 = 1;
/// The command line was wrong.
pub const EXIT_USAGE: u8 = 2;
/// The run committed its outputs and at least one alert tripped on a day it rewrote.
pub const EXIT_ALERT: u8 = 3;
/// The input data is bad: a corrupt Parquet file, a schema that changed, a missing partition.
pub const EXIT_DATA: u8 = 65;
/// Transient: another run of the job committed first, or the store did not answer; retry.
pub const EXIT_TRANSIENT: u8 = 75;
/// The job file is wrong: unknown key, wrong type, invalid value.
pub const EXIT_CONFIG: u8 = 78;

/// What went wrong, as a scheduler needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The job file (exit 78).
    Config,
    /// The input data (exit 65).
    Data,
    /// Worth retrying: a lost commit race or an unreachable store (exit 75).
    Transient,
    /// Anything else (exit 1).
    Failed,
}

impl ErrorKind {
    /// The process exit code of this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Config => EXIT_CONFIG,
            Self::Data => EXIT_DATA,
            Self::Transient => EXIT_TRANSIENT,
            Self::Failed => EXIT_FAILED,
        }
    }
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

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
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
