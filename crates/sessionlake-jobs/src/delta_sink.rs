//! The Delta sink (`sink.format = "delta"`): the job's `sessions`, `daily_metrics` and `alerts`
//! tables as Delta tables, which DuckDB (`delta_scan`), Polars (`read_delta`), Spark and Trino
//! read through their own Delta support, without sessionlake's manifest.
//!
//! The protocol, in the order of a run (`docs/jobs.md` tells it for users):
//! 1. The run writes its files inside each table's directory, in a run-unique directory
//!    (`sessions/v0000000003-ab12cd34/part-2024-03-01.parquet`). A file that no Delta version
//!    lists is invisible to Delta readers. The Add actions of these files (size, statistics) are
//!    written beside the run summary, as `runs/<run>/_delta_adds.json`.
//! 2. The run commits the job's manifest exactly as the Parquet sink does. That conditional put
//!    decides which of two concurrent runs wins (the other exits 75) and records the job's
//!    state: watermark, processed partitions, settings fingerprint, and each table's files.
//! 3. The run then publishes the manifest to each table: one Delta commit that removes the
//!    files the manifest no longer lists, adds those it newly lists, replaces the schema if it
//!    changed, and carries a `txn` action (app id `sessionlake-job:<job>`, version = the
//!    manifest's version). A Delta commit is a conditional put of the next log entry, so each
//!    table moves from one whole state to the next.
//! 4. A run killed between 2 and 3 leaves some Delta tables at the previous manifest's state
//!    (each table whole, never a partial write). The next run publishes the committed manifest
//!    first; a table whose `txn` version has already reached it is left alone.
//!
//! Delta has no multi-table transaction: between 2 and 4, one table may show the new state and
//! another the old one. The manifest is the one place where all tables change at once.
//!
//! Layout and types: the tables are not partitioned by directory. Each day is one file that
//! holds its `session_date`, and its statistics (row count, per-column null counts, min and
//! max) let readers skip other days' files. Columns have the types Delta has: timestamps in
//! microseconds (UTC), unsigned integers as wider signed ones, dictionary, view and large
//! strings as strings.
//!
//! Files that a Delta version lists are never deleted by sessionlake, so every version stays
//! readable (time travel); `VACUUM` in Spark or delta-rs reclaims them. The directories of
//! runs that lost or died at the committed version are deleted after the commit.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, RecordBatch};
use datafusion::arrow::compute::{cast, max, max_string, min, min_string};
use datafusion::arrow::datatypes::{
    ArrowNumericType, DataType, Date32Type, Field, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
};
use deltalake::DeltaTable;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, TableReference};
use deltalake::kernel::{Action, Add, MetadataExt, Remove, StructType, Transaction};
use deltalake::logstore::LogStoreRef;
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde_json::{Map, Value, json};
use url::Url;

use crate::error::{JobError, from_store};
use crate::lake;
use crate::location::Place;
use crate::manifest::{self, ALERTS_TABLE, METRICS_TABLE, Manifest, RUNS_DIR, SESSIONS_TABLE};

/// The tables a Delta sink holds as Delta tables, in the order they are published. Cohort
/// exports stay files (CSV or Parquet) under `runs/`.
pub const TABLES: [&str; 3] = [SESSIONS_TABLE, METRICS_TABLE, ALERTS_TABLE];

/// The file in a run's directory holding the Add actions of the table files it wrote.
pub const ADDS_FILE: &str = "_delta_adds.json";

/// Strings longer than this get no min/max statistics (as Spark and delta-rs truncate theirs;
/// leaving them out is always safe for readers that skip files by statistics).
const MAX_STRING_STAT: usize = 32;

/// How often publishing a table reloads it and tries again after a failed commit (another
/// process publishing the same table at the same moment).
const COMMIT_ATTEMPTS: usize = 5;

/// Per table, the Add actions of the files a run wrote.
pub type Adds = BTreeMap<String, Vec<Add>>;

/// The application id of a job's `txn` actions.
pub fn app_id(job: &str) -> String {
    format!("sessionlake-job:{job}")
}

/// One table file of a run, ready to write: its key relative to the sink, its bytes and its
/// Add action (path relative to the table).
#[derive(Debug)]
pub struct StagedFile {
    pub relative: String,
    pub bytes: Vec<u8>,
    pub add: Add,
}

