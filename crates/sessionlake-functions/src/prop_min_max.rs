//! `PROPMIN(x)` and `PROPMAX(x)`: Amplitude's smallest and largest value of a property, numbers
//! keeping their type, durations and intervals in seconds, strings of any encoding as `Utf8`.
//! One file for both, as one idea with a direction.

use std::fmt::Debug;
use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Decimal32Type, Decimal64Type, Decimal128Type,
    Decimal256Type, Field, FieldRef, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::property::{
    ARGUMENT, NumericKind, StrColumn, numeric_kind, single_argument, to_seconds, validity,
};
use crate::selection::{for_each_taken, taken_rows};
use crate::types::is_string_type;

make_udaf_function!(PropMin, propmin_udaf, propmin, x);
make_udaf_function!(PropMax, propmax_udaf, propmax, x);

/// Which end of the order an aggregate keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Extreme {
    Min,
    Max,
}

impl Extreme {
    fn function(self) -> &'static str {
        match self {
            Self::Min => "PROPMIN",
            Self::Max => "PROPMAX",
        }
    }

    /// Whether `candidate` replaces `current` (numbers in total order: floats by IEEE total
    /// order, so NaN sorts above +inf and -0.0 below 0.0).
    fn replaces<N: ArrowNativeTypeOp>(self, candidate: N, current: N) -> bool {
        match self {
            Self::Min => candidate.is_lt(current),
            Self::Max => candidate.is_gt(current),
        }
    }

    /// Whether `candidate` replaces `current` (strings bytewise).
    fn replaces_str(self, candidate: &str, current: &str) -> bool {
        match self {
            Self::Min => candidate < current,
            Self::Max => candidate > current,
        }
    }
}

/// How an argument type is compared and returned.
#[derive(Debug, Clone, PartialEq)]
enum Input {
    /// Integers, floats and decimals: compared and returned in their own type.
    Number(DataType),
    /// Durations and intervals: compared and returned as `Float64` seconds.
    Seconds,
    /// Strings of any encoding: compared bytewise, returned as `Utf8`.
    Text,
}

impl Input {
    fn of(extreme: Extreme, data_type: &DataType) -> Result<Self> {
        if is_string_type(data_type) {
            return Ok(Self::Text);
        }
        match numeric_kind(extreme.function(), data_type)? {
            Some(NumericKind::Seconds) => Ok(Self::Seconds),
            Some(NumericKind::Integer | NumericKind::Float) => Ok(Self::Number(data_type.clone())),
            None => plan_err!(
                "{}: argument '{ARGUMENT}' must be numeric, a string, a duration or an \
                 interval, found {data_type}",
                extreme.function()
            ),
        }
    }

    fn result_type(&self) -> DataType {
        match self {
            Self::Number(data_type) => data_type.clone(),
            Self::Seconds => DataType::Float64,
            Self::Text => DataType::Utf8,
        }
    }
}

fn coerce(extreme: Extreme, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let data_type = single_argument(extreme.function(), arg_types)?;
    let coerced = match data_type {
        DataType::Null => DataType::Int64,
        // strings stay in their encoding (read without copying); dictionaries of anything else
        // are unpacked by DataFusion's cast
        t if is_string_type(t) => t.clone(),
        DataType::Dictionary(_, value_type) => value_type.as_ref().clone(),
        t => t.clone(),
    };
    Input::of(extreme, &coerced)?;
    Ok(vec![coerced])
}

fn planned_input(extreme: Extreme, fields: &[FieldRef]) -> Result<Input> {
    match fields {
        [field] => Input::of(extreme, field.data_type()),
        _ => plan_err!(
            "{}: expected {}({ARGUMENT}) with one argument",
            extreme.function(),
            extreme.function()
        ),
    }
}

