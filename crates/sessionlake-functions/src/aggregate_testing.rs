//! Test support for the aggregate functions: seeded random rows in every user encoding, and
//! two checks every aggregate runs, against a naive per-group reference and between its
//! `Accumulator` and `GroupsAccumulator` exchanging state in both directions.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, Int32Array, Int64Array,
    LargeStringArray, StringArray, StringViewArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One input row, in plain Rust values; tests turn rows into Arrow columns.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub group: usize,
    pub user: Option<u64>,
    pub session_key: Option<i64>,
    pub is_active: Option<bool>,
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
pub(crate) fn user_name(n: u64) -> String {
    if n.is_multiple_of(2) {
        format!("u{n}")
    } else {
        format!("user-{n}-with-a-long-suffix")
    }
}

/// The users of `rows` as a column of `encoding`. Integer users are spread over the whole value
/// range (negative, and above `i64::MAX`); a dictionary encodes half of its NULLs as a NULL key
/// and half as a key pointing at a NULL value.
pub(crate) fn user_column(rows: &[Row], encoding: UserEncoding) -> ArrayRef {
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

pub(crate) fn session_key_column(rows: &[Row]) -> ArrayRef {
    Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.session_key)))
}

pub(crate) fn is_active_column(rows: &[Row]) -> ArrayRef {
    Arc::new(BooleanArray::from_iter(rows.iter().map(|r| r.is_active)))
}

fn filter_column(rows: &[Row]) -> BooleanArray {
    BooleanArray::from_iter(rows.iter().map(|r| r.filter))
}

/// Whether a row of a batch (filtered or not) reaches the aggregate.
fn passes(row: &Row, filtered: bool) -> bool {
    !filtered || row.filter == Some(true)
}

/// `count` random rows over `groups` groups; users below 64 (so they repeat and fit the test
/// dictionary), about one value in eight NULL.
pub(crate) fn random_rows(rng: &mut ChaCha8Rng, count: usize, groups: usize) -> Vec<Row> {
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
            filter: match rng.random_range(0..4) {
                0 => None,
                1 => Some(false),
                _ => Some(true),
            },
        })
        .collect()
}

/// An aggregate under test: how to make its accumulators, its argument columns from rows, and
/// the naive answer for the rows of one group that reach it.
pub(crate) struct Subject<'a> {
    pub accumulator: &'a dyn Fn() -> Box<dyn Accumulator>,
    pub groups_accumulator: &'a dyn Fn() -> Box<dyn GroupsAccumulator>,
    pub columns: &'a dyn Fn(&[Row]) -> Vec<ArrayRef>,
    pub naive: &'a dyn Fn(&[&Row]) -> i64,
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

fn expected(subject: &Subject, batches: &[Batch], groups: usize) -> Vec<i64> {
    (0..groups)
        .map(|group| {
            let rows: Vec<&Row> = batches
                .iter()
                .flat_map(|b| b.rows.iter().filter(move |r| passes(r, b.filtered)))
                .filter(|r| r.group == group)
                .collect();
            (subject.naive)(&rows)
        })
        .collect()
}

fn int64s(array: &ArrayRef) -> Vec<i64> {
    assert_eq!(array.null_count(), 0, "counts are never NULL");
    array.as_primitive::<Int64Type>().values().to_vec()
}

fn scalar_i64(value: ScalarValue) -> i64 {
    match value {
        ScalarValue::Int64(Some(v)) => v,
        other => panic!("expected a non-NULL Int64, found {other:?}"),
    }
}

fn update_groups(
    accumulator: &mut dyn GroupsAccumulator,
    subject: &Subject,
    batches: &[Batch],
    groups: usize,
) {
    for batch in batches {
        let filter = batch.filter();
        accumulator
            .update_batch(
                &(subject.columns)(&batch.rows),
                &batch.groups(),
                filter.as_ref(),
                groups,
            )
            .expect("update_batch");
    }
}

