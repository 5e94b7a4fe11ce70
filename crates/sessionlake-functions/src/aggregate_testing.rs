//! Test support for the aggregate functions: accumulators built from a UDAF as the planner
//! builds them ([`Call`], [`accumulators`]), seeded random rows (users in every encoding,
//! session keys, activity flags, a property value), and the checks every aggregate runs
//! ([`check_against_naive`]): against a naive per-group reference written in its own file, and
//! between its `Accumulator` and `GroupsAccumulator` exchanging state in both directions.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Int32Array, Int64Array, LargeStringArray,
    StringArray, StringViewArray, UInt64Array, new_empty_array,
};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int32Type, Schema};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One input row, in plain Rust values; an aggregate's arguments ([`Arg`]) read it as columns.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub group: usize,
    pub user: Option<u64>,
    pub session_key: Option<i64>,
    pub is_active: Option<bool>,
    /// A property, which each test maps to the type it aggregates ([`Arg::Property`]).
    pub value: Option<i64>,
    /// The `FILTER (WHERE ...)` value, used when the batch is filtered.
    pub filter: Option<bool>,
}

/// How a user column arrives, after the functions' type coercion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserEncoding {
    Utf8,
    LargeUtf8,
    Utf8View,
    Dictionary,
    Int64,
    UInt64,
}

pub(crate) const ALL_ENCODINGS: [UserEncoding; 6] = [
    UserEncoding::Utf8,
    UserEncoding::LargeUtf8,
    UserEncoding::Utf8View,
    UserEncoding::Dictionary,
    UserEncoding::Int64,
    UserEncoding::UInt64,
];

impl UserEncoding {
    pub(crate) fn data_type(self) -> DataType {
        match self {
            Self::Utf8 => DataType::Utf8,
            Self::LargeUtf8 => DataType::LargeUtf8,
            Self::Utf8View => DataType::Utf8View,
            Self::Dictionary => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
            Self::Int64 => DataType::Int64,
            Self::UInt64 => DataType::UInt64,
        }
    }
}

/// The text of user `n`: short ids and, for odd `n`, ids longer than a view's inline 12 bytes.
fn user_name(n: u64) -> String {
    if n.is_multiple_of(2) {
        format!("u{n}")
    } else {
        format!("user-{n}-with-a-long-suffix")
    }
}

/// The users of `rows` as a column of `encoding`. Integer users are spread over the whole value
/// range (negative, and above `i64::MAX`); a dictionary encodes half of its NULLs as a NULL key
/// and half as a key pointing at a NULL value.
fn user_column(rows: &[Row], encoding: UserEncoding) -> ArrayRef {
    let users = rows.iter().map(|r| r.user);
    match encoding {
        UserEncoding::Utf8 => Arc::new(StringArray::from_iter(users.map(|u| u.map(user_name)))),
        UserEncoding::LargeUtf8 => {
            Arc::new(LargeStringArray::from_iter(users.map(|u| u.map(user_name))))
        }
        UserEncoding::Utf8View => {
            Arc::new(StringViewArray::from_iter(users.map(|u| u.map(user_name))))
        }
        UserEncoding::Dictionary => {
            // value i is user i for i < 64, value 64 is NULL
            let mut values: Vec<Option<String>> = (0..64).map(|n| Some(user_name(n))).collect();
            values.push(None);
            let keys = rows
                .iter()
                .enumerate()
                .map(|(row, r)| match r.user {
                    Some(user) => Some(user as i32),
                    None if row % 2 == 0 => None,
                    None => Some(64),
                })
                .collect::<Int32Array>();
            let values = Arc::new(StringArray::from(values));
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).expect("dictionary"))
        }
        UserEncoding::Int64 => Arc::new(Int64Array::from_iter(
            users.map(|u| u.map(|n| (n as i64 - 5).wrapping_mul(1 << 40))),
        )),
        UserEncoding::UInt64 => Arc::new(UInt64Array::from_iter(
            users.map(|u| u.map(|n| u64::MAX - n)),
        )),
    }
}

fn session_key_column(rows: &[Row]) -> ArrayRef {
    Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.session_key)))
}

fn is_active_column(rows: &[Row]) -> ArrayRef {
    Arc::new(BooleanArray::from_iter(rows.iter().map(|r| r.is_active)))
}