/// Encodes `batch` as the file `file_name` of `table` in run `run_id`'s directory, with the
/// types Delta has and the statistics Delta readers skip files by.
pub fn stage(
    table: &str,
    run_id: &str,
    file_name: &str,
    batch: &RecordBatch,
) -> Result<StagedFile, JobError> {
    let batch = delta_batch(batch)?;
    let bytes = crate::encode::parquet_bytes(&batch.schema(), std::slice::from_ref(&batch))?;
    let size = i64::try_from(bytes.len())
        .map_err(|_| JobError::failed(format!("{table}/{run_id}/{file_name}: file too large")))?;
    let add = add_action(
        format!("{run_id}/{file_name}"),
        size,
        chrono::Utc::now().timestamp_millis(),
        Some(statistics(&batch)),
    );
    Ok(StagedFile {
        relative: format!("{table}/{run_id}/{file_name}"),
        bytes,
        add,
    })
}

/// The key of run `run_id`'s Add actions, relative to the sink.
pub fn adds_key(run_id: &str) -> String {
    format!("{RUNS_DIR}/{run_id}/{ADDS_FILE}")
}

/// `adds` as the bytes of [`ADDS_FILE`].
pub fn adds_bytes(adds: &Adds) -> Result<Vec<u8>, JobError> {
    serde_json::to_vec(adds).map_err(|e| JobError::failed(format!("{ADDS_FILE}: {e}")))
}

/// `batch` with every column cast to a type Delta has (see [`delta_type`]).
pub fn delta_batch(batch: &RecordBatch) -> Result<RecordBatch, JobError> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let wanted = delta_type(field.data_type());
        let column = if &wanted == field.data_type() {
            Arc::clone(column)
        } else {
            cast(column, &wanted).map_err(|e| {
                JobError::failed(format!(
                    "column '{}': {} has no Delta type: {e}",
                    field.name(),
                    field.data_type()
                ))
            })?
        };
        fields.push(Field::new(field.name(), wanted, field.is_nullable()));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| JobError::failed(format!("Delta batch: {e}")))
}

/// The closest type Delta has: timestamps in microseconds (UTC when they have a time zone, the
/// instant unchanged), unsigned integers as the signed type that holds them, dictionaries as
/// their values, view and large strings and binaries as plain ones, inside lists and structs
/// too.
pub fn delta_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Timestamp(_, zone) => {
            DataType::Timestamp(TimeUnit::Microsecond, zone.as_ref().map(|_| "UTC".into()))
        }
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Dictionary(_, values) => delta_type(values),
        DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => {
            DataType::List(Arc::new(Field::new(
                item.name(),
                delta_type(item.data_type()),
                item.is_nullable(),
            )))
        }
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Field::new(f.name(), delta_type(f.data_type()), f.is_nullable()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Delta's per-file statistics of `batch` as JSON: `numRecords`, and for each top-level column
/// of a primitive type its `nullCount` and, where they are exact and representable, its
/// `minValues` and `maxValues`.
fn statistics(batch: &RecordBatch) -> String {
    let mut nulls = Map::new();
    let mut mins = Map::new();
    let mut maxes = Map::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.data_type().is_nested() {
            continue;
        }
        nulls.insert(field.name().clone(), json!(column.null_count()));
        if let Some((low, high)) = bounds(column) {
            mins.insert(field.name().clone(), low);
            maxes.insert(field.name().clone(), high);
        }
    }
    json!({
        "numRecords": batch.num_rows(),
        "minValues": mins,
        "maxValues": maxes,
        "nullCount": nulls,
    })
    .to_string()
}

