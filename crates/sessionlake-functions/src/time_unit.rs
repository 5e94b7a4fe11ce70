//! Conversions between intervals, durations and the ticks of a timestamp column's unit.
//!
//! Session rules compare integer differences of one column's ticks with a gap or a maximum
//! length, so every interval is turned into ticks of that column's unit once, at planning time.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, DurationMicrosecondArray, DurationMillisecondArray,
    DurationNanosecondArray, DurationSecondArray, Float64Array, IntervalDayTimeArray,
    IntervalMonthDayNanoArray, PrimitiveArray,
};
use datafusion::arrow::compute::kernels::cast_utils::parse_interval_month_day_nano;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, DurationMicrosecondType, DurationMillisecondType,
    DurationNanosecondType, DurationSecondType, Float64Type, IntervalDayTimeType,
    IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err, plan_err};

const NANOS_PER_DAY: i128 = 86_400 * 1_000_000_000;

/// Nanoseconds in one tick of `unit`.
pub fn nanos_per_tick(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// Converts a timestamp in ticks of `unit` to epoch milliseconds (flooring, so times before
/// 1970 land on the millisecond that contains them).
pub fn ticks_to_epoch_ms(ticks: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => ticks.saturating_mul(1_000),
        TimeUnit::Millisecond => ticks,
        TimeUnit::Microsecond => ticks.div_euclid(1_000),
        TimeUnit::Nanosecond => ticks.div_euclid(1_000_000),
    }
}

/// Converts a span in ticks of `unit` to milliseconds (truncating).
pub fn ticks_to_ms(ticks: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => ticks.saturating_mul(1_000),
        TimeUnit::Millisecond => ticks,
        TimeUnit::Microsecond => ticks / 1_000,
        TimeUnit::Nanosecond => ticks / 1_000_000,
    }
}

/// Converts a span of nanoseconds to whole ticks of `unit`, rounding down.
///
/// Rounding down is exact for the session rules: for integer tick differences `d` and a real
/// span `g`, `d > g` holds exactly when `d > floor(g)`.
pub fn nanos_to_ticks(nanos: i128, unit: TimeUnit) -> i64 {
    let ticks = nanos.div_euclid(i128::from(nanos_per_tick(unit)));
    ticks.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Nanoseconds of an interval without months; `None` if it has months, whose length varies.
pub fn month_day_nano_to_nanos(interval: IntervalMonthDayNano) -> Option<i128> {
    if interval.months != 0 {
        return None;
    }
    Some(i128::from(interval.days) * NANOS_PER_DAY + i128::from(interval.nanoseconds))
}

/// Parses a span such as `30 minutes` or `1 day` into nanoseconds; the error is a sentence for
/// the caller to prefix with what it parsed.
///
/// Months and years are rejected: their length varies.
pub fn parse_span(text: &str) -> std::result::Result<i128, String> {
    let interval = parse_interval_month_day_nano(text.trim())
        .map_err(|e| format!("'{text}' is not an interval such as '30 minutes' ({e})"))?;
    month_day_nano_to_nanos(interval)
        .ok_or_else(|| format!("'{text}' has months or years, whose length varies"))
}

/// Parses an option value such as `30 minutes` or `1 day` into nanoseconds, a planning error
/// naming `what` otherwise (see [`parse_span`]).
pub fn parse_span_nanos(what: &str, text: &str) -> Result<i128> {
    match parse_span(text) {
        Ok(nanos) => Ok(nanos),
        Err(message) => plan_err!("{what}: {message}"),
    }
}

/// Nanoseconds of a constant span given as an interval or duration literal.
pub fn scalar_span_nanos(what: &str, value: &ScalarValue) -> Result<Option<i128>> {
    let nanos = match value {
        ScalarValue::IntervalMonthDayNano(v) => match v {
            Some(v) => match month_day_nano_to_nanos(*v) {
                Some(n) => Some(n),
                None => return plan_err!("{what}: the interval has months, whose length varies"),
            },
            None => None,
        },
        ScalarValue::IntervalDayTime(v) => {
            v.map(|v| i128::from(v.days) * NANOS_PER_DAY + i128::from(v.milliseconds) * 1_000_000)
        }
        ScalarValue::DurationSecond(v) => v.map(|v| i128::from(v) * 1_000_000_000),
        ScalarValue::DurationMillisecond(v) => v.map(|v| i128::from(v) * 1_000_000),
        ScalarValue::DurationMicrosecond(v) => v.map(|v| i128::from(v) * 1_000),
        ScalarValue::DurationNanosecond(v) => v.map(i128::from),
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            Some(parse_span_nanos(what, s)?)
        }
        other => {
            return plan_err!(
                "{what}: expected an interval such as INTERVAL '30 minutes', found {}",
                other.data_type()
            );
        }
    };
    Ok(nanos)
}

