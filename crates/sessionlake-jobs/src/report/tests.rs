//! The report drawn from hand-built tables: totals, segments (a hostile value among them),
//! quality classes, the length distribution and alerts.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
    StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Fields, Schema};
use sessionlake_functions::hist::DEFAULT_EDGES_MS;

use super::data::Bin;
use super::page::{bin_label, length_label};
use super::*;
use crate::alerts::{Alert, alerts_batch};

const HOSTILE: &str = "<script>alert(1)</script>";

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// A bin as `(lo, hi, count)`.
type BinRow = (f64, f64, i64);

/// Amplitude's bins (open-ended ones included) with `counts`.
fn amplitude_bins(counts: &[i64]) -> Vec<BinRow> {
    let mut edges = vec![f64::NEG_INFINITY];
    edges.extend(DEFAULT_EDGES_MS);
    edges.push(f64::INFINITY);
    edges
        .windows(2)
        .zip(counts)
        .map(|(pair, count)| (pair[0], pair[1], *count))
        .collect()
}

/// A `HIST` column: one list of `{lo, hi, count}` per row, or NULL.
fn hist_column(rows: &[Option<Vec<BinRow>>]) -> ArrayRef {
    let fields = Fields::from(vec![
        Field::new("lo", DataType::Float64, false),
        Field::new("hi", DataType::Float64, false),
        Field::new("count", DataType::Int64, false),
    ]);
    let (mut lo, mut hi, mut count) = (Vec::new(), Vec::new(), Vec::new());
    let mut offsets = vec![0i32];
    for bins in rows {
        for (l, h, c) in bins.iter().flatten() {
            lo.push(*l);
            hi.push(*h);
            count.push(*c);
        }
        offsets.push(lo.len() as i32);
    }
    let values = StructArray::new(
        fields.clone(),
        vec![
            Arc::new(Float64Array::from(lo)),
            Arc::new(Float64Array::from(hi)),
            Arc::new(Int64Array::from(count)),
        ],
        None,
    );
    Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::Struct(fields), false)),
        OffsetBuffer::new(offsets.into()),
        Arc::new(values),
        Some(NullBuffer::from(
            rows.iter().map(Option::is_some).collect::<Vec<_>>(),
        )),
    ))
}

/// One row of the hand-built `daily_metrics`.
struct Row {
    day: &'static str,
    segment: Option<(&'static str, &'static str)>,
    sessions: i64,
    avg_length_s: Option<f64>,
    quality: [i64; 3],
}

/// `daily_metrics` with the given rows; with `contract` the segment and quality columns of the
/// contract, else only the columns a job writes today (and only the total rows).
fn metrics(rows: &[Row], contract: bool) -> RecordBatch {
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| contract || r.segment.is_none())
        .collect();
    let mut fields = vec![Field::new("session_date", DataType::Date32, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Date32Array::from_iter_values(
        rows.iter().map(|r| Date32Type::from_naive_date(day(r.day))),
    ))];
    if contract {
        let segment_column = |pick: fn((&'static str, &'static str)) -> &'static str| {
            let values: Vec<Option<&str>> = rows.iter().map(|r| r.segment.map(pick)).collect();
            Arc::new(StringArray::from(values)) as ArrayRef
        };
        fields.push(Field::new("segment", DataType::Utf8, true));
        columns.push(segment_column(|s| s.0));
        fields.push(Field::new("segment_value", DataType::Utf8, true));
        columns.push(segment_column(|s| s.1));
    }
    fields.push(Field::new("sessions", DataType::Int64, false));
    columns.push(Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.sessions),
    )));
    fields.push(Field::new("avg_length_s", DataType::Float64, true));
    columns.push(Arc::new(Float64Array::from(
        rows.iter().map(|r| r.avg_length_s).collect::<Vec<_>>(),
    )));
    fields.push(Field::new("bounce_rate", DataType::Float64, true));
    columns.push(Arc::new(Float64Array::from_iter_values(
        rows.iter().map(|_| 0.25),
    )));
    // each day's bins differ, so the chart shows which day it drew
    let hists: Vec<Option<Vec<BinRow>>> = rows
        .iter()
        .map(|r| {
            Some(amplitude_bins(&[
                0, 5, 8, 13, r.sessions, 21, 34, 21, 8, 3, 1,
            ]))
        })
        .collect();
    let hist = hist_column(&hists);
    fields.push(Field::new(
        "length_distribution",
        hist.data_type().clone(),
        true,
    ));
    columns.push(hist);
    if contract {
        for (i, class) in ["good", "medium", "poor"].iter().enumerate() {
            fields.push(Field::new(
                format!("sessions_{class}"),
                DataType::Int64,
                false,
            ));
            columns.push(Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.quality[i]),
            )));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// Five days of totals, two platforms and two countries (one of them hostile); 03-04 has no