/// Calls `$make::<T>(args)` for the Arrow primitive type `T` of a numeric `DataType`.
macro_rules! with_number_type {
    ($function:expr, $data_type:expr, $make:ident ( $($arg:expr),* )) => {
        match $data_type {
            DataType::Int8 => $make::<Int8Type>($($arg),*),
            DataType::Int16 => $make::<Int16Type>($($arg),*),
            DataType::Int32 => $make::<Int32Type>($($arg),*),
            DataType::Int64 => $make::<Int64Type>($($arg),*),
            DataType::UInt8 => $make::<UInt8Type>($($arg),*),
            DataType::UInt16 => $make::<UInt16Type>($($arg),*),
            DataType::UInt32 => $make::<UInt32Type>($($arg),*),
            DataType::UInt64 => $make::<UInt64Type>($($arg),*),
            DataType::Float16 => $make::<Float16Type>($($arg),*),
            DataType::Float32 => $make::<Float32Type>($($arg),*),
            DataType::Float64 => $make::<Float64Type>($($arg),*),
            DataType::Decimal32(..) => $make::<Decimal32Type>($($arg),*),
            DataType::Decimal64(..) => $make::<Decimal64Type>($($arg),*),
            DataType::Decimal128(..) => $make::<Decimal128Type>($($arg),*),
            DataType::Decimal256(..) => $make::<Decimal256Type>($($arg),*),
            other => internal_err!("{}: no numeric accumulator for {other}", $function),
        }
    };
}

fn accumulator(extreme: Extreme, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
    match planned_input(extreme, args.expr_fields)? {
        Input::Text => Ok(Box::new(TextAccumulator {
            extreme,
            value: None,
        })),
        Input::Seconds => number_accumulator::<Float64Type>(extreme, true, &DataType::Float64),
        Input::Number(data_type) => with_number_type!(
            extreme.function(),
            &data_type,
            number_accumulator(extreme, false, &data_type)
        ),
    }
}

fn groups_accumulator(
    extreme: Extreme,
    args: AccumulatorArgs,
) -> Result<Box<dyn GroupsAccumulator>> {
    match planned_input(extreme, args.expr_fields)? {
        Input::Text => Ok(Box::new(TextGroups {
            extreme,
            values: Vec::new(),
            seen: Vec::new(),
            heap_bytes: 0,
        })),
        Input::Seconds => number_groups::<Float64Type>(extreme, true, &DataType::Float64),
        Input::Number(data_type) => with_number_type!(
            extreme.function(),
            &data_type,
            number_groups(extreme, false, &data_type)
        ),
    }
}

fn number_accumulator<T: ArrowPrimitiveType + Debug>(
    extreme: Extreme,
    seconds: bool,
    data_type: &DataType,
) -> Result<Box<dyn Accumulator>> {
    Ok(Box::new(NumberAccumulator::<T> {
        extreme,
        seconds,
        data_type: data_type.clone(),
        value: None,
    }))
}

fn number_groups<T: ArrowPrimitiveType + Send + Debug>(
    extreme: Extreme,
    seconds: bool,
    data_type: &DataType,
) -> Result<Box<dyn GroupsAccumulator>> {
    Ok(Box::new(NumberGroups::<T> {
        extreme,
        seconds,
        data_type: data_type.clone(),
        values: Vec::new(),
        seen: Vec::new(),
    }))
}

/// Implements `AggregateUDFImpl` for `PROPMIN` or `PROPMAX`; only the name, the direction and
/// the documentation differ.
macro_rules! extreme_udaf {
    ($udaf:ident, $name:literal, $extreme:expr, $state:literal) => {
        impl Default for $udaf {
            fn default() -> Self {
                Self {
                    signature: Signature::user_defined(Volatility::Immutable),
                }
            }
        }

        impl AggregateUDFImpl for $udaf {
            fn name(&self) -> &str {
                $name
            }

            fn signature(&self) -> &Signature {
                &self.signature
            }

            fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
                coerce($extreme, arg_types)
            }

            fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
                let data_type = single_argument($extreme.function(), arg_types)?;
                Ok(Input::of($extreme, data_type)?.result_type())
            }

            fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
                Ok(vec![Arc::new(Field::new(
                    format_state_name(args.name, $state),
                    args.return_type().clone(),
                    true,
                ))])
            }

            /// DISTINCT changes nothing for a minimum or a maximum, so it is accepted.
            fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
                accumulator($extreme, args)
            }

            fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
                true
            }

            fn create_groups_accumulator(
                &self,
                args: AccumulatorArgs,
            ) -> Result<Box<dyn GroupsAccumulator>> {
                groups_accumulator($extreme, args)
            }

            fn order_sensitivity(&self) -> AggregateOrderSensitivity {
                AggregateOrderSensitivity::Insensitive
            }

            fn reverse_expr(&self) -> ReversedUDAF {
                ReversedUDAF::Identical
            }

            fn documentation(&self) -> Option<&Documentation> {
                self.doc()
            }
        }
    };
}

