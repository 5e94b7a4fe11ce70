//! `ACTIVE(user [, is_active])`: the number of distinct users with at least one active row, the
//! denominator of Amplitude's "average per user".

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::uniques::{
    DistinctUsersAccumulator, DistinctUsersGroupsAccumulator, distinct_users_state_fields,
};
use crate::user_keys::coerce_user_type;

make_udaf_function!(Active, active_udaf, active, user, is_active);

#[user_doc(
    doc_section(label = "Session Functions"),
    description = "The number of distinct non-NULL users with at least one active row: a row \
whose `is_active` is not false (NULL counts as active, as in `sessionize`); without the second \
argument every row is active and `ACTIVE(user)` equals `UNIQUES(user)`. A group without any \
active user gives 0 (never NULL). This is the denominator of Amplitude's \"average per user\": \
the users with an active event in the interval.",
    syntax_example = "ACTIVE(user [, is_active])",
    sql_example = r#"```sql
> CREATE TABLE events (user_id VARCHAR, is_active BOOLEAN) AS VALUES
    ('a', true), ('b', false), ('b', false), ('c', NULL), (NULL, true);
> SELECT ACTIVE(user_id, is_active) AS active_users, ACTIVE(user_id) AS users FROM events;
+--------------+-------+
| active_users | users |
+--------------+-------+
| 2            | 3     |
+--------------+-------+
```"#,
    argument(
        name = "user",
        description = "Who the row belongs to: a string (`Utf8`, `LargeUtf8`, `Utf8View`, or a \
dictionary of strings) or any integer type."
    ),
    argument(
        name = "is_active",
        description = "Optional boolean: false marks the row inactive; true and NULL are active."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Active {
    signature: Signature,
}

impl Default for Active {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Active {
    fn name(&self) -> &str {
        "active"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [user] => Ok(vec![coerce_user_type("ACTIVE", user)?]),
            [user, is_active] => {
                if !matches!(is_active, DataType::Boolean | DataType::Null) {
                    return plan_err!(
                        "ACTIVE: argument 'is_active' must be a boolean, found {is_active}"
                    );
                }
                Ok(vec![coerce_user_type("ACTIVE", user)?, DataType::Boolean])
            }
            _ => plan_err!(
                "ACTIVE: expected ACTIVE(user [, is_active]), found {} arguments",
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
        // the state is the set of active users, exactly as UNIQUES's set of users
        distinct_users_state_fields("ACTIVE", &args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(DistinctUsersAccumulator::try_new(
            "ACTIVE", &args,
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
            "ACTIVE", &args,
        )?))
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::logical_expr::EmitTo;

    use super::*;
    use crate::aggregate_testing::{
        ALL_ENCODINGS, Arg, Row, Subject, UserEncoding, check_against_naive,
    };

    fn batch(users: &[Option<&str>], flags: &[Option<bool>]) -> Vec<ArrayRef> {
        vec![
            Arc::new(StringArray::from(users.to_vec())),
            Arc::new(BooleanArray::from(flags.to_vec())),
        ]
    }

    #[test]
    fn counts_users_with_an_active_row() {
        let mut active = DistinctUsersAccumulator::new("ACTIVE", &DataType::Utf8);
        assert_eq!(
            active.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(0))
        );
        active
            .update_batch(&batch(
                &[Some("a"), Some("b"), Some("b"), Some("c"), None, Some("d")],
                &[
                    Some(false),
                    Some(false),
                    Some(true),
                    None,
                    Some(true),
                    Some(false),
                ],
            ))
            .expect("update");
        // b (true), c (NULL is active); a and d only inactive; NULL user not counted
        assert_eq!(
            active.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(2))
        );
        active
            .update_batch(&batch(&[Some("a")], &[Some(true)]))
            .expect("update");
        assert_eq!(
            active.evaluate().expect("evaluate"),
            ScalarValue::Int64(Some(3))
        );
    }

    #[test]
    fn without_a_flag_every_row_is_active() {
        let mut active = DistinctUsersGroupsAccumulator::new("ACTIVE", &DataType::Utf8);
        let users: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), Some("b"), None]));
        active
            .update_batch(&[users], &[0, 0, 1], None, 2)
            .expect("update");
        let counts = active.evaluate(EmitTo::All).expect("evaluate");
        assert_eq!(counts.as_primitive::<Int64Type>().values(), &[2, 0]);
    }

    #[test]
    fn state_holds_active_users_only() {
        let mut active = DistinctUsersGroupsAccumulator::new("ACTIVE", &DataType::Utf8);
        active
            .update_batch(
                &batch(&[Some("a"), Some("b")], &[Some(false), Some(true)]),
                &[0, 0],
                None,
                1,
            )
            .expect("update");
        let state = active.state(EmitTo::All).expect("state");
        let users = state[0].as_list::<i32>().value(0);
        assert_eq!(users.as_string::<i64>().value(0), "b");
        assert_eq!(users.len(), 1);
    }

    #[test]
    fn wrong_arguments_are_planning_errors() {
        let function = Active::default();
        let error = function
            .coerce_types(&[DataType::Utf8, DataType::Utf8])
            .expect_err("text flag");
        assert!(
            error
                .to_string()
                .contains("ACTIVE: argument 'is_active' must be a boolean, found Utf8"),
            "{error}"
        );
        let error = function.coerce_types(&[]).expect_err("none");
        assert!(
            error
                .to_string()
                .contains("ACTIVE: expected ACTIVE(user [, is_active]), found 0 arguments"),
            "{error}"
        );
        assert_eq!(
            function
                .coerce_types(&[DataType::Int8, DataType::Null])
                .expect("ok"),
            [DataType::Int64, DataType::Boolean]
        );
    }

    fn naive(rows: &[&Row]) -> ScalarValue {
        let active: BTreeSet<u64> = rows
            .iter()
            .filter(|r| r.is_active != Some(false))
            .filter_map(|r| r.user)
            .collect();
        ScalarValue::Int64(Some(active.len() as i64))
    }

    #[test]
    fn accumulators_match_naive() {
        let mut subjects: Vec<Subject> = ALL_ENCODINGS
            .into_iter()
            .map(|encoding| {
                Subject::new(&active_udaf(), &[Arg::User(encoding), Arg::IsActive], naive)
            })
            .collect();
        // without a flag, every row is active
        subjects.push(Subject::new(
            &active_udaf(),
            &[Arg::User(UserEncoding::Utf8)],
            |rows| {
                let users: BTreeSet<u64> = rows.iter().filter_map(|r| r.user).collect();
                ScalarValue::Int64(Some(users.len() as i64))
            },
        ));
        check_against_naive(&subjects, 400);
    }
}
