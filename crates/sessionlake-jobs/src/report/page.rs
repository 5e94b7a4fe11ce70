//! The report page: the sections drawn from [`ReportData`], laid out as one HTML document with
//! its CSS and SVG inline (no script, font or file from elsewhere).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::data::{AlertRow, Bin, Daily, QUALITY_PREFIX, ReportData, SegmentValue};
use super::svg::{BarChart, Frame, LineChart, Marker, PALETTE, StackedShares, escape, number};

/// What the page says about the outputs it shows.
#[derive(Debug, Clone)]
pub struct ReportInfo {
    /// The job's name.
    pub job: String,
    /// The committed manifest version the tables are from.
    pub version: Option<u64>,
    /// When the page was made (shown as it is).
    pub generated_at: String,
}

/// The segment values drawn per segment at most, those with the most sessions.
pub const MAX_SEGMENT_VALUES: usize = 12;

/// The metrics of the latest day's figures, in order.
const FIGURES: [&str; 8] = [
    "sessions",
    "users",
    "active_users",
    "avg_length_s",
    "time_per_user_s",
    "bounce_rate",
    "bot_sessions",
    "long_sessions_excluded",
];

const CSS: &str = "\
body{margin:0;background:#f5f6f8;color:#1d2433;\
font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}\
header{background:#1d3557;color:#fff;padding:20px 0}\
header div,main{max-width:1000px;margin:0 auto;padding:0 24px}\
h1{margin:0;font-size:24px}header p{margin:6px 0 0;color:#c9d6ea;font-size:14px}\
section{background:#fff;border:1px solid #e0e4ea;border-radius:8px;padding:16px 20px;margin:16px 0}\
h2{font-size:18px;margin:0 0 10px}h3{font-size:15px;margin:18px 0 8px}\
.chart{display:block;width:100%;height:auto}\
.chart text{font-size:11px;fill:#4a5468}.chart .axis-title{font-size:12px;fill:#1d2433}\
.grid{stroke:#e8ebf0}.axis{stroke:#8a93a6}\
.line{fill:none;stroke:#1d6fb8;stroke-width:2;stroke-linejoin:round}.point{fill:#1d6fb8}\
.alert-marker line{stroke:#d62828;stroke-dasharray:4 3}\
.alert-marker circle{fill:#d62828;fill-opacity:.85;stroke:#fff;stroke-width:1.5}\
.bar{fill:#457b9d}.chart .bar-value{font-size:10px;fill:#1d2433}\
table{border-collapse:collapse;width:100%;font-size:14px}\
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e8ebf0;vertical-align:top}\
th{color:#4a5468;font-weight:600}\
.figures{display:flex;flex-wrap:wrap;gap:10px}\
.figure{border:1px solid #e0e4ea;border-radius:6px;padding:8px 12px;min-width:120px}\
.figure b{display:block;font-size:20px}.figure span{color:#4a5468;font-size:12px}\
.multiples{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:12px}\
figure{margin:0}figcaption{font-size:13px;margin-bottom:4px}\
.legend{list-style:none;padding:0;margin:8px 0 0;display:flex;flex-wrap:wrap;gap:16px;font-size:14px}\
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}\
.note{color:#5b6478;font-size:13px;margin:6px 0 0}.alert-metric{color:#d62828}";

