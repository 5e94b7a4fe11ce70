//! Prints query results on stdout in the chosen format.

use std::io::Write;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, StringArray};
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use datafusion::arrow::json::WriterBuilder as JsonWriterBuilder;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;
use datafusion::common::{Result, plan_err};

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
            // CSV has no lists or structs: such columns are written as their display text
            let (text_schema, text_batches) = nested_as_text(schema, batches)?;
            if text_batches.is_empty() {
                writer.write(&RecordBatch::new_empty(text_schema))?;
            }
            for batch in &text_batches {
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
        OutputFormat::Parquet => {
            return plan_err!("--format parquet writes a file: give one with -o FILE");
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
    let shown_rows: usize = shown.iter().map(RecordBatch::num_rows).sum();
    let hist_columns: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| is_histogram(field.data_type()))
        .map(|(i, _)| i)
        .collect();
    if hist_columns.is_empty() {
        writeln!(
            out,
            "{}",
            pretty_format_batches_with_schema(schema.clone(), &shown)?
        )?;
    } else {
        let (summary_schema, summaries) = summarise_histograms(schema, &shown, &hist_columns)?;
        writeln!(
            out,
            "{}",
            pretty_format_batches_with_schema(summary_schema, &summaries)?
        )?;
        write_histogram_charts(out, schema, &shown, &hist_columns)?;
    }
    if shown_rows < total {
        writeln!(
            out,
            "({shown_rows} of {total} rows shown; --maxrows inf shows all)"
        )?;
    }
    Ok(())
}

/// `batches` with every list, struct or map column replaced by its display text
/// (`[{lo: 0.0, hi: 1.0, count: 2}]`), for formats that hold only flat values.
fn nested_as_text(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let nested: Vec<bool> = schema
        .fields()
        .iter()
        .map(|field| field.data_type().is_nested())
        .collect();
    if !nested.contains(&true) {
        return Ok((Arc::clone(schema), batches.to_vec()));
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&nested)
        .map(|(field, &nested)| {
            if nested {
                Field::new(field.name(), DataType::Utf8, true)
            } else {
                field.as_ref().clone()
            }
        })
        .collect();
    let text_schema = Arc::new(Schema::new(fields));
    let options = FormatOptions::default();
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (column, &nested) in batch.columns().iter().zip(&nested) {
            if !nested {
                columns.push(Arc::clone(column));
                continue;
            }
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            let text: StringArray = (0..column.len())
                .map(|row| {
                    column
                        .is_valid(row)
                        .then(|| formatter.value(row).to_string())
                })
                .collect();
            columns.push(Arc::new(text) as ArrayRef);
        }
        out.push(RecordBatch::try_new(Arc::clone(&text_schema), columns)?);
    }
    Ok((text_schema, out))
}

/// Whether values of `data_type` are `HIST` results: lists of `{lo, hi, count}` bins.
pub fn is_histogram(data_type: &DataType) -> bool {
    let DataType::List(element) = data_type else {
        return false;
    };
    let DataType::Struct(fields) = element.data_type() else {
        return false;
    };
    let names_and_types: Vec<(&str, &DataType)> = fields
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    names_and_types
        == [
            ("lo", &DataType::Float64),
            ("hi", &DataType::Float64),
            ("count", &DataType::Int64),
        ]
}

/// The batches with every histogram column replaced by a one-line summary, for the table.
fn summarise_histograms(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    hist_columns: &[usize],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            if hist_columns.contains(&i) {
                Field::new(field.name(), DataType::Utf8, true)
            } else {
                field.as_ref().clone()
            }
        })
        .collect();
    let summary_schema = Arc::new(Schema::new(fields));
    let mut summaries = Vec::with_capacity(batches.len());
    for batch in batches {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .enumerate()
            .map(|(i, column)| {
                if !hist_columns.contains(&i) {
                    return Arc::clone(column);
                }
                let lists = column.as_list::<i32>();
                let text: StringArray = (0..lists.len())
                    .map(|row| {
                        lists.is_valid(row).then(|| {
                            let bins = histogram_bins(lists, row);
                            let values: i64 = bins.iter().map(|b| b.2).sum();
                            format!("{} bins, {values} values (chart below)", bins.len())
                        })
                    })
                    .collect();
                Arc::new(text) as ArrayRef
            })
            .collect();
        summaries.push(RecordBatch::try_new(Arc::clone(&summary_schema), columns)?);
    }
    Ok((summary_schema, summaries))
}