/// The property values of `rows`, each mapped by `value` to a scalar, as a column of
/// `data_type` (cast from the scalars' type, so strings can arrive as views or a dictionary).
fn property_column(rows: &[Row], data_type: &DataType, value: fn(i64) -> ScalarValue) -> ArrayRef {
    let scalar_type = value(0).data_type();
    let plain = if rows.is_empty() {
        new_empty_array(&scalar_type)
    } else {
        let null = ScalarValue::try_from(&scalar_type).expect("a NULL of the property type");
        ScalarValue::iter_to_array(rows.iter().map(|r| r.value.map_or(null.clone(), value)))
            .expect("property column")
    };
    cast(&plain, data_type).expect("property column in its type")
}

/// A property value as text: 40 distinct strings, among them the empty string, strings that
/// are prefixes of others and strings longer than a view's inline 12 bytes.
pub(crate) fn property_text(value: i64) -> String {
    let n = value.rem_euclid(40) as usize;
    let mut text = "ab".repeat(n / 2);
    if n % 2 == 1 {
        text.push('z');
    }
    text
}

/// A property value as a float: NaN of both signs, both zeros, and halves.
pub(crate) fn property_float(value: i64) -> f64 {
    match value.rem_euclid(16) {
        0 => f64::NAN,
        1 => -f64::NAN,
        2 => -0.0,
        3 => 0.0,
        n => (n - 8) as f64 / 2.0,
    }
}

/// Every encoding a string column can arrive in.
pub(crate) fn string_types() -> [DataType; 4] {
    [
        DataType::Utf8,
        DataType::LargeUtf8,
        DataType::Utf8View,
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
    ]
}

fn filter_column(rows: &[Row]) -> BooleanArray {
    BooleanArray::from_iter(rows.iter().map(|r| r.filter))
}

/// Whether a row of a batch (filtered or not) reaches the aggregate.
fn passes(row: &Row, filtered: bool) -> bool {
    !filtered || row.filter == Some(true)
}

/// `count` random rows over `groups` groups; users below 64 (so they repeat and fit the test
/// dictionary), property values in -1000..1000, about one value in eight NULL.
fn random_rows(rng: &mut ChaCha8Rng, count: usize, groups: usize) -> Vec<Row> {
    let distinct_users = rng.random_range(1..64_u64);
    (0..count)
        .map(|_| Row {
            group: rng.random_range(0..groups),
            user: rng
                .random_bool(0.875)
                .then(|| rng.random_range(0..distinct_users)),
            session_key: rng
                .random_bool(0.875)
                .then(|| rng.random_range(-3..6_i64) * 1_800_000),
            is_active: match rng.random_range(0..3) {
                0 => Some(true),
                1 => Some(false),
                _ => None,
            },
            value: rng
                .random_bool(0.875)
                .then(|| rng.random_range(-1_000..1_000)),
            filter: match rng.random_range(0..4) {
                0 => None,
                1 => Some(false),
                _ => Some(true),
            },
        })
        .collect()
}

/// One argument of an aggregate call under test.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// The rows' users, in an encoding.
    User(UserEncoding),
    /// The rows' session keys, as `Int64`.
    SessionKey,
    /// The rows' activity flags, as `Boolean`.
    IsActive,
    /// The rows' property values, each mapped to a scalar, as a column of the type given.
    Property(DataType, fn(i64) -> ScalarValue),
    /// A column of a type, for tests that feed it themselves.
    Column(DataType),
    /// A constant, such as HIST's bins or FREQPERCENTILE's `p`.
    Literal(ScalarValue),
}

impl Arg {
    /// The rows' property values as `Int64`.
    pub(crate) fn integer_values() -> Self {
        Self::Property(DataType::Int64, |v| ScalarValue::Int64(Some(v)))
    }

    /// The rows' property values in quarters (`v / 4`) as `Float64`: any sum of them is exact,
    /// whatever the order of the additions.
    pub(crate) fn quarter_values() -> Self {
        Self::Property(DataType::Float64, |v| ScalarValue::from(v as f64 / 4.0))
    }

    /// The rows' [`property_float`]s as `Float64`.
    pub(crate) fn float_values() -> Self {
        Self::Property(DataType::Float64, |v| ScalarValue::from(property_float(v)))
    }

