//! Engine errors as the package's Python exceptions (defined in `sessionlake/_errors.py`), each
//! with the one-line message the command line prints.

use datafusion::error::DataFusionError;
use pyo3::call::PyCallArgs;
use pyo3::prelude::*;
use sessionlake_engine::lake::find_lake_error;
use sessionlake_engine::options::SessionLakeConfig;

use datafusion::config::ConfigExtension;

/// The Python exceptions this module raises, by class name in `sessionlake._errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Anything not named below (a failure while a query runs, memory exhausted, ...).
    Error,
    /// A statement that does not parse or plan: syntax, unknown table or column, bad arguments.
    Sql,
    /// A `sessionlake.*` (or DataFusion) option that does not exist or a value it refuses.
    Option,
    /// A lake that is not there or cannot be read as one.
    Lake,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Error => "Error",
            Class::Sql => "SqlError",
            Class::Option => "OptionError",
            Class::Lake => "LakeError",
        }
    }
}

/// An exception of `class` (a name in `sessionlake._errors`) made with `args`.
pub fn new_error<'py>(py: Python<'py>, class: &str, args: impl PyCallArgs<'py>) -> PyErr {
    let made = py
        .import("sessionlake._errors")
        .and_then(|module| module.getattr(class))
        .and_then(|class| class.call1(args));
    match made {
        Ok(exception) => PyErr::from_value(exception),
        Err(e) => e,
    }
}

/// An exception of `class` with `message`.
pub fn error(py: Python<'_>, class: Class, message: impl Into<String>) -> PyErr {
    new_error(py, class.name(), (message.into(),))
}

/// The exception for a failed statement: lake discovery's own error as [`Class::Lake`], an
/// option's as [`Class::Option`], a statement that does not parse or plan as [`Class::Sql`],
/// anything else as [`Class::Error`].
pub fn from_datafusion(py: Python<'_>, e: &DataFusionError) -> PyErr {
    if let Some(lake) = find_lake_error(e) {
        return error(py, Class::Lake, lake.to_string());
    }
    let message = sessionlake_cli::shell::error_message(e);
    let class = match e.find_root() {
        DataFusionError::Configuration(_) => Class::Option,
        // `SessionLakeConfig::set` starts its errors with the option (`sessionlake.gap: ...`)
        // or the option set (`sessionlake: ...`)
        DataFusionError::Plan(text) if names_an_option(text) => Class::Option,
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => Class::Sql,
        _ => Class::Error,
    };
    error(py, class, message)
}

/// Whether a planning error is `SessionLakeConfig::set`'s, which names the option.
fn names_an_option(text: &str) -> bool {
    let prefix = SessionLakeConfig::PREFIX;
    text.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('.'))
}
