//! `FREQPERCENTILE(user, p)`: the `p`-th percentile of how many rows each user has in a group,
//! as Amplitude's "event frequency" percentiles.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, LargeStringArray, ListArray,
    StringArray, StringViewArray, UInt64Array, new_null_array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::common::{HashMap, Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion_macros::user_doc;

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
                "FREQPERCENTILE: expected FREQPERCENTILE(user, p), found {} arguments",
                arg_types.len()
            );
        };
        let Some(user_key_type) = user_key_type(user_type) else {
            return plan_err!(
                "FREQPERCENTILE: argument 'user' must be a string or an integer, found {user_type}"
            );
        };
        if !p_type.is_numeric() && !p_type.is_null() {
            return plan_err!(
                "FREQPERCENTILE: argument 'p' must be a constant between 0 and 1, found \
                 {p_type}"
            );
        }
        Ok(vec![user_key_type, p_type.clone()])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let Some(user_field) = args.input_fields.first() else {
            return internal_err!("FREQPERCENTILE: argument 'user' is missing");
        };
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[users]", args.name),
                list_of(user_field.data_type()),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[counts]", args.name),
                list_of(&DataType::Int64),
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let (user_type, p) = call_args(&args)?;
        Ok(Box::new(FreqPercentileAccumulator {
            p,
            users: UserInterner::new(user_type),
            counts: Vec::new(),
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
            users: UserInterner::new(user_type),
            groups: Vec::new(),
            map_capacity: 0,
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The type users are kept as: strings in their own encoding, dictionaries as their values,
/// integers as `Int64` (`UInt64` as it is, so no id is lost).
fn user_key_type(data_type: &DataType) -> Option<DataType> {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::UInt64 => {
            Some(data_type.clone())
        }
        DataType::Dictionary(_, values) => user_key_type(values),
        DataType::Null => Some(DataType::Int64),
        t if t.is_integer() => Some(DataType::Int64),
        _ => None,
    }
}

fn list_of(element: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(element.clone(), true)))
}

/// The user type and the validated constant `p` of a call.
fn call_args(args: &AccumulatorArgs) -> Result<(DataType, f64)> {
    let (Some(user_field), Some(p_expr)) = (args.expr_fields.first(), args.exprs.get(1)) else {
        return plan_err!(
            "FREQPERCENTILE: expected FREQPERCENTILE(user, p), found {} arguments",
            args.exprs.len()
        );
    };
    Ok((user_field.data_type().clone(), percentile_literal(p_expr)?))
}