    /// The rows' [`property_text`]s as strings of `data_type`.
    pub(crate) fn text_values(data_type: DataType) -> Self {
        Self::Property(data_type, |v| ScalarValue::from(property_text(v)))
    }

    fn data_type(&self) -> DataType {
        match self {
            Self::User(encoding) => encoding.data_type(),
            Self::SessionKey => DataType::Int64,
            Self::IsActive => DataType::Boolean,
            Self::Property(data_type, _) | Self::Column(data_type) => data_type.clone(),
            Self::Literal(value) => value.data_type(),
        }
    }

    /// The argument's values for `rows`, as the aggregate receives them (a constant repeated).
    fn values(&self, rows: &[Row]) -> ArrayRef {
        match self {
            Self::User(encoding) => user_column(rows, *encoding),
            Self::SessionKey => session_key_column(rows),
            Self::IsActive => is_active_column(rows),
            Self::Property(data_type, value) => property_column(rows, data_type, *value),
            Self::Literal(value) => value.to_array_of_size(rows.len()).expect("constant column"),
            Self::Column(data_type) => panic!("a Column({data_type}) argument has no row values"),
        }
    }
}

/// An aggregate called on some arguments, planned as DataFusion plans it: argument types
/// through `coerce_types`, constants cast to their coerced type, the return type from
/// `return_type`. Its `AccumulatorArgs` are built here and nowhere else.
pub(crate) struct Call {
    udaf: Arc<dyn AggregateUDFImpl>,
    /// `name(type, ...)`, for `AccumulatorArgs` and failure messages.
    name: String,
    args: Vec<Arg>,
    schema: Schema,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    fields: Vec<FieldRef>,
    return_field: FieldRef,
    distinct: bool,
}

impl Call {
    /// Panics when the types are refused, or when rows would give a column of another type
    /// than the planned one (declare the coerced type, so a test runs the type it names).
    pub(crate) fn new(udaf: &AggregateUDF, args: &[Arg]) -> Self {
        let udaf = Arc::clone(udaf.inner());
        let types: Vec<DataType> = args.iter().map(Arg::data_type).collect();
        let name = format!(
            "{}({})",
            udaf.name(),
            types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let coerced = udaf
            .coerce_types(&types)
            .unwrap_or_else(|e| panic!("{name}: coerce_types: {e}"));
        assert_eq!(coerced.len(), args.len(), "{name}: coerce_types");
        let mut schema_fields = Vec::new();
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
        let mut fields = Vec::new();
        let mut planned_args = Vec::new();
        for (index, (arg, data_type)) in args.iter().zip(&coerced).enumerate() {
            let field = Field::new(format!("arg{index}"), data_type.clone(), true);
            fields.push(Arc::new(field.clone()));
            let planned = match arg {
                Arg::Literal(value) => {
                    let value = value
                        .cast_to(data_type)
                        .expect("constant in its coerced type");
                    exprs.push(Arc::new(Literal::new(value.clone())));
                    Arg::Literal(value)
                }
                _ => {
                    assert!(
                        matches!(arg, Arg::Column(_)) || &arg.data_type() == data_type,
                        "{name}: argument {index} is coerced to {data_type}: declare that type"
                    );
                    exprs.push(Arc::new(Column::new(field.name(), schema_fields.len())));
                    schema_fields.push(field.clone());
                    arg.clone()
                }
            };
            planned_args.push(planned);
        }
        let return_type = udaf
            .return_type(&coerced)
            .unwrap_or_else(|e| panic!("{name}: return_type: {e}"));
        Self {
            return_field: Arc::new(Field::new(&name, return_type, udaf.is_nullable())),
            fields,
            udaf,
            name,
            args: planned_args,
            schema: Schema::new(schema_fields),
            exprs,
            distinct: false,
        }
    }

    /// The same call with `DISTINCT`.
    pub(crate) fn distinct(self) -> Self {
        Self {
            distinct: true,
            ..self
        }
    }

    fn accumulator_args(&self) -> AccumulatorArgs<'_> {
        AccumulatorArgs {
            return_field: Arc::clone(&self.return_field),
            schema: &self.schema,
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name: &self.name,
            is_distinct: self.distinct,
            exprs: &self.exprs,
            expr_fields: &self.fields,
        }
    }