#[user_doc(
    doc_section(label = "Property Functions"),
    description = "The smallest value of a property over the rows of each group, NULLs \
skipped. Integers, floats and decimals keep their type (floats in IEEE total order: -0.0 below \
0.0, NaN above every number). Durations (any unit) and intervals without months are compared \
and returned as DOUBLE **seconds**; an interval with months is an error. Strings of any \
encoding (VARCHAR, Utf8View, dictionary) are compared bytewise and returned as VARCHAR. A group \
with no non-NULL value gives NULL.",
    syntax_example = "PROPMIN(x)",
    sql_example = r#"```sql
> SELECT country, PROPMIN(price), PROPMIN(app_version) FROM events GROUP BY country;
> SELECT PROPMIN(arrow_cast(duration_ms, 'Duration(Millisecond)')) AS shortest_seconds
  FROM sessions('events');
```"#,
    argument(
        name = "x",
        description = "A property: an integer, a float, a decimal, a duration, an interval \
without months or a string."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PropMin {
    signature: Signature,
}

extreme_udaf!(PropMin, "propmin", Extreme::Min, "min");

#[user_doc(
    doc_section(label = "Property Functions"),
    description = "The largest value of a property over the rows of each group, NULLs \
skipped. Integers, floats and decimals keep their type (floats in IEEE total order: NaN above \
every number, 0.0 above -0.0). Durations (any unit) and intervals without months are compared \
and returned as DOUBLE **seconds**; an interval with months is an error. Strings of any \
encoding (VARCHAR, Utf8View, dictionary) are compared bytewise and returned as VARCHAR. A group \
with no non-NULL value gives NULL.",
    syntax_example = "PROPMAX(x)",
    sql_example = r#"```sql
> SELECT country, PROPMAX(price), PROPMAX(app_version) FROM events GROUP BY country;
> SELECT PROPMAX(arrow_cast(duration_ms, 'Duration(Millisecond)')) AS longest_seconds
  FROM sessions('events');