/// average length.
fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let days = [
        "2024-03-01",
        "2024-03-02",
        "2024-03-03",
        "2024-03-04",
        "2024-03-05",
    ];
    for (i, day) in days.into_iter().enumerate() {
        let n = 100 + 10 * i as i64;
        let avg = (i != 3).then_some(150.0 + i as f64);
        let mut row = |segment, sessions| {
            rows.push(Row {
                day,
                segment,
                sessions,
                avg_length_s: avg,
                quality: [
                    sessions / 2,
                    sessions / 3,
                    sessions - sessions / 2 - sessions / 3,
                ],
            })
        };
        row(None, n);
        row(Some(("platform", "web")), n - 40);
        row(Some(("platform", "ios")), 40);
        row(Some(("country", "FR")), n - 1);
        row(Some(("country", HOSTILE)), 1);
    }
    rows
}

fn alerts() -> RecordBatch {
    let alert = |d: &str, name: &str, metric: &str, message: &str| Alert {
        day: day(d),
        alert: name.into(),
        metric: metric.into(),
        segment: None,
        segment_value: None,
        value: 0.0,
        threshold: 0.0,
        message: message.into(),
    };
    alerts_batch(
        &[
            alert(
                "2024-03-02",
                "short",
                "avg_length_s",
                "avg_length_s = 151 is below 160",
            ),
            alert(
                "2024-03-02",
                "too_short",
                "avg_length_s",
                "avg_length_s = 151 is below 155",
            ),
            alert(
                "2024-03-05",
                "drop",
                "sessions",
                "sessions = 140 dropped <b>a lot</b>",
            ),
            alert(
                "2024-03-03",
                "bouncy",
                "bounce_rate",
                "bounce_rate = 0.25 is above 0.2",
            ),
        ],
        false,
    )
    .unwrap()
}

fn info() -> ReportInfo {
    ReportInfo {
        job: "daily <job>".into(),
        version: Some(7),
        generated_at: "2024-03-06 01:00:00 UTC".into(),
    }
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

/// The texts of the `<text>` elements of class `class`.
fn texts<'a>(html: &'a str, class: &str) -> Vec<&'a str> {
    let open = format!("<text class=\"{class}\"");
    html.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once('>')?.1.split_once("</text>"))
        .map(|(text, _)| text)
        .collect()
}

#[test]
fn every_section_is_drawn_from_the_contract_columns() {
    let html = render(&info(), &[metrics(&rows(), true)], &[alerts()]).unwrap();
    // sessions, average length, bounce rate (an alert watches it), 2 + 2 segment values, the
    // distribution and the quality mix
    assert_eq!(count(&html, "<svg"), 9, "{html}");
    for id in [
        "latest",
        "sessions",
        "avg-length",
        "metric-bounce_rate",
        "alerts",
        "segments",
        "distribution",
        "quality",
    ] {
        assert_eq!(count(&html, &format!("<section id=\"{id}\">")), 1, "{id}");
    }
    let axis_titles = texts(&html, "axis-title");
    for title in [
        "sessions",
        "seconds",
        "share of sessions",
        "day",
        "session length",
        "share of sessions (%)",
    ] {
        assert!(axis_titles.contains(&title), "{title}: {axis_titles:?}");
    }
    let ticks = texts(&html, "tick");
    for tick in ["2024-03-01", "2024-03-05", "Mar 1", "Mar 5", "0", "100%"] {
        assert!(ticks.contains(&tick), "{tick}: {ticks:?}");
    }
    // one marker per day and metric: two alerts on avg_length_s on 03-02 share one
    assert_eq!(count(&html, "class=\"alert-marker\""), 3);
    assert!(html.contains(
        "<title>2024-03-02 alert: short: avg_length_s = 151 is below 160; too_short: \
         avg_length_s = 151 is below 155</title>"
    ));
    assert_eq!(count(&html, "<tr><td>2024-03-"), 4);
    assert!(html.contains("<h2>Alerts (4)</h2>"));
}

#[test]
fn the_latest_distribution_is_labelled_in_human_units() {
    let html = render(&info(), &[metrics(&rows(), true)], &[]).unwrap();
    assert!(html.contains("<h2>Session lengths on 2024-03-05</h2>"));
    let ticks = texts(&html, "tick");
    let labels = [
        "&lt;0s", "0s-3s", "3s-10s", "10s-30s", "30s-1m", "1m-3m", "3m-10m", "10m-30m", "30m-1h",
        "1h-1d", "≥1d",
    ];
    let at = ticks.iter().position(|t| *t == labels[0]).unwrap();
    assert_eq!(&ticks[at..at + labels.len()], labels);
    // the totals' count of 03-05 (140) in the 30s-1m bin, not a segment's
    assert!(
        html.contains("<title>30s-1m: 140 sessions (55.1%)</title>"),
        "{html}"
    );
}

