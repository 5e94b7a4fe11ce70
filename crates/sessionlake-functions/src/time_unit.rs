//! Conversions between intervals, durations and the ticks of a timestamp column's unit.
//!
//! Session rules compare integer differences of one column's ticks with a gap or a maximum
//! length, so every interval is turned into ticks of that column's unit once, at planning time.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, DurationMicrosecondArray, DurationMillisecondArray,
    DurationNanosecondArray, DurationSecondArray, IntervalDayTimeArray, IntervalMonthDayNanoArray,
};
use datafusion::arrow::compute::kernels::cast_utils::parse_interval_month_day_nano;
use datafusion::arrow::datatypes::{
    DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};

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

/// Parses an option value such as `30 minutes` or `1 day` into nanoseconds.
///
/// `what` names the option in errors. Months and years are rejected: their length varies.
pub fn parse_span_nanos(what: &str, text: &str) -> Result<i128> {
    let interval = match parse_interval_month_day_nano(text.trim()) {
        Ok(interval) => interval,
        Err(e) => {
            return plan_err!("{what}: '{text}' is not an interval such as '30 minutes' ({e})");
        }
    };
    match month_day_nano_to_nanos(interval) {
        Some(nanos) => Ok(nanos),
        None => plan_err!("{what}: '{text}' has months or years, whose length varies"),
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
