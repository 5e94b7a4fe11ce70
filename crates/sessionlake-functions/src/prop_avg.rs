//! `PROPAVG(x)`: Amplitude's mean of a numeric property, as a DOUBLE; durations and intervals
//! are averaged in seconds.

use std::mem::size_of;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, PrimitiveArray, UInt64Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::property::{ARGUMENT, NumericKind, coerce_numeric, planned_kind, to_float64};
use crate::selection::{for_each_taken, taken_rows};

const NAME: &str = "PROPAVG";

make_udaf_function!(PropAvg, propavg_udaf, propavg, x);

#[user_doc(
    doc_section(label = "Property Functions"),
    description = "The mean of a numeric property over the rows of each group, as DOUBLE, NULLs \
skipped: the sum of the non-NULL values (added as DOUBLE) divided by their count. Integers, \
floats and decimals are averaged by value; durations (any unit) and intervals without months \
in **seconds**; an interval with months is an error, since a month has no fixed length. A group \
with no non-NULL value gives NULL.",
    syntax_example = "PROPAVG(x)",
    sql_example = r#"```sql
> SELECT user_id, PROPAVG(arrow_cast(duration_ms, 'Duration(Millisecond)')) AS avg_seconds
  FROM sessions('events') GROUP BY user_id;
> SELECT PROPAVG(price) FILTER (WHERE price > 0) FROM events;
```"#,
    argument(
        name = "x",
        description = "A numeric property: an integer, a float, a decimal, a duration or an \
interval without months."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PropAvg {
    signature: Signature,
}

impl Default for PropAvg {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn input_kind(fields: &[FieldRef]) -> Result<NumericKind> {
    match fields {
        [field] => planned_kind(NAME, field.data_type()),
        _ => plan_err!("{NAME}: expected {NAME}({ARGUMENT}) with one argument"),
    }
}

impl AggregateUDFImpl for PropAvg {
    fn name(&self) -> &str {
        "propavg"
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
        planned_kind(NAME, data_type)?;
        Ok(DataType::Float64)
    }

    /// The count of values (never NULL, 0 for none) and their sum.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "count"),
                DataType::UInt64,
                false,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "sum"),
                DataType::Float64,
                false,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return plan_err!("{NAME}: DISTINCT is not supported");
        }
        Ok(Box::new(AvgAccumulator {
            kind: input_kind(args.expr_fields)?,
            count: 0,
            sum: 0.0,
        }))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !args.is_distinct
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(AvgGroups {
            kind: input_kind(args.expr_fields)?,
            counts: Vec::new(),
            sums: Vec::new(),
        }))
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

/// The input as `Float64` values (seconds for spans).
fn converted(kind: NumericKind, values: &[ArrayRef]) -> Result<ArrayRef> {
    match values {
        [array] => to_float64(NAME, kind, array),
        _ => internal_err!("{NAME}: expected one input array, found {}", values.len()),
    }
}

fn floats(array: &ArrayRef) -> Result<&Float64Array> {
    match array.as_primitive_opt::<Float64Type>() {
        Some(values) => Ok(values),
        None => internal_err!("{NAME}: unexpected array type {}", array.data_type()),
    }
}

/// The `(count, sum)` state arrays of a merge.
fn state_arrays(states: &[ArrayRef]) -> Result<(&UInt64Array, &Float64Array)> {
    let [counts, sums] = states else {
        return internal_err!("{NAME}: expected two state arrays, found {}", states.len());
    };
    match (
        counts.as_primitive_opt::<UInt64Type>(),
        sums.as_primitive_opt::<Float64Type>(),
    ) {
        (Some(counts), Some(sums)) => Ok((counts, sums)),
        _ => internal_err!(
            "{NAME}: unexpected state types {} and {}",
            counts.data_type(),
            sums.data_type()
        ),
    }
}

fn mean(count: u64, sum: f64) -> Option<f64> {
    (count > 0).then(|| sum / count as f64)
}

#[derive(Debug)]
struct AvgAccumulator {
    kind: NumericKind,
    count: u64,
    sum: f64,
}

impl Accumulator for AvgAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let array = converted(self.kind, values)?;
        let values = floats(&array)?;
        let taken = taken_rows(values, None);
        let raw = values.values();
        let (mut count, mut sum) = (self.count, self.sum);
        for_each_taken(taken.as_ref(), values.len(), |row| {
            count += 1;
            sum += raw[row];
            Ok(())
        })?;
        (self.count, self.sum) = (count, sum);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (counts, sums) = state_arrays(states)?;
        let taken = present_rows(counts, sums);
        let (mut count, mut sum) = (self.count, self.sum);
        for_each_taken(taken.as_ref(), counts.len(), |row| {
            count += counts.value(row);
            sum += sums.value(row);
            Ok(())
        })?;
        (self.count, self.sum) = (count, sum);
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::UInt64(Some(self.count)),
            ScalarValue::Float64(Some(self.sum)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(mean(self.count, self.sum)))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// Rows of a state batch whose count and sum are both present (states never hold NULLs, but a
/// NULL must not be read as a value).
fn present_rows(counts: &UInt64Array, sums: &Float64Array) -> Option<NullBuffer> {
    NullBuffer::union(counts.nulls(), sums.nulls())
}

#[derive(Debug)]
struct AvgGroups {
    kind: NumericKind,
    counts: Vec<u64>,
    sums: Vec<f64>,
}

impl AvgGroups {
    fn resize(&mut self, total_num_groups: usize) {
        self.counts.resize(total_num_groups, 0);
        self.sums.resize(total_num_groups, 0.0);
    }
}

impl GroupsAccumulator for AvgGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let array = converted(self.kind, values)?;
        let values = floats(&array)?;
        let taken = taken_rows(values, opt_filter);
        let raw = values.values();
        for_each_taken(taken.as_ref(), values.len(), |row| {
            let group = group_indices[row];
            self.counts[group] += 1;
            self.sums[group] += raw[row];
            Ok(())
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let counts = emit_to.take_needed(&mut self.counts);
        let sums = emit_to.take_needed(&mut self.sums);
        let means: Float64Array = counts
            .iter()
            .zip(&sums)
            .map(|(&count, &sum)| mean(count, sum))
            .collect();
        Ok(Arc::new(means))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let counts = emit_to.take_needed(&mut self.counts);
        let sums = emit_to.take_needed(&mut self.sums);
        Ok(vec![
            Arc::new(UInt64Array::from(counts)),
            Arc::new(Float64Array::from(sums)),
        ])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let (counts, sums) = state_arrays(values)?;
        let taken = present_rows(counts, sums);
        for_each_taken(taken.as_ref(), counts.len(), |row| {
            let group = group_indices[row];
            self.counts[group] += counts.value(row);
            self.sums[group] += sums.value(row);
            Ok(())
        })
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let array = converted(self.kind, values)?;
        let values = floats(&array)?;
        let taken = taken_rows(values, opt_filter);
        let is_taken = |row: usize| taken.as_ref().is_none_or(|t| t.is_valid(row));
        let counts: UInt64Array = (0..values.len())
            .map(|row| Some(u64::from(is_taken(row))))
            .collect();
        let sums = PrimitiveArray::<Float64Type>::from_iter_values(
            values
                .values()
                .iter()
                .enumerate()
                .map(|(row, &v)| if is_taken(row) { v } else { 0.0 }),
        );
        Ok(vec![Arc::new(counts), Arc::new(sums)])
    }

    fn size(&self) -> usize {
        self.counts.capacity() * size_of::<u64>() + self.sums.capacity() * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate_testing::{Arg, Row, Subject, check_against_naive};
    use datafusion::arrow::array::{
        Decimal128Array, DurationMillisecondArray, Int32Array, Int64Array,
        IntervalMonthDayNanoArray,
    };
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    fn accumulators(data_type: DataType) -> (Box<dyn Accumulator>, Box<dyn GroupsAccumulator>) {
        crate::aggregate_testing::accumulators(&propavg_udaf(), &[Arg::Column(data_type)])
    }

    fn avg_of(array: ArrayRef) -> ScalarValue {
        let (mut acc, _) = accumulators(array.data_type().clone());
        acc.update_batch(&[array]).unwrap();
        acc.evaluate().unwrap()
    }

    #[test]
    fn averages_each_input_type() {
        let f = |v: f64| ScalarValue::Float64(Some(v));
        assert_eq!(
            avg_of(Arc::new(Int32Array::from(vec![Some(1), None, Some(2)]))),
            f(1.5)
        );
        assert_eq!(avg_of(Arc::new(Int64Array::from(vec![-4, 8]))), f(2.0));
        assert_eq!(
            avg_of(Arc::new(UInt64Array::from(vec![u64::MAX, u64::MAX]))),
            f(u64::MAX as f64)
        );
        assert_eq!(avg_of(Arc::new(Float64Array::from(vec![0.5, 1.5]))), f(1.0));
        let decimals = Decimal128Array::from(vec![150, 250])
            .with_precision_and_scale(5, 2)
            .unwrap();
        assert_eq!(avg_of(Arc::new(decimals)), f(2.0));
        assert_eq!(
            avg_of(Arc::new(DurationMillisecondArray::from(vec![
                Some(1_000),
                None,
                Some(2_000)
            ]))),
            f(1.5)
        );
        assert_eq!(
            avg_of(Arc::new(IntervalMonthDayNanoArray::from(vec![
                IntervalMonthDayNano::new(0, 0, 1_000_000_000),
                IntervalMonthDayNano::new(0, 0, 3_000_000_000),
            ]))),
            f(2.0)
        );
    }

    #[test]
    fn no_values_is_null() {
        let (mut acc, mut groups) = accumulators(DataType::Int64);
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(None));
        acc.update_batch(&[Arc::new(Int64Array::from(vec![None::<i64>]))])
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(None));
        groups
            .update_batch(
                &[Arc::new(Int64Array::from(vec![Some(3), None]))],
                &[0, 1],
                None,
                2,
            )
            .unwrap();
        let result = groups.evaluate(EmitTo::All).unwrap();
        assert_eq!(
            result.as_primitive::<Float64Type>(),
            &Float64Array::from(vec![Some(3.0), None])
        );
    }

    #[test]
    fn months_are_an_error() {
        let (mut acc, _) = accumulators(DataType::Interval(
            datafusion::arrow::datatypes::IntervalUnit::MonthDayNano,
        ));
        let err = acc
            .update_batch(&[Arc::new(IntervalMonthDayNanoArray::from(vec![
                IntervalMonthDayNano::new(2, 0, 0),
            ]))])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PROPAVG: argument 'x' has an interval with months"),
            "{err}"
        );
    }

    /// The mean of the rows' values divided by `scale`; NULL when no row has one.
    fn naive_mean(rows: &[&Row], scale: f64) -> ScalarValue {
        let values: Vec<i64> = rows.iter().filter_map(|r| r.value).collect();
        let sum: i64 = values.iter().sum();
        ScalarValue::Float64((!values.is_empty()).then(|| sum as f64 / scale / values.len() as f64))
    }

    /// Integers, and quarters of them as floats, whose sums are exact in any order.
    #[test]
    fn accumulators_match_naive() {
        let subjects = [
            Subject::new(&propavg_udaf(), &[Arg::integer_values()], |rows| {
                naive_mean(rows, 1.0)
            }),
            Subject::new(&propavg_udaf(), &[Arg::quarter_values()], |rows| {
                naive_mean(rows, 4.0)
            }),
        ];
        check_against_naive(&subjects, 21);
    }
}
