//! `import_amplitude`: reads every line of an export in order, maps it to a row, and hands
//! batches of rows to the day writers; commits only when the whole input was read.

use std::fmt;
use std::path::Path;

use chrono::NaiveDate;

use crate::amplitude::{EventBatchBuilder, parse_line, schema};
use crate::error::ImportError;
use crate::export_files::ExportFiles;
use crate::writer::DayWriters;

/// Rows per record batch handed to the writers.
pub const BATCH_ROWS: usize = 8192;
/// Lines between two progress reports within one file.
const PROGRESS_EVERY_LINES: u64 = 1 << 16;

/// How to import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Count bad lines (malformed JSON, a missing or unparseable `event_time`, a value of the
    /// wrong type) and go on, instead of failing on the first.
    pub skip_bad_lines: bool,
}

/// How far an import is, reported after each file and every 65536 lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Export files read completely.
    pub files_done: usize,
    pub files_total: usize,
    /// Compressed bytes of the files read completely.
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Non-blank lines read so far.
    pub lines: u64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Export files read (empty ones included).
    pub files: usize,
    /// Non-blank lines read.
    pub lines: u64,
    pub events_written: u64,
    pub bad_lines_skipped: u64,
    /// The days whose partition was written, in order.
    pub days: Vec<NaiveDate>,
}

impl fmt::Display for ImportSummary {
    /// One line: `imported 12 files, 5000 lines: 4998 events written, 2 bad lines skipped,
    /// 3 days written (2024-01-01 to 2024-01-03)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} files, {} lines: {} events written, {} bad lines skipped, {} days written",
            self.files,
            self.lines,
            self.events_written,
            self.bad_lines_skipped,
            self.days.len()
        )?;
        if let (Some(first), Some(last)) = (self.days.first(), self.days.last()) {
            write!(f, " ({first} to {last})")?;
        }
        Ok(())
    }
}

/// Imports the Amplitude export at `input` (the Export API's zip, or a directory of its
/// `.json.gz` files) into the lake directory `out`: one `event_date=YYYY-MM-DD/part-00000.parquet`
/// per UTC day of `event_time`. `progress` is called as the import goes.
///
/// On error nothing under `out` changes (see [`crate::writer`]).
pub fn import_amplitude(
    input: &Path,
    out: &Path,
    options: ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportSummary, ImportError> {
    let mut export = ExportFiles::list(input)?;
    let mut writers = DayWriters::create(out, schema())?;
    let mut builder = EventBatchBuilder::new();
    let mut state = Progress {
        files_done: 0,
        files_total: export.files().len(),
        bytes_done: 0,
        bytes_total: export.files().iter().map(|f| f.compressed_bytes).sum(),
        lines: 0,
    };
    let mut events_written = 0;
    let mut bad_lines_skipped = 0;
    progress(state);

    let mut line = Vec::new();
    for index in 0..state.files_total {
        let compressed_bytes = export.files()[index].compressed_bytes;
        let mut lines = export.open(index)?;
        while let Some(line_number) = lines.next_line(&mut line)? {
            state.lines += 1;
            match parse_line(&line) {
                Ok(row) => builder.append(&row),
                Err(_) if options.skip_bad_lines => bad_lines_skipped += 1,
                Err(e) => {
                    return Err(ImportError::bad_data(format!(
                        "{}:{line_number}: {e}",
                        lines.name()
                    )));
                }
            }
            if builder.len() >= BATCH_ROWS {
                events_written += flush(&mut builder, &mut writers)?;
            }
            if state.lines.is_multiple_of(PROGRESS_EVERY_LINES) {
                progress(state);
            }
        }
        state.files_done += 1;
        state.bytes_done += compressed_bytes;
        progress(state);
    }
    events_written += flush(&mut builder, &mut writers)?;
    let days = writers.commit()?;
    Ok(ImportSummary {
        files: state.files_total,
        lines: state.lines,
        events_written,
        bad_lines_skipped,
        days,
    })
}

/// Writes the builder's rows; returns how many.
fn flush(builder: &mut EventBatchBuilder, writers: &mut DayWriters) -> Result<u64, ImportError> {
    if builder.is_empty() {
        return Ok(0);
    }
    let (batch, days) = builder
        .finish()
        .map_err(|e| ImportError::output(format!("cannot build a batch of events: {e}")))?;
    writers.write(&batch, &days)?;
    Ok(batch.num_rows() as u64)
}
