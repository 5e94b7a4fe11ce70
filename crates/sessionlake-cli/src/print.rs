//! Prints query results on stdout in the chosen format.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::WriterBuilder as JsonWriterBuilder;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited};
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;
use datafusion::common::Result;

use crate::args::{MaxRows, OutputFormat};

/// Writes `batches` (of `schema`) to `out` as `format`.
pub fn print_batches(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
    max_rows: MaxRows,
) -> Result<()> {
    match format {
        OutputFormat::Table => print_table(out, schema, batches, max_rows)?,
        OutputFormat::Csv | OutputFormat::Tsv => {
            let delimiter = if format == OutputFormat::Csv {
                b','
            } else {
                b'\t'
            };
            let mut writer = WriterBuilder::new()
                .with_header(true)
                .with_delimiter(delimiter)
                .build(&mut *out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = JsonWriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, JsonArray>(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                out.write_all(b"[]")?;
            }
            out.write_all(b"\n")?;
        }
        OutputFormat::NdJson => {
            let mut writer = JsonWriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
    }
    out.flush()?;
    Ok(())
}

fn print_table(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    max_rows: MaxRows,
) -> Result<()> {
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let shown: Vec<RecordBatch> = match max_rows {
        MaxRows::Limited(limit) if total > limit => {
            let mut left = limit;
            let mut kept = Vec::new();
            for batch in batches {
                if left == 0 {
                    break;
                }
                let take = left.min(batch.num_rows());
                kept.push(batch.slice(0, take));
                left -= take;
            }
            kept
        }
        _ => batches.to_vec(),
    };
    writeln!(
        out,
        "{}",
        pretty_format_batches_with_schema(schema.clone(), &shown)?
    )?;
    if shown.iter().map(RecordBatch::num_rows).sum::<usize>() < total {
        writeln!(
            out,
            "({} of {total} rows shown; --maxrows inf shows all)",
            shown.iter().map(RecordBatch::num_rows).sum::<usize>()
        )?;
    }
    Ok(())
}