/// The smallest and largest non-NULL value of `column` as Delta writes them in statistics, or
/// `None` (no value, a type without ordering statistics, or a bound that cannot be exact).
fn bounds(column: &ArrayRef) -> Option<(Value, Value)> {
    fn numeric<T: ArrowNumericType>(array: &PrimitiveArray<T>) -> Option<(T::Native, T::Native)> {
        Some((min(array)?, max(array)?))
    }
    match column.data_type() {
        DataType::Int8 => {
            numeric(column.as_primitive::<Int8Type>()).map(|(a, b)| (json!(a), json!(b)))
        }
        DataType::Int16 => {
            numeric(column.as_primitive::<Int16Type>()).map(|(a, b)| (json!(a), json!(b)))
        }
        DataType::Int32 => {
            numeric(column.as_primitive::<Int32Type>()).map(|(a, b)| (json!(a), json!(b)))
        }
        DataType::Int64 => {
            numeric(column.as_primitive::<Int64Type>()).map(|(a, b)| (json!(a), json!(b)))
        }
        DataType::Float32 => numeric(column.as_primitive::<Float32Type>())
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|(a, b)| (json!(a), json!(b))),
        DataType::Float64 => numeric(column.as_primitive::<Float64Type>())
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|(a, b)| (json!(a), json!(b))),
        DataType::Date32 => {
            let (low, high) = numeric(column.as_primitive::<Date32Type>())?;
            Some((json!(date_text(low)?), json!(date_text(high)?)))
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let (low, high) = numeric(column.as_primitive::<TimestampMicrosecondType>())?;
            // statistics have millisecond precision: round the bounds outwards
            let low = low.div_euclid(1_000);
            let high = high.div_euclid(1_000) + i64::from(high.rem_euclid(1_000) != 0);
            let utc = zone.is_some();
            Some((
                json!(millis_text(low, utc)?),
                json!(millis_text(high, utc)?),
            ))
        }
        DataType::Utf8 => {
            let strings = column.as_string::<i32>();
            let (low, high) = (min_string(strings)?, max_string(strings)?);
            (low.chars().count() <= MAX_STRING_STAT && high.chars().count() <= MAX_STRING_STAT)
                .then(|| (json!(low), json!(high)))
        }
        _ => None,
    }
}

fn date_text(days: i32) -> Option<String> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let date = epoch.checked_add_signed(chrono::Duration::days(i64::from(days)))?;
    Some(date.format("%Y-%m-%d").to_string())
}

fn millis_text(millis: i64, utc: bool) -> Option<String> {
    let time = DateTime::from_timestamp_millis(millis)?;
    Some(if utc {
        time.to_rfc3339_opts(SecondsFormat::Millis, true)
    } else {
        time.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
    })
}

/// Publishes `manifest` to every Delta table of the sink (step 3 of the protocol): after a
/// run's own commit with the Add actions it wrote (`fresh`), or at the start of a run for the
/// committed manifest, with the Add actions read back from its run's directory. After a run's
/// own commit, each table's commit is the `delta_commit` step of [`crate::checkpoint`].
pub async fn publish(
    sink: &Place,
    manifest: &Manifest,
    fresh: Option<&Adds>,
) -> Result<(), JobError> {
    let read;
    let adds = match fresh {
        Some(adds) => adds,
        None => {
            read = read_adds(sink, &manifest.run_id).await?;
            &read
        }
    };
    for table in TABLES {
        let Some(files) = manifest.tables.get(table) else {
            continue;
        };
        let table_adds = adds.get(table).map(Vec::as_slice).unwrap_or_default();
        publish_table(sink, manifest, table, files, table_adds).await?;
        if fresh.is_some() {
            crate::checkpoint::checkpoint("delta_commit").await;
        }
    }
    Ok(())
}

/// The Add actions run `run_id` recorded, or none (a run of a version that wrote no Delta
/// files, or whose directory is gone).
async fn read_adds(sink: &Place, run_id: &str) -> Result<Adds, JobError> {
    let relative = adds_key(run_id);
    let result = sink.store.get(&sink.key(&relative)).await;
    let bytes = match result {
        Ok(found) => found
            .bytes()
            .await
            .map_err(|e| from_store(e, format!("reading {}/{relative}", sink.shown)))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(Adds::new()),
        Err(e) => return Err(from_store(e, format!("reading {}/{relative}", sink.shown))),
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| JobError::failed(format!("{}/{relative}: {e}", sink.shown)))
}

/// Makes the Delta table `table` list exactly the manifest's `files` of it, in one commit
/// marked with the manifest's version; does nothing if the table already has that version.
async fn publish_table(
    sink: &Place,
    manifest: &Manifest,
    table: &str,
    files: &BTreeMap<String, String>,
    adds: &[Add],
) -> Result<(), JobError> {
    let shown = format!("{}/{table}", sink.shown);
    let fail = |e: &dyn Display| {
        JobError::failed(format!(
            "Delta table {shown}: {}",
            sessionlake_engine::one_line(&e.to_string())
        ))
    };
    // the files, by their path inside the table
    let prefix = format!("{table}/");
    let mut wanted = BTreeMap::new();
    for relative in files.values() {
        let Some(path) = relative.strip_prefix(&prefix) else {
            return Err(JobError::failed(format!(
                "Delta table {shown}: the manifest's file {relative} is outside the table"
            )));
        };
        wanted.insert(path.to_string(), relative.clone());
    }
    let table_url =
        Url::parse(&format!("{}/", sink.url(&sink.key(table)))).map_err(|e| fail(&e))?;
    let log_store = sessionlake_engine::delta::log_store_on(Arc::clone(&sink.store), &table_url)
        .map_err(|e| fail(&e))?;
    let app = app_id(&manifest.job);
    let version = i64::try_from(manifest.version).map_err(|e| fail(&e))?;

    let mut last_error = String::new();
    for attempt in 1..=COMMIT_ATTEMPTS {
        let outcome = commit_table(sink, &log_store, &app, version, &wanted, adds).await;
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(table = %shown, attempt, error = %e, "Delta commit failed; reloading");
                last_error = e.to_string();
            }
        }
    }
    Err(fail(&last_error))
}

