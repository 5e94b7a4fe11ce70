//! `FREQPERCENTILE(user, p)`: the `p`-th percentile of how many rows each user has in a group,
//! as Amplitude's "event frequency" percentiles.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{HashMap, Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion_macros::user_doc;

use crate::distinct_groups::{
    GroupedMap, GroupedState, hash_table_bytes, list_array, list_rows, list_state_field,
    live_list_items, one_value_lists,
};
use crate::selection::selected_rows;
use crate::user_keys::{UserKeys, coerce_user_type, user_state_type};

const NAME: &str = "FREQPERCENTILE";

make_udaf_function!(
    FreqPercentile,
    freq_percentile_udaf,
    freq_percentile,
    user,
    p
);

#[user_doc(
    doc_section(label = "Session Functions"),
    description = "The `p`-th percentile of per-user event frequency: the rows of each non-NULL \
`user` in the group are counted, and the percentile of those counts is taken with linear \
interpolation between the closest ranks, as `percentile_cont`: with the `n` counts sorted \
ascending as `c[0] <= ... <= c[n-1]` and `rank = p * (n - 1)`, the result is \
`c[floor(rank)] + (c[ceil(rank)] - c[floor(rank)]) * (rank - floor(rank))`. Users are compared \
by value (two string encodings of one id are one user). The result is NULL when the group has \
no non-NULL user. `p` must be a constant between 0 and 1: 0 gives the smallest count, 1 the \
largest, 0.5 the median.",
    syntax_example = "FREQPERCENTILE(user, p)",
    sql_example = r#"```sql
