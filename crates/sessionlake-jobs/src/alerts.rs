//! Alert rules evaluated over the whole daily metrics table: below or above a threshold, or a
//! drop of more than X % against the mean of the previous N days.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int64Type, Schema, SchemaRef,
};
use serde::Serialize;

use crate::error::JobError;
use crate::job_file::{AlertCondition, AlertRule, Metric};

/// A tripped alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The day of the metric.
    pub day: NaiveDate,
    /// The rule's name.
    pub alert: String,
    /// The metric's column name.
    pub metric: String,
    /// The segment column of a per-segment rule; `None` for the all-sessions row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// The segment's value (`None` also for sessions without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_value: Option<String>,
    /// The metric's value that day.
    pub value: f64,
    /// The threshold it crossed (for a drop: the trailing mean reduced by the percentage).
    pub threshold: f64,
    /// One line saying what happened.
    pub message: String,
}

/// Which rows of the daily metrics a series of values comes from: the all-sessions row
/// (`None`), or one value of a segment column (the value `None` for sessions without one).
pub type SeriesKey = Option<(String, Option<String>)>;

/// Metric values by day.
pub type DailyValues = BTreeMap<NaiveDate, BTreeMap<&'static str, f64>>;

/// The numeric metric values of each series by day, read from daily metrics batches.
pub fn metric_values(
    batches: &[RecordBatch],
) -> Result<BTreeMap<SeriesKey, DailyValues>, JobError> {
    let mut out: BTreeMap<SeriesKey, DailyValues> = BTreeMap::new();
    for batch in batches {
        let schema = batch.schema();
        let Some(days) = schema
            .index_of(crate::sql::DAY_COLUMN)
            .ok()
            .and_then(|i| batch.column(i).as_primitive_opt::<Date32Type>())
        else {
            return Err(JobError::failed("daily metrics: no session_date column"));
        };
        let text_column = |name: &str| -> Result<Option<ArrayRef>, JobError> {
            let Ok(index) = schema.index_of(name) else {
                return Ok(None);
            };
            cast(batch.column(index), &DataType::Utf8)
                .map(Some)
                .map_err(|e| JobError::failed(format!("daily metrics: column {name}: {e}")))
        };
        let segments = text_column("segment")?;
        let segment_values = text_column("segment_value")?;
        let text = |array: &Option<ArrayRef>, row: usize| {
            array
                .as_ref()
                .and_then(|a| a.as_string_opt::<i32>())
                .and_then(|a| a.is_valid(row).then(|| a.value(row).to_string()))
        };
        for row in 0..batch.num_rows() {
            if days.is_null(row) {
                continue;
            }
            let key = text(&segments, row).map(|segment| (segment, text(&segment_values, row)));
            let day = Date32Type::to_naive_date_opt(days.value(row)).unwrap_or_default();
            let metrics = out.entry(key).or_default().entry(day).or_default();
            for (_, name) in Metric::ALL {
                let Ok(index) = schema.index_of(name) else {
                    continue;
                };
                let column = batch.column(index);
                if column.is_null(row) {
                    continue;
                }
                let value = match column.data_type() {
                    DataType::Int64 => column.as_primitive::<Int64Type>().value(row) as f64,
                    DataType::Float64 => column.as_primitive::<Float64Type>().value(row),
                    _ => continue,
                };
                metrics.insert(name, value);
            }
        }
    }
    Ok(out)
}

/// Every alert the rules trip on any day of any series they watch (a rule without a segment:
/// the all-sessions series; with one: every value of that segment column), by day, then rule
/// order, then segment value.
pub fn evaluate(rules: &[AlertRule], series: &BTreeMap<SeriesKey, DailyValues>) -> Vec<Alert> {
    let mut alerts: Vec<(usize, Alert)> = Vec::new();
    for (order, rule) in rules.iter().enumerate() {
        for (key, values) in series {
            let watched = match (&rule.segment, key) {
                (None, None) => true,
                (Some(segment), Some((column, _))) => segment == column,
                _ => false,
            };
            if watched {
                alerts.extend(
                    evaluate_series(rule, key, values)
                        .into_iter()
                        .map(|a| (order, a)),
                );
            }
        }
    }
    alerts.sort_by(|(a_order, a), (b_order, b)| {
        (a.day, a_order, &a.segment_value).cmp(&(b.day, b_order, &b.segment_value))
    });
    alerts.into_iter().map(|(_, alert)| alert).collect()
}

