//! Runs the `.slt` files of `tests/slt/` against a sessionlake `SessionContext`, each file once
//! per `target_partitions` setting (1, 2 and 8), since results must not depend on it (a record
//! under `onlyif partitions_N` runs at one setting only, for plans that name the count).
//!
//! The harness is `libtest-mimic`, so every file is a test of its own and a failing file fails
//! `cargo test`; `cargo test --test slt -- NAME` runs the files whose name contains NAME.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use libtest_mimic::{Arguments, Failed, Trial};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner, strict_column_validator};

const PARTITION_SETTINGS: [usize; 3] = [1, 2, 8];

/// A sessionlake context as a sqllogictest database.
struct SessionLakeDb {
    ctx: SessionContext,
}

#[async_trait]
impl AsyncDB for SessionLakeDb {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let frame = self.ctx.sql(sql).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        // plans name files by absolute path: the checkout's own path reads as ROOT
        let root = env!("CARGO_MANIFEST_DIR").trim_start_matches('/');
        let rows = format_rows(&batches)?
            .into_iter()
            .map(|row| row.into_iter().map(|v| v.replace(root, "ROOT")).collect())
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "sessionlake"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// `I` integers, `R` floats and decimals, `B` (any other letter) booleans, `T` the rest.
fn column_type(data_type: &DataType) -> DefaultColumnType {
    match data_type {
        DataType::Boolean => DefaultColumnType::Any,
        t if t.is_integer() => DefaultColumnType::Integer,
        t if t.is_floating() => DefaultColumnType::FloatingPoint,
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

/// Every value as text: `NULL` for a null, `(empty)` for an empty string. A value of several
/// lines (an `EXPLAIN` plan) gives one row per line, the row's other values repeated.
fn format_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, DataFusionError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let values: Vec<String> = formatters
                .iter()
                .zip(batch.columns())
                .map(|(formatter, column)| {
                    let text = formatter.value(row).to_string();
                    if text.is_empty() && !column.is_null(row) {
                        "(empty)".to_string()
                    } else {
                        text
                    }
                })
                .collect();
            let lines = values.iter().map(|v| v.lines().count()).max().unwrap_or(1);
            if lines <= 1 {
                rows.push(values);
                continue;
            }
            for line in 0..lines {
                rows.push(
                    values
                        .iter()
                        .map(|v| match v.lines().count() {
                            1 => v.clone(),
                            _ => v
                                .lines()
                                .nth(line)
                                .unwrap_or_default()
                                .trim_end()
                                .to_string(),
                        })
                        .collect(),
                );
            }
        }
    }
    Ok(rows)
}

fn slt_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "slt"));
    files.sort();
    Ok(files)
}

fn run_file(path: &Path, partitions: usize) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let make_db = move || async move {
            let config = sessionlake_engine::session_config().with_target_partitions(partitions);
            let ctx = sessionlake_engine::new_context_with_config(config)?;
            Ok::<_, DataFusionError>(SessionLakeDb { ctx })
        };
        let mut runner = Runner::new(make_db);
        runner.with_column_validator(strict_column_validator);
        // `onlyif partitions_2` runs a record at one setting only (plans name the count)
        runner.add_label(&format!("partitions_{partitions}"));
        runner
            .run_file_async(path)
            .await
            .map_err(|e| Failed::from(e.display(true).to_string()))
    })
}

fn main() -> std::io::Result<()> {
    let args = Arguments::from_args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut trials = Vec::new();
    for path in slt_files(&dir)? {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for partitions in PARTITION_SETTINGS {
            let path = path.clone();
            trials.push(Trial::test(
                format!("{stem}::partitions_{partitions}"),
                move || run_file(&path, partitions),
            ));
        }
    }
    libtest_mimic::run(&args, trials).exit()
}
