//! A result's first rows as text (`repr`) and as HTML (`_repr_html_`, what a notebook shows).

use std::fmt::Write;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::Result;
use sessionlake_cli::args::{MaxRows, OutputFormat};
use sessionlake_cli::print::{is_histogram, print_batches};
use sessionlake_jobs::report::svg::escape;

/// The widest bar of an HTML histogram, in pixels.
const BAR_PIXELS: f64 = 120.0;

/// The first `rows` rows of `batches`, and whether there were more.
pub fn first_rows(batches: &[RecordBatch], rows: usize) -> (Vec<RecordBatch>, bool) {
    let mut left = rows;
    let mut kept = Vec::new();
    let mut more = false;
    for batch in batches {
        if left == 0 {
            more |= batch.num_rows() > 0;
            continue;
        }
        let take = left.min(batch.num_rows());
        more |= take < batch.num_rows();
        kept.push(batch.slice(0, take));
        left -= take;
    }
    (kept, more)
}

/// The rows as the command line's table format prints them, HIST charts included.
pub fn text(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    let mut out = Vec::new();
    print_batches(
        &mut out,
        schema,
        batches,
        OutputFormat::Table,
        MaxRows::Unlimited,
    )?;
    Ok(String::from_utf8_lossy(&out).trim_end().to_string())
}

/// The rows as an HTML table; a HIST value is drawn as its bins with a bar each.
pub fn html(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    let mut out = String::from("<table class=\"sessionlake\">\n<thead><tr>");
    for field in schema.fields() {
        let _ = write!(out, "<th>{}</th>", escape(field.name()));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let options = FormatOptions::default().with_null("NULL");
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            out.push_str("<tr>");
            for (i, column) in batch.columns().iter().enumerate() {
                if is_histogram(column.data_type()) && column.is_valid(row) {
                    out.push_str("<td>");
                    histogram_cell(&mut out, column.as_list::<i32>().value(row).as_ref());
                    out.push_str("</td>");
                } else {
                    let _ = write!(
                        out,
                        "<td>{}</td>",
                        escape(&formatters[i].value(row).to_string())
                    );
                }
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</tbody>\n</table>");
    Ok(out)
}

/// One HIST value: a small table of `[lo, hi)`, count and a bar scaled to the largest bin.
fn histogram_cell(out: &mut String, bins: &dyn Array) {
    let bins = bins.as_struct();
    let lo = bins.column(0).as_primitive::<Float64Type>();
    let hi = bins.column(1).as_primitive::<Float64Type>();
    let count = bins.column(2).as_primitive::<Int64Type>();
    let largest = count.values().iter().copied().max().unwrap_or(0).max(1) as f64;
    out.push_str("<table class=\"sessionlake-hist\">");
    for i in 0..bins.len() {
        let width = (count.value(i) as f64 / largest * BAR_PIXELS).round();
        let _ = write!(
            out,
            "<tr><td>[{}, {})</td><td style=\"text-align:right\">{}</td>\
             <td><div style=\"background:#4c78a8;height:0.8em;width:{width}px\"></div></td></tr>",
            edge(lo.value(i)),
            edge(hi.value(i)),
            count.value(i)
        );
    }
    out.push_str("</table>");
}

/// A bin edge: `-inf`, `+inf`, or the number as Rust prints it (`3`, `0.5`).
fn edge(value: f64) -> String {
    if value == f64::INFINITY {
        "+inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-inf".to_string()
    } else {
        value.to_string()
    }
}