/// The `GroupsAccumulator` against the naive reference over many groups, with and without
/// FILTER: evaluated in two emissions (`First(k)` then `All`), through `state(First(k))` and
/// `state(All)` merged into a fresh accumulator, and through `convert_to_state`.
pub(crate) fn check_groups_against_naive(subject: &Subject, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for round in 0..12 {
        let groups = rng.random_range(1..200);
        let batches = random_batches(&mut rng, groups);
        let expected = expected(subject, &batches, groups);
        let first = rng.random_range(0..=groups);

        let mut direct = (subject.groups_accumulator)();
        update_groups(direct.as_mut(), subject, &batches, groups);
        let size = direct.size();
        let mut result = int64s(&direct.evaluate(EmitTo::First(first)).expect("evaluate"));
        result.extend(int64s(&direct.evaluate(EmitTo::All).expect("evaluate")));
        assert_eq!(result, expected, "evaluate, round {round}");
        assert!(size > 0);

        let mut partial = (subject.groups_accumulator)();
        update_groups(partial.as_mut(), subject, &batches, groups);
        let head = partial.state(EmitTo::First(first)).expect("state");
        let tail = partial.state(EmitTo::All).expect("state");
        let mut merged = (subject.groups_accumulator)();
        merged
            .merge_batch(&head, &(0..first).collect::<Vec<_>>(), groups)
            .expect("merge_batch");
        merged
            .merge_batch(&tail, &(first..groups).collect::<Vec<_>>(), groups)
            .expect("merge_batch");
        assert_eq!(
            int64s(&merged.evaluate(EmitTo::All).expect("evaluate")),
            expected,
            "state, round {round}"
        );

        let converter = (subject.groups_accumulator)();
        let mut from_rows = (subject.groups_accumulator)();
        for batch in &batches {
            let filter = batch.filter();
            let state = converter
                .convert_to_state(&(subject.columns)(&batch.rows), filter.as_ref())
                .expect("convert_to_state");
            assert!(state.iter().all(|column| column.len() == batch.rows.len()));
            from_rows
                .merge_batch(&state, &batch.groups(), groups)
                .expect("merge_batch");
        }
        assert_eq!(
            int64s(&from_rows.evaluate(EmitTo::All).expect("evaluate")),
            expected,
            "convert_to_state, round {round}"
        );
    }
}

/// One `Accumulator` per group fed part of the rows, a `GroupsAccumulator` fed the rest; each
/// merges the other's state, and both must give the naive answer for all the rows.
pub(crate) fn check_accumulators_exchange_state(subject: &Subject, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for round in 0..12 {
        let groups = rng.random_range(1..20);
        let batches = random_batches(&mut rng, groups);
        let expected = expected(subject, &batches, groups);

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

        let mut singles: Vec<Box<dyn Accumulator>> = (0..groups)
            .map(|group| {
                let mut accumulator = (subject.accumulator)();
                let rows = &single_side[group];
                let (left, right) = rows.split_at(rows.len() / 2);
                accumulator
                    .update_batch(&(subject.columns)(left))
                    .expect("update_batch");
                accumulator
                    .update_batch(&(subject.columns)(right))
                    .expect("update_batch");
                accumulator
            })
            .collect();
        let single_states: Vec<Vec<ScalarValue>> = singles
            .iter_mut()
            .map(|accumulator| accumulator.state().expect("state"))
            .collect();

        let mut grouped = (subject.groups_accumulator)();
        update_groups(grouped.as_mut(), subject, &grouped_side, groups);
        let grouped_state = grouped.state(EmitTo::All).expect("state");

        // groups state -> accumulators
        for (group, accumulator) in singles.iter_mut().enumerate() {
            let slice: Vec<ArrayRef> = grouped_state.iter().map(|c| c.slice(group, 1)).collect();
            accumulator.merge_batch(&slice).expect("merge_batch");
            assert_eq!(
                scalar_i64(accumulator.evaluate().expect("evaluate")),
                expected[group],
                "accumulator of group {group}, round {round}"
            );
        }

        // accumulator states -> groups
        let columns = single_states.first().map_or(0, Vec::len);
        let state: Vec<ArrayRef> = (0..columns)
            .map(|c| {
                ScalarValue::iter_to_array(single_states.iter().map(|s| s[c].clone()))
                    .expect("state column")
            })
            .collect();
        let mut grouped = (subject.groups_accumulator)();
        update_groups(grouped.as_mut(), subject, &grouped_side, groups);
        grouped
            .merge_batch(&state, &(0..groups).collect::<Vec<_>>(), groups)
            .expect("merge_batch");
        assert_eq!(
            int64s(&grouped.evaluate(EmitTo::All).expect("evaluate")),
            expected,
            "groups accumulator, round {round}"
        );
    }
}
