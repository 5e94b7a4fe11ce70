//! The lake of [`crate::lake`] as an app that measures its own sessions logs it, for the
//! options `reported_duration` and `gap_column`: each mobile session's closing
//! `app_background` event becomes an active `session_end` event carrying the length the app
//! measured (`duration_ms`), and every event gets a timeout of its own (`timeout_ms`), some
//! shorter and some longer than the 30-minute gap.
//!
//! [`write_app_lake`] writes the default generator's lake and then rewrites each file with the
//! two columns added, row for row; [`crate::lake::write_lake`] and its bytes are unchanged.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, TimestampMillisecondType,
};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;

use crate::lake::{
    EVENT_TYPES, HOUR_MS, LakeError, LakeSpec, LakeSummary, MINUTE_MS, lake_schema, splitmix64,
    write_lake,
};

/// The event type of the closing event that reports a session's length.
pub const SESSION_END: &str = "session_end";
/// The column of the length a `session_end` event reports, in milliseconds.
pub const DURATION_COLUMN: &str = "duration_ms";
/// The column of each event's own timeout, in milliseconds (NULL: the gap).
pub const TIMEOUT_COLUMN: &str = "timeout_ms";
/// The timeouts an event can get, equally likely: the gap (NULL) half of the time, else 5 or
/// 10 minutes, 45 minutes or 2 hours.
pub const TIMEOUTS_MS: [Option<i64>; 8] = [
    None,
    None,
    None,
    None,
    Some(5 * MINUTE_MS),
    Some(10 * MINUTE_MS),
    Some(45 * MINUTE_MS),
    Some(2 * HOUR_MS),
];
/// The largest value of [`TIMEOUT_COLUMN`].
pub const LARGEST_TIMEOUT_MS: i64 = 2 * HOUR_MS;
/// One `session_end` in this many reports no length (NULL).
const NULL_DURATION_ONE_IN: u64 = 10;
/// An app counts up to this much longer than its last event (it closes a little later).
const CLOSING_MS: u64 = 30_000;

const APP_BACKGROUND: &str = "app_background";
const USER: usize = 0;
const EVENT_TIME: usize = 2;
const EVENT_TYPE: usize = 3;
const SESSION_ID: usize = 4;
const IS_ACTIVE: usize = 10;

/// The schema of the app lake's files: [`lake_schema`] and then `duration_ms` and
/// `timeout_ms`, both nullable BIGINT.
pub fn app_lake_schema() -> SchemaRef {
    let mut fields: Vec<Field> = lake_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(DURATION_COLUMN, DataType::Int64, true));
    fields.push(Field::new(TIMEOUT_COLUMN, DataType::Int64, true));
    Arc::new(Schema::new(fields))
}

/// Writes the lake of `spec` into `dir` (as [`write_lake`] does) with the app's columns and
/// `session_end` events. The summary is [`write_lake`]'s, with `inactive_rows` and `bytes`
/// updated (the `app_background` rows became active `session_end` rows).
pub fn write_app_lake(spec: &LakeSpec, dir: &Path) -> Result<LakeSummary, LakeError> {
    let mut summary = write_lake(spec, dir)?;
    let salt = splitmix64(spec.seed ^ 0x0A99_5E55);
    let props = writer_properties(spec, dir)?;
    summary.bytes = 0;
    for path in parquet_files(dir)? {
        let (bytes, converted) = rewrite(&path, salt, &props)?;
        summary.bytes += bytes;
        summary.inactive_rows -= converted;
    }
    Ok(summary)
}

fn writer_properties(spec: &LakeSpec, dir: &Path) -> Result<WriterProperties, LakeError> {
    let level = ZstdLevel::try_new(3).map_err(|source| LakeError::Parquet {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(spec.row_group_rows))
        .build())
}