/// The alerts `rule` trips on the days of one series.
fn evaluate_series(rule: &AlertRule, key: &SeriesKey, values: &DailyValues) -> Vec<Alert> {
    let name = rule.metric.column();
    let subject = match key {
        None => name.to_string(),
        Some((segment, value)) => {
            format!("{name} on {segment}={}", value.as_deref().unwrap_or("NULL"))
        }
    };
    let mut alerts = Vec::new();
    for (day, metrics) in values {
        let Some(&value) = metrics.get(name) else {
            continue;
        };
        let tripped = match rule.condition {
            AlertCondition::Below(threshold) => (value < threshold).then(|| {
                (
                    threshold,
                    format!("{subject} = {value:.3} is below {threshold}"),
                )
            }),
            AlertCondition::Above(threshold) => (value > threshold).then(|| {
                (
                    threshold,
                    format!("{subject} = {value:.3} is above {threshold}"),
                )
            }),
            AlertCondition::DropPercent {
                percent,
                trailing_days,
            } => {
                let previous: Vec<f64> = (1..=u64::from(trailing_days))
                    .filter_map(|back| day.checked_sub_days(Days::new(back)))
                    .filter_map(|d| values.get(&d).and_then(|m| m.get(name)).copied())
                    .collect();
                if previous.is_empty() {
                    None
                } else {
                    let mean = previous.iter().sum::<f64>() / previous.len() as f64;
                    let threshold = mean * (1.0 - percent / 100.0);
                    (value < threshold).then(|| {
                        (
                            threshold,
                            format!(
                                "{subject} = {value:.3} dropped {:.1}% below the {}-day mean {mean:.3} (more than {percent}%)",
                                (1.0 - value / mean) * 100.0,
                                previous.len()
                            ),
                        )
                    })
                }
            }
        };
        if let Some((threshold, message)) = tripped {
            let (segment, segment_value) = key.clone().unzip();
            alerts.push(Alert {
                day: *day,
                alert: rule.name.clone(),
                metric: name.to_string(),
                segment,
                segment_value: segment_value.flatten(),
                value,
                threshold,
                message,
            });
        }
    }
    alerts
}

