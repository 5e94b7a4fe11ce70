//! What the report shows, read from batches of the committed `daily_metrics` and `alerts`
//! tables. The sections that depend on optional columns follow this contract:
//! - segments: `segment` and `segment_value` (text, both NULL on the all-sessions row); the
//!   totals are the rows whose `segment` is NULL, or every row without the column;
//! - quality: integer columns `sessions_<class>`, one per class, in class order.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, GenericListArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};

use crate::error::JobError;
use crate::sql::DAY_COLUMN;

/// The segment's name (`country`, `platform`); NULL on the all-sessions row.
pub const SEGMENT_COLUMN: &str = "segment";
/// The segment's value (`FR`, `ios`); NULL on the all-sessions row.
pub const SEGMENT_VALUE_COLUMN: &str = "segment_value";
/// The prefix of the quality columns: `sessions_good` counts the sessions of class `good`.
pub const QUALITY_PREFIX: &str = "sessions_";
/// The `HIST` of the day's session lengths in milliseconds.
pub const DISTRIBUTION_COLUMN: &str = "length_distribution";

/// The numeric columns of one group of rows (the totals, or one value of a segment), one
/// value per day, days ascending.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Daily {
    pub days: Vec<NaiveDate>,
    /// Every numeric column by name, aligned with `days` (NULL where the row has none).
    pub columns: BTreeMap<String, Vec<Option<f64>>>,
}

impl Daily {
    /// The values of column `name`, if the table has it.
    pub fn column(&self, name: &str) -> Option<&[Option<f64>]> {
        self.columns.get(name).map(Vec::as_slice)
    }

    /// The sum of column `name` over the days (0 without it).
    pub fn total(&self, name: &str) -> f64 {
        self.column(name)
            .map_or(0.0, |values| values.iter().flatten().sum())
    }
}

/// One value of a segment and its days.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentValue {
    /// NULL on a row of the segment that has no value.
    pub value: Option<String>,
    pub daily: Daily,
}

/// A row of the alerts table.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub day: NaiveDate,
    pub alert: String,
    pub metric: String,
    /// The segment column of a per-segment alert; `None` for one on the all-sessions row.
    pub segment: Option<String>,
    pub message: String,
}

/// A bin of a `HIST` value; the open-ended ones have an infinite edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: i64,
}

/// Everything the report draws.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReportData {
    /// The all-sessions rows.
    pub totals: Daily,
    /// Per segment name, its values (most sessions first); `None` when the table has no
    /// segment columns.
    pub segments: Option<BTreeMap<String, Vec<SegmentValue>>>,
    /// The classes of the `sessions_<class>` columns, in column order.
    pub quality_classes: Vec<String>,
    /// The latest all-sessions day with a length distribution, and its bins.
    pub distribution: Option<(NaiveDate, Vec<Bin>)>,
    /// Every alert, by day then name.
    pub alerts: Vec<AlertRow>,
}

/// The rows of one group by day, then by column.
type Rows = BTreeMap<NaiveDate, BTreeMap<String, f64>>;

/// A group of rows: `None` for the totals, else the segment and its value.
type GroupKey = Option<(String, Option<String>)>;

impl ReportData {
    /// Reads `metrics` (batches of `daily_metrics`) and `alerts` (of the alerts table).
    pub fn read(metrics: &[RecordBatch], alerts: &[RecordBatch]) -> Result<Self, JobError> {
        let mut groups: BTreeMap<GroupKey, Rows> = BTreeMap::new();
        let mut numeric: Vec<String> = Vec::new();
        let mut quality_classes: Vec<String> = Vec::new();
        let mut has_segments = false;
        let mut distribution: Option<(NaiveDate, Vec<Bin>)> = None;
        for batch in metrics {
            let schema = batch.schema();
            let days = days_of(batch, "daily_metrics")?;
            let segment = text_column(batch, SEGMENT_COLUMN)?;
            let segment_value = text_column(batch, SEGMENT_VALUE_COLUMN)?;
            has_segments |= segment.is_some();
            let mut columns = Vec::new();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                let name = field.name();
                if name == DAY_COLUMN || !field.data_type().is_numeric() {
                    continue;
                }
                if !numeric.contains(name) {
                    numeric.push(name.clone());
                }
                if let Some(class) = name.strip_prefix(QUALITY_PREFIX)
                    && field.data_type().is_integer()
                    && !quality_classes.iter().any(|c| c == class)
                {
                    quality_classes.push(class.to_string());
                }
                columns.push((name.clone(), numbers(column, name)?));
            }
            let hist = batch.column_by_name(DISTRIBUTION_COLUMN);
            for row in 0..batch.num_rows() {
                let Some(day) = days[row] else { continue };
                let key = segment.as_ref().and_then(|s| s[row].clone()).map(|name| {
                    let value = segment_value.as_ref().and_then(|v| v[row].clone());
                    (name, value)
                });
                let values = groups
                    .entry(key.clone())
                    .or_default()
                    .entry(day)
                    .or_default();
                for (name, column) in &columns {
                    if column.is_valid(row) {
                        values.insert(name.clone(), column.value(row));
                    }
                }
                if key.is_none()
                    && distribution
                        .as_ref()
                        .is_none_or(|(latest, _)| day >= *latest)
                    && let Some(bins) = hist.and_then(|h| bins_at(h, row))
                {
                    distribution = Some((day, bins));
                }
            }
        }