/// The whole page.
pub fn render(info: &ReportInfo, data: &ReportData) -> String {
    let totals = &data.totals;
    let span = match (totals.days.first(), totals.days.last()) {
        (Some(first), Some(last)) => format!(
            "{first} to {last} ({} with sessions)",
            plural(totals.days.len(), "day")
        ),
        _ => "no day yet".to_string(),
    };
    let version = info
        .version
        .map(|v| format!("version {v} · "))
        .unwrap_or_default();
    let mut sections = vec![latest_figures(totals)];
    let mut charted = Vec::new();
    for (id, metric) in [("sessions", "sessions"), ("avg-length", "avg_length_s")] {
        sections.push(metric_section(id, metric, totals, &data.alerts));
        charted.push(metric);
    }
    // a metric an alert watches gets its chart too, to be marked on
    for alert in &data.alerts {
        let metric = alert.metric.as_str();
        if !charted.contains(&metric) && totals.column(metric).is_some() {
            sections.push(metric_section(
                &format!("metric-{metric}"),
                metric,
                totals,
                &data.alerts,
            ));
            charted.push(metric);
        }
    }
    sections.push(alerts_table(&data.alerts));
    if let Some(segments) = &data.segments {
        sections.push(segments_section(segments, totals));
    }
    sections.push(distribution_section(data.distribution.as_ref()));
    if !data.quality_classes.is_empty() {
        sections.push(quality_section(totals, &data.quality_classes));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{job}: sessionlake report</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <header><div><h1>{job}</h1><p>sessionlake job report · {version}{span} · \
         generated {generated}</p></div></header>\n<main>\n{sections}\n</main>\n</body>\n</html>\n",
        job = escape(&info.job),
        span = escape(&span),
        generated = escape(&info.generated_at),
        sections = sections.join("\n"),
    )
}

/// `<section>` with a heading.
fn section(id: &str, heading: &str, body: &str) -> String {
    format!(
        "<section id=\"{}\">\n<h2>{}</h2>\n{body}\n</section>",
        escape(id),
        escape(heading)
    )
}

/// A note in place of a chart.
fn note(text: &str) -> String {
    format!("<p class=\"note\">{}</p>", escape(text))
}

/// `1 day`, `2 days`.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// The heading and the value axis' title of a metric's chart.
fn metric_titles(metric: &str) -> (String, String) {
    let (heading, axis) = match metric {
        "sessions" => ("Daily sessions", "sessions"),
        "users" => ("Users with a session", "users"),
        "active_users" => ("Active users", "users"),
        "avg_length_s" => ("Average session length", "seconds"),
        "time_per_user_s" => ("Time per active user", "seconds"),
        "bounce_rate" => ("Bounce rate", "share of sessions"),
        "bot_sessions" => ("Bot sessions", "sessions"),
        "long_sessions_excluded" => ("Sessions over max_length", "sessions"),
        other => (other, other),
    };
    (heading.to_string(), axis.to_string())
}

/// A metric's value as a reader wants it: lengths in minutes and seconds, rates in percent.
fn metric_value(metric: &str, value: f64) -> String {
    if metric.ends_with("_s") {
        return length_text(value);
    }
    if metric.ends_with("_rate") {
        return format!("{:.1}%", value * 100.0);
    }
    number(value)
}

/// Seconds as `2h 5m`, `2m 35s`, `42.5s`.
fn length_text(seconds: f64) -> String {
    let whole = seconds.round() as i64;
    if whole >= 3600 {
        format!("{}h {}m", whole / 3600, whole % 3600 / 60)
    } else if whole >= 60 {
        format!("{}m {}s", whole / 60, whole % 60)
    } else {
        format!("{}s", number(seconds))
    }
}

/// The latest day's figures.
fn latest_figures(totals: &Daily) -> String {
    let Some(&latest) = totals.days.last() else {
        return section(
            "latest",
            "Latest day",
            &note("No day in daily_metrics yet."),
        );
    };
    let last = totals.days.len() - 1;
    let figures: String = FIGURES
        .iter()
        .filter_map(|metric| {
            let value = totals.column(metric)?[last]?;
            let (heading, _) = metric_titles(metric);
            Some(format!(
                "<div class=\"figure\"><b>{}</b><span>{}</span></div>",
                escape(&metric_value(metric, value)),
                escape(&heading.to_lowercase())
            ))
        })
        .collect();
    section(
        "latest",
        &format!("Latest day: {latest}"),
        &format!("<div class=\"figures\">{figures}</div>"),
    )
}

/// The alerts on `metric` of the all-sessions row, one marker per day (a per-segment alert is
/// listed in the alerts table, not marked on the totals).
fn markers(alerts: &[AlertRow], metric: &str) -> Vec<Marker> {
    let mut by_day: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for alert in alerts
        .iter()
        .filter(|a| a.metric == metric && a.segment.is_none())
    {
        by_day
            .entry(alert.day)
            .or_default()
            .push(format!("{}: {}", alert.alert, alert.message));
    }
    by_day
        .into_iter()
        .map(|(day, texts)| Marker {
            day,
            text: format!("{day} alert: {}", texts.join("; ")),
        })
        .collect()
}