/// `(lo, hi, count)` of each bin of the histogram in `row`.
fn histogram_bins(lists: &ListArray, row: usize) -> Vec<(f64, f64, i64)> {
    let bins = lists.value(row);
    let bins = bins.as_struct();
    let lo = bins.column(0).as_primitive::<Float64Type>();
    let hi = bins.column(1).as_primitive::<Float64Type>();
    let count = bins.column(2).as_primitive::<Int64Type>();
    (0..bins.len())
        .map(|i| (lo.value(i), hi.value(i), count.value(i)))
        .collect()
}

/// The width of the longest bar, in characters.
const BAR_WIDTH: usize = 40;

/// One text bar chart per histogram value, titled by the row's other columns.
fn write_histogram_charts(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    hist_columns: &[usize],
) -> Result<()> {
    let label_columns: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !hist_columns.contains(i))
        .collect();
    let format_options = FormatOptions::default().with_null("NULL");
    for batch in batches {
        let formatters = label_columns
            .iter()
            .map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &format_options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            for &column in hist_columns {
                let lists = batch.column(column).as_list::<i32>();
                let mut title = schema.field(column).name().clone();
                if !label_columns.is_empty() {
                    let labels: Vec<String> = label_columns
                        .iter()
                        .zip(&formatters)
                        .map(|(&i, formatter)| {
                            format!("{}={}", schema.field(i).name(), formatter.value(row))
                        })
                        .collect();
                    title = format!("{title} for {}", labels.join(", "));
                }
                writeln!(out)?;
                writeln!(out, "{title}")?;
                if lists.is_null(row) {
                    writeln!(out, "  NULL")?;
                    continue;
                }
                write_chart(out, &histogram_bins(lists, row))?;
            }
        }
    }
    Ok(())
}

/// Bars scaled to the largest count, drawn in eighths of a character.
fn write_chart(out: &mut dyn Write, bins: &[(f64, f64, i64)]) -> Result<()> {
    const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let labels: Vec<String> = bins
        .iter()
        .map(|&(lo, hi, _)| format!("[{}, {})", short_number(lo), short_number(hi)))
        .collect();
    let label_width = labels.iter().map(String::len).max().unwrap_or(0);
    let counts: Vec<String> = bins.iter().map(|b| b.2.to_string()).collect();
    let count_width = counts.iter().map(String::len).max().unwrap_or(0);
    let max = bins.iter().map(|b| b.2).max().unwrap_or(0);
    let total: i64 = bins.iter().map(|b| b.2).sum();
    for ((label, count), &(_, _, n)) in labels.iter().zip(&counts).zip(bins) {
        let eighths = if max > 0 {
            (n as f64 / max as f64 * (BAR_WIDTH * 8) as f64).round() as usize
        } else {
            0
        };
        let mut bar = "█".repeat(eighths / 8);
        bar.push_str(EIGHTHS[eighths % 8]);
        let share = if total > 0 {
            100.0 * n as f64 / total as f64
        } else {
            0.0
        };
        let padding = BAR_WIDTH + 1 - bar.chars().count();
        writeln!(
            out,
            "  {label:>label_width$} {bar}{:padding$}{count:>count_width$} {share:5.1}%",
            ""
        )?;
    }
    Ok(())
}

/// A bin edge without a needless fraction: `3000`, `2.5`.
fn short_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let text = format!("{x:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
