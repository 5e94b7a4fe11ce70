//! The day files of an import: one Parquet writer per UTC day, writing into a hidden staging
//! directory inside the lake, and a commit that renames each finished file into place.
//!
//! Until [`DayWriters::commit`], nothing visible changes under the lake: the staging directory
//! (`OUT/.import-XXXXXX/`, its files named `YYYY-MM-DD.parquet.tmp`) is hidden from lake readers
//! and is removed when the writers are dropped without a commit, as on any error. The commit
//! renames `YYYY-MM-DD.parquet.tmp` over `OUT/event_date=YYYY-MM-DD/part-00000.parquet`: each
//! day's file is replaced atomically (a rename within one file system), days not imported are
//! not touched, and other files in a day's directory are left as they are.
//!
//! Memory stays flat whatever the input size: the writers' buffered row groups together stay
//! under [`BUFFERED_BYTES_BUDGET`]; past it, the largest one is flushed to its file. Which
//! writer flushes when depends only on the rows, so the same input gives the same bytes.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, TimeDelta};
use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use tempfile::TempDir;

use crate::error::ImportError;

/// The hive partition column, in directory names.
pub const PARTITION_COLUMN: &str = "event_date";
/// The one file of each imported day.
pub const PART_FILE: &str = "part-00000.parquet";
/// Bytes of buffered (not yet flushed) row groups over all day writers.
pub const BUFFERED_BYTES_BUDGET: usize = 128 << 20;

/// The directory of `day` in a lake: `event_date=YYYY-MM-DD`.
pub fn partition_dir_name(day: NaiveDate) -> String {
    format!("{PARTITION_COLUMN}={}", day.format("%Y-%m-%d"))
}

/// Days since 1970-01-01 as a date.
pub fn date_of_day(day: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(TimeDelta::try_days(day.into())?)
}

/// The open day files of one import.
pub struct DayWriters {
    out: PathBuf,
    /// Whether this import made `out` (then an abandoned import removes it again if empty).
    created_out: bool,
    staging: Option<TempDir>,
    schema: SchemaRef,
    properties: WriterProperties,
    writers: BTreeMap<i32, ArrowWriter<File>>,
}

impl DayWriters {
    /// Prepares to write days of `schema` into the lake at `out`, creating it if needed.
    pub fn create(out: &Path, schema: SchemaRef) -> Result<Self, ImportError> {
        let shown = out.display();
        let created_out = match std::fs::metadata(out) {
            Ok(metadata) if metadata.is_dir() => false,
            Ok(_) => {
                return Err(ImportError::output(format!(
                    "--out {shown} exists and is not a directory"
                )));
            }
            Err(_) => {
                std::fs::create_dir_all(out).map_err(|e| {
                    ImportError::output(format!("cannot create the lake directory {shown}: {e}"))
                })?;
                true
            }
        };
        let staging = tempfile::Builder::new()
            .prefix(".import-")
            .tempdir_in(out)
            .map_err(|e| {
                ImportError::output(format!("cannot create a staging directory in {shown}: {e}"))
            })?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        Ok(Self {
            out: out.to_path_buf(),
            created_out,
            staging: Some(staging),
            schema,
            properties,
            writers: BTreeMap::new(),
        })
    }

    /// Appends each row of `batch` to the file of its day (`days[i]` for row `i`, as days since
    /// 1970-01-01), keeping the rows' order within each day.
    pub fn write(&mut self, batch: &RecordBatch, days: &[i32]) -> Result<(), ImportError> {
        let Some(&first) = days.first() else {
            return Ok(());
        };
        if days.iter().all(|&day| day == first) {
            return self.write_day(first, batch);
        }
        let mut rows_by_day: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
        for (row, &day) in days.iter().enumerate() {
            rows_by_day.entry(day).or_default().push(row as u32);
        }
        for (day, rows) in rows_by_day {
            let day_batch = take_record_batch(batch, &UInt32Array::from(rows))
                .map_err(|e| ImportError::output(format!("cannot split a batch by day: {e}")))?;
            self.write_day(day, &day_batch)?;
        }
        Ok(())
    }

