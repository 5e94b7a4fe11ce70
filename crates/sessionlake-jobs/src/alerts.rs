//! Alert rules evaluated over the whole daily metrics table: below or above a threshold, or a
//! drop of more than X % against the mean of the previous N days.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use datafusion::arrow::array::{
    Array, AsArray, Date32Array, Float64Array, RecordBatch, StringArray,
};
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
    /// The metric's value that day.
    pub value: f64,
    /// The threshold it crossed (for a drop: the trailing mean reduced by the percentage).
    pub threshold: f64,
    /// One line saying what happened.
    pub message: String,
}

/// The numeric metric values by day, read from daily metrics batches.
pub fn metric_values(
    batches: &[RecordBatch],
) -> Result<BTreeMap<NaiveDate, BTreeMap<&'static str, f64>>, JobError> {
    let mut out: BTreeMap<NaiveDate, BTreeMap<&'static str, f64>> = BTreeMap::new();
    for batch in batches {
        let schema = batch.schema();
        let Some(days) = schema
            .index_of(crate::compute::DAY_COLUMN)
            .ok()
            .and_then(|i| batch.column(i).as_primitive_opt::<Date32Type>())
        else {
            return Err(JobError::failed("daily metrics: no session_date column"));
        };
        for (_, name) in Metric::ALL {
            let Ok(index) = schema.index_of(name) else {
                continue;
            };
            let column = batch.column(index);
            for row in 0..batch.num_rows() {
                if column.is_null(row) || days.is_null(row) {
                    continue;
                }
                let value = match column.data_type() {
                    DataType::Int64 => column.as_primitive::<Int64Type>().value(row) as f64,
                    DataType::Float64 => column.as_primitive::<Float64Type>().value(row),
                    _ => continue,
                };
                out.entry(Date32Type::to_naive_date_opt(days.value(row)).unwrap_or_default())
                    .or_default()
                    .insert(name, value);
            }
        }
    }
    Ok(out)
}

/// Every alert the rules trip on any day of `values`, by day then rule order.
pub fn evaluate(
    rules: &[AlertRule],
    values: &BTreeMap<NaiveDate, BTreeMap<&'static str, f64>>,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for (day, metrics) in values {
        for rule in rules {
            let name = rule.metric.column();
            let Some(&value) = metrics.get(name) else {
                continue;
            };
            let tripped = match rule.condition {
                AlertCondition::Below(threshold) => (value < threshold).then(|| {
                    (
                        threshold,
                        format!("{name} = {value:.3} is below {threshold}"),
                    )
                }),
                AlertCondition::Above(threshold) => (value > threshold).then(|| {
                    (
                        threshold,
                        format!("{name} = {value:.3} is above {threshold}"),
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
                                    "{name} = {value:.3} dropped {:.1}% below the {}-day mean {mean:.3} (more than {percent}%)",
                                    (1.0 - value / mean) * 100.0,
                                    previous.len()
                                ),
                            )
                        })
                    }
                }
            };
            if let Some((threshold, message)) = tripped {
                alerts.push(Alert {
                    day: *day,
                    alert: rule.name.clone(),
                    metric: name.to_string(),
                    value,
                    threshold,
                    message,
                });
            }
        }
    }
    alerts
}

/// The schema of the alerts table.
pub fn alerts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(crate::compute::DAY_COLUMN, DataType::Date32, false),
        Field::new("alert", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("threshold", DataType::Float64, false),
        Field::new("message", DataType::Utf8, false),
    ]))
}

/// The alerts as one batch of the alerts table.
pub fn alerts_batch(alerts: &[Alert]) -> Result<RecordBatch, JobError> {
    let days = Date32Array::from(
        alerts
            .iter()
            .map(|a| Date32Type::from_naive_date(a.day))
            .collect::<Vec<_>>(),
    );
    let text =
        |f: fn(&Alert) -> &str| Arc::new(StringArray::from_iter_values(alerts.iter().map(f))) as _;
    RecordBatch::try_new(
        alerts_schema(),
        vec![
            Arc::new(days),
            text(|a| &a.alert),
            text(|a| &a.metric),
            Arc::new(Float64Array::from_iter_values(
                alerts.iter().map(|a| a.value),
            )),
            Arc::new(Float64Array::from_iter_values(
                alerts.iter().map(|a| a.threshold),
            )),
            text(|a| &a.message),
        ],
    )
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

    fn values(series: &[(&str, f64)]) -> BTreeMap<NaiveDate, BTreeMap<&'static str, f64>> {
        series
            .iter()
            .map(|(d, v)| (d.parse().unwrap(), BTreeMap::from([("avg_length_s", *v)])))
            .collect()
    }

    fn rule(condition: AlertCondition) -> AlertRule {
        AlertRule {
            name: "r".into(),
            metric: Metric::AvgLengthSeconds,
            condition,
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
}
