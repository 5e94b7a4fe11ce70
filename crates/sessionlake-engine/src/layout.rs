//! The names that lay a lake out on storage: the extension of its data files, the files and
//! directories writers leave beside the data (Spark's `_SUCCESS`, checksums, temporary
//! directories), and the log directory that makes a directory a Delta Lake table. Listing a
//! lake ([`crate::lake`]), opening a Delta table and the lake jobs all read them from here.

/// The extension of the data files a lake is made of.
pub const PARQUET_EXTENSION: &str = ".parquet";

/// The directory that makes a directory a Delta Lake table.
pub const DELTA_LOG_DIR: &str = "_delta_log";

/// Whether a file or directory name is not data: it starts with `_` or `.`.
pub fn is_hidden(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}