    fn write_day(&mut self, day: i32, batch: &RecordBatch) -> Result<(), ImportError> {
        if !self.writers.contains_key(&day) {
            let path = self.staged_path(day)?;
            let file = File::create(&path).map_err(|e| {
                ImportError::output(format!("cannot create {}: {e}", path.display()))
            })?;
            let writer =
                ArrowWriter::try_new(file, self.schema.clone(), Some(self.properties.clone()))
                    .map_err(|e| write_error(&path, e))?;
            self.writers.insert(day, writer);
        }
        if let Some(writer) = self.writers.get_mut(&day) {
            writer.write(batch).map_err(|e| write_error(&self.out, e))?;
        }
        self.keep_buffers_in_budget()
    }

    /// Flushes the largest buffered row groups until all of them fit the budget.
    fn keep_buffers_in_budget(&mut self) -> Result<(), ImportError> {
        loop {
            let buffered: usize = self
                .writers
                .values()
                .map(ArrowWriter::in_progress_size)
                .sum();
            if buffered <= BUFFERED_BYTES_BUDGET {
                return Ok(());
            }
            // the first of equal sizes (the earliest day), so the choice is deterministic
            let largest = self
                .writers
                .iter_mut()
                .rev()
                .max_by_key(|(_, writer)| writer.in_progress_size());
            let Some((_, writer)) = largest else {
                return Ok(());
            };
            writer.flush().map_err(|e| write_error(&self.out, e))?;
        }
    }

    /// The staging file of `day`.
    fn staged_path(&self, day: i32) -> Result<PathBuf, ImportError> {
        let staging = self
            .staging
            .as_ref()
            .ok_or_else(|| ImportError::output("the staging directory is gone"))?;
        let date = date_of_day(day)
            .ok_or_else(|| ImportError::output(format!("day {day} is out of range")))?;
        Ok(staging
            .path()
            .join(format!("{}.parquet.tmp", date.format("%Y-%m-%d"))))
    }

    /// Finishes every day file and renames each into place; returns the days written, in
    /// order. An error before the first rename leaves the lake as it was.
    pub fn commit(mut self) -> Result<Vec<NaiveDate>, ImportError> {
        let writers = std::mem::take(&mut self.writers);
        let mut finished = Vec::with_capacity(writers.len());
        for (day, writer) in writers {
            let staged = self.staged_path(day)?;
            let file = writer.into_inner().map_err(|e| write_error(&staged, e))?;
            // the bytes are on disk before the rename makes them visible
            file.sync_all().map_err(|e| {
                ImportError::output(format!("cannot sync {}: {e}", staged.display()))
            })?;
            finished.push((day, staged));
        }
        let mut days = Vec::with_capacity(finished.len());
        for (day, staged) in finished {
            let date = date_of_day(day)
                .ok_or_else(|| ImportError::output(format!("day {day} is out of range")))?;
            let dir = self.out.join(partition_dir_name(date));
            std::fs::create_dir_all(&dir).map_err(|e| {
                ImportError::output(format!("cannot create {}: {e}", dir.display()))
            })?;
            let target = dir.join(PART_FILE);
            std::fs::rename(&staged, &target).map_err(|e| {
                ImportError::output(format!(
                    "cannot move {} to {}: {e}",
                    staged.display(),
                    target.display()
                ))
            })?;
            days.push(date);
        }
        // the lake exists now, whatever happens to the staging directory
        self.created_out = false;
        if let Some(staging) = self.staging.take() {
            let path = staging.path().to_path_buf();
            staging.close().map_err(|e| {
                ImportError::output(format!("cannot remove {}: {e}", path.display()))
            })?;
        }
        Ok(days)
    }
}

impl Drop for DayWriters {
    /// An import that did not commit removes its staging directory, and the lake directory if
    /// it made it and it is still empty.
    fn drop(&mut self) {
        self.writers.clear();
        drop(self.staging.take());
        if self.created_out {
            // fails, and so keeps the directory, when anything else is in it
            let _ = std::fs::remove_dir(&self.out);
        }
    }
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> ImportError {
    ImportError::output(format!("cannot write {}: {e}", path.display()))
}