/// A metric over the whole history, its alerts marked.
fn metric_section(id: &str, metric: &str, totals: &Daily, alerts: &[AlertRow]) -> String {
    let (heading, axis) = metric_titles(metric);
    let Some(values) = totals.column(metric).filter(|_| !totals.days.is_empty()) else {
        return section(
            id,
            &heading,
            &note(&format!("No {metric} in daily_metrics.")),
        );
    };
    let markers = markers(alerts, metric);
    let chart = LineChart {
        title: &heading,
        y_title: &axis,
        days: &totals.days,
        values,
        markers: &markers,
        frame: Frame::WIDE,
        y_max: None,
    }
    .render();
    let told = match markers.len() {
        0 => String::new(),
        n => note(&format!(
            "Red marks: {} with an alert on {metric} (listed below).",
            plural(n, "day")
        )),
    };
    section(id, &heading, &format!("{chart}\n{told}"))
}

/// Every alert of the alerts table.
fn alerts_table(alerts: &[AlertRow]) -> String {
    if alerts.is_empty() {
        return section("alerts", "Alerts", &note("No alert tripped on any day."));
    }
    let rows: String = alerts
        .iter()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"alert-metric\">{}</td><td>{}</td></tr>\n",
                a.day,
                escape(&a.alert),
                escape(&a.metric),
                escape(&a.message)
            )
        })
        .collect();
    section(
        "alerts",
        &format!("Alerts ({})", alerts.len()),
        &format!(
            "<table class=\"alerts\">\n<thead><tr><th>day</th><th>alert</th><th>metric</th>\
             <th>message</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>"
        ),
    )
}

/// Small multiples: one small chart per value of each segment, on one scale per segment.
fn segments_section(segments: &BTreeMap<String, Vec<SegmentValue>>, totals: &Daily) -> String {
    let metric = if totals.column("avg_length_s").is_some() {
        "avg_length_s"
    } else {
        "sessions"
    };
    let (heading, axis) = metric_titles(metric);
    if segments.is_empty() {
        return section(
            "segments",
            "Segments",
            &note("No segment rows in daily_metrics."),
        );
    }
    let mut body = note(&format!(
        "{heading} per segment value, the values with the most sessions first (at most \
         {MAX_SEGMENT_VALUES} per segment), on one scale per segment."
    ));
    for (name, values) in segments {
        let shown = &values[..values.len().min(MAX_SEGMENT_VALUES)];
        let y_max = shown
            .iter()
            .filter_map(|v| v.daily.column(metric))
            .flat_map(|values| values.iter().flatten().copied())
            .fold(0.0, f64::max);
        body.push_str(&format!(
            "\n<h3>{}</h3>\n<div class=\"multiples\">\n",
            escape(name)
        ));
        for value in shown {
            let label = value.value.as_deref().unwrap_or("(no value)");
            let Some(series) = value.daily.column(metric) else {
                continue;
            };
            let chart = LineChart {
                title: &format!("{heading}: {name} = {label}"),
                y_title: &axis,
                days: &value.daily.days,
                values: series,
                markers: &[],
                frame: Frame::SMALL,
                y_max: Some(y_max),
            }
            .render();
            body.push_str(&format!(
                "<figure><figcaption><b>{}</b> · {} sessions</figcaption>\n{chart}</figure>\n",
                escape(label),
                number(value.daily.total("sessions"))
            ));
        }
        body.push_str("</div>");
        if values.len() > shown.len() {
            body.push_str(&note(&format!(
                "{} more values of {name} with fewer sessions are not drawn.",
                values.len() - shown.len()
            )));
        }
    }
    section("segments", "Segments", &body)
}

