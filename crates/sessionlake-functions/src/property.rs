//! What the property aggregates (`PROPSUM`, `PROPAVG`, `PROPMIN`, `PROPMAX`, `PROPCOUNT`) share:
//! the check of their one argument, its conversion to the values they aggregate (durations and
//! intervals as seconds), string columns of any encoding, and the rows of a batch that take part.
//!
//! They implement their `GroupsAccumulator`s here rather than wrapping DataFusion's `sum`, `avg`,
//! `min` and `max`: ours must fail on integer overflow where `sum` wraps, return seconds for
//! durations and intervals, return `Utf8` for every string encoding and name the function in
//! every error, so a wrapper would convert the input anyway and leave only a plain loop to share.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, StringArray, StringViewArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options};
use datafusion::arrow::datatypes::{DataType, IntervalUnit};
use datafusion::common::{Result, exec_err, internal_err, plan_err};

use crate::time_unit::span_array_to_seconds;

/// The name of the one argument, as errors and documentation call it.
pub(crate) const ARGUMENT: &str = "x";

/// How a numeric property argument is aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumericKind {
    /// Any signed or unsigned integer: summed exactly as `Int64`.
    Integer,
    /// Floats and decimals: aggregated as `Float64`.
    Float,
    /// Durations of any unit and intervals without months: aggregated as `Float64` seconds.
    Seconds,
}

/// The kind of a numeric argument type, or `None` for a type that is not numeric.
///
/// A year-month interval is an error: months have no fixed length in seconds.
pub(crate) fn numeric_kind(function: &str, data_type: &DataType) -> Result<Option<NumericKind>> {
    let kind = match data_type {
        DataType::Null => Some(NumericKind::Integer),
        t if t.is_integer() => Some(NumericKind::Integer),
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => Some(NumericKind::Float),
        DataType::Duration(_)
        | DataType::Interval(IntervalUnit::DayTime | IntervalUnit::MonthDayNano) => {
            Some(NumericKind::Seconds)
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            return plan_err!(
                "{function}: argument '{ARGUMENT}' must not be a year-month interval, whose \
                 length in seconds varies, found {data_type}"
            );
        }
        _ => None,
    };
    Ok(kind)
}

/// The one argument type of a property aggregate, checking the count.
pub(crate) fn single_argument<'a>(
    function: &str,
    arg_types: &'a [DataType],
) -> Result<&'a DataType> {
    match arg_types {
        [data_type] => Ok(data_type),
        _ => plan_err!(
            "{function}: expected {function}({ARGUMENT}) with one argument, found {} arguments",
            arg_types.len()
        ),
    }
}

/// The argument type a numeric property aggregate asks DataFusion to cast to: a dictionary of
/// numbers is unpacked to its value type, a bare NULL becomes `Int64`.
pub(crate) fn coerce_numeric(function: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let data_type = single_argument(function, arg_types)?;
    let unpacked = match data_type {
        DataType::Dictionary(_, value_type) => value_type.as_ref(),
        other => other,
    };
    match numeric_kind(function, unpacked)? {
        Some(_) if unpacked.is_null() => Ok(vec![DataType::Int64]),
        Some(_) => Ok(vec![unpacked.clone()]),
        None => plan_err!(
            "{function}: argument '{ARGUMENT}' must be numeric, a duration or an interval, \
             found {data_type}"
        ),
    }
}

/// The kind of an argument that `coerce_numeric` accepted.
pub(crate) fn planned_kind(function: &str, data_type: &DataType) -> Result<NumericKind> {
    match numeric_kind(function, data_type)? {
        Some(kind) => Ok(kind),
        None => {
            internal_err!("{function}: argument '{ARGUMENT}' of type {data_type} was not coerced")
        }
    }
}

/// An integer column as `Int64`; an unsigned value above `i64::MAX` is an overflow error.
pub(crate) fn to_int64(function: &str, array: &ArrayRef) -> Result<ArrayRef> {
    if array.data_type() == &DataType::Int64 {
        return Ok(Arc::clone(array));
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    match cast_with_options(array, &DataType::Int64, &options) {
        Ok(converted) => Ok(converted),
        Err(_) => exec_err!(
            "{function}: integer overflow: a value of argument '{ARGUMENT}' ({}) does not fit \
             in Int64",
            array.data_type()
        ),
    }
}

/// A numeric column as `Float64`: integers, floats and decimals by value, durations and
/// intervals in seconds.
pub(crate) fn to_float64(function: &str, kind: NumericKind, array: &ArrayRef) -> Result<ArrayRef> {
    match kind {
        NumericKind::Seconds => to_seconds(function, array),
        NumericKind::Integer | NumericKind::Float => {
            if array.data_type() == &DataType::Float64 {
                Ok(Arc::clone(array))
            } else {
                Ok(cast(array, &DataType::Float64)?)
            }
        }
    }
}

/// The values a numeric aggregate works on: `Int64` for integers, `Float64` (seconds for spans)
/// for the rest.
pub(crate) fn to_exact(function: &str, kind: NumericKind, array: &ArrayRef) -> Result<ArrayRef> {
    match kind {
        NumericKind::Integer => to_int64(function, array),
        NumericKind::Float | NumericKind::Seconds => to_float64(function, kind, array),
    }
}

/// A duration or interval column in seconds; an interval with months is an error.
pub(crate) fn to_seconds(function: &str, array: &ArrayRef) -> Result<ArrayRef> {
    let what = format!("{function}: argument '{ARGUMENT}'");
    Ok(Arc::new(span_array_to_seconds(&what, array)?))
}

/// The validity of `len` emitted groups from their "has a value" flags.
pub(crate) fn validity(seen: &[bool]) -> Option<NullBuffer> {
    if seen.iter().all(|&s| s) {
        None
    } else {
        Some(NullBuffer::from(seen))
    }
}

/// A string column of any encoding, read row by row without copying.
pub(crate) struct StrColumn<'a> {
    values: StrValues<'a>,
    /// For a dictionary: the index into `values` of each row.
    keys: Option<Vec<usize>>,
}