/// One attempt of [`publish_table`] on the table's state as loaded now.
async fn commit_table(
    sink: &Place,
    log_store: &LogStoreRef,
    app: &str,
    version: i64,
    wanted: &BTreeMap<String, String>,
    adds: &[Add],
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let transaction = Action::Txn(Transaction::new(app, version));
    // the schema of the manifest's files, read only when a commit is made
    let schema = async || match wanted.values().next() {
        Some(relative) => table_schema(sink, relative).await.map(Some),
        None => Ok(None),
    };
    if !log_store.is_delta_table_location().await? {
        let schema = schema().await?;
        // nothing to create a table from: no file and so no schema
        let Some(schema) = schema.as_ref() else {
            return Ok(());
        };
        let mut actions = Vec::with_capacity(wanted.len() + 1);
        for (path, relative) in wanted {
            actions.push(Action::Add(add_for(sink, path, relative, adds).await?));
        }
        actions.push(transaction);
        CreateBuilder::new()
            .with_log_store(Arc::clone(log_store))
            .with_columns(schema.fields().cloned())
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_actions(actions)
            .await?;
        return Ok(());
    }

    let mut delta = DeltaTable::new(Arc::clone(log_store));
    delta.load().await?;
    let state = delta.snapshot()?;
    if state
        .transaction_version(log_store.as_ref(), app)
        .await?
        .is_some_and(|published| published >= version)
    {
        return Ok(());
    }
    let live: BTreeMap<String, Remove> = state
        .snapshot()
        .file_views(log_store.as_ref(), None)
        .map_ok(|file| (file.path().to_string(), file.remove_action(true)))
        .try_collect()
        .await?;
    let mut actions = Vec::new();
    if let Some(schema) = schema().await?
        && state.schema().as_ref() != &schema
    {
        actions.push(Action::Metadata(
            state.metadata().clone().with_schema(&schema)?,
        ));
    }
    actions.extend(
        live.iter()
            .filter(|(path, _)| !wanted.contains_key(*path))
            .map(|(_, remove)| Action::Remove(remove.clone())),
    );
    for (path, relative) in wanted {
        if !live.contains_key(path) {
            actions.push(Action::Add(add_for(sink, path, relative, adds).await?));
        }
    }
    actions.push(transaction);
    CommitBuilder::default()
        .with_actions(actions)
        .with_max_retries(0)
        .build(
            Some(state as &dyn TableReference),
            Arc::clone(log_store),
            DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: None,
                predicate: None,
            },
        )
        .await?;
    Ok(())
}

/// The Add action of the file at `path` in the table: the one its run recorded, or one made
/// from the object's size and time (no statistics) for a file whose record is gone.
async fn add_for(sink: &Place, path: &str, relative: &str, adds: &[Add]) -> Result<Add, JobError> {
    if let Some(add) = adds.iter().find(|add| add.path == path) {
        return Ok(add.clone());
    }
    let meta = sink
        .store
        .head(&sink.key(relative))
        .await
        .map_err(|e| from_store(e, format!("reading {}/{relative}", sink.shown)))?;
    Ok(add_action(
        path.to_string(),
        i64::try_from(meta.size).unwrap_or(i64::MAX),
        meta.last_modified.timestamp_millis(),
        None,
    ))
}

/// The Add action of a data file of an unpartitioned table, without deletion vector or tags.
fn add_action(path: String, size: i64, modification_time: i64, stats: Option<String>) -> Add {
    Add {
        path,
        partition_values: HashMap::new(),
        size,
        modification_time,
        data_change: true,
        stats,
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    }
}

