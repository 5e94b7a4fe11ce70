//! The one error type of an import: a kind the command line maps to an exit code, and a message
//! that names the file (and line) at fault.

use std::fmt;

/// What went wrong, coarsely: enough for a caller to pick an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input path is missing, or is neither a zip file nor a directory of `.json.gz` files.
    Input,
    /// The input's content is wrong: a malformed line, a bad `event_time`, a corrupt gzip or zip.
    BadData,
    /// The output lake could not be written (permissions, disk full, ...).
    Output,
}

/// An import failure. Its message names what is wrong and where: the input path, the file
/// inside a zip as `export.zip!/path/in/zip.json.gz`, and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    kind: ErrorKind,
    message: String,
}

impl ImportError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Input, message)
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadData, message)
    }

    pub fn output(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Output, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ImportError {}
