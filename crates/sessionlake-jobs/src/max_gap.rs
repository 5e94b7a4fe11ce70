//! The run-time half of `session.max_gap`: with a `gap_column`, the incremental rule needs a
//! bound on every event's timeout, so a run checks the events it reads for the first time
//! against it before it computes anything (why that suffices: `docs/jobs.md`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::prelude::{Expr, SessionContext};
use futures::TryStreamExt;
use object_store::ObjectMeta;
use sessionlake_functions::time_unit::span_array_to_ticks;

use crate::compute;
use crate::error::{JobError, from_datafusion};
use crate::job_file::{Job, MaxGap};
use crate::location::Place;

const NANOS_PER_MS: i128 = 1_000_000;

/// [`check`] over the Parquet files `files` of the lake, whose schema is `schema`.
pub async fn check_files(
    job: &Job,
    source: &Place,
    files: &[ObjectMeta],
    schema: &SchemaRef,
) -> Result<(), JobError> {
    if job.session.max_gap.is_none() || files.is_empty() {
        return Ok(());
    }
    let ctx = compute::new_context(&[source])?;
    let urls: Vec<String> = files.iter().map(|f| source.url(&f.location)).collect();
    let table = compute::files_table(&ctx, &urls, Some(Arc::clone(schema))).await?;
    check(job, source, &ctx, table).await
}

/// Fails with a data error naming the column, the value and `max_gap` when an event of `table`
/// has a timeout in the job's `gap_column` over `session.max_gap` (NULL means the gap, which is
/// never over it); nothing to check without a `gap_column`.
pub async fn check(
    job: &Job,
    source: &Place,
    ctx: &SessionContext,
    table: Arc<dyn TableProvider>,
) -> Result<(), JobError> {
    let options = &job.session.options;
    let (Some(column), Some(max_gap)) = (&options.gap_column, &job.session.max_gap) else {
        return Ok(());
    };
    let frame = ctx
        .read_table(table)
        .map_err(|e| from_datafusion(e, "reading the new events"))?;
    let named = |name: &str, alias: &str| Expr::Column(Column::new_unqualified(name)).alias(alias);
    let frame = frame
        .select(vec![
            named(column, "timeout"),
            named(&options.time_column, "time"),
            named(&options.user_column, "user"),
        ])
        .and_then(|f| f.filter(datafusion::prelude::col("timeout").is_not_null()))
        .map_err(|e| {
            JobError::data(format!(
                "lake {}: column '{column}' (session.gap_column): {}",
                source.shown,
                e.strip_backtrace()
            ))
        })?;
    let reading = |e| from_datafusion(e, format!("checking session.max_gap on {}", source.shown));
    let mut stream = frame.execute_stream().await.map_err(reading)?;
    while let Some(batch) = stream.try_next().await.map_err(reading)? {
        let nanos = timeout_nanos(batch.column(0)).map_err(|message| {
            JobError::data(format!(
                "lake {}: column '{column}' (session.gap_column): {message}",
                source.shown
            ))
        })?;
        if let Some(row) = nanos
            .iter()
            .position(|n| n.is_some_and(|n| n > max_gap.nanos))
        {
            return Err(over_max_gap(source, column, max_gap, &batch, row));
        }
    }
    Ok(())
}

/// Each row's timeout in nanoseconds: integers are milliseconds, the span types as the engine
/// reads them.
fn timeout_nanos(values: &ArrayRef) -> Result<Vec<Option<i128>>, String> {
    if values.data_type().is_integer() {
        let millis = cast(values, &DataType::Int64).map_err(|e| e.to_string())?;
        return Ok(millis
            .as_primitive::<Int64Type>()
            .iter()
            .map(|ms| ms.map(|ms| i128::from(ms) * NANOS_PER_MS))
            .collect());
    }
    let nanos = span_array_to_ticks("a value", values, TimeUnit::Nanosecond)
        .map_err(|e| e.strip_backtrace())?;
    Ok(nanos.into_iter().map(|n| n.map(i128::from)).collect())
}

/// The error for row `row` of `batch` (the timeout, the time and the user, in that order).
fn over_max_gap(
    source: &Place,
    column: &str,
    max_gap: &MaxGap,
    batch: &RecordBatch,
    row: usize,
) -> JobError {
    let shown = |i: usize| {
        let options = FormatOptions::default().with_null("NULL");
        ArrayFormatter::try_new(batch.column(i).as_ref(), &options)
            .map(|f| f.value(row).to_string())
            .unwrap_or_else(|_| "?".to_string())
    };
    let unit = if batch.column(0).data_type().is_integer() {
        " ms"
    } else {
        ""
    };
    JobError::data(format!(
        "lake {}: column '{column}' (session.gap_column) gives the event of user {} at {} a \
         timeout of {}{unit}, over session.max_gap ({}): the incremental rule reads events only \
         that far around new ones; raise max_gap (the next run recomputes everything) or fix \
         the data",
        source.shown,
        shown(2),
        shown(1),
        shown(0),
        max_gap.text,
    ))
}
