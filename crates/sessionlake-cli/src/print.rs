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
                        lists
                            .is_valid(row)
                            .then(|| Histogram::read(lists, row).summary())
                    })
                    .collect();
                Arc::new(text) as ArrayRef
            })
            .collect();
        summaries.push(RecordBatch::try_new(Arc::clone(&summary_schema), columns)?);
    }
    Ok((summary_schema, summaries))
}

/// One histogram as the table shows it: the bins drawn as bars, and the open-ended bins `HIST`
/// adds on each side (`[-inf, e0)` and `[en, +inf)`), told in a line under the bars.
#[derive(Debug, PartialEq)]
struct Histogram {
    /// `(lo, hi, count)` of each bin with finite edges.
    bins: Vec<(f64, f64, i64)>,
    /// `(e0, count)` of the bin below the first edge, if the list has one.
    below: Option<(f64, i64)>,
    /// `(en, count)` of the bin at or above the last edge, if the list has one.
    above: Option<(f64, i64)>,
}

impl Histogram {
    /// The histogram in `row`.
    fn read(lists: &ListArray, row: usize) -> Self {
        let values = lists.value(row);
        let values = values.as_struct();
        let lo = values.column(0).as_primitive::<Float64Type>();
        let hi = values.column(1).as_primitive::<Float64Type>();
        let count = values.column(2).as_primitive::<Int64Type>();
        Self::from_bins(
            (0..values.len())
                .map(|i| (lo.value(i), hi.value(i), count.value(i)))
                .collect(),
        )
    }

    /// The open-ended bins are told apart by their infinite edge, so a list without them (such
    /// as a slice of a `HIST` result) is charted as it is.
    fn from_bins(mut bins: Vec<(f64, f64, i64)>) -> Self {
        let below = match bins.first() {
            Some(&(lo, hi, count)) if lo == f64::NEG_INFINITY => {
                bins.remove(0);
                Some((hi, count))
            }
            _ => None,
        };
        let above = match bins.last() {
            Some(&(lo, hi, count)) if hi == f64::INFINITY => {
                bins.pop();
                Some((lo, count))
            }
            _ => None,
        };
        Self { bins, below, above }
    }

    /// `(edge, count)` of the open-ended bins the list has.
    fn open_ended(&self) -> impl Iterator<Item = (f64, i64)> {
        [self.below, self.above].into_iter().flatten()
    }

    /// Every value counted, in the bins and outside them.
    fn total(&self) -> i64 {
        let outside = self.open_ended().map(|b| b.1);
        self.bins.iter().map(|b| b.2).chain(outside).sum()
    }

    /// The table cell: `9 bins + 2 open-ended, 22813 values (chart below)`.
    fn summary(&self) -> String {
        let open_ended = match self.open_ended().count() {
            0 => String::new(),
            n => format!(" + {n} open-ended"),
        };
        format!(
            "{}{open_ended}, {} (chart below)",
            counted(self.bins.len() as i64, "bin"),
            counted(self.total(), "value")
        )
    }

    /// The line under the bars on the values outside them: `none outside [0, 86400000)`, or
    /// `none below 0; 23 values (0.1%) at or above 86400000`; None without open-ended bins.
    fn outside_line(&self) -> Option<String> {
        if let (Some((first, 0)), Some((last, 0))) = (self.below, self.above) {
            return Some(format!(
                "none outside [{}, {})",
                short_number(first),
                short_number(last)
            ));
        }
        let total = self.total();
        let side = |bin: Option<(f64, i64)>, place: &str| {
            bin.map(|(edge, count)| {
                let edge = short_number(edge);
                if count == 0 {
                    format!("none {place} {edge}")
                } else {
                    let values = counted(count, "value");
                    format!("{values} ({:.1}%) {place} {edge}", share(count, total))
                }
            })
        };
        let sides: Vec<String> = [side(self.below, "below"), side(self.above, "at or above")]
            .into_iter()
            .flatten()
            .collect();
        (!sides.is_empty()).then(|| sides.join("; "))
    }
}

/// `1 value`, `2 values`.
fn counted(count: i64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// `count` in percent of `total`; 0 when there is nothing.
fn share(count: i64, total: i64) -> f64 {
    if total > 0 {
        100.0 * count as f64 / total as f64
    } else {
        0.0
    }
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
                write_chart(out, &Histogram::read(lists, row))?;
            }
        }
    }
    Ok(())
}

/// Bars scaled to the largest count, drawn in eighths of a character, with each bin's share of
/// all values (those outside the bars too), then the line on the values outside.
fn write_chart(out: &mut dyn Write, histogram: &Histogram) -> Result<()> {
    const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let bins = &histogram.bins;
    let labels: Vec<String> = bins
        .iter()
        .map(|&(lo, hi, _)| format!("[{}, {})", short_number(lo), short_number(hi)))
        .collect();
    let label_width = labels.iter().map(String::len).max().unwrap_or(0);
    let counts: Vec<String> = bins.iter().map(|b| b.2.to_string()).collect();
    let count_width = counts.iter().map(String::len).max().unwrap_or(0);
    let max = bins.iter().map(|b| b.2).max().unwrap_or(0);
    let total = histogram.total();
    for ((label, count), &(_, _, n)) in labels.iter().zip(&counts).zip(bins) {
        let eighths = if max > 0 {
            (n as f64 / max as f64 * (BAR_WIDTH * 8) as f64).round() as usize
        } else {
            0
        };
        let mut bar = "█".repeat(eighths / 8);
        bar.push_str(EIGHTHS[eighths % 8]);
        let share = share(n, total);
        let padding = BAR_WIDTH + 1 - bar.chars().count();
        writeln!(
            out,
            "  {label:>label_width$} {bar}{:padding$}{count:>count_width$} {share:5.1}%",
            ""
        )?;
    }
    if let Some(line) = histogram.outside_line() {
        writeln!(out, "  {line}")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    fn histogram(bins: &[(f64, f64, i64)]) -> Histogram {
        Histogram::from_bins(bins.to_vec())
    }

    #[test]
    fn the_open_ended_bins_are_told_under_the_bars() {
        let both = histogram(&[(-INF, 0.0, 1), (0.0, 10.0, 2), (10.0, INF, 0)]);
        assert_eq!(both.bins, vec![(0.0, 10.0, 2)]);
        assert_eq!(
            both.summary(),
            "1 bin + 2 open-ended, 3 values (chart below)"
        );
        assert_eq!(
            both.outside_line().as_deref(),
            Some("1 value (33.3%) below 0; none at or above 10")
        );

        let inside = histogram(&[
            (-INF, 0.5, 0),
            (0.5, 5.0, 4),
            (5.0, 10.0, 0),
            (10.0, INF, 0),
        ]);
        assert_eq!(
            inside.outside_line().as_deref(),
            Some("none outside [0.5, 10)")
        );
    }

    /// A list without HIST's open-ended bins, or with one of them, such as a slice of a HIST
    /// result: charted as it is, nothing said of a side it does not have.
    #[test]
    fn a_list_without_open_ended_bins_is_charted_as_it_is() {
        let sliced = histogram(&[(0.0, 5.0, 4), (5.0, 10.0, 1)]);
        assert_eq!(sliced.summary(), "2 bins, 5 values (chart below)");
        assert_eq!(sliced.outside_line(), None);

        let upper = histogram(&[(0.0, 5.0, 4), (5.0, INF, 2)]);
        assert_eq!(
            upper.summary(),
            "1 bin + 1 open-ended, 6 values (chart below)"
        );
        assert_eq!(
            upper.outside_line().as_deref(),
            Some("2 values (33.3%) at or above 5")
        );
    }
}
