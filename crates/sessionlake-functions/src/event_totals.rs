//! `EVENTTOTALS(session_key)`: the number of rows inside a valid session, that is whose session
//! key is not NULL.

use std::mem::{size_of, size_of_val};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::selection::selected_rows;

make_udaf_function!(EventTotals, event_totals_udaf, event_totals, session_key);

#[user_doc(
    doc_section(label = "Session Functions"),
    description = "The number of events inside a valid session: rows whose session key is not \
NULL. Rows of `sessionize('<table>')` outside any session (inactive events, NULL users or times, \
sessions longer than `max_length`) have a NULL key and are not counted. Empty input gives 0 \
(never NULL). Named after Amplitude's `EVENTTOTALS`; with `FILTER (WHERE event_type = '...')` \
it counts one event type inside sessions.",
    syntax_example = "EVENTTOTALS(session_key)",
    sql_example = r#"```sql
> CREATE TABLE events (user_id VARCHAR, event_time TIMESTAMP, event_type VARCHAR) AS VALUES
    ('a', '2024-01-01T10:00:00', 'search'),
    ('a', '2024-01-01T10:05:00', 'click'),
    (NULL, '2024-01-01T10:06:00', 'search');
> SELECT EVENTTOTALS(session_key) AS events,
         EVENTTOTALS(session_key) FILTER (WHERE event_type = 'search') AS searches
  FROM sessionize('events');