/// The Delta schema of the table file at `relative` (all files of a table share one).
async fn table_schema(sink: &Place, relative: &str) -> Result<StructType, JobError> {
    let meta = sink
        .store
        .head(&sink.key(relative))
        .await
        .map_err(|e| from_store(e, format!("reading {}/{relative}", sink.shown)))?;
    let schema = lake::file_schema(sink, &meta).await?;
    schema.as_ref().try_into_kernel().map_err(|e| {
        JobError::failed(format!(
            "{}/{relative}: no Delta schema for its columns: {e}",
            sink.shown
        ))
    })
}

/// Deletes the table-file directories of runs that lost to, or died before, the run that
/// committed `current`'s version (the same version, another run id). Returns how many.
pub async fn clean_up(sink: &Place, current: &Manifest) -> Result<usize, JobError> {
    let mut deleted = 0;
    for table in TABLES {
        let listed = sink
            .store
            .list_with_delimiter(Some(&sink.key(table)))
            .await
            .map_err(|e| from_store(e, format!("listing {}/{table}", sink.shown)))?;
        for prefix in listed.common_prefixes {
            let Some(name) = prefix.filename() else {
                continue;
            };
            let same_version = manifest::version_of_run(name) == Some(current.version);
            if same_version && name != current.run_id {
                manifest::delete_prefix(sink, &prefix).await?;
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        Date32Array, Float64Array, StringArray, TimestampMillisecondArray, UInt64Array,
    };

    use super::*;

    #[test]
    fn types_become_delta_types() {
        assert_eq!(
            delta_type(&DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("+02:00".into())
            )),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            delta_type(&DataType::Timestamp(TimeUnit::Nanosecond, None)),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(delta_type(&DataType::UInt64), DataType::Int64);
        assert_eq!(delta_type(&DataType::UInt8), DataType::Int16);
        assert_eq!(
            delta_type(&DataType::Dictionary(
                Box::new(DataType::UInt16),
                Box::new(DataType::Utf8View)
            )),
            DataType::Utf8
        );
        assert_eq!(delta_type(&DataType::Float64), DataType::Float64);
    }

    #[test]
    fn statistics_bound_each_column_outwards() -> Result<(), Box<dyn std::error::Error>> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("day", DataType::Date32, false),
            Field::new(
                "start",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::UInt64, true),
            Field::new("rate", DataType::Float64, true),
            Field::new("page", DataType::Utf8, true),
        ]));
        let long = "x".repeat(MAX_STRING_STAT + 1);
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Date32Array::from(vec![19_783, 19_783, 19_784])),
                Arc::new(
                    TimestampMillisecondArray::from(vec![Some(1_000), None, Some(5_250)])
                        .with_timezone("UTC"),
                ),
                Arc::new(UInt64Array::from(vec![Some(3), Some(1), None])),
                Arc::new(Float64Array::from(vec![Some(0.5), Some(f64::NAN), None])),
                Arc::new(StringArray::from(vec![
                    Some("b"),
                    Some("a"),
                    Some(long.as_str()),
                ])),
            ],
        )?;
        let delta = delta_batch(&batch)?;
        assert_eq!(
            delta.schema().field(1).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let stats: Value = serde_json::from_str(&statistics(&delta))?;
        assert_eq!(stats["numRecords"], json!(3));
        assert_eq!(stats["minValues"]["day"], json!("2024-03-01"));
        assert_eq!(stats["maxValues"]["day"], json!("2024-03-02"));
        assert_eq!(
            stats["minValues"]["start"],
            json!("1970-01-01T00:00:01.000Z")
        );
        assert_eq!(
            stats["maxValues"]["start"],
            json!("1970-01-01T00:00:05.250Z")
        );
        assert_eq!(stats["nullCount"]["start"], json!(1));
        assert_eq!(stats["minValues"]["n"], json!(1));
        assert_eq!(stats["maxValues"]["n"], json!(3));
        // NaN has no place in an ordering statistic, and a long string is not truncated
        assert_eq!(stats["minValues"].get("rate"), None);
        assert_eq!(stats["minValues"].get("page"), None);
        assert_eq!(stats["nullCount"]["page"], json!(0));
        Ok(())
    }

    #[test]
    fn sub_millisecond_bounds_round_outwards() {
        let column: ArrayRef = Arc::new(
            datafusion::arrow::array::TimestampMicrosecondArray::from(vec![1_500, 2_001])
                .with_timezone("UTC"),
        );
        let (low, high) = bounds(&column).expect("bounds");
        assert_eq!(low, json!("1970-01-01T00:00:00.001Z"));
        assert_eq!(high, json!("1970-01-01T00:00:00.003Z"));
    }
}