```"#,
    argument(
        name = "x",
        description = "A property: an integer, a float, a decimal, a duration, an interval \
without months or a string."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PropMax {
    signature: Signature,
}

extreme_udaf!(PropMax, "propmax", Extreme::Max, "max");

fn one_array(function: &str, values: &[ArrayRef]) -> Result<ArrayRef> {
    match values {
        [array] => Ok(Arc::clone(array)),
        _ => internal_err!("{function}: expected one array, found {}", values.len()),
    }
}

/// The input of a numeric accumulator as `T` (spans converted to seconds).
fn number_input(extreme: Extreme, seconds: bool, values: &[ArrayRef]) -> Result<ArrayRef> {
    let array = one_array(extreme.function(), values)?;
    if seconds {
        to_seconds(extreme.function(), &array)
    } else {
        Ok(array)
    }
}

fn primitive<T: ArrowPrimitiveType>(
    extreme: Extreme,
    array: &ArrayRef,
) -> Result<&PrimitiveArray<T>> {
    match array.as_primitive_opt::<T>() {
        Some(values) => Ok(values),
        None => internal_err!(
            "{}: unexpected array type {}",
            extreme.function(),
            array.data_type()
        ),
    }
}

#[derive(Debug)]
struct NumberAccumulator<T: ArrowPrimitiveType> {
    extreme: Extreme,
    seconds: bool,
    data_type: DataType,
    value: Option<T::Native>,
}

impl<T: ArrowPrimitiveType> NumberAccumulator<T> {
    fn take(&mut self, array: &ArrayRef) -> Result<()> {
        let values = primitive::<T>(self.extreme, array)?;
        let taken = taken_rows(values, None);
        let raw = values.values();
        let extreme = self.extreme;
        let mut best = self.value;
        for_each_taken(taken.as_ref(), values.len(), |row| {
            let candidate = raw[row];
            if best.is_none_or(|current| extreme.replaces(candidate, current)) {
                best = Some(candidate);
            }
            Ok(())
        })?;
        self.value = best;
        Ok(())
    }
}

impl<T: ArrowPrimitiveType + Debug> Accumulator for NumberAccumulator<T> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let array = number_input(self.extreme, self.seconds, values)?;
        self.take(&array)
    }

    /// The state is a value of the result type: seconds are not converted again.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let array = one_array(self.extreme.function(), states)?;
        self.take(&array)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        ScalarValue::new_primitive::<T>(self.value, &self.data_type)
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

#[derive(Debug)]
struct NumberGroups<T: ArrowPrimitiveType> {
    extreme: Extreme,
    seconds: bool,
    data_type: DataType,
    values: Vec<T::Native>,
    seen: Vec<bool>,
}

impl<T: ArrowPrimitiveType> NumberGroups<T> {
    fn take(
        &mut self,
        array: &ArrayRef,
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.values.resize(total_num_groups, T::Native::default());
        self.seen.resize(total_num_groups, false);
        let values = primitive::<T>(self.extreme, array)?;
        let taken = taken_rows(values, opt_filter);
        let raw = values.values();
        let extreme = self.extreme;
        for_each_taken(taken.as_ref(), values.len(), |row| {
            let group = group_indices[row];
            let candidate = raw[row];
            if !self.seen[group] || extreme.replaces(candidate, self.values[group]) {
                self.values[group] = candidate;
                self.seen[group] = true;
            }
            Ok(())
        })
    }
}

impl<T: ArrowPrimitiveType + Send> GroupsAccumulator for NumberGroups<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let array = number_input(self.extreme, self.seconds, values)?;
        self.take(&array, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let values = emit_to.take_needed(&mut self.values);
        let seen = emit_to.take_needed(&mut self.seen);
        Ok(Arc::new(
            PrimitiveArray::<T>::new(values.into(), validity(&seen))
                .with_data_type(self.data_type.clone()),
        ))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let array = one_array(self.extreme.function(), values)?;
        self.take(&array, group_indices, None, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let array = number_input(self.extreme, self.seconds, values)?;
        let values = primitive::<T>(self.extreme, &array)?;
        let taken = taken_rows(values, opt_filter);
        Ok(vec![Arc::new(
            PrimitiveArray::<T>::new(values.values().clone(), taken)
                .with_data_type(self.data_type.clone()),
        )])
    }

    fn size(&self) -> usize {
        self.values.capacity() * size_of::<T::Native>() + self.seen.capacity()
    }
}

#[derive(Debug)]
struct TextAccumulator {
    extreme: Extreme,
    value: Option<String>,
}

impl TextAccumulator {
    fn take(&mut self, values: &[ArrayRef]) -> Result<()> {
        let array = one_array(self.extreme.function(), values)?;
        let column = StrColumn::try_new(self.extreme.function(), &array)?;
        let taken = taken_rows(array.as_ref(), None);
        let extreme = self.extreme;
        let mut best: Option<&str> = None;
        for_each_taken(taken.as_ref(), array.len(), |row| {
            let candidate = column.value(row);
            if best.is_none_or(|current| extreme.replaces_str(candidate, current)) {
                best = Some(candidate);
            }
            Ok(())
        })?;
        // one copy per batch, of the batch's best value only
        if let Some(candidate) = best
            && self
                .value
                .as_deref()
                .is_none_or(|current| extreme.replaces_str(candidate, current))
        {
            let value = self.value.get_or_insert_with(String::new);
            value.clear();
            value.push_str(candidate);
        }
        Ok(())
    }
}

impl Accumulator for TextAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.take(values)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.take(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(self.value.clone()))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.value.as_ref().map_or(0, String::capacity)
    }
}

/// The best string of each group, each slot's buffer reused when a better value arrives.
#[derive(Debug)]
struct TextGroups {
    extreme: Extreme,
    values: Vec<String>,
    seen: Vec<bool>,
    /// Bytes held by the strings of `values`, kept current so `size` is O(1).
    heap_bytes: usize,
}

impl TextGroups {
    fn take(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.values.resize_with(total_num_groups, String::new);
        self.seen.resize(total_num_groups, false);
        let array = one_array(self.extreme.function(), values)?;
        let column = StrColumn::try_new(self.extreme.function(), &array)?;
        let taken = taken_rows(array.as_ref(), opt_filter);
        let extreme = self.extreme;
        for_each_taken(taken.as_ref(), array.len(), |row| {
            let group = group_indices[row];
            let candidate = column.value(row);
            let slot = &mut self.values[group];
            if !self.seen[group] || extreme.replaces_str(candidate, slot) {
                self.heap_bytes -= slot.capacity();
                slot.clear();
                slot.push_str(candidate);
                self.heap_bytes += slot.capacity();
                self.seen[group] = true;
            }
            Ok(())
        })
    }
}

impl GroupsAccumulator for TextGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.take(values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let values = emit_to.take_needed(&mut self.values);
        let seen = emit_to.take_needed(&mut self.seen);
        self.heap_bytes -= values.iter().map(String::capacity).sum::<usize>();
        let strings: StringArray = values
            .iter()
            .zip(&seen)
            .map(|(value, &seen)| seen.then_some(value.as_str()))
            .collect();
        Ok(Arc::new(strings))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.take(values, group_indices, None, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let array = one_array(self.extreme.function(), values)?;
        let taken = taken_rows(array.as_ref(), opt_filter);
        let utf8 = cast(&array, &DataType::Utf8)?;
        let strings = utf8.as_string::<i32>();
        Ok(vec![Arc::new(StringArray::new(
            strings.offsets().clone(),
            strings.values().clone(),
            taken,
        ))])
    }

    fn size(&self) -> usize {
        self.values.capacity() * size_of::<String>() + self.seen.capacity() + self.heap_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate_testing::{
        Arg, Row, Subject, check_against_naive, property_float, property_text, string_types,
    };
    use datafusion::arrow::array::{
        Decimal128Array, DictionaryArray, DurationMillisecondArray, Float64Array, Int32Array,
        Int64Array, IntervalMonthDayNanoArray, StringViewArray, UInt64Array,
    };
    use datafusion::arrow::datatypes::IntervalMonthDayNano;
    use datafusion::logical_expr::AggregateUDF;
    use std::cmp::Ordering;

    fn udaf(extreme: Extreme) -> Arc<AggregateUDF> {
        match extreme {
            Extreme::Min => propmin_udaf(),
            Extreme::Max => propmax_udaf(),
        }
    }

    fn accumulators(
        extreme: Extreme,
        data_type: &DataType,
    ) -> (Box<dyn Accumulator>, Box<dyn GroupsAccumulator>) {
        crate::aggregate_testing::accumulators(&udaf(extreme), &[Arg::Column(data_type.clone())])
    }

    /// `(min, max)` of one array through the `Accumulator`, checked against the
    /// `GroupsAccumulator` with a single group.
    fn extremes(array: ArrayRef) -> (ScalarValue, ScalarValue) {
        let result = |extreme| {
            let (mut acc, mut groups) = accumulators(extreme, array.data_type());
            acc.update_batch(&[Arc::clone(&array)]).unwrap();
            let single = acc.evaluate().unwrap();
            groups
                .update_batch(&[Arc::clone(&array)], &vec![0; array.len()], None, 1)
                .unwrap();
            let grouped = groups.evaluate(EmitTo::All).unwrap();
            assert_eq!(ScalarValue::try_from_array(&grouped, 0).unwrap(), single);
            single
        };
        (result(Extreme::Min), result(Extreme::Max))
    }

    #[test]
    fn numbers_keep_their_type() {
        assert_eq!(
            extremes(Arc::new(Int32Array::from(vec![
                Some(3),
                None,
                Some(-2),
                Some(7)
            ]))),
            (ScalarValue::Int32(Some(-2)), ScalarValue::Int32(Some(7)))
        );
        assert_eq!(
            extremes(Arc::new(Int64Array::from(vec![5, 1]))),
            (ScalarValue::Int64(Some(1)), ScalarValue::Int64(Some(5)))
        );
        assert_eq!(
            extremes(Arc::new(UInt64Array::from(vec![u64::MAX, 1]))),
            (
                ScalarValue::UInt64(Some(1)),
                ScalarValue::UInt64(Some(u64::MAX))
            )
        );
        assert_eq!(
            extremes(Arc::new(Float64Array::from(vec![
                Some(1.5),
                Some(f64::NAN),
                None,
                Some(-0.0),
                Some(0.0)
            ]))),
            (
                ScalarValue::Float64(Some(-0.0)),
                ScalarValue::Float64(Some(f64::NAN))
            )
        );
        let decimals = Decimal128Array::from(vec![Some(1_250), None, Some(-5)])
            .with_precision_and_scale(10, 2)
            .unwrap();
        assert_eq!(
            extremes(Arc::new(decimals)),
            (
                ScalarValue::Decimal128(Some(-5), 10, 2),
                ScalarValue::Decimal128(Some(1_250), 10, 2)
            )
        );
    }

    #[test]
    fn spans_are_seconds() {
        assert_eq!(
            extremes(Arc::new(DurationMillisecondArray::from(vec![
                Some(90_000),
                None,
                Some(1_500)
            ]))),
            (
                ScalarValue::Float64(Some(1.5)),
                ScalarValue::Float64(Some(90.0))
            )
        );
        assert_eq!(
            extremes(Arc::new(IntervalMonthDayNanoArray::from(vec![
                IntervalMonthDayNano::new(0, 1, 0),
                IntervalMonthDayNano::new(0, 0, 2_000_000_000),
            ]))),
            (
                ScalarValue::Float64(Some(2.0)),
                ScalarValue::Float64(Some(86_400.0))
            )
        );
        let months: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(1, 0, 0),
        ]));
        let (mut acc, _) = accumulators(Extreme::Max, months.data_type());
        let err = acc.update_batch(&[months]).unwrap_err().to_string();
        assert!(
            err.contains("PROPMAX: argument 'x' has an interval with months"),
            "{err}"
        );
    }

    #[test]
    fn strings_of_every_encoding_give_utf8() {
        let plain: ArrayRef = Arc::new(StringArray::from(vec![
            Some("b"),
            None,
            Some("ab"),
            Some("c"),
        ]));
        let view: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("b"),
            None,
            Some("ab"),
            Some("a long string beyond the inline view length"),
        ]));
        let dictionary: DictionaryArray<Int32Type> = vec![Some("b"), None, Some("ab"), Some("b")]
            .into_iter()
            .collect();
        let text = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
        assert_eq!(extremes(plain), (text("ab"), text("c")));
        assert_eq!(
            extremes(view),
            (
                text("a long string beyond the inline view length"),
                text("b")
            )
        );
        assert_eq!(extremes(Arc::new(dictionary)), (text("ab"), text("b")));
    }

    #[test]
    fn empty_and_null_groups_are_null() {
        let (mut acc, mut groups) = accumulators(Extreme::Min, &DataType::Utf8);
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Utf8(None));
        let values: ArrayRef = Arc::new(StringArray::from(vec![None, Some("x")]));
        groups.update_batch(&[values], &[0, 1], None, 3).unwrap();
        let result = groups.evaluate(EmitTo::All).unwrap();
        assert_eq!(
            result.as_string::<i32>(),
            &StringArray::from(vec![None, Some("x"), None])
        );
        assert_eq!(groups.size(), 0);
        let (mut acc, _) = accumulators(Extreme::Max, &DataType::Null);
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(None));
    }

    #[test]
    fn wrong_types_are_planning_errors() {
        let err = PropMax::default()
            .coerce_types(&[DataType::Boolean])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "PROPMAX: argument 'x' must be numeric, a string, a duration or an interval, \
                 found Boolean"
            ),
            "{err}"
        );
        let err = PropMin::default()
            .coerce_types(&[DataType::Int64, DataType::Int64])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PROPMIN: expected PROPMIN(x) with one argument, found 2"),
            "{err}"
        );
    }

    /// The smallest or largest of the rows' values in the order `compare`; `None` when no
    /// row has one.
    fn naive_extreme<T>(
        extreme: Extreme,
        rows: &[&Row],
        value: fn(i64) -> T,
        compare: fn(&T, &T) -> Ordering,
    ) -> Option<T> {
        let values = rows.iter().filter_map(|r| r.value).map(value);
        match extreme {
            Extreme::Min => values.min_by(compare),
            Extreme::Max => values.max_by(compare),
        }
    }

    /// Integers, floats in IEEE total order (NaN of both signs, both zeros) and strings of
    /// every encoding, for both directions.
    #[test]
    fn accumulators_match_naive() {
        let mut subjects = Vec::new();
        for extreme in [Extreme::Min, Extreme::Max] {
            subjects.push(Subject::new(
                &udaf(extreme),
                &[Arg::integer_values()],
                move |rows| ScalarValue::Int64(naive_extreme(extreme, rows, |v| v, Ord::cmp)),
            ));
            subjects.push(Subject::new(
                &udaf(extreme),
                &[Arg::float_values()],
                move |rows| {
                    ScalarValue::Float64(naive_extreme(
                        extreme,
                        rows,
                        property_float,
                        f64::total_cmp,
                    ))
                },
            ));
            for data_type in string_types() {
                subjects.push(Subject::new(
                    &udaf(extreme),
                    &[Arg::text_values(data_type)],
                    move |rows| {
                        ScalarValue::Utf8(naive_extreme(extreme, rows, property_text, Ord::cmp))
                    },
                ));
            }
        }
        check_against_naive(&subjects, 31);
    }
}
