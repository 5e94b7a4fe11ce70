//! Criterion benchmarks of the aggregate functions' accumulators, made through the public
//! `AggregateUDFImpl` API with the argument types the planner would pass after coercion:
//! - `groups_update`: `GroupsAccumulator::update_batch` of one batch of 65,536 rows over
//!   10,000 groups, the shape of `GROUP BY user_id, day` (2,000 users over 5 days);
//! - `groups_merge`: `GroupsAccumulator::merge_batch` of the 10,000-row `state()` that leaves;
//! - `single_update`: `Accumulator::update_batch` of the same rows as one group.
//!
//! Each iteration starts from a fresh accumulator (made, and dropped, outside the timing).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int32Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{Accumulator, AggregateUDF, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Literal, col};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sessionlake_functions::{
    active, event_totals, freq_percentile, hist, prop_avg, prop_count, prop_min_max, prop_sum,
    session_totals, uniques,
};

const ROWS: usize = 65_536;
const USERS: usize = 2_000;
const DAYS: usize = 5;
const GROUPS: usize = USERS * DAYS;
const DAY_MS: i64 = 86_400_000;
const SESSION_MS: i64 = 1_800_000;
const APP_VERSIONS: usize = 50;

/// One batch of events with every column an aggregate below reads, and the group of each row.
struct Events {
    batch: RecordBatch,
    group_indices: Vec<usize>,
}

/// Seeded events: each row picks a `(user, day)` group; its session key lies in that day,
/// NULL for one row in twenty (outside a session).
fn events() -> Events {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5e55_1011);
    let group_indices: Vec<usize> = (0..ROWS).map(|_| rng.random_range(0..GROUPS)).collect();
    let user_of = |group: usize| group % USERS;
    let user_names: Vec<String> = (0..USERS).map(|user| format!("u{user}")).collect();

    let user_utf8 = StringArray::from_iter_values(
        group_indices
            .iter()
            .map(|&group| user_names[user_of(group)].as_str()),
    );
    let user_keys =
        Int32Array::from_iter_values(group_indices.iter().map(|&group| user_of(group) as i32));
    let user_dict = DictionaryArray::<Int32Type>::try_new(
        user_keys,
        Arc::new(StringArray::from(user_names.clone())),
    )
    .expect("the keys index the user names");
    let session_key = Int64Array::from_iter(group_indices.iter().map(|&group| {
        let day = (group / USERS) as i64;
        rng.random_bool(0.95)
            .then(|| day * DAY_MS + rng.random_range(0..8_i64) * SESSION_MS)
    }));
    let is_active = BooleanArray::from_iter((0..ROWS).map(|_| Some(rng.random_bool(0.9))));
    let duration_ms =
        Int64Array::from_iter_values((0..ROWS).map(|_| rng.random_range(0..3_600_000_i64)));
    let duration_s =
        Float64Array::from_iter_values(duration_ms.values().iter().map(|&ms| ms as f64 / 1_000.0));
    let price = Float64Array::from_iter_values((0..ROWS).map(|_| rng.random_range(0.0..200.0)));
    let app_version = StringArray::from_iter_values(
        (0..ROWS).map(|_| format!("1.{}.0", rng.random_range(0..APP_VERSIONS))),
    );

    let columns: [(&str, ArrayRef); 8] = [
        ("user_utf8", Arc::new(user_utf8)),
        ("user_dict", Arc::new(user_dict)),
        ("session_key", Arc::new(session_key)),
        ("is_active", Arc::new(is_active)),
        ("duration_ms", Arc::new(duration_ms)),
        ("duration_s", Arc::new(duration_s)),
        ("price", Arc::new(price)),
        ("app_version", Arc::new(app_version)),
    ];
    let batch = RecordBatch::try_from_iter(columns).expect("columns of one length");
    Events {
        batch,
        group_indices,
    }
}