/// The schema of the alerts table; with `segments` (the job has `outputs.metrics.segment_by`),
/// the `segment` and `segment_value` of each alert after `metric`.
pub fn alerts_schema(segments: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new(crate::sql::DAY_COLUMN, DataType::Date32, false),
        Field::new("alert", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
    ];
    if segments {
        fields.push(Field::new("segment", DataType::Utf8, true));
        fields.push(Field::new("segment_value", DataType::Utf8, true));
    }
    fields.extend([
        Field::new("value", DataType::Float64, false),
        Field::new("threshold", DataType::Float64, false),
        Field::new("message", DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// The alerts as one batch of the alerts table (see [`alerts_schema`]).
pub fn alerts_batch(alerts: &[Alert], segments: bool) -> Result<RecordBatch, JobError> {
    let days = Date32Array::from(
        alerts
            .iter()
            .map(|a| Date32Type::from_naive_date(a.day))
            .collect::<Vec<_>>(),
    );
    let text =
        |f: fn(&Alert) -> &str| Arc::new(StringArray::from_iter_values(alerts.iter().map(f))) as _;
    let optional_text = |f: fn(&Alert) -> Option<&str>| {
        Arc::new(alerts.iter().map(f).collect::<StringArray>()) as ArrayRef
    };
    let number = |f: fn(&Alert) -> f64| {
        Arc::new(Float64Array::from_iter_values(alerts.iter().map(f))) as ArrayRef
    };
    let mut columns: Vec<ArrayRef> = vec![Arc::new(days), text(|a| &a.alert), text(|a| &a.metric)];
    if segments {
        columns.push(optional_text(|a| a.segment.as_deref()));
        columns.push(optional_text(|a| a.segment_value.as_deref()));
    }
    columns.extend([
        number(|a| a.value),
        number(|a| a.threshold),
        text(|a| &a.message),
    ]);
    RecordBatch::try_new(alerts_schema(segments), columns)
        .map_err(|e| JobError::failed(format!("alerts table: {e}")))
}

/// `1 alert`, `3 alerts`: how many alerts, in notifications.
pub fn alert_count(n: usize) -> String {
    if n == 1 {
        "1 alert".to_string()
    } else {
        format!("{n} alerts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(series: &[(&str, f64)]) -> BTreeMap<SeriesKey, DailyValues> {
        let days = series
            .iter()
            .map(|(d, v)| (d.parse().unwrap(), BTreeMap::from([("avg_length_s", *v)])))
            .collect();
        BTreeMap::from([(None, days)])
    }

    fn rule(condition: AlertCondition) -> AlertRule {
        AlertRule {
            name: "r".into(),
            metric: Metric::AvgLengthSeconds,
            condition,
            segment: None,
        }
    }

    #[test]
    fn thresholds_are_strict() {
        let v = values(&[("2024-01-01", 120.0), ("2024-01-02", 119.9)]);
        let alerts = evaluate(&[rule(AlertCondition::Below(120.0))], &v);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].day.to_string(), "2024-01-02");
        assert!(evaluate(&[rule(AlertCondition::Above(120.0))], &v).is_empty());
    }

    #[test]
    fn drop_compares_with_the_trailing_mean() {
        // mean of the two days before 01-03 is 100; 79 is a drop of 21%
        let v = values(&[
            ("2024-01-01", 90.0),
            ("2024-01-02", 110.0),
            ("2024-01-03", 79.0),
        ]);
        let drop = |p| {
            rule(AlertCondition::DropPercent {
                percent: p,
                trailing_days: 2,
            })
        };
        let alerts = evaluate(&[drop(20.0)], &v);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].threshold, 80.0);
        assert!(evaluate(&[drop(25.0)], &v).is_empty());
        // the first day has no trailing days: no alert
        assert!(evaluate(&[drop(1.0)], &values(&[("2024-01-01", 1.0)])).is_empty());
    }

    #[test]
    fn segment_rules_watch_each_value_and_name_it() {
        let series = |v: f64| {
            BTreeMap::from([(
                "2024-01-01".parse().unwrap(),
                BTreeMap::from([("avg_length_s", v)]),
            )])
        };
        let platform =
            |value: Option<&str>| Some(("platform".to_string(), value.map(String::from)));
        let values = BTreeMap::from([
            (None, series(150.0)),
            (platform(Some("ios")), series(95.2)),
            (platform(Some("web")), series(200.0)),
            (platform(None), series(10.0)),
            (
                Some(("country".to_string(), Some("de".to_string()))),
                series(50.0),
            ),
        ]);
        let mut per_platform = rule(AlertCondition::Below(120.0));
        per_platform.segment = Some("platform".into());
        // the total is above the threshold; two platform values and no country are below
        let alerts = evaluate(&[rule(AlertCondition::Below(120.0)), per_platform], &values);
        let shown: Vec<(&str, Option<&str>)> = alerts
            .iter()
            .map(|a| (a.message.as_str(), a.segment_value.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("avg_length_s on platform=NULL = 10.000 is below 120", None),
                (
                    "avg_length_s on platform=ios = 95.200 is below 120",
                    Some("ios")
                ),
            ]
        );
        assert!(
            alerts
                .iter()
                .all(|a| a.segment.as_deref() == Some("platform"))
        );
    }
}