    pub(crate) fn accumulator(&self) -> Result<Box<dyn Accumulator>> {
        self.udaf.accumulator(self.accumulator_args())
    }

    pub(crate) fn groups_accumulator(&self) -> Result<Box<dyn GroupsAccumulator>> {
        let supported = self
            .udaf
            .groups_accumulator_supported(self.accumulator_args());
        assert!(supported, "{}: no groups accumulator", self.name);
        self.udaf.create_groups_accumulator(self.accumulator_args())
    }

    /// Both accumulators; panics when the call is refused.
    pub(crate) fn accumulators(&self) -> (Box<dyn Accumulator>, Box<dyn GroupsAccumulator>) {
        (
            self.accumulator()
                .unwrap_or_else(|e| panic!("{}: accumulator: {e}", self.name)),
            self.groups_accumulator()
                .unwrap_or_else(|e| panic!("{}: groups accumulator: {e}", self.name)),
        )
    }

    /// The types of the partial state, as the aggregate declares them.
    fn state_types(&self) -> Vec<DataType> {
        let fields = self
            .udaf
            .state_fields(StateFieldsArgs {
                name: &self.name,
                input_fields: &self.fields,
                return_field: Arc::clone(&self.return_field),
                ordering_fields: &[],
                is_distinct: self.distinct,
            })
            .expect("state_fields");
        fields.iter().map(|f| f.data_type().clone()).collect()
    }

    /// The argument arrays for `rows`.
    fn values(&self, rows: &[Row]) -> Vec<ArrayRef> {
        self.args.iter().map(|arg| arg.values(rows)).collect()
    }

    /// The results of an evaluation, which must have the planned return type.
    fn results(&self, array: Result<ArrayRef>) -> Vec<ScalarValue> {
        let array = array.expect("evaluate");
        assert_eq!(
            array.data_type(),
            self.return_field.data_type(),
            "{}",
            self.name
        );
        (0..array.len())
            .map(|row| ScalarValue::try_from_array(&array, row).expect("result"))
            .collect()
    }

    /// A partial state, which must have the declared state types.
    fn checked_state(&self, state: Result<Vec<ArrayRef>>) -> Vec<ArrayRef> {
        let state = state.expect("state");
        let types: Vec<&DataType> = state.iter().map(|column| column.data_type()).collect();
        assert_eq!(
            types,
            self.state_types().iter().collect::<Vec<_>>(),
            "{}",
            self.name
        );
        state
    }
}

/// Both accumulators of `udaf` called on `args`, as the planner would create them.
pub(crate) fn accumulators(
    udaf: &AggregateUDF,
    args: &[Arg],
) -> (Box<dyn Accumulator>, Box<dyn GroupsAccumulator>) {
    Call::new(udaf, args).accumulators()
}

/// The answer for the rows of one group that reach the aggregate.
type Naive = Box<dyn Fn(&[&Row]) -> ScalarValue>;

/// An aggregate call under test, and its naive answer: a plain computation over `Row` values,
/// written in the aggregate's own file.
pub(crate) struct Subject {
    call: Call,
    naive: Naive,
}

impl Subject {
    pub(crate) fn new(
        udaf: &AggregateUDF,
        args: &[Arg],
        naive: impl Fn(&[&Row]) -> ScalarValue + 'static,
    ) -> Self {
        Self {
            call: Call::new(udaf, args),
            naive: Box::new(naive),
        }
    }
}

struct Batch {
    rows: Vec<Row>,
    filtered: bool,
}

impl Batch {
    fn filter(&self) -> Option<BooleanArray> {
        self.filtered.then(|| filter_column(&self.rows))
    }

    fn groups(&self) -> Vec<usize> {
        self.rows.iter().map(|r| r.group).collect()
    }
}

fn random_batches(rng: &mut ChaCha8Rng, groups: usize) -> Vec<Batch> {
    (0..rng.random_range(1..5))
        .map(|_| {
            let count = rng.random_range(0..300);
            Batch {
                rows: random_rows(rng, count, groups),
                filtered: rng.random_bool(0.5),
            }
        })
        .collect()
}