/// Converts a column of spans (a duration of any unit, or an interval) to seconds, fractional
/// below the second; NULL rows stay NULL.
///
/// Each value is rounded once: its whole length in the smallest unit it is given in, divided
/// by that unit's ticks per second. `what` names the argument in errors, such as
/// `PROPSUM: argument 'x'`; an interval with months is an error naming the row, since its length
/// in seconds varies.
pub fn span_array_to_seconds(what: &str, spans: &ArrayRef) -> Result<Float64Array> {
    let seconds = match spans.data_type() {
        DataType::Duration(TimeUnit::Second) => {
            ticks_to_seconds(spans.as_primitive::<DurationSecondType>(), 1.0)
        }
        DataType::Duration(TimeUnit::Millisecond) => {
            ticks_to_seconds(spans.as_primitive::<DurationMillisecondType>(), 1e3)
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            ticks_to_seconds(spans.as_primitive::<DurationMicrosecondType>(), 1e6)
        }
        DataType::Duration(TimeUnit::Nanosecond) => {
            ticks_to_seconds(spans.as_primitive::<DurationNanosecondType>(), 1e9)
        }
        DataType::Interval(IntervalUnit::DayTime) => spans
            .as_primitive::<IntervalDayTimeType>()
            .unary(|v| (i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds)) as f64 / 1e3),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let intervals = spans.as_primitive::<IntervalMonthDayNanoType>();
            let with_months = match intervals.nulls() {
                Some(nulls) => nulls
                    .valid_indices()
                    .find(|&row| intervals.value(row).months != 0),
                None => intervals.values().iter().position(|v| v.months != 0),
            };
            if let Some(row) = with_months {
                let value = intervals.value(row);
                return exec_err!(
                    "{what} has an interval with months ({} mons {} days {} ns) at row {row}, \
                     whose length in seconds varies",
                    value.months,
                    value.days,
                    value.nanoseconds
                );
            }
            intervals.unary(|v| {
                (i128::from(v.days) * NANOS_PER_DAY + i128::from(v.nanoseconds)) as f64 / 1e9
            })
        }
        other => {
            return internal_err!("{what} must be a duration or an interval, found {other}");
        }
    };
    Ok(seconds)
}

fn ticks_to_seconds<T: ArrowPrimitiveType<Native = i64>>(
    ticks: &PrimitiveArray<T>,
    ticks_per_second: f64,
) -> Float64Array {
    ticks.unary::<_, Float64Type>(|v| v as f64 / ticks_per_second)
}

/// Whether `data_type` can carry a span (an interval without months, or a duration).
pub fn is_span_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Interval(IntervalUnit::MonthDayNano | IntervalUnit::DayTime)
            | DataType::Duration(_)
    )
}

/// Converts a column of spans to ticks of `unit`, one per row; NULL rows give `None`.
///
/// `what` names the argument in errors. A span that is not strictly positive, or an interval
/// with months, is an error naming the row.
pub fn span_array_to_ticks(
    what: &str,
    spans: &ArrayRef,
    unit: TimeUnit,
) -> Result<Vec<Option<i64>>> {
    let nanos: Vec<Option<i128>> = match spans.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let array = downcast::<IntervalMonthDayNanoArray>(spans)?;
            let mut out = Vec::with_capacity(array.len());
            for (row, v) in array.iter().enumerate() {
                out.push(match v {
                    Some(v) => match month_day_nano_to_nanos(v) {
                        Some(n) => Some(n),
                        None => {
                            return exec_err!(
                                "{what}: the interval at row {row} has months, whose length varies"
                            );
                        }
                    },
                    None => None,
                });
            }
            out
        }
        DataType::Interval(IntervalUnit::DayTime) => downcast::<IntervalDayTimeArray>(spans)?
            .iter()
            .map(|v| {
                v.map(|v| {
                    i128::from(v.days) * NANOS_PER_DAY + i128::from(v.milliseconds) * 1_000_000
                })
            })
            .collect(),
        DataType::Duration(TimeUnit::Second) => downcast::<DurationSecondArray>(spans)?
            .iter()
            .map(|v| v.map(|v| i128::from(v) * 1_000_000_000))
            .collect(),
        DataType::Duration(TimeUnit::Millisecond) => downcast::<DurationMillisecondArray>(spans)?
            .iter()
            .map(|v| v.map(|v| i128::from(v) * 1_000_000))
            .collect(),
        DataType::Duration(TimeUnit::Microsecond) => downcast::<DurationMicrosecondArray>(spans)?
            .iter()
            .map(|v| v.map(|v| i128::from(v) * 1_000))
            .collect(),
        DataType::Duration(TimeUnit::Nanosecond) => downcast::<DurationNanosecondArray>(spans)?
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
        other => {
            return exec_err!("{what}: expected an interval or duration, found {other}");
        }
    };
    let mut ticks = Vec::with_capacity(nanos.len());
    for (row, n) in nanos.into_iter().enumerate() {
        match n {
            Some(n) if n <= 0 => {
                return exec_err!("{what}: the gap at row {row} must be positive");
            }
            Some(n) => ticks.push(Some(nanos_to_ticks(n, unit))),
            None => ticks.push(None),
        }
    }
    Ok(ticks)
}

