//! `PROPSUM(x)`: Amplitude's sum of a numeric property; durations and intervals are summed in
//! seconds, so `PROPSUM(duration_ms)` over `sessions(...)` is the total session time.

use std::fmt::Debug;
use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray};
use datafusion::arrow::datatypes::{
    ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Field, FieldRef, Float64Type, Int64Type,
};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::property::{ARGUMENT, NumericKind, coerce_numeric, planned_kind, to_exact, validity};
use crate::selection::{for_each_taken, taken_rows};

const NAME: &str = "PROPSUM";

make_udaf_function!(PropSum, propsum_udaf, propsum, x);

#[user_doc(
    doc_section(label = "Property Functions"),
    description = "The sum of a numeric property over the rows of each group, NULLs skipped. \
Integers of any width are summed exactly as BIGINT: a sum that does not fit is an error, never a \
wrap-around. Floats and decimals are summed as DOUBLE. Durations (any unit) and intervals \
without months are summed as DOUBLE **seconds**, as Amplitude reports session length; an \
interval with months is an error, since a month has no fixed length. A group with no non-NULL \
value (all NULL, everything filtered out, or empty) gives NULL.",
    syntax_example = "PROPSUM(x)",
    sql_example = r#"```sql
> SELECT date_trunc('day', session_start) AS day,
         PROPSUM(arrow_cast(duration_ms, 'Duration(Millisecond)')) AS total_seconds
  FROM sessions('events') GROUP BY day;