/// The Parquet files under the partition directories of `dir`, sorted.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, LakeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LakeError::Io { path, source }
    };
    let mut files = Vec::new();
    for day in fs::read_dir(dir).map_err(io(dir))? {
        let day = day.map_err(io(dir))?.path();
        for file in fs::read_dir(&day).map_err(io(&day))? {
            let file = file.map_err(io(&day))?.path();
            if file.extension().is_some_and(|e| e == "parquet") {
                files.push(file);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Rewrites the file at `path` with the app's columns; returns its new size and the number of
/// rows that became `session_end` events.
fn rewrite(path: &Path, salt: u64, props: &WriterProperties) -> Result<(u64, u64), LakeError> {
    let parquet_error = |source: ParquetError| LakeError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let io = |source| LakeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).map_err(io)?)
        .and_then(|builder| builder.build())
        .map_err(parquet_error)?;
    let mut batches = Vec::new();
    let mut converted = 0;
    for batch in reader {
        let (batch, n) = with_app_columns(&batch.map_err(LakeError::Arrow)?, salt)?;
        batches.push(batch);
        converted += n;
    }
    let staged = path.with_extension("parquet.app");
    let file = File::create(&staged).map_err(io)?;
    let mut writer = ArrowWriter::try_new(file, app_lake_schema(), Some(props.clone()))
        .map_err(parquet_error)?;
    for batch in &batches {
        writer.write(batch).map_err(parquet_error)?;
    }
    let file = writer.into_inner().map_err(parquet_error)?;
    let bytes = file.metadata().map_err(io)?.len();
    fs::rename(&staged, path).map_err(io)?;
    Ok((bytes, converted))
}

/// A number that depends on the row's user and time only, so that events tied on one instant
/// get the same timeout (whichever the tie order puts last, the timeout after that instant is
/// the same).
fn row_hash(salt: u64, user: Option<&str>, time_ms: i64) -> u64 {
    let user_hash = user.map_or(0, |u| {
        u.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    });
    splitmix64(salt ^ splitmix64(user_hash ^ time_ms as u64))
}

/// `batch` (of the base lake) with `app_background` events turned into active `session_end`
/// events and the two app columns added; also returns how many rows were turned.
fn with_app_columns(batch: &RecordBatch, salt: u64) -> Result<(RecordBatch, u64), LakeError> {
    let schema_error = || LakeError::Internal("the base lake's columns changed".into());
    let users = batch
        .column(USER)
        .as_string_opt::<i32>()
        .ok_or_else(schema_error)?;
    let times = batch
        .column(EVENT_TIME)
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(schema_error)?;
    let types = batch
        .column(EVENT_TYPE)
        .as_dictionary_opt::<Int32Type>()
        .ok_or_else(schema_error)?;
    // a dictionary read back from Parquet holds the values of its file, in the file's order:
    // each key is mapped by name to the app lake's dictionary, EVENT_TYPES then session_end
    let mut values: Vec<&str> = EVENT_TYPES.to_vec();
    values.push(SESSION_END);
    let names = types
        .values()
        .as_string_opt::<i32>()
        .ok_or_else(schema_error)?;
    let app_keys: Vec<i32> = names
        .iter()
        .map(|name| {
            let name = match name {
                Some(APP_BACKGROUND) => SESSION_END,
                other => other.unwrap_or_default(),
            };
            values.iter().position(|v| *v == name).map(|i| i as i32)
        })
        .collect::<Option<_>>()
        .ok_or_else(schema_error)?;
    let session_end = (values.len() - 1) as i32;
    let session_ids = batch
        .column(SESSION_ID)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(schema_error)?;
    let active = batch
        .column(IS_ACTIVE)
        .as_boolean_opt()
        .ok_or_else(schema_error)?;

    let rows = batch.num_rows();
    let mut keys = Vec::with_capacity(rows);
    let mut is_active = Vec::with_capacity(rows);
    let mut durations = Vec::with_capacity(rows);
    let mut timeouts = Vec::with_capacity(rows);
    let mut converted = 0;
    for row in 0..rows {
        let user = users.is_valid(row).then(|| users.value(row));
        let time = times.value(row);
        let hash = row_hash(salt, user, time);
        timeouts.push(TIMEOUTS_MS[(hash % TIMEOUTS_MS.len() as u64) as usize]);
        let key = app_keys[types.keys().value(row) as usize];
        keys.push(key);
        if key == session_end {
            converted += 1;
            is_active.push(true);
            let reports = !(hash >> 8).is_multiple_of(NULL_DURATION_ONE_IN);
            let measured = (time - session_ids.value(row)).max(0);
            let closing = ((hash >> 16) % CLOSING_MS) as i64;
            durations.push(reports.then_some(measured + closing));
        } else {
            is_active.push(active.value(row));
            durations.push(None);
        }
    }
    let event_type =
        DictionaryArray::<Int32Type>::try_new(keys.into(), Arc::new(StringArray::from(values)))
            .map_err(LakeError::Arrow)?;
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns[EVENT_TYPE] = Arc::new(event_type);
    columns[IS_ACTIVE] = Arc::new(BooleanArray::from(is_active));
    columns.push(Arc::new(Int64Array::from(durations)));
    columns.push(Arc::new(Int64Array::from(timeouts)));
    let batch = RecordBatch::try_new(app_lake_schema(), columns).map_err(LakeError::Arrow)?;
    Ok((batch, converted))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::NaiveDate;

    use super::*;

    fn spec() -> LakeSpec {
        LakeSpec {
            seed: 11,
            events: 6_000,
            days: 2,
            users: 200,
            start_date: NaiveDate::from_ymd_opt(2024, 3, 1).expect("valid date"),
            ..LakeSpec::default()
        }
    }

    fn read(dir: &Path) -> Vec<RecordBatch> {
        let mut batches = Vec::new();
        for path in parquet_files(dir).expect("files") {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open"))
                .expect("parquet")
                .build()
                .expect("reader");
            batches.extend(reader.map(|b| b.expect("batch")));
        }
        batches
    }

    #[test]
    fn the_app_lake_is_the_base_lake_plus_session_ends_and_timeouts() {
        let base_dir = tempfile::tempdir().expect("temp dir");
        let app_dir = tempfile::tempdir().expect("temp dir");
        let base = write_lake(&spec(), base_dir.path()).expect("base lake");
        let app = write_app_lake(&spec(), app_dir.path()).expect("app lake");
        assert_eq!(app.rows, base.rows);

        let (base_batches, app_batches) = (read(base_dir.path()), read(app_dir.path()));
        assert_eq!(base_batches.len(), app_batches.len());
        let mut turned = 0;
        let mut reported = 0;
        let mut timeouts = BTreeSet::new();
        for (base, app) in base_batches.iter().zip(&app_batches) {
            assert_eq!(app.schema(), app_lake_schema());
            // every base column but the event type and the active flag is unchanged, row for row
            for i in (0..base.num_columns()).filter(|i| ![EVENT_TYPE, IS_ACTIVE].contains(i)) {
                assert_eq!(base.column(i), app.column(i), "column {i}");
            }
            let base_types = base.column(EVENT_TYPE).as_dictionary::<Int32Type>();
            let base_values = base_types.values().as_string::<i32>();
            let app_types = app.column(EVENT_TYPE).as_dictionary::<Int32Type>();
            let app_values = app_types.values().as_string::<i32>();
            let durations = app.column(11).as_primitive::<Int64Type>();
            let times = app
                .column(EVENT_TIME)
                .as_primitive::<TimestampMillisecondType>();
            let ids = app.column(SESSION_ID).as_primitive::<Int64Type>();
            for row in 0..app.num_rows() {
                let was = base_values.value(base_types.keys().value(row) as usize);
                let now = app_values.value(app_types.keys().value(row) as usize);
                if was == APP_BACKGROUND {
                    turned += 1;
                    assert_eq!(now, SESSION_END);
                    assert!(app.column(IS_ACTIVE).as_boolean().value(row));
                    if durations.is_valid(row) {
                        reported += 1;
                        let since_start = times.value(row) - ids.value(row);
                        let extra = durations.value(row) - since_start.max(0);
                        assert!((0..CLOSING_MS as i64).contains(&extra), "{extra}");
                    }
                } else {
                    assert_eq!(now, was);
                    assert!(durations.is_null(row));
                }
            }
            let column = app.column(12).as_primitive::<Int64Type>();
            timeouts.extend(column.iter());
        }
        assert_eq!(base.inactive_rows - app.inactive_rows, turned);
        assert!(turned > 50, "{turned} session_end events");
        assert!(
            reported > turned / 2 && reported < turned,
            "{reported} of {turned} report"
        );
        let expected: BTreeSet<Option<i64>> = TIMEOUTS_MS.into_iter().collect();
        assert_eq!(timeouts, expected);
        assert_eq!(
            TIMEOUTS_MS.iter().flatten().max(),
            Some(&LARGEST_TIMEOUT_MS)
        );
    }

    #[test]
    fn the_same_spec_writes_the_same_bytes() {
        let (a, b) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        write_app_lake(&spec(), a.path()).expect("lake a");
        write_app_lake(&spec(), b.path()).expect("lake b");
        let files_a = parquet_files(a.path()).expect("files");
        let files_b = parquet_files(b.path()).expect("files");
        assert_eq!(files_a.len(), files_b.len());
        for (x, y) in files_a.iter().zip(&files_b) {
            assert_eq!(fs::read(x).expect("read"), fs::read(y).expect("read"));
        }
    }
}