/// The raw ticks of a timestamp array of any unit (NULL slots hold arbitrary values: read the
/// array's validity alongside). `what` names the column or argument in errors.
pub fn timestamp_ticks<'a>(what: &str, array: &'a ArrayRef) -> Result<&'a [i64]> {
    let ticks: &[i64] = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            array.as_primitive::<TimestampSecondType>().values()
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive::<TimestampMillisecondType>().values()
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            array.as_primitive::<TimestampMicrosecondType>().values()
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            array.as_primitive::<TimestampNanosecondType>().values()
        }
        other => return exec_err!("{what} must be a timestamp, found {other}"),
    };
    Ok(ticks)
}

fn downcast<T: 'static>(array: &ArrayRef) -> Result<&T> {
    match array.as_any().downcast_ref::<T>() {
        Some(a) => Ok(a),
        None => datafusion::common::internal_err!(
            "unexpected array type {} for {}",
            array.data_type(),
            std::any::type_name::<T>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::IntervalDayTime;

    use super::*;

    #[test]
    fn ticks_round_trip_to_epoch_ms() {
        assert_eq!(ticks_to_epoch_ms(5, TimeUnit::Second), 5_000);
        assert_eq!(ticks_to_epoch_ms(1_999, TimeUnit::Microsecond), 1);
        assert_eq!(ticks_to_epoch_ms(-1, TimeUnit::Microsecond), -1);
        assert_eq!(ticks_to_epoch_ms(3_000_000, TimeUnit::Nanosecond), 3);
    }

    #[test]
    fn spans_floor_to_ticks() {
        let thirty_minutes = parse_span_nanos("gap", "30 minutes").unwrap();
        assert_eq!(
            nanos_to_ticks(thirty_minutes, TimeUnit::Millisecond),
            1_800_000
        );
        assert_eq!(nanos_to_ticks(thirty_minutes, TimeUnit::Second), 1_800);
        assert_eq!(nanos_to_ticks(1_500_000_000, TimeUnit::Second), 1);
    }

    #[test]
    fn spans_become_seconds_rounded_once() {
        let millis: ArrayRef = Arc::new(DurationMillisecondArray::from(vec![Some(1_500), None]));
        assert_eq!(
            span_array_to_seconds("F: argument 'x'", &millis).unwrap(),
            Float64Array::from(vec![Some(1.5), None])
        );
        let day_time: ArrayRef = Arc::new(IntervalDayTimeArray::from(vec![IntervalDayTime::new(
            1, 250,
        )]));
        assert_eq!(
            span_array_to_seconds("F: argument 'x'", &day_time)
                .unwrap()
                .value(0),
            86_400.25
        );
        // 0.1 s as nanoseconds, divided once: the nearest double to 0.1 + 1 day, exactly
        let nanos: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(0, 1, 100_000_000),
        ]));
        assert_eq!(
            span_array_to_seconds("F: argument 'x'", &nanos)
                .unwrap()
                .value(0),
            86_400.1
        );
    }

    #[test]
    fn spans_with_months_name_the_row() {
        let intervals: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            None,
            Some(IntervalMonthDayNano::new(1, 0, 0)),
        ]));
        let err = span_array_to_seconds("PROPAVG: argument 'x'", &intervals)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "PROPAVG: argument 'x' has an interval with months (1 mons 0 days 0 ns) at row 1"
            ),
            "{err}"
        );
    }

    #[test]
    fn months_are_rejected() {
        let err = parse_span_nanos("sessionlake.gap", "1 month").unwrap_err();
        assert!(err.to_string().contains("months"), "{err}");
        let err = parse_span_nanos("sessionlake.gap", "soon").unwrap_err();
        assert!(
            err.to_string().contains("'soon' is not an interval"),
            "{err}"
        );
    }
}