/// A length in milliseconds in the largest unit it is a whole number of: `3s`, `10m`, `1d`.
pub fn length_label(ms: f64) -> String {
    if ms == 0.0 {
        return "0s".to_string();
    }
    for (unit_ms, unit) in [
        (86_400_000.0, "d"),
        (3_600_000.0, "h"),
        (60_000.0, "m"),
        (1_000.0, "s"),
    ] {
        if ms.abs() >= unit_ms && (ms / unit_ms).fract() == 0.0 {
            return format!("{}{unit}", ms / unit_ms);
        }
    }
    format!("{}s", number(ms / 1000.0))
}

/// A bin's label: `<0s`, `10s-30s`, `≥1d`.
pub fn bin_label(bin: &Bin) -> String {
    if bin.lo == f64::NEG_INFINITY {
        format!("<{}", length_label(bin.hi))
    } else if bin.hi == f64::INFINITY {
        format!("≥{}", length_label(bin.lo))
    } else {
        format!("{}-{}", length_label(bin.lo), length_label(bin.hi))
    }
}

/// The latest day's session lengths in Amplitude's bins, the open-ended ones included.
fn distribution_section(distribution: Option<&(NaiveDate, Vec<Bin>)>) -> String {
    let Some((day, bins)) = distribution else {
        return section(
            "distribution",
            "Session lengths",
            &note("No length distribution in daily_metrics."),
        );
    };
    let total: i64 = bins.iter().map(|b| b.count).sum();
    let bars: Vec<(String, i64, String)> = bins
        .iter()
        .map(|bin| {
            let label = bin_label(bin);
            let share = if total > 0 {
                100.0 * bin.count as f64 / total as f64
            } else {
                0.0
            };
            let tooltip = format!("{label}: {} sessions ({share:.1}%)", bin.count);
            (label, bin.count, tooltip)
        })
        .collect();
    let heading = format!("Session lengths on {day}");
    let chart = BarChart {
        title: &heading,
        x_title: "session length",
        y_title: "sessions",
        bars: &bars,
        frame: Frame::WIDE,
    }
    .render();
    let told = note(&format!(
        "{} with a length on {day}, in Amplitude's bins; the first and last bins are open-ended.",
        plural(usize::try_from(total).unwrap_or(0), "session")
    ));
    section("distribution", &heading, &format!("{chart}\n{told}"))
}

/// The quality classes' shares of each day, and the latest day's in the legend.
fn quality_section(totals: &Daily, classes: &[String]) -> String {
    let columns: Vec<&[Option<f64>]> = classes
        .iter()
        .filter_map(|class| totals.column(&format!("{QUALITY_PREFIX}{class}")))
        .collect();
    if totals.days.is_empty() || columns.len() != classes.len() {
        return section(
            "quality",
            "Session quality",
            &note("No quality counts in daily_metrics."),
        );
    }
    let counts: Vec<Vec<i64>> = (0..totals.days.len())
        .map(|day| {
            columns
                .iter()
                .map(|c| c[day].unwrap_or(0.0) as i64)
                .collect()
        })
        .collect();
    let chart = StackedShares {
        title: "Session quality mix per day",
        days: &totals.days,
        classes,
        counts: &counts,
        frame: Frame::WIDE,
    }
    .render();
    let latest = counts.last().cloned().unwrap_or_default();
    let latest_total: i64 = latest.iter().sum();
    let legend: String = classes
        .iter()
        .zip(&latest)
        .enumerate()
        .map(|(i, (class, count))| {
            let share = if latest_total > 0 {
                100.0 * *count as f64 / latest_total as f64
            } else {
                0.0
            };
            format!(
                "<li><span class=\"swatch\" style=\"background:{}\"></span>{} \
                 {share:.1}% ({count})</li>",
                PALETTE[i % PALETTE.len()],
                escape(class)
            )
        })
        .collect();
    let day = totals
        .days
        .last()
        .map(|d| d.to_string())
        .unwrap_or_default();
    section(
        "quality",
        "Session quality",
        &format!(
            "{chart}\n<ul class=\"legend\">{legend}</ul>\n{}",
            note(&format!("The legend gives the shares on {day}."))
        ),
    )
}