fn percentile_literal(expr: &Arc<dyn PhysicalExpr>) -> Result<f64> {
    let Some(literal) = expr.downcast_ref::<Literal>() else {
        return plan_err!(
            "FREQPERCENTILE: argument 'p' must be a constant between 0 and 1, found {expr}"
        );
    };
    let value = literal.value();
    match value.cast_to(&DataType::Float64) {
        Ok(ScalarValue::Float64(Some(p))) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => plan_err!(
            "FREQPERCENTILE: argument 'p' must be a constant between 0 and 1, found {value}"
        ),
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

/// Gives every distinct user a dense id, so groups count small integers and a repeated user
/// costs a hash lookup, not an allocation.
#[derive(Debug)]
struct UserInterner {
    user_type: DataType,
    string_ids: HashMap<Arc<str>, usize>,
    strings: Vec<Arc<str>>,
    integer_ids: HashMap<i64, usize>,
    /// `UInt64` users are kept by their bits.
    integers: Vec<i64>,
    string_bytes: usize,
}

impl UserInterner {
    fn new(user_type: DataType) -> Self {
        Self {
            user_type,
            string_ids: HashMap::default(),
            strings: Vec::new(),
            integer_ids: HashMap::default(),
            integers: Vec::new(),
            string_bytes: 0,
        }
    }

    fn intern_str(&mut self, user: &str) -> usize {
        if let Some(&id) = self.string_ids.get(user) {
            return id;
        }
        let id = self.strings.len();
        let user: Arc<str> = Arc::from(user);
        self.string_bytes += user.len();
        self.strings.push(Arc::clone(&user));
        self.string_ids.insert(user, id);
        id
    }

    fn intern_integer(&mut self, user: i64) -> usize {
        let next = self.integers.len();
        let id = *self.integer_ids.entry(user).or_insert(next);
        if id == next {
            self.integers.push(user);
        }
        id
    }

    /// The id of every row's user; `None` for a NULL user.
    fn intern(&mut self, users: &dyn Array) -> Result<Vec<Option<usize>>> {
        let ids = match users.data_type() {
            DataType::Utf8 => self.intern_strs(users.as_string::<i32>().iter()),
            DataType::LargeUtf8 => self.intern_strs(users.as_string::<i64>().iter()),
            DataType::Utf8View => self.intern_strs(users.as_string_view().iter()),
            DataType::Int64 => users
                .as_primitive::<Int64Type>()
                .iter()
                .map(|user| user.map(|user| self.intern_integer(user)))
                .collect(),
            DataType::UInt64 => users
                .as_primitive::<UInt64Type>()
                .iter()
                .map(|user| user.map(|user| self.intern_integer(user as i64)))
                .collect(),
            DataType::Null => vec![None; users.len()],
            other => {
                return internal_err!("FREQPERCENTILE: unexpected type {other} for 'user'");
            }
        };
        Ok(ids)
    }

    fn intern_strs<'a>(
        &mut self,
        users: impl Iterator<Item = Option<&'a str>>,
    ) -> Vec<Option<usize>> {
        users
            .map(|user| user.map(|user| self.intern_str(user)))
            .collect()
    }

    /// The users of `ids` as an array of the user type.
    fn users_array(&self, ids: &[usize]) -> Result<ArrayRef> {
        let strings = ids.iter().map(|&id| self.strings[id].as_ref());
        let integers = ids.iter().map(|&id| self.integers[id]);
        let array: ArrayRef = match &self.user_type {
            DataType::Utf8 => Arc::new(StringArray::from_iter_values(strings)),
            DataType::LargeUtf8 => Arc::new(LargeStringArray::from_iter_values(strings)),
            DataType::Utf8View => Arc::new(StringViewArray::from_iter_values(strings)),
            DataType::Int64 => Arc::new(Int64Array::from_iter_values(integers)),
            DataType::UInt64 => Arc::new(UInt64Array::from_iter_values(
                integers.map(|bits| bits as u64),
            )),
            DataType::Null => new_null_array(&DataType::Null, ids.len()),
            other => {
                return internal_err!("FREQPERCENTILE: unexpected type {other} for 'user'");
            }
        };
        Ok(array)
    }

    fn size(&self) -> usize {
        // an `Arc<str>` is shared by the map and the list: its two counters and bytes once
        self.string_ids.capacity() * (size_of::<(Arc<str>, usize)>() + 1)
            + self.strings.capacity() * size_of::<Arc<str>>()
            + self.strings.len() * 2 * size_of::<usize>()
            + self.string_bytes
            + self.integer_ids.capacity() * (size_of::<(i64, usize)>() + 1)
            + self.integers.capacity() * size_of::<i64>()
    }
}

/// Calls `add(row, user_id, count)` for every user of every non-NULL row of a partial state.
fn for_each_state_user(
    interner: &mut UserInterner,
    states: &[ArrayRef],
    mut add: impl FnMut(usize, usize, i64),
) -> Result<()> {
    let (Some(users), Some(counts)) = (states.first(), states.get(1)) else {
        return internal_err!("FREQPERCENTILE: the partial state is missing");
    };
    let (Some(users), Some(counts)) = (users.as_list_opt::<i32>(), counts.as_list_opt::<i32>())
    else {
        return internal_err!("FREQPERCENTILE: the partial state is not a pair of lists");
    };
    let Some(count_values) = counts.values().as_primitive_opt::<Int64Type>() else {
        return internal_err!("FREQPERCENTILE: the partial counts are not Int64");
    };
    let ids = interner.intern(users.values().as_ref())?;
    let (user_offsets, count_offsets) = (users.value_offsets(), counts.value_offsets());
    for row in 0..users.len() {
        if users.is_null(row) {
            continue;
        }
        let user_range = user_offsets[row] as usize..user_offsets[row + 1] as usize;
        let count_start = count_offsets[row] as usize;
        if count_offsets[row + 1] as usize - count_start != user_range.len() {
            return internal_err!("FREQPERCENTILE: a partial state has unmatched lists");
        }
        for (k, id) in ids[user_range].iter().enumerate() {
            if let Some(id) = *id {
                add(row, id, count_values.value(count_start + k));
            }
        }
    }
    Ok(())
}

fn add_user_count(counts: &mut Vec<i64>, id: usize, count: i64) {
    if counts.len() <= id {
        counts.resize(id + 1, 0);
    }
    counts[id] += count;
}

/// `FREQPERCENTILE` over one group: `counts[id]` rows for the user of id `id`.
#[derive(Debug)]
struct FreqPercentileAccumulator {
    p: f64,
    users: UserInterner,
    counts: Vec<i64>,
}

impl FreqPercentileAccumulator {
    fn user_ids(&self) -> Vec<usize> {
        (0..self.counts.len())
            .filter(|&id| self.counts[id] > 0)
            .collect()
    }
}

impl Accumulator for FreqPercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(users) = values.first() else {
            return internal_err!("FREQPERCENTILE: argument 'user' is missing");
        };
        for id in self.users.intern(users.as_ref())?.into_iter().flatten() {
            add_user_count(&mut self.counts, id, 1);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut counts: Vec<i64> = self.counts.iter().copied().filter(|&c| c > 0).collect();
        Ok(ScalarValue::Float64(percentile_of_counts(
            &mut counts,
            self.p,
        )))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.users.size() + self.counts.capacity() * size_of::<i64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let ids = self.user_ids();
        let counts: Vec<i64> = ids.iter().map(|&id| self.counts[id]).collect();
        let offsets = OffsetBuffer::from_lengths([ids.len()]);
        let users = ListArray::try_new(
            Arc::new(Field::new_list_field(self.users.user_type.clone(), true)),
            offsets.clone(),
            self.users.users_array(&ids)?,
            None,
        )?;
        let counts = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            offsets,
            Arc::new(Int64Array::from(counts)),
            None,
        )?;
        Ok(vec![
            ScalarValue::List(Arc::new(users)),
            ScalarValue::List(Arc::new(counts)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = &mut self.counts;
        for_each_state_user(&mut self.users, states, |_, id, count| {
            add_user_count(counts, id, count);
        })
    }
}

/// Adds `count` rows of user `id` to `group`, keeping `map_capacity` in step.
fn add_group_count(
    groups: &mut [HashMap<usize, i64>],
    map_capacity: &mut usize,
    group: usize,
    id: usize,
    count: i64,
) {
    let users = &mut groups[group];
    let before = users.capacity();
    *users.entry(id).or_insert(0) += count;
    *map_capacity += users.capacity() - before;
}

/// `FREQPERCENTILE` over many groups: per group, the row count of each user id.
struct FreqPercentileGroupsAccumulator {
    p: f64,
    users: UserInterner,
    groups: Vec<HashMap<usize, i64>>,
    /// The summed capacity of the groups' maps, kept up to date so `size` is O(1).
    map_capacity: usize,
}

impl FreqPercentileGroupsAccumulator {
    fn grow(&mut self, total_num_groups: usize) {
        if self.groups.len() < total_num_groups {
            self.groups.resize_with(total_num_groups, HashMap::default);
        }
    }

    fn take_groups(&mut self, emit_to: EmitTo) -> Vec<HashMap<usize, i64>> {
        let taken = emit_to.take_needed(&mut self.groups);
        self.map_capacity -= taken.iter().map(HashMap::capacity).sum::<usize>();
        taken
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
        let Some(users) = values.first() else {
            return internal_err!("FREQPERCENTILE: argument 'user' is missing");
        };
        self.grow(total_num_groups);
        let ids = self.users.intern(users.as_ref())?;
        for (row, (&group, id)) in group_indices.iter().zip(ids).enumerate() {
            let passes = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if let Some(id) = id
                && passes
            {
                add_group_count(&mut self.groups, &mut self.map_capacity, group, id, 1);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = self.take_groups(emit_to);
        let mut counts = Vec::new();
        let percentiles: Float64Array = groups
            .iter()
            .map(|users| {
                counts.clear();
                counts.extend(users.values().copied());
                percentile_of_counts(&mut counts, self.p)
            })
            .collect();
        Ok(Arc::new(percentiles))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = self.take_groups(emit_to);
        let total: usize = groups.iter().map(HashMap::len).sum();
        let mut ids = Vec::with_capacity(total);
        let mut counts = Vec::with_capacity(total);
        for users in &groups {
            for (&id, &count) in users {
                ids.push(id);
                counts.push(count);
            }
        }
        let offsets = OffsetBuffer::from_lengths(groups.iter().map(HashMap::len));
        let users = ListArray::try_new(
            Arc::new(Field::new_list_field(self.users.user_type.clone(), true)),
            offsets.clone(),
            self.users.users_array(&ids)?,
            None,
        )?;
        let counts = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            offsets,
            Arc::new(Int64Array::from(counts)),
            None,
        )?;
        Ok(vec![Arc::new(users), Arc::new(counts)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups);
        let (groups, map_capacity) = (&mut self.groups, &mut self.map_capacity);
        for_each_state_user(&mut self.users, values, |row, id, count| {
            add_group_count(groups, map_capacity, group_indices[row], id, count);
        })
    }

    /// Each row becomes a one-user state: the input column itself under offsets `0, 1, 2, ...`,
    /// a count of 1, and a NULL list where the user is NULL or the filter drops the row.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let Some(users) = values.first() else {
            return internal_err!("FREQPERCENTILE: argument 'user' is missing");
        };
        let rows = users.len();
        let keep = (0..rows).map(|row| {
            users.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row))
        });
        let nulls = NullBuffer::from_iter(keep);
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        let offsets = OffsetBuffer::from_repeated_length(1, rows);
        let users = ListArray::try_new(
            Arc::new(Field::new_list_field(users.data_type().clone(), true)),
            offsets.clone(),
            Arc::clone(users),
            nulls.clone(),
        )?;
        let counts = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            offsets,
            Arc::new(Int64Array::from(vec![1_i64; rows])),
            nulls,
        )?;
        Ok(vec![Arc::new(users), Arc::new(counts)])
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.users.size()
            + self.groups.capacity() * size_of::<HashMap<usize, i64>>()
            + self.map_capacity * (size_of::<(usize, i64)>() + 1)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "a test that fails to unwrap fails, which is what it should do"
)]
mod tests {
    use datafusion::arrow::array::DictionaryArray;
    use datafusion::arrow::datatypes::{Int32Type, Schema};
    use datafusion::physical_expr::expressions::Column;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn with_args<T>(
        user_type: DataType,
        p: ScalarValue,
        f: impl FnOnce(AccumulatorArgs) -> T,
    ) -> T {
        let schema = Schema::new(vec![Field::new("user", user_type.clone(), true)]);
        let exprs: Vec<Arc<dyn PhysicalExpr>> = vec![
            Arc::new(Column::new("user", 0)),
            Arc::new(Literal::new(p.clone())),
        ];
        let fields: Vec<FieldRef> = vec![
            Arc::new(Field::new("user", user_type, true)),
            Arc::new(Field::new("p", p.data_type(), true)),
        ];
        f(AccumulatorArgs {
            return_field: Arc::new(Field::new("f", DataType::Float64, true)),
            schema: &schema,
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name: "freqpercentile",
            is_distinct: false,
            exprs: &exprs,
            expr_fields: &fields,
        })
    }