/// An argument of a call: a column of [`Events`] or a constant.
enum Arg {
    Column(&'static str),
    Literal(ScalarValue),
}

/// One aggregate call to measure.
struct Call {
    label: &'static str,
    udaf: Arc<AggregateUDF>,
    args: Vec<Arg>,
}

fn call(label: &'static str, udaf: Arc<AggregateUDF>, args: Vec<Arg>) -> Call {
    Call { label, udaf, args }
}

/// The calls, one per accumulator and input encoding; `PROPMIN` and `PROPMAX` share their
/// code, so one measures the number path and the other the text path.
fn calls() -> Vec<Call> {
    use Arg::{Column, Literal};
    vec![
        call(
            "SESSIONTOTALS(user Utf8)",
            session_totals::session_totals_udaf(),
            vec![Column("user_utf8"), Column("session_key")],
        ),
        call(
            "SESSIONTOTALS(user Dictionary)",
            session_totals::session_totals_udaf(),
            vec![Column("user_dict"), Column("session_key")],
        ),
        call(
            "UNIQUES(user Utf8)",
            uniques::uniques_udaf(),
            vec![Column("user_utf8")],
        ),
        call(
            "UNIQUES(user Dictionary)",
            uniques::uniques_udaf(),
            vec![Column("user_dict")],
        ),
        call(
            "EVENTTOTALS(session_key Int64)",
            event_totals::event_totals_udaf(),
            vec![Column("session_key")],
        ),
        call(
            "ACTIVE(user Utf8, is_active)",
            active::active_udaf(),
            vec![Column("user_utf8"), Column("is_active")],
        ),
        call(
            "PROPSUM(Int64)",
            prop_sum::propsum_udaf(),
            vec![Column("duration_ms")],
        ),
        call(
            "PROPAVG(Float64)",
            prop_avg::propavg_udaf(),
            vec![Column("price")],
        ),
        call(
            "PROPMIN(Int64)",
            prop_min_max::propmin_udaf(),
            vec![Column("duration_ms")],
        ),
        call(
            "PROPMAX(Utf8)",
            prop_min_max::propmax_udaf(),
            vec![Column("app_version")],
        ),
        call(
            "PROPCOUNT(Utf8)",
            prop_count::propcount_udaf(),
            vec![Column("app_version")],
        ),
        call(
            "HIST(Float64, 0, 3600, 60)",
            hist::hist_udaf(),
            vec![
                Column("duration_s"),
                Literal(ScalarValue::Float64(Some(0.0))),
                Literal(ScalarValue::Float64(Some(3_600.0))),
                Literal(ScalarValue::Float64(Some(60.0))),
            ],
        ),
        call(
            "FREQPERCENTILE(user Utf8, 0.5)",
            freq_percentile::freq_percentile_udaf(),
            vec![
                Column("user_utf8"),
                Literal(ScalarValue::Float64(Some(0.5))),
            ],
        ),
    ]
}

/// What the hash aggregate holds for a call: its argument expressions and their fields.
struct Planned {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    fields: Vec<FieldRef>,
    return_field: FieldRef,
    /// The evaluated arguments, as `update_batch` receives them (constants as full columns).
    values: Vec<ArrayRef>,
}

/// Plans `call` over `events` as DataFusion would; panics if the function would have the
/// planner cast an argument, since the benchmark would then measure a type it never sees.
fn plan(call: &Call, events: &Events) -> Planned {
    let schema = events.batch.schema();
    let exprs: Vec<Arc<dyn PhysicalExpr>> = call
        .args
        .iter()
        .map(|arg| match arg {
            Arg::Column(name) => col(name, &schema).expect("a column of the events"),
            Arg::Literal(value) => Arc::new(Literal::new(value.clone())) as Arc<dyn PhysicalExpr>,
        })
        .collect();
    let fields: Vec<FieldRef> = exprs
        .iter()
        .map(|expr| expr.return_field(&schema).expect("argument field"))
        .collect();
    let types: Vec<DataType> = fields.iter().map(|f| f.data_type().clone()).collect();
    let coerced = call
        .udaf
        .coerce_types(&types)
        .expect("accepted argument types");
    assert_eq!(
        coerced, types,
        "{}: the planner would cast an argument",
        call.label
    );
    let return_field = call.udaf.return_field(&fields).expect("return field");
    let values = exprs
        .iter()
        .map(|expr| {
            expr.evaluate(&events.batch)
                .and_then(|value| value.into_array(events.batch.num_rows()))
                .expect("argument values")
        })
        .collect();
    Planned {
        exprs,
        fields,
        return_field,
        values,
    }
}

impl Planned {
    fn args<'a>(&'a self, events: &'a Events, name: &'a str) -> AccumulatorArgs<'a> {
        AccumulatorArgs {
            return_field: Arc::clone(&self.return_field),
            schema: events.batch.schema_ref(),
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name,
            is_distinct: false,
            exprs: &self.exprs,
            expr_fields: &self.fields,
        }
    }
}

fn aggregates(c: &mut Criterion) {
    let events = events();
    let merge_indices: Vec<usize> = (0..GROUPS).collect();
    for call in calls() {
        let planned = plan(&call, &events);
        let udaf = call.udaf.inner();
        let new_groups = || -> Box<dyn GroupsAccumulator> {
            udaf.create_groups_accumulator(planned.args(&events, call.label))
                .expect("groups accumulator")
        };
        let new_single = || -> Box<dyn Accumulator> {
            udaf.accumulator(planned.args(&events, call.label))
                .expect("accumulator")
        };
        let update_groups = |mut acc: Box<dyn GroupsAccumulator>| {
            acc.update_batch(
                black_box(&planned.values),
                &events.group_indices,
                None,
                GROUPS,
            )
            .expect("groups update_batch");
            acc
        };
        let state = update_groups(new_groups())
            .state(EmitTo::All)
            .expect("groups state");

        let mut group = c.benchmark_group(call.label);
        group.sample_size(10);
        group.throughput(Throughput::Elements(ROWS as u64));
        group.bench_function("groups_update", |b| {
            b.iter_batched(&new_groups, &update_groups, BatchSize::LargeInput)
        });
        // a merge reads one state row per group
        group.throughput(Throughput::Elements(GROUPS as u64));
        group.bench_function("groups_merge", |b| {
            b.iter_batched(
                &new_groups,
                |mut acc| {
                    acc.merge_batch(black_box(&state), &merge_indices, GROUPS)
                        .expect("groups merge_batch");
                    acc
                },
                BatchSize::LargeInput,
            )
        });
        group.throughput(Throughput::Elements(ROWS as u64));
        group.bench_function("single_update", |b| {
            b.iter_batched(
                &new_single,
                |mut acc| {
                    acc.update_batch(black_box(&planned.values))
                        .expect("update_batch");
                    acc
                },
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

/// Short defaults so the whole file runs in about two minutes; the command line
/// (`--warm-up-time`, `--measurement-time`) overrides them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = aggregates
}
criterion_main!(benches);