        let totals = daily(groups.remove(&None).unwrap_or_default(), &numeric);
        let segments = has_segments.then(|| {
            let mut segments: BTreeMap<String, Vec<SegmentValue>> = BTreeMap::new();
            for (key, rows) in groups {
                if let Some((name, value)) = key {
                    segments.entry(name).or_default().push(SegmentValue {
                        value,
                        daily: daily(rows, &numeric),
                    });
                }
            }
            for values in segments.values_mut() {
                // most sessions first, then by value
                values.sort_by(|a, b| {
                    b.daily
                        .total("sessions")
                        .total_cmp(&a.daily.total("sessions"))
                        .then_with(|| a.value.cmp(&b.value))
                });
            }
            segments
        });
        Ok(Self {
            totals,
            segments,
            quality_classes,
            distribution,
            alerts: read_alerts(alerts)?,
        })
    }
}

/// The rows of a group as columns aligned with their days.
fn daily(rows: Rows, numeric: &[String]) -> Daily {
    let columns = numeric
        .iter()
        .map(|name| {
            let values = rows.values().map(|r| r.get(name).copied()).collect();
            (name.clone(), values)
        })
        .collect();
    Daily {
        days: rows.into_keys().collect(),
        columns,
    }
}

fn read_alerts(batches: &[RecordBatch]) -> Result<Vec<AlertRow>, JobError> {
    let mut alerts = Vec::new();
    for batch in batches {
        let days = days_of(batch, "alerts")?;
        let text = |name: &str| {
            text_column(batch, name)?
                .ok_or_else(|| JobError::failed(format!("alerts: no {name} column")))
        };
        let (alert, metric, message) = (text("alert")?, text("metric")?, text("message")?);
        let segment = text_column(batch, SEGMENT_COLUMN)?;
        for row in 0..batch.num_rows() {
            let Some(day) = days[row] else { continue };
            alerts.push(AlertRow {
                day,
                alert: alert[row].clone().unwrap_or_default(),
                metric: metric[row].clone().unwrap_or_default(),
                segment: segment.as_ref().and_then(|s| s[row].clone()),
                message: message[row].clone().unwrap_or_default(),
            });
        }
    }
    alerts.sort_by(|a, b| (a.day, &a.alert).cmp(&(b.day, &b.alert)));
    Ok(alerts)
}

/// The day column of `batch` (of `table`).
fn days_of(batch: &RecordBatch, table: &str) -> Result<Vec<Option<NaiveDate>>, JobError> {
    let column = batch
        .column_by_name(DAY_COLUMN)
        .ok_or_else(|| JobError::failed(format!("{table}: no {DAY_COLUMN} column")))?;
    let days = cast(column, &DataType::Date32)
        .map_err(|e| JobError::failed(format!("{table}: column {DAY_COLUMN}: {e}")))?;
    Ok(days
        .as_primitive::<Date32Type>()
        .iter()
        .map(|d| d.and_then(Date32Type::to_naive_date_opt))
        .collect())
}

/// Column `name` of `batch` as text (any string type read back from Parquet), if it has one.
fn text_column(batch: &RecordBatch, name: &str) -> Result<Option<Vec<Option<String>>>, JobError> {
    let Some(column) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let text = cast(column, &DataType::Utf8)
        .map_err(|e| JobError::failed(format!("daily_metrics: column {name}: {e}")))?;
    Ok(Some(
        text.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
    ))
}

/// A numeric column as Float64.
fn numbers(
    column: &ArrayRef,
    name: &str,
) -> Result<datafusion::arrow::array::Float64Array, JobError> {
    let values = cast(column, &DataType::Float64)
        .map_err(|e| JobError::failed(format!("daily_metrics: column {name}: {e}")))?;
    Ok(values.as_primitive::<Float64Type>().clone())
}

/// The `HIST` bins in `row` of `column` (a list of `{lo, hi, count}`), if it holds one.
fn bins_at(column: &ArrayRef, row: usize) -> Option<Vec<Bin>> {
    fn of<O: datafusion::arrow::array::OffsetSizeTrait>(
        lists: &GenericListArray<O>,
        row: usize,
    ) -> Option<Vec<Bin>> {
        if lists.is_null(row) {
            return None;
        }
        let value = lists.value(row);
        let bins = value.as_struct_opt()?;
        let field = |name: &str, to: &DataType| cast(bins.column_by_name(name)?, to).ok();
        let lo = field("lo", &DataType::Float64)?;
        let hi = field("hi", &DataType::Float64)?;
        let count = field("count", &DataType::Int64)?;
        let (lo, hi) = (
            lo.as_primitive::<Float64Type>(),
            hi.as_primitive::<Float64Type>(),
        );
        let count = count.as_primitive::<Int64Type>();
        Some(
            (0..bins.len())
                .map(|i| Bin {
                    lo: lo.value(i),
                    hi: hi.value(i),
                    count: count.value(i),
                })
                .collect(),
        )
    }
    match column.data_type() {
        DataType::List(_) => of(column.as_list::<i32>(), row),
        DataType::LargeList(_) => of(column.as_list::<i64>(), row),
        _ => None,
    }
}