enum StrValues<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> StrValues<'a> {
    fn try_new(function: &str, array: &'a dyn Array) -> Result<Self> {
        match array.data_type() {
            DataType::Utf8 => Ok(Self::Utf8(array.as_string::<i32>())),
            DataType::LargeUtf8 => Ok(Self::Large(array.as_string::<i64>())),
            DataType::Utf8View => Ok(Self::View(array.as_string_view())),
            other => {
                internal_err!("{function}: argument '{ARGUMENT}' is not a string, found {other}")
            }
        }
    }

    fn value(&self, index: usize) -> &'a str {
        match self {
            Self::Utf8(a) => a.value(index),
            Self::Large(a) => a.value(index),
            Self::View(a) => a.value(index),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Utf8(a) => a.len(),
            Self::Large(a) => a.len(),
            Self::View(a) => a.len(),
        }
    }
}

impl<'a> StrColumn<'a> {
    pub(crate) fn try_new(function: &str, array: &'a ArrayRef) -> Result<Self> {
        match array.data_type() {
            DataType::Dictionary(_, _) => {
                let dictionary = array.as_any_dictionary();
                // a dictionary without entries has only NULL rows, whose keys are never read
                // (and `normalized_keys` does not accept it)
                let keys = if dictionary.values().is_empty() {
                    vec![0; array.len()]
                } else {
                    dictionary.normalized_keys()
                };
                Ok(Self {
                    values: StrValues::try_new(function, dictionary.values().as_ref())?,
                    keys: Some(keys),
                })
            }
            _ => Ok(Self {
                values: StrValues::try_new(function, array.as_ref())?,
                keys: None,
            }),
        }
    }

    /// The string of a row that is not NULL.
    pub(crate) fn value(&self, row: usize) -> &'a str {
        match &self.keys {
            Some(keys) => self.values.value(keys[row]),
            None => self.values.value(row),
        }
    }

    /// For a dictionary: the index into its values of each row (arbitrary for NULL rows).
    pub(crate) fn keys(&self) -> Option<&[usize]> {
        self.keys.as_deref()
    }

    /// The number of entries a dictionary holds (the column's length otherwise).
    pub(crate) fn dictionary_len(&self) -> usize {
        self.values.len()
    }

    /// The string stored at a dictionary index.
    pub(crate) fn dictionary_value(&self, index: usize) -> &'a str {
        self.values.value(index)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "a test that fails to unwrap fails, which is what it should do"
)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{DictionaryArray, UInt64Array};
    use datafusion::arrow::datatypes::Int32Type;

    #[test]
    fn large_unsigned_values_overflow_int64() {
        let values: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX]));
        let err = to_int64("PROPSUM", &values).unwrap_err().to_string();
        assert!(err.contains("PROPSUM: integer overflow"), "{err}");
    }

    /// Regression: a dictionary batch with no entries (all NULL) made `normalized_keys` panic.
    #[test]
    fn dictionary_without_entries_is_read_as_all_null() {
        let dictionary: DictionaryArray<Int32Type> = vec![None::<&str>, None].into_iter().collect();
        let array: ArrayRef = Arc::new(dictionary);
        let column = StrColumn::try_new("PROPCOUNT", &array).unwrap();
        assert_eq!(column.keys(), Some(&[0, 0][..]));
        assert_eq!(column.dictionary_len(), 0);
    }

    #[test]
    fn dictionary_strings_read_through_keys() {
        let dictionary: DictionaryArray<Int32Type> = vec!["b", "a", "b"].into_iter().collect();
        let array: ArrayRef = Arc::new(dictionary);
        let column = StrColumn::try_new("PROPMIN", &array).unwrap();
        assert_eq!(column.value(2), "b");
        assert_eq!(column.dictionary_len(), 2);
        assert_eq!(column.keys(), Some(&[0, 1, 0][..]));
        assert_eq!(column.dictionary_value(1), "a");
        assert!(matches!(
            coerce_numeric("PROPSUM", &[DataType::Utf8]),
            Err(e) if e.to_string().contains(
                "PROPSUM: argument 'x' must be numeric, a duration or an interval, found Utf8")
        ));
        assert!(
            coerce_numeric("PROPSUM", &[])
                .unwrap_err()
                .to_string()
                .contains("PROPSUM: expected PROPSUM(x) with one argument, found 0 arguments")
        );
    }
}