/// Round `round` of `subject`: random batches over 1 to `max_groups - 1` groups, the naive
/// answer of each group, and what a failure message names.
fn random_round(
    subject: &Subject,
    rng: &mut ChaCha8Rng,
    max_groups: usize,
    round: u32,
) -> (usize, Vec<Batch>, Vec<ScalarValue>, String) {
    let groups = rng.random_range(1..max_groups);
    let batches = random_batches(rng, groups);
    let expected = (0..groups)
        .map(|group| {
            let rows: Vec<&Row> = batches
                .iter()
                .flat_map(|b| b.rows.iter().filter(move |r| passes(r, b.filtered)))
                .filter(|r| r.group == group)
                .collect();
            (subject.naive)(&rows)
        })
        .collect();
    let context = format!("{}, round {round}", subject.call.name);
    (groups, batches, expected, context)
}

/// `results` equal to `expected`, group by group; a failure names the first group that differs.
fn assert_groups(results: &[ScalarValue], expected: &[ScalarValue], context: &str) {
    assert_eq!(results.len(), expected.len(), "number of groups, {context}");
    for (group, (result, expected)) in results.iter().zip(expected).enumerate() {
        assert_eq!(result, expected, "group {group}, {context}");
    }
}

fn update_groups(
    accumulator: &mut dyn GroupsAccumulator,
    call: &Call,
    batches: &[Batch],
    groups: usize,
) {
    for batch in batches {
        let filter = batch.filter();
        accumulator
            .update_batch(
                &call.values(&batch.rows),
                &batch.groups(),
                filter.as_ref(),
                groups,
            )
            .expect("update_batch");
    }
}

/// Each column of `head` followed by the same column of `tail`.
fn concat_states(head: &[ArrayRef], tail: &[ArrayRef]) -> Vec<ArrayRef> {
    head.iter()
        .zip(tail)
        .map(|(head, tail)| concat(&[head.as_ref(), tail.as_ref()]).expect("concat"))
        .collect()
}

fn state_arrays(state: &[ScalarValue]) -> Vec<ArrayRef> {
    state
        .iter()
        .map(|value| value.to_array().expect("state array"))
        .collect()
}

/// Both checks below for every subject, seeded from `seed`.
pub(crate) fn check_against_naive(subjects: &[Subject], seed: u64) {
    for (offset, subject) in (0..).zip(subjects) {
        check_groups_against_naive(subject, seed + 2 * offset);
        check_accumulators_exchange_state(subject, seed + 2 * offset + 1);
    }
}

/// The `GroupsAccumulator` against the naive reference over many groups, with and without
/// FILTER: evaluated in two emissions (`First(k)` then `All`), through `state(First(k))` and
/// `state(All)` merged into a fresh accumulator, and through `convert_to_state`. Results have
/// the planned return type and states the declared state types.
fn check_groups_against_naive(subject: &Subject, seed: u64) {
    let call = &subject.call;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for round in 0..12 {
        let (groups, batches, expected, context) = random_round(subject, &mut rng, 200, round);
        let first = rng.random_range(0..=groups);

        let (_, mut direct) = call.accumulators();
        update_groups(direct.as_mut(), call, &batches, groups);
        // counted, and in proportion to at most 1,200 rows
        let size = direct.size();
        assert!(size > 0 && size < 1_000_000, "size {size}, {context}");
        let mut result = call.results(direct.evaluate(EmitTo::First(first)));
        result.extend(call.results(direct.evaluate(EmitTo::All)));
        assert_groups(&result, &expected, &format!("evaluate, {context}"));

        let (_, mut partial) = call.accumulators();
        update_groups(partial.as_mut(), call, &batches, groups);
        let head = call.checked_state(partial.state(EmitTo::First(first)));
        let tail = call.checked_state(partial.state(EmitTo::All));
        let (_, mut merged) = call.accumulators();
        merged
            .merge_batch(&head, &(0..first).collect::<Vec<_>>(), groups)
            .expect("merge_batch");
        merged
            .merge_batch(&tail, &(first..groups).collect::<Vec<_>>(), groups)
            .expect("merge_batch");
        let merged = call.results(merged.evaluate(EmitTo::All));
        assert_groups(&merged, &expected, &format!("state, {context}"));

        let (_, converter) = call.accumulators();
        let (_, mut from_rows) = call.accumulators();
        for batch in &batches {
            let filter = batch.filter();
            let state = converter.convert_to_state(&call.values(&batch.rows), filter.as_ref());
            let state = call.checked_state(state);
            assert!(state.iter().all(|column| column.len() == batch.rows.len()));
            from_rows
                .merge_batch(&state, &batch.groups(), groups)
                .expect("merge_batch");
        }
        let from_rows = call.results(from_rows.evaluate(EmitTo::All));
        assert_groups(
            &from_rows,
            &expected,
            &format!("convert_to_state, {context}"),
        );
    }
}