#[test]
fn segments_are_small_multiples_most_sessions_first_and_escaped() {
    let html = render(&info(), &[metrics(&rows(), true)], &[alerts()]).unwrap();
    let segments = html.split("<section id=\"segments\">").nth(1).unwrap();
    let segments = segments.split("</section>").next().unwrap();
    assert_eq!(count(segments, "<svg"), 4);
    assert_eq!(count(segments, "class=\"alert-marker\""), 0);
    // by segment name, then by sessions
    let order: Vec<usize> = [
        "<h3>country</h3>",
        "<b>FR</b>",
        "&lt;script&gt;",
        "<h3>platform</h3>",
    ]
    .iter()
    .map(|s| segments.find(s).unwrap())
    .collect();
    assert!(order.is_sorted(), "{order:?}");
    assert!(segments.find("<b>web</b>") < segments.find("<b>ios</b>"));
    assert!(!html.contains(HOSTILE));
    assert!(!html.contains("<b>a lot</b>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("<h1>daily &lt;job&gt;</h1>"));
    // the totals alone draw the top charts: 100 sessions on 03-01, not 100 + segments
    assert!(html.contains("<title>2024-03-01: 100</title>"));
}

#[test]
fn quality_shares_follow_the_class_columns() {
    let html = render(&info(), &[metrics(&rows(), true)], &[]).unwrap();
    let quality = html.split("<section id=\"quality\">").nth(1).unwrap();
    let legend: Vec<usize> = ["good 50.0% (70)", "medium 32.9% (46)", "poor 17.1% (24)"]
        .iter()
        .map(|s| quality.find(s).unwrap_or_else(|| panic!("{s}: {quality}")))
        .collect();
    assert!(legend.is_sorted());
    // one rect per day and class, each inside the plot (x from 70 to 920 in the wide frame)
    assert_eq!(count(quality, "<rect class=\"share\""), 15);
    for rect in quality.split("<rect class=\"share\" ").skip(1) {
        let attribute = |name: &str| -> f64 {
            let value = rect.split(&format!("{name}=\"")).nth(1).unwrap();
            value.split('"').next().unwrap().parse().unwrap()
        };
        let (x, width) = (attribute("x"), attribute("width"));
        assert!(x >= 70.0 && x + width <= 920.0, "{x} + {width}");
    }
    assert!(quality.contains("<title>2024-03-01 good: 50 (50.0%)</title>"));
}

#[test]
fn without_the_contract_columns_their_sections_are_left_out() {
    let html = render(&info(), &[metrics(&rows(), false)], &[]).unwrap();
    assert_eq!(count(&html, "<svg"), 3, "{html}");
    assert!(!html.contains("id=\"segments\""));
    assert!(!html.contains("id=\"quality\""));
    assert!(html.contains("No alert tripped on any day."));
    assert_eq!(count(&html, "class=\"alert-marker\""), 0);
    // NULL average on 03-04 breaks the line in two
    let avg = html.split("<section id=\"avg-length\">").nth(1).unwrap();
    let path = avg.split("<path class=\"line\" d=\"").nth(1).unwrap();
    let path = path.split('"').next().unwrap();
    assert_eq!(count(path, "M"), 2, "{path}");
}

#[test]
fn no_rows_make_a_page_that_says_so() {
    let html = render(&info(), &[], &[]).unwrap();
    assert_eq!(count(&html, "<svg"), 0);
    assert!(html.contains("No day in daily_metrics yet."));
    assert!(html.contains("no day yet"));
}

#[test]
fn amplitude_bins_read_as_lengths() {
    let labels: Vec<String> = amplitude_bins(&[0; 11])
        .into_iter()
        .map(|(lo, hi, count)| bin_label(&Bin { lo, hi, count }))
        .collect();
    assert_eq!(
        labels,
        [
            "<0s", "0s-3s", "3s-10s", "10s-30s", "30s-1m", "1m-3m", "3m-10m", "10m-30m", "30m-1h",
            "1h-1d", "≥1d"
        ]
    );
    assert_eq!(length_label(90_000.0), "90s");
    assert_eq!(length_label(1_500.0), "1.5s");
    assert_eq!(length_label(7_200_000.0), "2h");
}
