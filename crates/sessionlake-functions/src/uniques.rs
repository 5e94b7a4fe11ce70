//! `UNIQUES(user)`: the exact number of distinct non-NULL users. Its accumulators also serve
//! `ACTIVE(user, is_active)`, which is `UNIQUES` over the rows whose activity flag is not false.

use std::fmt::Debug;
use std::mem::size_of_val;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray};
use datafusion::arrow::buffer::{BooleanBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{HashSet, Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::distinct_groups::{
    GroupedDistinct, GroupedState, hash_table_bytes, list_array, list_rows, list_state_field,
    live_list_items, one_value_lists,
};
use crate::selection::{active_rows, selected_rows};
use crate::user_keys::{UserKeys, coerce_user_type, user_state_type};

make_udaf_function!(Uniques, uniques_udaf, uniques, user);

#[user_doc(
    doc_section(label = "Session Functions"),
    description = "The exact number of distinct users: rows whose user is NULL are not counted, \
and a group without any non-NULL user gives 0 (never NULL). Named after Amplitude's `UNIQUES`. \
Use `FILTER (WHERE ...)` to count the users with a given event.",
    syntax_example = "UNIQUES(user)",
    sql_example = r#"```sql
> CREATE TABLE events (user_id VARCHAR, event_type VARCHAR) AS VALUES
    ('a', 'search'), ('a', 'click'), ('b', 'click'), (NULL, 'search');
> SELECT UNIQUES(user_id) AS users,
         UNIQUES(user_id) FILTER (WHERE event_type = 'search') AS searchers
  FROM events;
+-------+-----------+
| users | searchers |
+-------+-----------+
| 2     | 1         |
+-------+-----------+
```"#,
    argument(
        name = "user",
        description = "Who the row belongs to: a string (`Utf8`, `LargeUtf8`, `Utf8View`, or a \
dictionary of strings) or any integer type."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Uniques {
    signature: Signature,
}

impl Default for Uniques {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Uniques {
    fn name(&self) -> &str {
        "uniques"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [user] => Ok(vec![coerce_user_type("UNIQUES", user)?]),
            _ => plan_err!(
                "UNIQUES: expected UNIQUES(user), found {} arguments",
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
        distinct_users_state_fields("UNIQUES", &args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(DistinctUsersAccumulator::try_new(
            "UNIQUES", &args,
        )?))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(DistinctUsersGroupsAccumulator::try_new(
            "UNIQUES", &args,
        )?))
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The state of `UNIQUES` and `ACTIVE`: the list of each group's distinct (active) users.
///
/// `DISTINCT` needs no handling here or below: counting distinct users of distinct rows is
/// counting distinct users.
pub(crate) fn distinct_users_state_fields(
    function: &'static str,
    args: &StateFieldsArgs,
) -> Result<Vec<FieldRef>> {
    let Some(user) = args.input_fields.first() else {
        return plan_err!("{function}: argument 'user' is missing");
    };
    Ok(vec![list_state_field(
        format!("{}[users]", args.name),
        user_state_type(user.data_type()),
    )])
}

fn user_argument_type(function: &'static str, args: &AccumulatorArgs) -> Result<DataType> {
    match args.expr_fields.first() {
        Some(user) => Ok(user.data_type().clone()),
        None => plan_err!("{function}: argument 'user' is missing"),
    }
}

/// The rows whose user counts: a non-NULL user, passing the filter, and (given a second,
/// `is_active` argument) not flagged inactive.
fn counted_rows(
    function: &'static str,
    values: &[ArrayRef],
    filter: Option<&BooleanArray>,
) -> Result<BooleanBuffer> {
    let Some(users) = values.first() else {
        return internal_err!("{function}: argument 'user' is missing");
    };
    let selected = selected_rows(users.len(), &[users], filter);
    match values.get(1) {
        None => Ok(selected),
        Some(flags) => match flags.as_boolean_opt() {
            Some(flags) => Ok(&selected & &active_rows(flags)),
            None => internal_err!(
                "{function}: argument 'is_active' must be a boolean, found {}",
                flags.data_type()
            ),
        },
    }
}

fn list_state<'a>(function: &str, states: &'a [ArrayRef]) -> Result<&'a ListArray> {
    match states.first().and_then(|state| state.as_list_opt::<i32>()) {
        Some(list) => Ok(list),
        None => internal_err!("{function}: the state must be one List of users"),
    }
}

/// `UNIQUES` / `ACTIVE` for one group (no `GROUP BY`, or a window).
#[derive(Debug)]
pub(crate) struct DistinctUsersAccumulator {
    function: &'static str,
    users: UserKeys,
    seen: HashSet<u64>,
}

impl DistinctUsersAccumulator {
    pub(crate) fn try_new(function: &'static str, args: &AccumulatorArgs) -> Result<Self> {
        Ok(Self::new(function, &user_argument_type(function, args)?))
    }

    pub(crate) fn new(function: &'static str, user_type: &DataType) -> Self {
        Self {
            function,
            users: UserKeys::new(function, user_type),
            seen: HashSet::default(),
        }
    }
}

impl Accumulator for DistinctUsersAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let selected = counted_rows(self.function, values, None)?;
        let Some(users) = values.first() else {
            return internal_err!("{}: argument 'user' is missing", self.function);
        };
        let keys = self.users.encode(users, &selected)?;
        for row in selected.set_indices() {
            self.seen.insert(keys[row]);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let list = list_state(self.function, states)?;
        let live = live_list_items(list);
        let keys = self.users.encode(list.values(), &live)?;
        for item in live.set_indices() {
            self.seen.insert(keys[item]);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let users = self.users.to_array(self.seen.iter().copied())?;
        let offsets = OffsetBuffer::from_lengths([users.len()]);
        Ok(vec![ScalarValue::List(Arc::new(list_array(
            offsets, users,
        )))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.seen.len() as i64)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.users.size() + hash_table_bytes::<u64>(self.seen.capacity())
    }
}

/// `UNIQUES` / `ACTIVE` for every group of a `GROUP BY` at once.
#[derive(Debug)]
pub(crate) struct DistinctUsersGroupsAccumulator {
    function: &'static str,
    user_state_type: DataType,
    users: UserKeys,
    groups: GroupedDistinct<u64>,
}

impl DistinctUsersGroupsAccumulator {
    pub(crate) fn try_new(function: &'static str, args: &AccumulatorArgs) -> Result<Self> {
        Ok(Self::new(function, &user_argument_type(function, args)?))
    }

    pub(crate) fn new(function: &'static str, user_type: &DataType) -> Self {
        Self {
            function,
            user_state_type: user_state_type(user_type),
            users: UserKeys::new(function, user_type),
            groups: GroupedDistinct::new(),
        }
    }

    /// Once every group is emitted no interned id is referred to: drop the strings too.
    fn forget_users_if_empty(&mut self) {
        if self.groups.is_empty() {
            self.users.clear();
        }
    }
}

impl GroupsAccumulator for DistinctUsersGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize(total_num_groups);
        let selected = counted_rows(self.function, values, opt_filter)?;
        let Some(users) = values.first() else {
            return internal_err!("{}: argument 'user' is missing", self.function);
        };
        let keys = self.users.encode(users, &selected)?;
        for row in selected.set_indices() {
            self.groups.insert(group_indices[row], keys[row]);
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize(total_num_groups);
        let list = list_state(self.function, values)?;
        let live = live_list_items(list);
        let keys = self.users.encode(list.values(), &live)?;
        for (row, items) in list_rows(list) {
            let group = group_indices[row];
            for item in items.filter(|&item| live.value(item)) {
                self.groups.insert(group, keys[item]);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let counts = self.groups.evaluate(emit_to);
        self.forget_users_if_empty();
        Ok(counts)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let GroupedState { offsets, keys, .. } = self.groups.take_state(emit_to)?;
        let users = self.users.to_array(keys.into_iter())?;
        self.forget_users_if_empty();
        Ok(vec![Arc::new(list_array(offsets, users))])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let selected = counted_rows(self.function, values, opt_filter)?;
        let Some(users) = values.first() else {
            return internal_err!("{}: argument 'user' is missing", self.function);
        };
        Ok(vec![Arc::new(one_value_lists(
            users,
            &selected,
            &self.user_state_type,
        )?)])
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.users.size() + self.groups.size()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use datafusion::arrow::array::{
        DictionaryArray, Int64Array, StringArray, StringViewArray, UInt64Array,
    };
    use datafusion::arrow::datatypes::{Int8Type, Int64Type};

    use super::*;
    use crate::aggregate_testing::{ALL_ENCODINGS, Arg, Row, Subject, check_against_naive};

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn evaluate(accumulator: &mut dyn Accumulator) -> ScalarValue {
        accumulator.evaluate().expect("evaluate")
    }

    #[test]
    fn counts_distinct_users_and_skips_nulls() {
        let mut uniques = DistinctUsersAccumulator::new("UNIQUES", &DataType::Utf8);
        uniques
            .update_batch(&[strings(&[Some("a"), Some("b"), None, Some("a")])])
            .expect("update");
        uniques
            .update_batch(&[strings(&[Some("c"), Some("b"), Some("")])])
            .expect("update");
        assert_eq!(evaluate(&mut uniques), ScalarValue::Int64(Some(4)));
    }

    #[test]
    fn empty_and_all_null_input_count_zero() {
        let mut uniques = DistinctUsersAccumulator::new("UNIQUES", &DataType::Utf8);
        assert_eq!(evaluate(&mut uniques), ScalarValue::Int64(Some(0)));
        uniques
            .update_batch(&[strings(&[None, None])])
            .expect("update");
        uniques.update_batch(&[strings(&[])]).expect("update");
        assert_eq!(evaluate(&mut uniques), ScalarValue::Int64(Some(0)));
        let state = uniques.state().expect("state");
        let mut other = DistinctUsersAccumulator::new("UNIQUES", &DataType::Utf8);
        let arrays: Vec<ArrayRef> = state.iter().map(|s| s.to_array().expect("array")).collect();
        other.merge_batch(&arrays).expect("merge");
        assert_eq!(evaluate(&mut other), ScalarValue::Int64(Some(0)));
    }

    #[test]
    fn merge_takes_the_union_of_states() {
        let mut left = DistinctUsersAccumulator::new("UNIQUES", &DataType::Utf8);
        left.update_batch(&[strings(&[Some("a"), Some("b")])])
            .expect("update");
        let mut right = DistinctUsersAccumulator::new("UNIQUES", &DataType::Utf8);
        right
            .update_batch(&[strings(&[Some("b"), Some("c"), Some("d")])])
            .expect("update");
        let state: Vec<ArrayRef> = right
            .state()
            .expect("state")
            .iter()
            .map(|s| s.to_array().expect("array"))
            .collect();
        assert_eq!(
            state[0].data_type(),
            &crate::distinct_groups::list_type(DataType::LargeUtf8)
        );
        left.merge_batch(&state).expect("merge");
        assert_eq!(evaluate(&mut left), ScalarValue::Int64(Some(4)));
    }

    #[test]
    fn dictionary_view_and_integer_users() {
        let dictionary: ArrayRef = Arc::new(
            vec![Some("x"), None, Some("y"), Some("x")]
                .into_iter()
                .collect::<DictionaryArray<Int8Type>>(),
        );
        let mut uniques = DistinctUsersAccumulator::new("UNIQUES", dictionary.data_type());
        uniques.update_batch(&[dictionary]).expect("update");
        let view: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("y"),
            Some("z-longer-than-twelve-bytes"),
            None,
        ]));
        uniques.update_batch(&[view]).expect("update");
        assert_eq!(evaluate(&mut uniques), ScalarValue::Int64(Some(3)));

        let mut integers = DistinctUsersAccumulator::new("UNIQUES", &DataType::Int64);
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(-1), Some(7), None, Some(-1)]));
        integers.update_batch(&[ids]).expect("update");
        assert_eq!(evaluate(&mut integers), ScalarValue::Int64(Some(2)));

        let mut unsigned = DistinctUsersAccumulator::new("UNIQUES", &DataType::UInt64);
        let ids: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX, 0, u64::MAX]));
        unsigned.update_batch(&[ids]).expect("update");
        assert_eq!(evaluate(&mut unsigned), ScalarValue::Int64(Some(2)));
    }

    #[test]
    fn groups_count_per_group_with_filter() {
        let mut groups = DistinctUsersGroupsAccumulator::new("UNIQUES", &DataType::Utf8);
        let users = strings(&[Some("a"), Some("a"), Some("b"), None, Some("c"), Some("d")]);
        let filter = BooleanArray::from(vec![
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            None,
            Some(false),
        ]);
        groups
            .update_batch(&[users], &[0, 0, 0, 1, 2, 2], Some(&filter), 4)
            .expect("update");
        let counts = groups.evaluate(EmitTo::All).expect("evaluate");
        assert_eq!(counts.as_primitive::<Int64Type>().values(), &[2, 0, 0, 0]);
    }

    #[test]
    fn size_accounts_for_the_users() {
        let mut groups = DistinctUsersGroupsAccumulator::new("UNIQUES", &DataType::Utf8);
        let empty = groups.size();
        let users: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..5000).map(|i| format!("some-user-id-{i:06}")),
        ));
        let group_indices: Vec<usize> = (0..5000).map(|i| i % 100).collect();
        groups
            .update_batch(&[users], &group_indices, None, 100)
            .expect("update");
        // 5000 ids of 19 bytes, 5000 (group, key) entries of 16 bytes
        assert!(
            groups.size() >= empty + 5000 * (19 + 16),
            "{}",
            groups.size()
        );
        groups.evaluate(EmitTo::All).expect("evaluate");
        assert!(
            groups.size() < empty + 5000 * 19,
            "emitting everything frees the users"
        );
    }

    fn naive(rows: &[&Row]) -> ScalarValue {
        let users: BTreeSet<u64> = rows.iter().filter_map(|r| r.user).collect();
        ScalarValue::Int64(Some(users.len() as i64))
    }

    #[test]
    fn accumulators_match_naive() {
        let subjects = ALL_ENCODINGS
            .map(|encoding| Subject::new(&uniques_udaf(), &[Arg::User(encoding)], naive));
        check_against_naive(&subjects, 0);
    }

    #[test]
    fn wrong_arguments_are_planning_errors() {
        let uniques = Uniques::default();
        let error = uniques
            .coerce_types(&[DataType::Float64])
            .expect_err("float");
        assert!(
            error
                .to_string()
                .contains("UNIQUES: argument 'user' must be a string or an integer, found Float64"),
            "{error}"
        );
        let error = uniques
            .coerce_types(&[DataType::Utf8, DataType::Utf8])
            .expect_err("two");
        assert!(
            error
                .to_string()
                .contains("UNIQUES: expected UNIQUES(user), found 2 arguments"),
            "{error}"
        );
        assert_eq!(
            uniques.coerce_types(&[DataType::Int16]).expect("ok"),
            [DataType::Int64]
        );
    }
}