    fn accumulator(user_type: DataType, p: f64) -> Box<dyn Accumulator> {
        with_args(user_type, ScalarValue::Float64(Some(p)), |args| {
            FreqPercentile::default().accumulator(args)
        })
        .unwrap()
    }

    fn groups_accumulator(user_type: DataType, p: f64) -> Box<dyn GroupsAccumulator> {
        with_args(user_type, ScalarValue::Float64(Some(p)), |args| {
            FreqPercentile::default().create_groups_accumulator(args)
        })
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
            let err = with_args(DataType::Utf8, p, |args| {
                FreqPercentile::default().accumulator(args).map(|_| ())
            })
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

    type Batch = (Vec<usize>, ArrayRef, BooleanArray);

    fn random_batches(rng: &mut ChaCha8Rng, groups: usize) -> Vec<Batch> {
        (0..rng.random_range(1..6))
            .map(|_| {
                let rows = rng.random_range(0..300);
                let group_indices = (0..rows).map(|_| rng.random_range(0..groups)).collect();
                let users: StringArray = (0..rows)
                    .map(|_| {
                        (!rng.random_bool(0.1)).then(|| format!("u{}", rng.random_range(0..30)))
                    })
                    .collect();
                let filter: BooleanArray = (0..rows)
                    .map(|_| match rng.random_range(0..8) {
                        0 => None,
                        1 => Some(false),
                        _ => Some(true),
                    })
                    .collect();
                (group_indices, Arc::new(users) as ArrayRef, filter)
            })
            .collect()
    }

    /// The percentile per group, by sorting each group's per-user counts.
    fn naive(p: f64, groups: usize, batches: &[Batch]) -> Vec<Option<f64>> {
        let mut per_group: Vec<std::collections::BTreeMap<String, i64>> =
            vec![Default::default(); groups];
        for (group_indices, users, filter) in batches {
            let users = users.as_string::<i32>();
            for (row, &group) in group_indices.iter().enumerate() {
                if users.is_valid(row) && filter.is_valid(row) && filter.value(row) {
                    *per_group[group]
                        .entry(users.value(row).to_string())
                        .or_insert(0) += 1;
                }
            }
        }
        per_group
            .into_iter()
            .map(|users| {
                let mut counts: Vec<i64> = users.into_values().collect();
                counts.sort_unstable();
                if counts.is_empty() {
                    return None;
                }
                let rank = p * (counts.len() - 1) as f64;
                let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
                Some(counts[lo] as f64 + (counts[hi] - counts[lo]) as f64 * (rank - lo as f64))
            })
            .collect()
    }

    fn floats(array: &ArrayRef) -> Vec<Option<f64>> {
        array
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .iter()
            .collect()
    }

    #[test]
    fn groups_accumulator_matches_a_naive_percentile() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let groups = rng.random_range(1..60);
            let p = [0.0, 0.5, 1.0, rng.random_range(0.0..1.0)][rng.random_range(0..4)];
            let batches = random_batches(&mut rng, groups);
            let expected = naive(p, groups, &batches);

            let mut acc = groups_accumulator(DataType::Utf8, p);
            for (group_indices, users, filter) in &batches {
                acc.update_batch(&[Arc::clone(users)], group_indices, Some(filter), groups)
                    .unwrap();
            }
            let first = rng.random_range(0..=groups);
            let mut got = floats(&acc.evaluate(EmitTo::First(first)).unwrap());
            got.extend(floats(&acc.evaluate(EmitTo::All).unwrap()));
            assert_eq!(got, expected);

            let mut merged = groups_accumulator(DataType::Utf8, p);
            for (group_indices, users, filter) in &batches {
                let state = acc
                    .convert_to_state(&[Arc::clone(users)], Some(filter))
                    .unwrap();
                merged.merge_batch(&state, group_indices, groups).unwrap();
            }
            assert_eq!(floats(&merged.evaluate(EmitTo::All).unwrap()), expected);
        }
    }

    #[test]
    fn accumulator_and_groups_accumulator_merge_each_others_state() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..30 {
            let groups = rng.random_range(1..8);
            let p = rng.random_range(0.0..=1.0);
            let batches = random_batches(&mut rng, groups);
            let expected = naive(p, groups, &batches);
            let mut singles: Vec<_> = (0..groups)
                .map(|_| accumulator(DataType::Utf8, p))
                .collect();
            let mut grouped = groups_accumulator(DataType::Utf8, p);
            grouped
                .update_batch(&[strings(&[])], &[], None, groups)
                .unwrap();
            for (i, (group_indices, users, filter)) in batches.iter().enumerate() {
                if i % 2 == 0 {
                    for (g, single) in singles.iter_mut().enumerate() {
                        let mask: BooleanArray = group_indices
                            .iter()
                            .enumerate()
                            .map(|(row, &group)| {
                                Some(group == g && filter.is_valid(row) && filter.value(row))
                            })
                            .collect();
                        let rows = datafusion::arrow::compute::filter(users, &mask).unwrap();
                        single.update_batch(&[rows]).unwrap();
                    }
                } else {
                    grouped
                        .update_batch(&[Arc::clone(users)], group_indices, Some(filter), groups)
                        .unwrap();
                }
            }
            let all_groups: Vec<usize> = (0..groups).collect();
            let grouped_state = grouped.state(EmitTo::All).unwrap();
            let mut into_grouped = groups_accumulator(DataType::Utf8, p);
            into_grouped
                .merge_batch(&grouped_state, &all_groups, groups)
                .unwrap();
            let mut user_states = Vec::new();
            let mut count_states = Vec::new();
            for single in singles.iter_mut() {
                let state = single.state().unwrap();
                user_states.push(state[0].to_array().unwrap());
                count_states.push(state[1].to_array().unwrap());
            }
            let concat = |arrays: &[ArrayRef]| {
                let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
                datafusion::arrow::compute::concat(&refs).unwrap()
            };
            into_grouped
                .merge_batch(
                    &[concat(&user_states), concat(&count_states)],
                    &all_groups,
                    groups,
                )
                .unwrap();
            assert_eq!(
                floats(&into_grouped.evaluate(EmitTo::All).unwrap()),
                expected
            );

            for (g, single) in singles.iter_mut().enumerate() {
                let state: Vec<ArrayRef> = grouped_state.iter().map(|s| s.slice(g, 1)).collect();
                single.merge_batch(&state).unwrap();
                assert_eq!(value(single.as_mut()), expected[g]);
            }
        }
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
