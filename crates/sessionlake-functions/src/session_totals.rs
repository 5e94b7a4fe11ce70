//! `SESSIONTOTALS(user, session_key)`: the number of distinct sessions, that is of distinct
//! `(user, session_key)` pairs where neither is NULL.

use std::mem::size_of_val;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray};
use datafusion::arrow::buffer::{BooleanBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
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
use crate::event_totals::coerce_session_key_type;
use crate::selection::selected_rows;
use crate::user_keys::{UserKeys, coerce_user_type, user_state_type};

make_udaf_function!(
    SessionTotals,
    session_totals_udaf,
    session_totals,
    user,
    session_key
);

#[user_doc(
    doc_section(label = "Session Functions"),
    description = "The number of distinct sessions: distinct `(user, session_key)` pairs where \
neither is NULL. A session key is only unique per user, so two users' sessions with the same key \
count twice. Over `sessionize('<table>')` rows, `FILTER (WHERE event_type = 'search')` counts the \
sessions that contain a search. A group without any session gives 0 (never NULL). Named after \
Amplitude's `SESSIONTOTALS`.",
    syntax_example = "SESSIONTOTALS(user, session_key)",
    sql_example = r#"```sql
> CREATE TABLE events (user_id VARCHAR, event_time TIMESTAMP, event_type VARCHAR) AS VALUES
    ('a', '2024-01-01T10:00:00', 'search'),
    ('a', '2024-01-01T10:05:00', 'click'),
    ('a', '2024-01-01T12:00:00', 'click'),
    ('b', '2024-01-01T10:00:00', 'click');
> SELECT SESSIONTOTALS(user_id, session_key) AS sessions,
         SESSIONTOTALS(user_id, session_key) FILTER (WHERE event_type = 'search') AS with_search
  FROM sessionize('events');
+----------+-------------+
| sessions | with_search |
+----------+-------------+
| 3        | 1           |
+----------+-------------+
```"#,
    argument(
        name = "user",
        description = "Who the session belongs to: a string (`Utf8`, `LargeUtf8`, `Utf8View`, \
or a dictionary of strings) or any integer type."
    ),
    argument(
        name = "session_key",
        description = "The session key of the row (`session_key` of `sessionize`), an integer; \
NULL outside a session."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SessionTotals {
    signature: Signature,
}

impl Default for SessionTotals {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for SessionTotals {
    fn name(&self) -> &str {
        "sessiontotals"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [user, session_key] => Ok(vec![
                coerce_user_type("SESSIONTOTALS", user)?,
                coerce_session_key_type("SESSIONTOTALS", session_key)?,
            ]),
            _ => plan_err!(
                "SESSIONTOTALS: expected SESSIONTOTALS(user, session_key), found {} arguments",
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
        let Some(user) = args.input_fields.first() else {
            return plan_err!("SESSIONTOTALS: argument 'user' is missing");
        };
        // two lists cut at the same offsets: the users and the keys of each group's sessions
        Ok(vec![
            list_state_field(
                format!("{}[users]", args.name),
                user_state_type(user.data_type()),
            ),
            list_state_field(format!("{}[session_keys]", args.name), DataType::Int64),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SessionTotalsAccumulator::new(&user_type(&args)?)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(SessionTotalsGroupsAccumulator::new(&user_type(
            &args,
        )?)))
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The user argument's type. `DISTINCT` needs no handling: the distinct sessions of distinct
/// rows are the distinct sessions.
fn user_type(args: &AccumulatorArgs) -> Result<DataType> {
    match args.expr_fields.first() {
        Some(user) => Ok(user.data_type().clone()),
        None => plan_err!("SESSIONTOTALS: argument 'user' is missing"),
    }
}

/// A session: the user's key (see `UserKeys`) and the session key.
type Session = (u64, i64);

/// The user and session key columns of a batch, and the rows where both are present (and the
/// filter passes).
fn arguments<'a>(
    values: &'a [ArrayRef],
    filter: Option<&BooleanArray>,
) -> Result<(&'a ArrayRef, &'a Int64Array, BooleanBuffer)> {
    let [users, keys] = values else {
        return internal_err!(
            "SESSIONTOTALS: expected 2 arguments, found {}",
            values.len()
        );
    };
    let Some(session_keys) = keys.as_primitive_opt::<Int64Type>() else {
        return internal_err!(
            "SESSIONTOTALS: argument 'session_key' must be Int64, found {}",
            keys.data_type()
        );
    };
    let selected = selected_rows(users.len(), &[users, keys], filter);
    Ok((users, session_keys, selected))
}

/// The two lists of a state, checked to be cut at the same offsets.
fn state_lists(states: &[ArrayRef]) -> Result<(&ListArray, &ListArray, &Int64Array)> {
    let lists = match states {
        [users, keys] => users.as_list_opt::<i32>().zip(keys.as_list_opt::<i32>()),
        _ => None,
    };
    let Some((users, keys)) = lists else {
        return internal_err!("SESSIONTOTALS: the state must be two Lists, users and keys");
    };
    let Some(key_values) = keys.values().as_primitive_opt::<Int64Type>() else {
        return internal_err!("SESSIONTOTALS: the state's session keys must be Int64");
    };
    if users.offsets() != keys.offsets() {
        return internal_err!("SESSIONTOTALS: the state's users and keys are not aligned");
    }
    Ok((users, keys, key_values))
}

/// The items of a state that a merge takes in: in a live row, with a user and a key.
fn live_sessions(users: &ListArray, key_values: &Int64Array) -> BooleanBuffer {
    let live = live_list_items(users);
    match key_values.nulls() {
        Some(nulls) => &live & nulls.inner(),
        None => live,
    }
}

/// A state of sessions as the two lists, cut at `offsets`.
fn sessions_state(
    users: &UserKeys,
    offsets: OffsetBuffer<i32>,
    sessions: &[Session],
) -> Result<[ArrayRef; 2]> {
    let user_values = users.to_array(sessions.iter().map(|&(user, _)| user))?;
    let key_values: ArrayRef = Arc::new(Int64Array::from_iter_values(
        sessions.iter().map(|&(_, key)| key),
    ));
    Ok([
        Arc::new(list_array(offsets.clone(), user_values)),
        Arc::new(list_array(offsets, key_values)),
    ])
}

/// `SESSIONTOTALS` for one group.
#[derive(Debug)]
struct SessionTotalsAccumulator {
    users: UserKeys,
    sessions: HashSet<Session>,
}

impl SessionTotalsAccumulator {
    fn new(user_type: &DataType) -> Self {
        Self {
            users: UserKeys::new("SESSIONTOTALS", user_type),
            sessions: HashSet::default(),
        }
    }
}

impl Accumulator for SessionTotalsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (users, session_keys, selected) = arguments(values, None)?;
        let user_keys = self.users.encode(users, &selected)?;
        let session_keys = session_keys.values();
        for row in selected.set_indices() {
            self.sessions.insert((user_keys[row], session_keys[row]));
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (users, _, key_values) = state_lists(states)?;
        let live = live_sessions(users, key_values);
        let user_keys = self.users.encode(users.values(), &live)?;
        let session_keys = key_values.values();
        for item in live.set_indices() {
            self.sessions.insert((user_keys[item], session_keys[item]));
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let sessions: Vec<Session> = self.sessions.iter().copied().collect();
        let offsets = OffsetBuffer::from_lengths([sessions.len()]);
        let lists = sessions_state(&self.users, offsets, &sessions)?;
        Ok(lists
            .into_iter()
            .map(|list| ScalarValue::List(Arc::new(list.as_list::<i32>().clone())))
            .collect())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.sessions.len() as i64)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.users.size()
            + hash_table_bytes::<Session>(self.sessions.capacity())
    }
}

/// `SESSIONTOTALS` for every group of a `GROUP BY`.
#[derive(Debug)]
struct SessionTotalsGroupsAccumulator {
    user_state_type: DataType,
    users: UserKeys,
    groups: GroupedDistinct<Session>,
}

impl SessionTotalsGroupsAccumulator {
    fn new(user_type: &DataType) -> Self {
        Self {
            user_state_type: user_state_type(user_type),
            users: UserKeys::new("SESSIONTOTALS", user_type),
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

impl GroupsAccumulator for SessionTotalsGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize(total_num_groups);
        let (users, session_keys, selected) = arguments(values, opt_filter)?;
        let user_keys = self.users.encode(users, &selected)?;
        let session_keys = session_keys.values();
        for row in selected.set_indices() {
            self.groups
                .insert(group_indices[row], (user_keys[row], session_keys[row]));
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
        let (users, _, key_values) = state_lists(values)?;
        let live = live_sessions(users, key_values);
        let user_keys = self.users.encode(users.values(), &live)?;
        let session_keys = key_values.values();
        for (row, items) in list_rows(users) {
            let group = group_indices[row];
            for item in items.filter(|&item| live.value(item)) {
                self.groups
                    .insert(group, (user_keys[item], session_keys[item]));
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
        let GroupedState {
            offsets,
            keys: sessions,
            ..
        } = self.groups.take_state(emit_to)?;
        let lists = sessions_state(&self.users, offsets, &sessions)?;
        self.forget_users_if_empty();
        Ok(lists.to_vec())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let (users, _, selected) = arguments(values, opt_filter)?;
        let keys = &values[1];
        Ok(vec![
            Arc::new(one_value_lists(users, &selected, &self.user_state_type)?),
            Arc::new(one_value_lists(keys, &selected, &DataType::Int64)?),
        ])
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.users.size() + self.groups.size()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use datafusion::arrow::array::{DictionaryArray, StringArray};
    use datafusion::arrow::datatypes::Int16Type;

    use super::*;
    use crate::aggregate_testing::{ALL_ENCODINGS, Arg, Row, Subject, check_against_naive};

    fn batch(users: &[Option<&str>], keys: &[Option<i64>]) -> Vec<ArrayRef> {
        vec![
            Arc::new(StringArray::from(users.to_vec())),
            Arc::new(Int64Array::from(keys.to_vec())),
        ]
    }

    #[test]
    fn counts_distinct_user_key_pairs_and_skips_nulls() {
        let mut sessions = SessionTotalsAccumulator::new(&DataType::Utf8);
        assert_eq!(
            sessions.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(0))
        );
        sessions
            .update_batch(&batch(
                &[Some("a"), Some("a"), Some("b"), Some("a"), None, Some("c")],
                &[Some(1), Some(1), Some(1), Some(2), Some(3), None],
            ))
            .expect("update");
        // (a,1) (b,1) (a,2): the same key of two users is two sessions
        assert_eq!(
            sessions.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(3))
        );
        sessions.update_batch(&batch(&[], &[])).expect("update");
        assert_eq!(
            sessions.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(3))
        );
    }

    #[test]
    fn merge_takes_the_union_of_states() {
        let mut left = SessionTotalsAccumulator::new(&DataType::Utf8);
        left.update_batch(&batch(&[Some("a"), Some("b")], &[Some(1), Some(1)]))
            .expect("update");
        let mut right = SessionTotalsAccumulator::new(&DataType::Utf8);
        right
            .update_batch(&batch(&[Some("b"), Some("b")], &[Some(1), Some(2)]))
            .expect("update");
        let state: Vec<ArrayRef> = right
            .state()
            .expect("state")
            .iter()
            .map(|s| s.to_array().expect("array"))
            .collect();
        left.merge_batch(&state).expect("merge");
        assert_eq!(
            left.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(3))
        );
    }

    #[test]
    fn dictionary_users_and_filtered_groups() {
        let users: ArrayRef = Arc::new(
            vec![Some("x"), Some("x"), None, Some("y"), Some("x")]
                .into_iter()
                .collect::<DictionaryArray<Int16Type>>(),
        );
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 1, 1, 1]));
        let filter = BooleanArray::from(vec![true, true, true, true, false]);
        let mut sessions = SessionTotalsGroupsAccumulator::new(users.data_type());
        sessions
            .update_batch(&[users, keys], &[0, 0, 1, 1, 1], Some(&filter), 2)
            .expect("update");
        let counts = sessions.evaluate(EmitTo::All).expect("evaluate");
        assert_eq!(counts.as_primitive::<Int64Type>().values(), &[2, 1]);
    }

    #[test]
    fn wrong_arguments_are_planning_errors() {
        let function = SessionTotals::default();
        let error = function
            .coerce_types(&[DataType::Utf8, DataType::Utf8])
            .expect_err("text key");
        assert!(
            error
                .to_string()
                .contains("SESSIONTOTALS: argument 'session_key' must be an integer, found Utf8"),
            "{error}"
        );
        let error = function
            .coerce_types(&[DataType::Boolean, DataType::Int64])
            .expect_err("boolean user");
        assert!(
            error.to_string().contains(
                "SESSIONTOTALS: argument 'user' must be a string or an integer, found Boolean"
            ),
            "{error}"
        );
        let error = function.coerce_types(&[DataType::Utf8]).expect_err("one");
        assert!(error.to_string().contains("found 1 arguments"), "{error}");
        assert_eq!(
            function
                .coerce_types(&[DataType::Int32, DataType::Int32])
                .expect("ok"),
            [DataType::Int64, DataType::Int64]
        );
    }

    fn naive(rows: &[&Row]) -> ScalarValue {
        let sessions: BTreeSet<(u64, i64)> = rows
            .iter()
            .filter_map(|r| r.user.zip(r.session_key))
            .collect();
        ScalarValue::Int64(Some(sessions.len() as i64))
    }

    #[test]
    fn accumulators_match_naive() {
        let subjects = ALL_ENCODINGS.map(|encoding| {
            Subject::new(
                &session_totals_udaf(),
                &[Arg::User(encoding), Arg::SessionKey],
                naive,
            )
        });
        check_against_naive(&subjects, 200);
    }
}