> SELECT PROPSUM(price) FILTER (WHERE country = 'FR') FROM events;
```"#,
    argument(
        name = "x",
        description = "A numeric property: an integer, a float, a decimal, a duration or an \
interval without months."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PropSum {
    signature: Signature,
}

impl Default for PropSum {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// `Int64` for integers, `Float64` for everything else.
fn sum_type(kind: NumericKind) -> DataType {
    match kind {
        NumericKind::Integer => DataType::Int64,
        NumericKind::Float | NumericKind::Seconds => DataType::Float64,
    }
}

fn input_kind(fields: &[FieldRef]) -> Result<NumericKind> {
    match fields {
        [field] => planned_kind(NAME, field.data_type()),
        _ => plan_err!("{NAME}: expected {NAME}({ARGUMENT}) with one argument"),
    }
}

impl AggregateUDFImpl for PropSum {
    fn name(&self) -> &str {
        "propsum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_numeric(NAME, arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let [data_type] = arg_types else {
            return plan_err!("{NAME}: expected {NAME}({ARGUMENT}) with one argument");
        };
        Ok(sum_type(planned_kind(NAME, data_type)?))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "sum"),
            args.return_type().clone(),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return plan_err!("{NAME}: DISTINCT is not supported");
        }
        Ok(match input_kind(args.expr_fields)? {
            NumericKind::Integer => {
                Box::new(SumAccumulator::<Int64Type>::new(NumericKind::Integer))
            }
            kind => Box::new(SumAccumulator::<Float64Type>::new(kind)),
        })
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !args.is_distinct
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(match input_kind(args.expr_fields)? {
            NumericKind::Integer => Box::new(SumGroups::<Int64Type>::new(NumericKind::Integer)),
            kind => Box::new(SumGroups::<Float64Type>::new(kind)),
        })
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

fn add<N: ArrowNativeTypeOp>(sum: N, value: N) -> Result<N> {
    match sum.add_checked(value) {
        Ok(total) => Ok(total),
        Err(_) => exec_err!(
            "{NAME}: integer overflow: the sum of argument '{ARGUMENT}' does not fit in Int64"
        ),
    }
}

/// The input converted to the summed type `T` (`Int64` or `Float64`).
fn converted(kind: NumericKind, values: &[ArrayRef]) -> Result<ArrayRef> {
    match values {
        [array] => to_exact(NAME, kind, array),
        _ => internal_err!("{NAME}: expected one input array, found {}", values.len()),
    }
}

fn primitive<T: ArrowPrimitiveType>(array: &ArrayRef) -> Result<&PrimitiveArray<T>> {
    match array.as_primitive_opt::<T>() {
        Some(values) => Ok(values),
        None => internal_err!("{NAME}: unexpected array type {}", array.data_type()),
    }
}

/// The sum of one group: `None` until a value arrives.
#[derive(Debug)]
struct SumAccumulator<T: ArrowPrimitiveType> {
    kind: NumericKind,
    sum: Option<T::Native>,
}

impl<T: ArrowPrimitiveType> SumAccumulator<T> {
    fn new(kind: NumericKind) -> Self {
        Self { kind, sum: None }
    }

    fn add_array(&mut self, values: &PrimitiveArray<T>) -> Result<()> {
        let taken = taken_rows(values, None);
        let raw = values.values();
        let mut sum = self.sum;
        for_each_taken(taken.as_ref(), values.len(), |row| {
            sum = Some(match sum {
                Some(total) => add(total, raw[row])?,
                None => raw[row],
            });
            Ok(())
        })?;
        self.sum = sum;
        Ok(())
    }
}

impl<T: ArrowPrimitiveType + Debug> Accumulator for SumAccumulator<T> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let array = converted(self.kind, values)?;
        self.add_array(primitive::<T>(&array)?)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [sums] = states else {
            return internal_err!("{NAME}: expected one state array, found {}", states.len());
        };
        self.add_array(primitive::<T>(sums)?)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        ScalarValue::new_primitive::<T>(self.sum, &T::DATA_TYPE)
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// The sums of many groups: one slot per group and whether it has seen a value.
#[derive(Debug)]
struct SumGroups<T: ArrowPrimitiveType> {
    kind: NumericKind,
    sums: Vec<T::Native>,
    seen: Vec<bool>,
}

impl<T: ArrowPrimitiveType> SumGroups<T> {
    fn new(kind: NumericKind) -> Self {
        Self {
            kind,
            sums: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn add_array(
        &mut self,
        values: &PrimitiveArray<T>,
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.sums.resize(total_num_groups, T::Native::default());
        self.seen.resize(total_num_groups, false);
        let taken = taken_rows(values, opt_filter);
        let raw = values.values();
        for_each_taken(taken.as_ref(), values.len(), |row| {
            let group = group_indices[row];
            self.sums[group] = add(self.sums[group], raw[row])?;
            self.seen[group] = true;
            Ok(())
        })
    }
}

impl<T: ArrowPrimitiveType + Send> GroupsAccumulator for SumGroups<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let array = converted(self.kind, values)?;
        self.add_array(
            primitive::<T>(&array)?,
            group_indices,
            opt_filter,
            total_num_groups,
        )
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let sums = emit_to.take_needed(&mut self.sums);
        let seen = emit_to.take_needed(&mut self.seen);
        Ok(Arc::new(PrimitiveArray::<T>::new(
            sums.into(),
            validity(&seen),
        )))
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
        let [sums] = values else {
            return internal_err!("{NAME}: expected one state array, found {}", values.len());
        };
        self.add_array(primitive::<T>(sums)?, group_indices, None, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let array = converted(self.kind, values)?;
        let values = primitive::<T>(&array)?;
        let taken = taken_rows(values, opt_filter);
        Ok(vec![Arc::new(PrimitiveArray::<T>::new(
            values.values().clone(),
            taken,
        ))])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * size_of::<T::Native>() + self.seen.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate_testing::{Arg, Call, Row, Subject, check_against_naive};
    use datafusion::arrow::array::{
        Decimal128Array, DurationMillisecondArray, Float64Array, Int32Array, Int64Array,
        IntervalMonthDayNanoArray, UInt64Array,
    };
    use datafusion::arrow::datatypes::{IntervalMonthDayNano, TimeUnit};

    /// Both accumulators of PROPSUM for an input type, as the planner would create them.
    fn accumulators(data_type: DataType) -> (Box<dyn Accumulator>, Box<dyn GroupsAccumulator>) {
        crate::aggregate_testing::accumulators(&propsum_udaf(), &[Arg::Column(data_type)])
    }

    fn sum_of(array: ArrayRef) -> ScalarValue {
        let (mut acc, _) = accumulators(array.data_type().clone());
        acc.update_batch(&[array]).unwrap();
        acc.evaluate().unwrap()
    }

    #[test]
    fn sums_each_input_type() {
        assert_eq!(
            sum_of(Arc::new(Int32Array::from(vec![Some(1), None, Some(2)]))),
            ScalarValue::Int64(Some(3))
        );
        assert_eq!(
            sum_of(Arc::new(Int64Array::from(vec![-5, 7]))),
            ScalarValue::Int64(Some(2))
        );
        assert_eq!(
            sum_of(Arc::new(UInt64Array::from(vec![4, 6]))),
            ScalarValue::Int64(Some(10))
        );
        assert_eq!(
            sum_of(Arc::new(Float64Array::from(vec![0.5, 0.25]))),
            ScalarValue::Float64(Some(0.75))
        );
        let decimals = Decimal128Array::from(vec![Some(125), None, Some(-25)])
            .with_precision_and_scale(10, 2)
            .unwrap();
        assert_eq!(sum_of(Arc::new(decimals)), ScalarValue::Float64(Some(1.0)));
        assert_eq!(
            sum_of(Arc::new(DurationMillisecondArray::from(vec![
                Some(1_500),
                None,
                Some(60_000)
            ]))),
            ScalarValue::Float64(Some(61.5))
        );
        assert_eq!(
            sum_of(Arc::new(IntervalMonthDayNanoArray::from(vec![
                IntervalMonthDayNano::new(0, 1, 0),
                IntervalMonthDayNano::new(0, 0, 30_000_000_000),
            ]))),
            ScalarValue::Float64(Some(86_430.0))
        );
    }

    #[test]
    fn empty_and_all_null_input_is_null() {
        let (mut acc, _) = accumulators(DataType::Int64);
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(None));
        acc.update_batch(&[Arc::new(Int64Array::from(vec![None, None]))])
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(None));
        let (mut acc, _) = accumulators(DataType::Null);
        acc.update_batch(&[Arc::new(Int64Array::from(vec![None::<i64>]))])
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(None));
    }

    #[test]
    fn integer_overflow_is_an_error_in_both_accumulators() {
        let big: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, 1]));
        let (mut acc, mut groups) = accumulators(DataType::Int64);
        let err = acc
            .update_batch(&[Arc::clone(&big)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PROPSUM: integer overflow"), "{err}");
        let err = groups
            .update_batch(&[big], &[0, 0], None, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("PROPSUM: integer overflow"), "{err}");
        // overflow across merged states too
        let (mut acc, _) = accumulators(DataType::Int64);
        acc.merge_batch(&[Arc::new(Int64Array::from(vec![i64::MIN]))])
            .unwrap();
        assert!(
            acc.merge_batch(&[Arc::new(Int64Array::from(vec![-1]))])
                .is_err()
        );
    }

    #[test]
    fn groups_update_merge_evaluate_with_filter() {
        let (_, mut groups) = accumulators(DataType::Int32);
        let values: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), Some(2), None, Some(4)]));
        let filter = BooleanArray::from(vec![true, true, true, false]);
        groups
            .update_batch(&[values], &[0, 1, 2, 1], Some(&filter), 4)
            .unwrap();
        let state = groups.state(EmitTo::All).unwrap();
        let (_, mut other) = accumulators(DataType::Int32);
        other.merge_batch(&state, &[3, 2, 1, 0], 4).unwrap();
        other
            .merge_batch(&[Arc::new(Int64Array::from(vec![10]))], &[0], 4)
            .unwrap();
        let result = other.evaluate(EmitTo::First(3)).unwrap();
        assert_eq!(
            result.as_primitive::<Int64Type>(),
            &Int64Array::from(vec![Some(10), None, Some(2)])
        );
        let rest = other.evaluate(EmitTo::All).unwrap();
        assert_eq!(rest.as_primitive::<Int64Type>(), &Int64Array::from(vec![1]));
    }

    #[test]
    fn distinct_is_rejected() {
        let call = Call::new(&propsum_udaf(), &[Arg::Column(DataType::Int64)]).distinct();
        let err = call.accumulator().err().unwrap().to_string();
        assert!(err.contains("PROPSUM: DISTINCT is not supported"), "{err}");
    }

    /// The sum of the rows' values; NULL when no row has one.
    fn naive_sum(rows: &[&Row]) -> Option<i64> {
        rows.iter().filter_map(|r| r.value).reduce(|sum, v| sum + v)
    }

    /// Integers, and quarters of them as floats and durations, whose sums are exact in any
    /// order: the sum of `v / 4` is the sum of `v`, divided by 4.
    #[test]
    fn accumulators_match_naive() {
        let as_integers = |rows: &[&Row]| ScalarValue::Int64(naive_sum(rows));
        let in_quarters =
            |rows: &[&Row]| ScalarValue::Float64(naive_sum(rows).map(|s| s as f64 / 4.0));
        let int32_values = Arg::Property(DataType::Int32, |v| ScalarValue::Int32(Some(v as i32)));
        let subjects = [
            Subject::new(&propsum_udaf(), &[Arg::integer_values()], as_integers),
            Subject::new(&propsum_udaf(), &[int32_values], as_integers),
            Subject::new(&propsum_udaf(), &[Arg::quarter_values()], in_quarters),
            Subject::new(
                &propsum_udaf(),
                &[Arg::Property(
                    DataType::Duration(TimeUnit::Millisecond),
                    |v| ScalarValue::DurationMillisecond(Some(v * 250)),
                )],
                in_quarters,
            ),
        ];
        check_against_naive(&subjects, 7);
    }
}
