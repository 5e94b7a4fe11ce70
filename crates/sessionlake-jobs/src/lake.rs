//! The source lake: its day partitions (`<column>=YYYY-MM-DD/*.parquet`), a digest of each
//! partition's file listing, and the schema check that every file read agrees with the lake.
//! Names starting with `_` or `.` are not data, as everywhere (`sessionlake_engine::lake`).

use chrono::NaiveDate;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::execution::context::SessionContext;
use object_store::ObjectMeta;
use sessionlake_engine::layout::{DELTA_LOG_DIR, PARQUET_EXTENSION, is_hidden};
use std::collections::BTreeMap;

use crate::error::{JobError, from_store};
use crate::location::Place;

/// One source partition: its day and files, sorted by name.
#[derive(Debug, Clone)]
pub struct Partition {
    pub day: NaiveDate,
    /// The directory name, `event_date=2024-01-05`.
    pub dir: String,
    pub files: Vec<ObjectMeta>,
}

impl Partition {
    /// A digest of the file listing (names and sizes): it changes when a file is added,
    /// removed or rewritten with another size.
    pub fn digest(&self) -> String {
        // FNV-1a: short, stable across versions and platforms
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut bytes: u64 = 0;
        for file in &self.files {
            let name = file.location.filename().unwrap_or_default();
            for byte in name.bytes().chain(file.size.to_le_bytes()) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            bytes += file.size;
        }
        format!("{}f/{bytes}b/{hash:016x}", self.files.len())
    }
}

/// Lists the day partitions of the lake at `source`, by day.
pub async fn list_partitions(
    source: &Place,
    partition_column: &str,
) -> Result<BTreeMap<NaiveDate, Partition>, JobError> {
    let listed = source
        .store
        .list_with_delimiter(Some(&source.prefix))
        .await
        .map_err(|e| from_store(e, format!("listing the lake {}", source.shown)))?;
    if listed
        .common_prefixes
        .iter()
        .any(|prefix| prefix.filename() == Some(DELTA_LOG_DIR))
    {
        // read through its log when the build has Delta support (the runner checks first);
        // never by listing: its directories may hold files the log has removed
        return Err(JobError::data(format!(
            "lake {}: a Delta Lake table ({DELTA_LOG_DIR}/) needs a build with Delta support \
             (the `delta` feature), which this one was built without",
            source.shown
        )));
    }
    let mut partitions = BTreeMap::new();
    for prefix in listed.common_prefixes {
        let Some(dir) = prefix.filename() else {
            continue;
        };
        if is_hidden(dir) {
            continue;
        }
        let Some(value) = dir.strip_prefix(&format!("{partition_column}=")) else {
            return Err(JobError::data(format!(
                "lake {}: directory '{dir}' is not a '{partition_column}=YYYY-MM-DD' partition",
                source.shown
            )));
        };
        let day: NaiveDate = value.parse().map_err(|_| {
            JobError::data(format!(
                "lake {}: partition '{dir}': '{value}' is not a date YYYY-MM-DD",
                source.shown
            ))
        })?;
        let files = source
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| from_store(e, format!("listing {}/{dir}", source.shown)))?;
        let mut files: Vec<ObjectMeta> = files
            .objects
            .into_iter()
            .filter(|o| {
                o.location
                    .filename()
                    .is_some_and(|n| n.ends_with(PARQUET_EXTENSION) && !is_hidden(n))
            })
            .collect();
        files.sort_by(|a, b| a.location.cmp(&b.location));
        partitions.insert(
            day,
            Partition {
                day,
                dir: dir.to_string(),
                files,
            },
        );
    }
    if partitions.is_empty() {
        return Err(JobError::data(format!(
            "lake {}: no '{partition_column}=YYYY-MM-DD' partition found (is the path right?)",
            source.shown
        )));
    }
    Ok(partitions)
}

/// The Arrow schema in the footer of one Parquet file; an unreadable footer is a data error
/// naming the file.
pub async fn file_schema(source: &Place, file: &ObjectMeta) -> Result<SchemaRef, JobError> {
    let shown = shown_file(source, file);
    let ctx = SessionContext::new();
    ParquetFormat::default()
        .infer_schema(&ctx.state(), &source.store, std::slice::from_ref(file))
        .await
        .map_err(|e| {
            JobError::data(format!(
                "{shown}: not a readable Parquet file: {}",
                e.strip_backtrace()
            ))
        })
}

/// `lake/event_date=.../part-0.parquet` for messages.
pub fn shown_file(source: &Place, file: &ObjectMeta) -> String {
    match source.relative(&file.location) {
        Some(relative) => format!("{}/{relative}", source.shown),
        None => file.location.to_string(),
    }
}

/// Checks that `schema` (of `file`) has exactly the columns and types of `reference` (of
/// `reference_file`); names the first column that differs.
pub fn check_schema(
    reference: &SchemaRef,
    reference_file: &str,
    schema: &SchemaRef,
    file: &str,
) -> Result<(), JobError> {
    for field in schema.fields() {
        match reference.field_with_name(field.name()) {
            Err(_) => {
                return Err(JobError::data(format!(
                    "{file}: column '{}' ({}) is not in the lake's schema (as in {reference_file}); \
                     the schema changed between days",
                    field.name(),
                    field.data_type()
                )));
            }
            Ok(expected) if expected.data_type() != field.data_type() => {
                return Err(JobError::data(format!(
                    "{file}: column '{}' has type {}, the lake has {} (as in {reference_file}); \
                     the schema changed between days",
                    field.name(),
                    field.data_type(),
                    expected.data_type()
                )));
            }
            Ok(_) => {}
        }
    }
    for field in reference.fields() {
        if schema.field_with_name(field.name()).is_err() {
            return Err(JobError::data(format!(
                "{file}: column '{}' ({}) is missing (it is in {reference_file}); the schema \
                 changed between days",
                field.name(),
                field.data_type()
            )));
        }
    }
    Ok(())
}