/// One `Accumulator` per group fed part of the rows (checked alone against the naive answer for
/// its rows), a `GroupsAccumulator` fed the rest; each merges the other's state (the groups'
/// state emitted in two parts), and so does a fresh `Accumulator` per group: all must give the
/// naive answer for all the rows.
fn check_accumulators_exchange_state(subject: &Subject, seed: u64) {
    let call = &subject.call;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for round in 0..12 {
        let (groups, batches, expected, context) = random_round(subject, &mut rng, 20, round);

        // each row goes to one side; the single-group accumulators get pre-filtered rows, as
        // DataFusion filters their input itself
        let mut grouped_side = Vec::new();
        let mut single_side: Vec<Vec<Row>> = vec![Vec::new(); groups];
        for batch in &batches {
            let mut rows = Vec::new();
            for row in &batch.rows {
                if rng.random_bool(0.5) {
                    rows.push(row.clone());
                } else if passes(row, batch.filtered) {
                    single_side[row.group].push(row.clone());
                }
            }
            grouped_side.push(Batch {
                rows,
                filtered: batch.filtered,
            });
        }

        let mut singles: Vec<Box<dyn Accumulator>> = single_side
            .iter()
            .map(|rows| {
                let (mut accumulator, _) = call.accumulators();
                let (left, right) = rows.split_at(rows.len() / 2);
                for part in [left, right] {
                    accumulator
                        .update_batch(&call.values(part))
                        .expect("update_batch");
                }
                let alone = accumulator.evaluate().expect("evaluate");
                let rows: Vec<&Row> = rows.iter().collect();
                assert_eq!(
                    alone,
                    (subject.naive)(&rows),
                    "accumulator alone, {context}"
                );
                accumulator
            })
            .collect();
        let single_states: Vec<Vec<ScalarValue>> = singles
            .iter_mut()
            .map(|accumulator| accumulator.state().expect("state"))
            .collect();

        let (_, mut grouped) = call.accumulators();
        update_groups(grouped.as_mut(), call, &grouped_side, groups);
        let first = rng.random_range(0..=groups);
        let head = call.checked_state(grouped.state(EmitTo::First(first)));
        let tail = call.checked_state(grouped.state(EmitTo::All));
        let grouped_state = concat_states(&head, &tail);

        // groups state -> accumulators, updated ones and fresh ones
        for (group, accumulator) in singles.iter_mut().enumerate() {
            let slice: Vec<ArrayRef> = grouped_state.iter().map(|c| c.slice(group, 1)).collect();
            accumulator.merge_batch(&slice).expect("merge_batch");
            let (mut fresh, _) = call.accumulators();
            fresh.merge_batch(&slice).expect("merge_batch");
            fresh
                .merge_batch(&state_arrays(&single_states[group]))
                .expect("merge_batch");
            for (which, accumulator) in [("updated", accumulator), ("fresh", &mut fresh)] {
                let value = accumulator.evaluate().expect("evaluate");
                assert_eq!(
                    value, expected[group],
                    "{which} accumulator of group {group}, {context}"
                );
            }
        }

        // accumulator states -> groups
        let types = call.state_types();
        let state: Vec<ArrayRef> = (0..types.len())
            .map(|c| {
                ScalarValue::iter_to_array(single_states.iter().map(|s| s[c].clone()))
                    .expect("state column")
            })
            .collect();
        let state = call.checked_state(Ok(state));
        let (_, mut grouped) = call.accumulators();
        update_groups(grouped.as_mut(), call, &grouped_side, groups);
        grouped
            .merge_batch(&state, &(0..groups).collect::<Vec<_>>(), groups)
            .expect("merge_batch");
        let result = call.results(grouped.evaluate(EmitTo::All));
        assert_groups(
            &result,
            &expected,
            &format!("groups accumulator, {context}"),
        );
    }
}
