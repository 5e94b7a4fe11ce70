//! Identity stitching (`sessionlake.anonymous_column`): events with a NULL user and a non-NULL
//! anonymous id (a device id) are given the user that device is identified as, so that they
//! take part in that user's sessions.
//!
//! The rule, stated in full in `docs/semantics.md`:
//! - a device is *identified as* the user of its earliest event (by time) that has both a user
//!   and the device; among events tied on that instant, the smallest user id (compared as
//!   text) wins, so one device identified as two users keeps its earliest;
//! - an event with a user keeps it; an event with a NULL user and an identified device takes
//!   the device's user; an event with a NULL user and a device never identified takes the
//!   user `anonymous:<device id>`; an event with neither stays in no session;
//! - the stitched user is text: an integer user id is shown in decimal. A real user id that
//!   itself starts with `anonymous:` is an error, so the two kinds of user never collide.
//!
//! [`stitched_events`] builds the plan: the events, a left join of them to the table of
//! identified devices (an aggregate over the same events), and [`StitchedUser`] computing the
//! user column. DataFusion plans, distributes and spills the join and the aggregate as any
//! other; [`crate::exec::SessionizeExec`] then sessionizes by the stitched user.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::common::{Column, JoinType, Result, exec_err, plan_err};
use datafusion::datasource::provider_as_source;
use datafusion::functions_aggregate::expr_fn::first_value;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, cast as cast_expr, col,
};
use sessionlake_functions::types::is_string_type;

/// The prefix of the user given to the events of a device never identified.
pub const ANONYMOUS_PREFIX: &str = "anonymous:";

/// The name [`StitchedUser`] has in plans (it is not registered for SQL).
pub const STITCHED_USER: &str = "sessionlake_stitched_user";

/// The alias of the events relation in the stitching plan.
const EVENTS: &str = "sessionlake_events";
/// The alias of the rows devices are identified from.
const SOURCE: &str = "sessionlake_identify_from";
/// The alias of the identified devices relation.
const IDENTIFIED: &str = "sessionlake_identified";
const IDENTIFIED_DEVICE: &str = "identified_device";
const IDENTIFIED_USER: &str = "identified_user";

/// The user shown for an event, from its user, the user its device is identified as and its
/// device (see the module docs): `stitched_user(user, identified_user, device)`, text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StitchedUser {
    signature: Signature,
}

impl Default for StitchedUser {
    fn default() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

/// The shared instance of [`StitchedUser`], for plans and for codecs that decode them.
pub fn stitched_user_udf() -> Arc<ScalarUDF> {
    static UDF: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::new_from_impl(StitchedUser::default())));
    Arc::clone(&UDF)
}