> SELECT FREQPERCENTILE(user_id, 0.5) AS median_events_per_user FROM events;
> SELECT event_type, FREQPERCENTILE(user_id, 0.9) FROM events GROUP BY event_type;
```"#,
    argument(
        name = "user",
        description = "Who each row belongs to: a string (`Utf8`, `LargeUtf8`, `Utf8View` or a \
dictionary of strings) or an integer. NULL users are skipped."
    ),
    argument(
        name = "p",
        description = "Constant number between 0 and 1 (inclusive): the percentile."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FreqPercentile {
    signature: Signature,
}

impl Default for FreqPercentile {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for FreqPercentile {
    fn name(&self) -> &str {
        "freqpercentile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [user_type, p_type] = arg_types else {
            return plan_err!(
                "{NAME}: expected {NAME}(user, p), found {} arguments",
                arg_types.len()
            );
        };
        // a dictionary is read as its values: one user type for every batch of a column
        let user_type = match coerce_user_type(NAME, user_type)? {
            DataType::Dictionary(_, value_type) => *value_type,
            other => other,
        };
        if !p_type.is_numeric() && !p_type.is_null() {
            return plan_err!(
                "{NAME}: argument 'p' must be a constant between 0 and 1, found {p_type}"
            );
        }
        Ok(vec![user_type, p_type.clone()])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let Some(user_field) = args.input_fields.first() else {
            return internal_err!("{NAME}: argument 'user' is missing");
        };
        Ok(vec![
            list_state_field(
                format!("{}[users]", args.name),
                user_state_type(user_field.data_type()),
            ),
            list_state_field(format!("{}[counts]", args.name), DataType::Int64),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let (user_type, p) = call_args(&args)?;
        Ok(Box::new(FreqPercentileAccumulator {
            p,
            users: UserKeys::new(NAME, &user_type),
            counts: HashMap::default(),
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let (user_type, p) = call_args(&args)?;
        Ok(Box::new(FreqPercentileGroupsAccumulator {
            p,
            user_state_type: user_state_type(&user_type),
            users: UserKeys::new(NAME, &user_type),
            counts: GroupedMap::new(),
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The user type and the validated constant `p` of a call.
fn call_args(args: &AccumulatorArgs) -> Result<(DataType, f64)> {
    let (Some(user_field), Some(p_expr)) = (args.expr_fields.first(), args.exprs.get(1)) else {
        return plan_err!(
            "{NAME}: expected {NAME}(user, p), found {} arguments",
            args.exprs.len()
        );
    };
    Ok((user_field.data_type().clone(), percentile_literal(p_expr)?))
}

fn percentile_literal(expr: &Arc<dyn PhysicalExpr>) -> Result<f64> {
    let Some(literal) = expr.downcast_ref::<Literal>() else {
        return plan_err!("{NAME}: argument 'p' must be a constant between 0 and 1, found {expr}");
    };
    let value = literal.value();
    match value.cast_to(&DataType::Float64) {
        Ok(ScalarValue::Float64(Some(p))) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => plan_err!("{NAME}: argument 'p' must be a constant between 0 and 1, found {value}"),
    }
}

/// The `p`-th percentile of `counts` with linear interpolation between the closest ranks;
/// `None` when there are no counts. Reorders `counts`.
pub fn percentile_of_counts(counts: &mut [i64], p: f64) -> Option<f64> {
    if counts.is_empty() {
        return None;
    }
    let rank = p * (counts.len() - 1) as f64;
    let lower_rank = rank.floor() as usize;
    let (_, &mut lower, above) = counts.select_nth_unstable(lower_rank);
    let fraction = rank - lower_rank as f64;
    if fraction == 0.0 {
        return Some(lower as f64);
    }
    // everything above the lower rank is >= it, so the next rank is their minimum
    let upper = above.iter().copied().min().unwrap_or(lower);
    Some(lower as f64 + (upper - lower) as f64 * fraction)
}

/// The user argument of a batch.
fn user_argument(values: &[ArrayRef]) -> Result<&ArrayRef> {
    match values.first() {
        Some(users) => Ok(users),
        None => internal_err!("{NAME}: argument 'user' is missing"),
    }
}

/// Calls `add(row, key, count)` for every user of every non-NULL row of a partial state: a
/// list of users and a list of their counts, cut at the same offsets.
fn for_each_state_user(
    users: &mut UserKeys,
    states: &[ArrayRef],
    mut add: impl FnMut(usize, u64, i64),
) -> Result<()> {
    let (Some(user_lists), Some(count_lists)) = (
        states.first().and_then(|s| s.as_list_opt::<i32>()),
        states.get(1).and_then(|s| s.as_list_opt::<i32>()),
    ) else {
        return internal_err!("{NAME}: the partial state is not a pair of lists");
    };
    let Some(counts) = count_lists.values().as_primitive_opt::<Int64Type>() else {
        return internal_err!("{NAME}: the partial counts are not Int64");
    };
    if user_lists.value_offsets() != count_lists.value_offsets() {
        return internal_err!("{NAME}: a partial state has unmatched lists");
    }
    let live = live_list_items(user_lists);
    let keys = users.encode(user_lists.values(), &live)?;
    for (row, items) in list_rows(user_lists) {
        for item in items.filter(|&item| live.value(item)) {
            add(row, keys[item], counts.value(item));
        }
    }
    Ok(())
}

/// A state of two lists, users and their counts, cut at `offsets`.
fn state_lists(
    offsets: OffsetBuffer<i32>,
    users: ArrayRef,
    counts: Vec<i64>,
) -> (ListArray, ListArray) {
    (
        list_array(offsets.clone(), users),
        list_array(offsets, Arc::new(Int64Array::from(counts))),
    )
}

/// `FREQPERCENTILE` over one group: the row count of each user key.
#[derive(Debug)]
struct FreqPercentileAccumulator {
    p: f64,
    users: UserKeys,
    counts: HashMap<u64, i64>,
}

impl Accumulator for FreqPercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let users = user_argument(values)?;
        let selected = selected_rows(users.len(), &[users.as_ref()], None);
        let keys = self.users.encode(users, &selected)?;
        for row in selected.set_indices() {
            *self.counts.entry(keys[row]).or_insert(0) += 1;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut counts: Vec<i64> = self.counts.values().copied().collect();
        Ok(ScalarValue::Float64(percentile_of_counts(
            &mut counts,
            self.p,
        )))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.users.size()
            + hash_table_bytes::<(u64, i64)>(self.counts.capacity())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let users = self.users.to_array(self.counts.keys().copied())?;
        let counts = self.counts.values().copied().collect();
        let offsets = OffsetBuffer::from_lengths([self.counts.len()]);
        let (users, counts) = state_lists(offsets, users, counts);
        Ok(vec![
            ScalarValue::List(Arc::new(users)),
            ScalarValue::List(Arc::new(counts)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = &mut self.counts;
        for_each_state_user(&mut self.users, states, |_, key, count| {
            *counts.entry(key).or_insert(0) += count;
        })
    }
}

/// `FREQPERCENTILE` over many groups: one table of (group, user key) -> rows.
#[derive(Debug)]
struct FreqPercentileGroupsAccumulator {
    p: f64,
    user_state_type: DataType,
    users: UserKeys,
    counts: GroupedMap<u64, i64>,
}

impl FreqPercentileGroupsAccumulator {
    /// Once every group is emitted no interned id is referred to: drop the strings too.
    fn forget_users_if_empty(&mut self) {
        if self.counts.is_empty() {
            self.users.clear();
        }
    }
}

impl GroupsAccumulator for FreqPercentileGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let users = user_argument(values)?;
        self.counts.resize(total_num_groups);
        let selected = selected_rows(users.len(), &[users.as_ref()], opt_filter);
        let keys = self.users.encode(users, &selected)?;
        for row in selected.set_indices() {
            *self.counts.entry(group_indices[row], keys[row]) += 1;
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let GroupedState {
            offsets,
            mut values,
            ..
        } = self.counts.take_state(emit_to)?;
        self.forget_users_if_empty();
        let percentiles: Float64Array = offsets
            .windows(2)
            .map(|range| {
                let (start, end) = (range[0] as usize, range[1] as usize);
                percentile_of_counts(&mut values[start..end], self.p)
            })
            .collect();
        Ok(Arc::new(percentiles))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let GroupedState {
            offsets,
            keys,
            values,
        } = self.counts.take_state(emit_to)?;
        let users = self.users.to_array(keys.into_iter())?;
        self.forget_users_if_empty();
        let (users, counts) = state_lists(offsets, users, values);
        Ok(vec![Arc::new(users), Arc::new(counts)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.counts.resize(total_num_groups);
        let counts = &mut self.counts;
        for_each_state_user(&mut self.users, values, |row, key, count| {
            *counts.entry(group_indices[row], key) += count;
        })
    }

    /// Each row becomes a one-user state: a list of its user and a list of the count 1, or two
    /// empty lists where the user is NULL or the filter drops the row.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let users = user_argument(values)?;
        let selected = selected_rows(users.len(), &[users.as_ref()], opt_filter);
        let users = one_value_lists(users, &selected, &self.user_state_type)?;
        let ones = Int64Array::from(vec![1_i64; selected.count_set_bits()]);
        let counts = list_array(users.offsets().clone(), Arc::new(ones));
        Ok(vec![Arc::new(users), Arc::new(counts)])
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.users.size() + self.counts.size()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::arrow::array::{
        DictionaryArray, LargeStringArray, StringArray, StringViewArray,
    };
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;
    use crate::aggregate_testing::{
        ALL_ENCODINGS, Arg, Call, Row, Subject, UserEncoding, check_against_naive,
    };

    /// `FREQPERCENTILE(user, p)` with `user` of `user_type`.
    fn call(user_type: DataType, p: ScalarValue) -> Call {
        Call::new(
            &freq_percentile_udaf(),
            &[Arg::Column(user_type), Arg::Literal(p)],
        )
    }

    fn accumulator(user_type: DataType, p: f64) -> Box<dyn Accumulator> {
        call(user_type, ScalarValue::Float64(Some(p)))
            .accumulator()
            .unwrap()
    }

    fn groups_accumulator(user_type: DataType, p: f64) -> Box<dyn GroupsAccumulator> {
        call(user_type, ScalarValue::Float64(Some(p)))
            .groups_accumulator()
            .unwrap()
    }

    fn value(acc: &mut dyn Accumulator) -> Option<f64> {
        match acc.evaluate().unwrap() {
            ScalarValue::Float64(v) => v,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn strings(users: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(users.to_vec()))
    }

    #[test]
    fn percentiles_of_an_odd_number_of_users() {
        // a: 1 row, b: 3 rows, c: 8 rows (NULL users skipped)
        let mut users = vec![Some("a"), None];
        users.extend([Some("b"); 3]);
        users.extend([Some("c"); 8]);
        let users = strings(&users);
        for (p, expected) in [(0.0, 1.0), (0.5, 3.0), (1.0, 8.0), (0.25, 2.0), (0.75, 5.5)] {
            let mut acc = accumulator(DataType::Utf8, p);
            acc.update_batch(&[Arc::clone(&users)]).unwrap();
            assert_eq!(value(acc.as_mut()), Some(expected), "p = {p}");
        }
    }

    #[test]
    fn percentiles_of_an_even_number_of_users() {
        let users: ArrayRef = Arc::new(Int64Array::from(vec![7, 7, 9, 9, 9, 9, 1, 2, 2, 2]));
        // counts 1 (user 1), 2 (7), 3 (2), 4 (9)
        for (p, expected) in [(0.0, 1.0), (0.5, 2.5), (1.0, 4.0), (0.1, 1.3)] {
            let mut acc = accumulator(DataType::Int64, p);
            acc.update_batch(&[Arc::clone(&users)]).unwrap();
            let got = value(acc.as_mut()).unwrap();
            assert!((got - expected).abs() < 1e-12, "p = {p}: {got}");
        }
        assert_eq!(percentile_of_counts(&mut [5], 0.3), Some(5.0));
    }

    #[test]
    fn no_users_give_null() {
        let mut acc = accumulator(DataType::Utf8, 0.5);
        assert_eq!(value(acc.as_mut()), None);
        acc.update_batch(&[strings(&[None, None])]).unwrap();
        assert_eq!(value(acc.as_mut()), None);
        let mut groups = groups_accumulator(DataType::Utf8, 0.5);
        groups
            .update_batch(&[strings(&[Some("a"), None])], &[0, 1], None, 2)
            .unwrap();
        let result = groups.evaluate(EmitTo::All).unwrap();
        let result = result.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        assert_eq!(result.iter().collect::<Vec<_>>(), vec![Some(1.0), None]);
    }

    #[test]
    fn p_must_be_a_constant_between_0_and_1() {
        for p in [
            ScalarValue::Float64(Some(1.5)),
            ScalarValue::Float64(Some(-0.1)),
            ScalarValue::Float64(None),
            ScalarValue::Int64(Some(2)),
        ] {
            let err = call(DataType::Utf8, p)
                .accumulator()
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(
                    "Error during planning: FREQPERCENTILE: argument 'p' must be a constant \
                     between 0 and 1, found"
                ),
                "{err}"
            );
        }
        let f = FreqPercentile::default();
        let err = f.coerce_types(&[DataType::Utf8]).unwrap_err().to_string();
        assert!(
            err.contains("FREQPERCENTILE: expected FREQPERCENTILE(user, p), found 1"),
            "{err}"
        );
        let err = f
            .coerce_types(&[DataType::Float64, DataType::Float64])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("argument 'user' must be a string or an integer"),
            "{err}"
        );
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(
            f.coerce_types(&[dictionary, DataType::Float64]).unwrap(),
            vec![DataType::Utf8, DataType::Float64]
        );
    }

    #[test]
    fn every_string_encoding_counts_the_same() {
        let users = [Some("x"), Some("y"), Some("x"), None, Some("x")];
        let dictionary: DictionaryArray<Int32Type> = users.into_iter().collect();
        let columns: Vec<ArrayRef> = vec![
            strings(&users),
            Arc::new(LargeStringArray::from(users.to_vec())),
            Arc::new(StringViewArray::from(users.to_vec())),
            datafusion::arrow::compute::cast(&dictionary, &DataType::Utf8).unwrap(),
        ];
        for column in columns {
            let mut acc = accumulator(column.data_type().clone(), 1.0);
            acc.update_batch(&[Arc::clone(&column)]).unwrap();
            assert_eq!(value(acc.as_mut()), Some(3.0));
            // and through the partial state
            let state: Vec<ArrayRef> = acc
                .state()
                .unwrap()
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            let mut merged = groups_accumulator(column.data_type().clone(), 0.0);
            merged.merge_batch(&state, &[0], 1).unwrap();
            let result = merged.evaluate(EmitTo::All).unwrap();
            let result = result.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            assert_eq!(result.value(0), 1.0);
        }
    }

    /// The `p`-th percentile of the rows' per-user counts, by sorting them.
    fn naive(p: f64, rows: &[&Row]) -> ScalarValue {
        let mut per_user: BTreeMap<u64, i64> = BTreeMap::new();
        for user in rows.iter().filter_map(|r| r.user) {
            *per_user.entry(user).or_insert(0) += 1;
        }
        let mut counts: Vec<i64> = per_user.into_values().collect();
        counts.sort_unstable();
        ScalarValue::Float64((!counts.is_empty()).then(|| {
            let rank = p * (counts.len() - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            counts[lo] as f64 + (counts[hi] - counts[lo]) as f64 * (rank - lo as f64)
        }))
    }

    /// Every user encoding but a dictionary, which `coerce_types` unpacks to its values.
    #[test]
    fn accumulators_match_naive() {
        let mut subjects = Vec::new();
        for encoding in ALL_ENCODINGS {
            if encoding == UserEncoding::Dictionary {
                continue;
            }
            for p in [0.0, 0.37, 0.5, 1.0] {
                subjects.push(Subject::new(
                    &freq_percentile_udaf(),
                    &[Arg::User(encoding), Arg::Literal(ScalarValue::from(p))],
                    move |rows| naive(p, rows),
                ));
            }
        }
        check_against_naive(&subjects, 3);
    }

    #[test]
    fn repeated_users_are_interned_once() {
        let mut acc = groups_accumulator(DataType::Utf8, 0.5);
        let users = strings(&[Some("same"); 1000]);
        acc.update_batch(&[Arc::clone(&users)], &[0; 1000], None, 1)
            .unwrap();
        let once = acc.size();
        acc.update_batch(&[users], &[0; 1000], None, 1).unwrap();
        assert_eq!(acc.size(), once);
    }
}