+--------+----------+
| events | searches |
+--------+----------+
| 2      | 1        |
+--------+----------+
```"#,
    argument(
        name = "session_key",
        description = "The session key of the row (`session_key` of `sessionize`), an integer; \
NULL outside a session."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EventTotals {
    signature: Signature,
}

impl Default for EventTotals {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The type a session key argument is cast to, or a planning error naming `function`.
pub(crate) fn coerce_session_key_type(function: &str, key_type: &DataType) -> Result<DataType> {
    if key_type.is_integer() || key_type.is_null() {
        return Ok(DataType::Int64);
    }
    if let DataType::Dictionary(_, value_type) = key_type
        && value_type.is_integer()
    {
        return Ok(DataType::Int64);
    }
    plan_err!("{function}: argument 'session_key' must be an integer, found {key_type}")
}

impl AggregateUDFImpl for EventTotals {
    fn name(&self) -> &str {
        "eventtotals"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [session_key] => Ok(vec![coerce_session_key_type("EVENTTOTALS", session_key)?]),
            _ => plan_err!(
                "EVENTTOTALS: expected EVENTTOTALS(session_key), found {} arguments",
                arg_types.len()
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        reject_distinct(args.is_distinct)?;
        Ok(vec![Arc::new(Field::new(
            format!("{}[events]", args.name),
            DataType::Int64,
            false,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        reject_distinct(args.is_distinct)?;
        Ok(Box::new(EventTotalsAccumulator::default()))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        reject_distinct(args.is_distinct)?;
        Ok(Box::new(EventTotalsGroupsAccumulator::default()))
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Rejects `EVENTTOTALS(DISTINCT ...)` where it reaches the function. (When it is a query's only
/// DISTINCT aggregate, DataFusion rewrites it to a `GROUP BY` first and it counts the distinct
/// session keys, which is rarely what is meant: keys are unique per user only.)
fn reject_distinct(is_distinct: bool) -> Result<()> {
    if is_distinct {
        return plan_err!(
            "EVENTTOTALS: DISTINCT is not supported; count sessions with SESSIONTOTALS(user, \
             session_key)"
        );
    }
    Ok(())
}

fn session_keys(values: &[ArrayRef]) -> Result<&ArrayRef> {
    match values.first() {
        Some(keys) => Ok(keys),
        None => internal_err!("EVENTTOTALS: argument 'session_key' is missing"),
    }
}

/// The partial counts of a state: `Int64`, NULLs (which we never emit) adding nothing.
fn partial_counts(states: &[ArrayRef]) -> Result<&Int64Array> {
    match states
        .first()
        .and_then(|state| state.as_primitive_opt::<Int64Type>())
    {
        Some(counts) => Ok(counts),
        None => internal_err!("EVENTTOTALS: the state must be one Int64 count"),
    }
}

/// `EVENTTOTALS` for one group.
#[derive(Debug, Default)]
struct EventTotalsAccumulator {
    events: i64,
}

impl Accumulator for EventTotalsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let keys = session_keys(values)?;
        self.events += (keys.len() - keys.logical_null_count()) as i64;
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = partial_counts(states)?;
        self.events += counts.iter().flatten().sum::<i64>();
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.events))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.events)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }
}

/// `EVENTTOTALS` for every group of a `GROUP BY`.
#[derive(Debug, Default)]
struct EventTotalsGroupsAccumulator {
    events: Vec<i64>,
}

impl EventTotalsGroupsAccumulator {
    fn resize(&mut self, total_num_groups: usize) {
        if self.events.len() < total_num_groups {
            self.events.resize(total_num_groups, 0);
        }
    }
}

impl GroupsAccumulator for EventTotalsGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let keys = session_keys(values)?;
        let counted = selected_rows(keys.len(), &[keys], opt_filter);
        for row in counted.set_indices() {
            self.events[group_indices[row]] += 1;
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let counts = partial_counts(values)?;
        for (&group, count) in group_indices.iter().zip(counts.iter()) {
            self.events[group] += count.unwrap_or(0);
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(Arc::new(Int64Array::from(
            emit_to.take_needed(&mut self.events),
        )))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let keys = session_keys(values)?;
        let counted = selected_rows(keys.len(), &[keys], opt_filter);
        let ones = Int64Array::from_iter_values(counted.iter().map(i64::from));
        Ok(vec![Arc::new(ones)])
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.events.capacity() * size_of::<i64>()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;

    use super::*;
    use crate::aggregate_testing::{Arg, Row, Subject, check_against_naive};

    fn keys(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    #[test]
    fn counts_rows_with_a_session_key() {
        let mut events = EventTotalsAccumulator::default();
        assert_eq!(
            events.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(0))
        );
        events
            .update_batch(&[keys(&[Some(1), None, Some(1), Some(2)])])
            .expect("update");
        events.update_batch(&[keys(&[])]).expect("update");
        events.update_batch(&[keys(&[None])]).expect("update");
        assert_eq!(
            events.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(3))
        );
        let partial = events.state().expect("state").remove(0);
        // two partial states of 3 events each, plus one event of its own
        let states = ScalarValue::iter_to_array([partial.clone(), partial]).expect("array");
        let mut other = EventTotalsAccumulator::default();
        other.update_batch(&[keys(&[Some(9)])]).expect("update");
        other.merge_batch(&[states]).expect("merge");
        assert_eq!(
            other.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(7))
        );
    }

    #[test]
    fn groups_count_with_filter() {
        let mut events = EventTotalsGroupsAccumulator::default();
        let filter =
            BooleanArray::from(vec![Some(true), Some(true), None, Some(true), Some(false)]);
        events
            .update_batch(
                &[keys(&[Some(1), None, Some(1), Some(2), Some(3)])],
                &[0, 0, 1, 2, 2],
                Some(&filter),
                4,
            )
            .expect("update");
        let counts = events.evaluate(EmitTo::All).expect("evaluate");
        assert_eq!(counts.as_primitive::<Int64Type>().values(), &[1, 0, 1, 0]);
    }

    #[test]
    fn wrong_arguments_are_planning_errors() {
        let function = EventTotals::default();
        let error = function.coerce_types(&[DataType::Utf8]).expect_err("text");
        assert!(
            error
                .to_string()
                .contains("EVENTTOTALS: argument 'session_key' must be an integer, found Utf8"),
            "{error}"
        );
        let error = function.coerce_types(&[]).expect_err("none");
        assert!(error.to_string().contains("found 0 arguments"), "{error}");
        assert_eq!(
            function.coerce_types(&[DataType::UInt8]).expect("ok"),
            [DataType::Int64]
        );
    }

    fn naive(rows: &[&Row]) -> ScalarValue {
        ScalarValue::Int64(Some(
            rows.iter().filter(|r| r.session_key.is_some()).count() as i64,
        ))
    }

    #[test]
    fn accumulators_match_naive() {
        let subject = Subject::new(&event_totals_udaf(), &[Arg::SessionKey], naive);
        check_against_naive(&[subject], 7);
    }
}