impl ScalarUDFImpl for StitchedUser {
    fn name(&self) -> &str {
        STITCHED_USER
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [user, identified, device] = args.args.as_slice() else {
            return exec_err!("{STITCHED_USER}: expected 3 arguments");
        };
        let as_text = |value: &ColumnarValue| -> Result<ArrayRef> {
            Ok(cast(&value.to_array(rows)?, &DataType::Utf8)?)
        };
        let (user, identified, device) = (as_text(user)?, as_text(identified)?, as_text(device)?);
        let (user, identified, device) = (
            user.as_string::<i32>(),
            identified.as_string::<i32>(),
            device.as_string::<i32>(),
        );
        let bytes = user.values().len() + identified.values().len() + device.values().len();
        let mut out = StringBuilder::with_capacity(rows, bytes);
        let mut anonymous = String::new();
        for row in 0..rows {
            if user.is_valid(row) {
                let id = user.value(row);
                if id.starts_with(ANONYMOUS_PREFIX) {
                    return exec_err!(
                        "sessionlake.anonymous_column: user id '{id}' starts with \
                         '{ANONYMOUS_PREFIX}', the prefix given to devices never identified; \
                         rename such users or leave anonymous_column unset"
                    );
                }
                out.append_value(id);
            } else if identified.is_valid(row) {
                out.append_value(identified.value(row));
            } else if device.is_valid(row) {
                anonymous.clear();
                anonymous.push_str(ANONYMOUS_PREFIX);
                anonymous.push_str(device.value(row));
                out.append_value(&anonymous);
            } else {
                out.append_null();
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `schema` with the user column, at `user`, as the stitched user: nullable text.
pub fn stitched_schema(schema: &Schema, user: usize) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            if i == user {
                Field::new(field.name(), DataType::Utf8, true)
            } else {
                field.as_ref().clone()
            }
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// Checks that a user column of `user_type` can be stitched with an anonymous column of
/// `anonymous_type`; errors name the option and the column.
pub fn check_types(
    function: &str,
    user_name: &str,
    user_type: &DataType,
    anonymous_name: &str,
    anonymous_type: &DataType,
) -> Result<()> {
    let textual = |t: &DataType| match t {
        DataType::Dictionary(_, value) => value.is_integer() || is_string_type(value),
        t => t.is_integer() || is_string_type(t),
    };
    if !textual(user_type) {
        return plan_err!(
            "{function}: sessionlake.anonymous_column needs a string or integer user column, \
             but \"{user_name}\" (sessionlake.user_column) is {user_type}"
        );
    }
    if !textual(anonymous_type) {
        return plan_err!(
            "{function}: column \"{anonymous_name}\" (sessionlake.anonymous_column) must be a \
             string or an integer, found {anonymous_type}"
        );
    }
    Ok(())
}

/// The plan of `table`'s columns `read` (indexes into its schema, ascending) with the user
/// column, at `user`, replaced by the stitched user (same name, text) for devices in the column
/// at `anonymous`, identified over the whole table; `time` is the time column. Each of `user`,
/// `anonymous` and `time` is in `read`.
pub fn stitched_events(
    table: Arc<dyn TableProvider>,
    read: &[usize],
    user: usize,
    anonymous: usize,
    time: usize,
) -> Result<LogicalPlan> {
    let schema = table.schema();
    let name = |i: usize| schema.field(i).name().clone();
    let source = provider_as_source(table);
    let events = LogicalPlanBuilder::scan(EVENTS, Arc::clone(&source), Some(read.to_vec()))?;
    let identify_from =
        LogicalPlanBuilder::scan(EVENTS, source, Some(vec![user, anonymous, time]))?;
    stitch(
        events.build()?,
        identify_from.build()?,
        &name(user),
        &name(anonymous),
        &name(time),
    )
}

/// `events` with its column `user` replaced by the stitched user (same name and position,
/// text), its devices (column `anonymous`) identified over the rows of `identify_from`, a plan
/// with the columns `user`, `anonymous` and `time` (the same table, or for a lake job reading a
/// window of the lake, the whole lake).
pub fn stitch(
    events: LogicalPlan,
    identify_from: LogicalPlan,
    user: &str,
    anonymous: &str,
    time: &str,
) -> Result<LogicalPlan> {
    let column = |relation: &str, name: &str| Expr::Column(Column::new(Some(relation), name));
    let events = LogicalPlanBuilder::from(events).alias(EVENTS)?.build()?;
    let names: Vec<String> = events
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();

    // one row per identified device: the user of its earliest event with a user, ties to the
    // smallest user as text
    let user_text = cast_expr(column(SOURCE, user), DataType::Utf8);
    let identified = LogicalPlanBuilder::from(identify_from)
        .alias(SOURCE)?
        .filter(
            column(SOURCE, user)
                .is_not_null()
                .and(column(SOURCE, anonymous).is_not_null())
                .and(column(SOURCE, time).is_not_null()),
        )?
        .aggregate(
            vec![column(SOURCE, anonymous).alias(IDENTIFIED_DEVICE)],
            vec![
                first_value(
                    user_text.clone(),
                    vec![
                        column(SOURCE, time).sort(true, true),
                        user_text.sort(true, true),
                    ],
                )
                .alias(IDENTIFIED_USER),
            ],
        )?
        .alias(IDENTIFIED)?
        .build()?;

    // the identified devices on the build side of the join (they are far fewer than events)
    let joined = LogicalPlanBuilder::from(identified)
        .join(
            events,
            JoinType::Right,
            (
                vec![Column::new(Some(IDENTIFIED), IDENTIFIED_DEVICE)],
                vec![Column::new(Some(EVENTS), anonymous)],
            ),
            None,
        )?
        .build()?;
    let projection: Vec<Expr> = names
        .iter()
        .map(|name| {
            if name == user {
                stitched_user_udf()
                    .call(vec![
                        column(EVENTS, user),
                        col(Column::new(Some(IDENTIFIED), IDENTIFIED_USER)),
                        column(EVENTS, anonymous),
                    ])
                    .alias(name)
            } else {
                column(EVENTS, name).alias(name)
            }
        })
        .collect();
    LogicalPlanBuilder::from(joined)
        .project(projection)?
        .build()
}
