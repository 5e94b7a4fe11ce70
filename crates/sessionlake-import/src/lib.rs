#![doc = include_str!("../README.md")]
//!
//! # Semantics
//!
//! - Every non-blank line of every `.json.gz` file is one event. Files are read in the order of
//!   their Amplitude names (`<project>_<YYYY-MM-DD>_<H>#<n>.json.gz`: project, day, hour, part),
//!   lines in file order; each day's file holds its rows in that order. A zip and the directory
//!   it was extracted to give the same files.
//! - A row goes to the UTC day of its `event_time`, not to the day in its file's name (the
//!   Export API groups events by upload hour, so late events sit in later files).
//! - The same input gives byte-identical files; a rerun replaces each imported day's
//!   `part-00000.parquet` atomically and leaves every other day alone.
//! - A bad line (malformed JSON, no or an unparseable `event_time`, a value of the wrong type)
//!   fails the import with its file and line, unless [`ImportOptions::skip_bad_lines`] counts it
//!   instead. A corrupt gzip or zip always fails. A failed import changes nothing in the lake.
//! - The columns: [`amplitude::COLUMNS`]; `docs/import.md` has the table.

pub mod amplitude;
pub mod error;
pub mod export_files;
pub mod import;
pub mod writer;

pub use error::{ErrorKind, ImportError};
pub use import::{ImportOptions, ImportSummary, Progress, import_amplitude};
