//! Differential tests: the engine's `sessionize(...)`, `sessions(...)` and the `sessionize`
//! window function against the naive reference of `sessionlake_testkit::reference`, on
//! thousands of seeded random event sets, across modes, gaps and maximum lengths, partition
//! counts, input orders, Parquet files and physical encodings.
//!
//! A failure prints the seed, the options and the events. `SESSIONLAKE_DIFF_CASES` scales the
//! number of random sets (default 2000 for the main test).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, IntervalMonthDayNanoArray, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Int64Type, IntervalMonthDayNano, Schema, SchemaRef, TimeUnit,
};
use datafusion::datasource::MemTable;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sessionlake_testkit::random_events::{
    BatchEncoding, EventSetShape, StringEncoding, UserEncoding, random_events, to_record_batch,
};
use sessionlake_testkit::reference::{
    self, Event, EventSession, Mode, Rules, SessionRow, window_sessionize,
};

const MINUTE_MS: i64 = 60_000;

/// The number of random sets for a test whose default is `default`, scaled by
/// `SESSIONLAKE_DIFF_CASES` (which sets the main test's count).
fn case_count(default: u64) -> u64 {
    match std::env::var("SESSIONLAKE_DIFF_CASES") {
        Ok(text) => {
            let wanted: u64 = text
                .parse()
                .expect("SESSIONLAKE_DIFF_CASES must be a number");
            (default * wanted).div_ceil(2000).max(1)
        }
        Err(_) => default,
    }
}

/// One random set with its rules, as the reference sees them and as option arguments.
#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    events: Vec<Event>,
    rules: Rules,
    /// `'key=value'` arguments for the table functions.
    options: Vec<String>,
    /// Options applied with `SET` before the query instead of as arguments.
    set_statements: Vec<String>,
    /// The table the table functions read.
    table: String,
}

impl Case {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let events = random_events(&mut rng, &EventSetShape::default());
        let mut options: Vec<(String, String)> = Vec::new();

        let mode = *Mode::ALL.choose(&mut rng).expect("modes");
        if mode != Mode::Gap || rng.random_bool(0.5) {
            options.push(("mode".into(), mode.as_str().into()));
        }
        let gaps: [(Option<&str>, i64); 7] = [
            (None, 30 * MINUTE_MS),
            (Some("30 minutes"), 30 * MINUTE_MS),
            (Some("5 minutes"), 5 * MINUTE_MS),
            (Some("10 minutes"), 10 * MINUTE_MS),
            (Some("1 hour"), 60 * MINUTE_MS),
            (Some("1799 seconds"), 30 * MINUTE_MS - 1_000),
            (Some("1801 seconds"), 30 * MINUTE_MS + 1_000),
        ];
        let (gap_text, gap_ms) = *gaps.choose(&mut rng).expect("gaps");
        if let Some(text) = gap_text {
            options.push(("gap".into(), text.into()));
        }
        let max_lengths: [(Option<&str>, Option<i64>); 7] = [
            (None, Some(24 * 60 * MINUTE_MS)),
            (Some("none"), None),
            (Some("0 seconds"), Some(0)),
            (Some("30 minutes"), Some(30 * MINUTE_MS)),
            (Some("1 hour"), Some(60 * MINUTE_MS)),
            (Some("90 minutes"), Some(90 * MINUTE_MS)),
            (Some("3 hours"), Some(180 * MINUTE_MS)),
        ];
        let (max_text, max_length_ms) = *max_lengths.choose(&mut rng).expect("max lengths");
        if let Some(text) = max_text {
            options.push(("max_length".into(), text.into()));
        }
        let inactive_lists: [&[&str]; 3] = [&[], &["sync"], &["sync", "app_background"]];
        let inactive = *inactive_lists.choose(&mut rng).expect("inactive lists");
        if !inactive.is_empty() {
            options.push(("inactive_event_types".into(), inactive.join(", ")));
        }

        // some options go through SET, with the `sessionlake.` prefix, instead of arguments
        let mut set_statements = Vec::new();
        let mut arguments = Vec::new();
        for (key, value) in options {
            match rng.random_range(0..4) {
                0 => set_statements.push(format!("SET sessionlake.{key} = '{value}'")),
                1 => arguments.push(format!("sessionlake.{key}={value}")),
                _ => arguments.push(format!("{key}={value}")),
            }
        }
        Self {
            seed,
            events,
            rules: Rules {
                mode,
                gap_ms,
                max_length_ms,
                inactive_event_types: inactive.iter().map(|s| s.to_string()).collect(),
                event_gaps_ms: BTreeMap::new(),
                reported: None,
                counted: Vec::new(),
            },
            options: arguments,
            set_statements,
            table: "events".into(),
        }
    }

    /// The same case for a table without `event_type` (and, if `drop_active`, without
    /// `is_active`): no event type is listed inactive, and the reference sees every event type
    /// as equal (and every activity flag as NULL).
    fn without_event_type(mut self, drop_active: bool) -> Self {
        for event in &mut self.events {
            event.event_type = String::new();
            if drop_active {
                event.is_active = None;
            }
        }
        self.rules.inactive_event_types.clear();
        self.options.retain(|o| !o.contains("inactive_event_types"));
        self.set_statements
            .retain(|o| !o.contains("inactive_event_types"));
        self
    }

    /// The option arguments as SQL: `, 'gap=5 minutes', ...`.
    fn sql_arguments(&self) -> String {
        self.options
            .iter()
            .map(|o| format!(", '{o}'"))
            .collect::<String>()
    }

    fn sessionize_sql(&self) -> String {
        format!(
            "SELECT * FROM sessionize('{}'{})",
            self.table,
            self.sql_arguments()
        )
    }

    fn sessions_sql(&self) -> String {
        format!(
            "SELECT * FROM sessions('{}'{})",
            self.table,
            self.sql_arguments()
        )
    }

    /// Everything needed to reproduce a failure.
    fn describe(&self) -> String {
        let mut text = format!(
            "seed {}\nrules {:?}\nSET statements {:?}\noptions {:?}\n{} events:\n",
            self.seed,
            self.rules,
            self.set_statements,
            self.options,
            self.events.len()
        );
        let mut events = self.events.clone();
        events.sort_by(|a, b| (&a.user, a.time, a.row_id).cmp(&(&b.user, b.time, b.row_id)));
        for e in &events {
            let minute = e.time.map(|t| {
                let offset = t - sessionlake_testkit::random_events::BASE_TIME_MS;
                format!("{}m{:+}ms", offset / MINUTE_MS, offset % MINUTE_MS)
            });
            writeln!(
                text,
                "  row_id={:<4} user={:<6} time={:<22} type={:<15} session_id={:<9} page={:<9} \
                 is_active={:?}",
                e.row_id,
                format!("{:?}", e.user),
                format!("{:?}={:?}", minute, e.time),
                e.event_type,
                format!("{:?}", e.session_id),
                format!("{:?}", e.page),
                e.is_active
            )
            .expect("write to string");
        }
        text
    }
}

/// A sessionlake context with `events` registered from `partitions`, after `case`'s `SET`s.
async fn context_with_memtable(
    case: &Case,
    target_partitions: usize,
    schema: SchemaRef,
    partitions: Vec<Vec<RecordBatch>>,
) -> SessionContext {
    let ctx = context(case, target_partitions).await;
    let table = MemTable::try_new(schema, partitions).expect("memtable");
    ctx.register_table("events", Arc::new(table))
        .expect("register events");
    ctx
}

async fn context(case: &Case, target_partitions: usize) -> SessionContext {
    let config = sessionlake_engine::session_config().with_target_partitions(target_partitions);
    let ctx = sessionlake_engine::new_context_with_config(config).expect("context");
    for statement in &case.set_statements {
        if let Err(e) = ctx.sql(statement).await {
            panic!("{statement}: {e}\n{}", case.describe());
        }
    }
    ctx
}

async fn run(ctx: &SessionContext, sql: &str, case: &Case) -> Vec<RecordBatch> {
    let result = match ctx.sql(sql).await {
        Ok(frame) => frame.collect().await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| panic!("query failed: {sql}\nerror: {e}\n{}", case.describe()))
}

/// The values of an Int64 or timestamp column, timestamps in epoch milliseconds.
fn millis_or_ints(array: &ArrayRef) -> Vec<Option<i64>> {
    let to_ms: fn(i64) -> i64 = match array.data_type() {
        DataType::Int64 => |v| v,
        DataType::Timestamp(TimeUnit::Second, _) => |v| v * 1_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => |v| v,
        DataType::Timestamp(TimeUnit::Microsecond, _) => |v| v.div_euclid(1_000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => |v| v.div_euclid(1_000_000),
        other => panic!("expected an Int64 or timestamp column, found {other}"),
    };
    let ints = cast(array, &DataType::Int64).expect("cast to Int64");
    ints.as_primitive::<Int64Type>()
        .iter()
        .map(|v| v.map(to_ms))
        .collect()
}

/// The values of a string-like or integer user column as the reference names users.
fn strings(array: &ArrayRef) -> Vec<Option<String>> {
    let integer = array.data_type().is_integer();
    let text = cast(array, &DataType::Utf8).expect("cast to Utf8");
    text.as_string::<i32>()
        .iter()
        .map(|v| {
            v.map(|s| {
                if integer {
                    format!("u{s}")
                } else {
                    s.to_string()
                }
            })
        })
        .collect()
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", batch.schema()))
}

/// The engine's session columns by `row_id`, checking that every row comes back exactly once.
fn engine_events(batches: &[RecordBatch], case: &Case) -> BTreeMap<i64, EventSession> {
    let mut result = BTreeMap::new();
    for batch in batches {
        let row_ids = millis_or_ints(column(batch, "row_id"));
        let keys = millis_or_ints(column(batch, "session_key"));
        let starts = millis_or_ints(column(batch, "session_start"));
        let ends = millis_or_ints(column(batch, "session_end"));
        let session_indexes = millis_or_ints(column(batch, "session_index"));
        let event_indexes = millis_or_ints(column(batch, "event_index"));
        for i in 0..batch.num_rows() {
            let row_id = row_ids[i].expect("row_id is never NULL");
            let row = EventSession {
                session_key: keys[i],
                session_start: starts[i],
                session_end: ends[i],
                session_index: session_indexes[i],
                event_index: event_indexes[i],
            };
            if result.insert(row_id, row).is_some() {
                panic!("row_id {row_id} returned twice\n{}", case.describe());
            }
        }
    }
    result
}

/// The engine's `sessions` rows, sorted.
fn engine_sessions(batches: &[RecordBatch]) -> Vec<SessionRow> {
    let mut rows = Vec::new();
    for batch in batches {
        // the user column keeps its table's name and comes first
        let users = strings(batch.column(0));
        let keys = millis_or_ints(column(batch, "session_key"));
        let starts = millis_or_ints(column(batch, "session_start"));
        let ends = millis_or_ints(column(batch, "session_end"));
        let durations = millis_or_ints(column(batch, "duration_ms"));
        let counts = millis_or_ints(column(batch, "event_count"));
        // without an `event_type` column the reference's event types are all empty
        let optional_strings = |name: &str| match batch.column_by_name(name) {
            Some(array) => strings(array),
            None => vec![Some(String::new()); batch.num_rows()],
        };
        let firsts = optional_strings("first_event_type");
        let lasts = optional_strings("last_event_type");
        let reported = match batch.column_by_name("reported_duration_ms") {
            Some(array) => millis_or_ints(array),
            None => vec![None; batch.num_rows()],
        };
        // `count_<type>` columns, in the order the types were listed
        let counted: Vec<Vec<Option<i64>>> = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .filter(|(field, _)| field.name().starts_with("count_"))
            .map(|(_, array)| millis_or_ints(array))
            .collect();
        for i in 0..batch.num_rows() {
            let required = |v: &Option<i64>, what: &str| v.unwrap_or_else(|| panic!("{what} NULL"));
            rows.push(SessionRow {
                user: users[i].clone().expect("sessions: user is never NULL"),
                session_key: required(&keys[i], "session_key"),
                session_start: required(&starts[i], "session_start"),
                session_end: required(&ends[i], "session_end"),
                duration_ms: required(&durations[i], "duration_ms"),
                event_count: required(&counts[i], "event_count"),
                first_event_type: firsts[i].clone().expect("first_event_type"),
                last_event_type: lasts[i].clone().expect("last_event_type"),
                reported_duration_ms: reported[i],
                counts: counted
                    .iter()
                    .map(|counts| required(&counts[i], "count_"))
                    .collect(),
            });
        }
    }
    rows.sort();
    rows
}

/// Panics with the case and the differing rows if the engine's events differ from the
/// reference's.
fn assert_events_match(
    engine: &BTreeMap<i64, EventSession>,
    expected: &BTreeMap<i64, EventSession>,
    case: &Case,
    what: &str,
) {
    if engine == expected {
        return;
    }
    let mut diff = String::new();
    for (row_id, want) in expected {
        match engine.get(row_id) {
            Some(got) if got == want => {}
            got => writeln!(
                diff,
                "  row_id {row_id}: engine {got:?}\n  {:>w$}reference {want:?}",
                "",
                w = row_id.to_string().len() + 6
            )
            .expect("write to string"),
        }
    }
    for row_id in engine.keys().filter(|r| !expected.contains_key(r)) {
        writeln!(diff, "  row_id {row_id}: not in the input").expect("write to string");
    }
    panic!(
        "{what}: sessionize differs from the reference\n{diff}{}",
        case.describe()
    );
}

fn assert_sessions_match(engine: &[SessionRow], expected: &[SessionRow], case: &Case, what: &str) {
    if engine == expected {
        return;
    }
    let mut diff = String::new();
    for row in engine.iter().filter(|r| !expected.contains(r)) {
        writeln!(diff, "  only in engine:    {row:?}").expect("write to string");
    }
    for row in expected.iter().filter(|r| !engine.contains(r)) {
        writeln!(diff, "  only in reference: {row:?}").expect("write to string");
    }
    panic!(
        "{what}: sessions differs from the reference ({} rows vs {})\n{diff}{}",
        engine.len(),
        expected.len(),
        case.describe()
    );
}

/// Runs both table functions on `ctx` and compares them with the reference.
async fn check_case(ctx: &SessionContext, case: &Case, what: &str) {
    let expected_events = reference::sessionize(&case.events, &case.rules);
    let batches = run(ctx, &case.sessionize_sql(), case).await;
    assert_events_match(&engine_events(&batches, case), &expected_events, case, what);

    let expected_sessions = reference::sessions(&case.events, &case.rules);
    let batches = run(ctx, &case.sessions_sql(), case).await;
    assert_sessions_match(&engine_sessions(&batches), &expected_sessions, case, what);
}

/// The rows of `batch` in random order, cut into `partitions` partitions of random batches.
fn shuffled_partitions(
    batch: &RecordBatch,
    partitions: usize,
    rng: &mut impl Rng,
) -> Vec<Vec<RecordBatch>> {
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.shuffle(rng);
    let indices = datafusion::arrow::array::UInt32Array::from(order);
    let shuffled = datafusion::arrow::compute::take_record_batch(batch, &indices).expect("take");
    let mut result: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
    let mut offset = 0;
    while offset < shuffled.num_rows() {
        let length = rng.random_range(1..=8).min(shuffled.num_rows() - offset);
        let partition = rng.random_range(0..partitions);
        result[partition].push(shuffled.slice(offset, length));
        offset += length;
    }
    result
}

/// The main property: on random sets under random options, both table functions agree with the
/// reference.
#[tokio::test]
async fn table_functions_match_reference() {
    let encoding = BatchEncoding::default();
    let cases = case_count(2000);
    let mut sessions_seen = 0;
    let mut tied_indexes_seen = 0;
    for seed in 0..cases {
        let case = Case::new(seed);
        let batch = to_record_batch(&case.events, &encoding).expect("batch");
        let ctx = context_with_memtable(&case, 4, batch.schema(), vec![vec![batch]]).await;
        check_case(&ctx, &case, "single batch").await;
        sessions_seen += reference::sessions(&case.events, &case.rules).len();
        tied_indexes_seen += count_ties(&case);
    }
    // the generator must really exercise sessions and ties
    assert!(
        sessions_seen > cases as usize,
        "only {sessions_seen} sessions"
    );
    assert!(
        tied_indexes_seen > cases as usize / 4,
        "only {tied_indexes_seen} ties"
    );
}

/// Active events of a case that share user and time with another active event.
fn count_ties(case: &Case) -> usize {
    let mut instants: BTreeMap<(Option<String>, Option<i64>), usize> = BTreeMap::new();
    for event in case
        .events
        .iter()
        .filter(|e| reference::is_active(e, &case.rules))
    {
        *instants
            .entry((event.user.clone(), event.time))
            .or_default() += 1;
    }
    instants.values().filter(|&&n| n > 1).map(|n| n - 1).sum()
}

/// Results do not depend on target partitions, input partitioning or row order.
#[tokio::test]
async fn partitioning_and_order_do_not_matter() {
    let encoding = BatchEncoding::default();
    for seed in 0..case_count(200) {
        let case = Case::new(10_000 + seed);
        let batch = to_record_batch(&case.events, &encoding).expect("batch");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for target_partitions in [1, 2, 8] {
            let input_partitions = *[1, 3, 5].choose(&mut rng).expect("choices");
            let partitions = shuffled_partitions(&batch, input_partitions, &mut rng);
            let ctx =
                context_with_memtable(&case, target_partitions, batch.schema(), partitions).await;
            let what = format!(
                "target_partitions={target_partitions}, {input_partitions} shuffled input \
                 partitions"
            );
            check_case(&ctx, &case, &what).await;
        }
    }
}

/// Parquet files written in shuffled order give the same answers, registered either way.
#[tokio::test]
async fn parquet_files_match_reference() {
    let encoding = BatchEncoding::default();
    for seed in 0..case_count(60) {
        let case = Case::new(20_000 + seed);
        let batch = to_record_batch(&case.events, &encoding).expect("batch");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().expect("tempdir");
        let files = rng.random_range(1..=3);
        for (i, batches) in shuffled_partitions(&batch, files, &mut rng)
            .into_iter()
            .enumerate()
        {
            let file = std::fs::File::create(dir.path().join(format!("part-{i}.parquet")))
                .expect("create parquet file");
            let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
            for b in &batches {
                writer.write(b).expect("write");
            }
            writer.close().expect("close");
        }
        let location = format!("{}/", dir.path().display());
        for target_partitions in [1, 8] {
            let ctx = context(&case, target_partitions).await;
            if seed % 2 == 0 {
                ctx.register_parquet("events", &location, ParquetReadOptions::default())
                    .await
                    .expect("register parquet");
            } else {
                let sql =
                    format!("CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{location}'");
                run(&ctx, &sql, &case).await;
            }
            let what = format!("parquet, {files} files, target_partitions={target_partitions}");
            check_case(&ctx, &case, &what).await;
        }
    }
}

/// Every physical encoding of users, strings and times gives the same sessions.
#[tokio::test]
async fn encodings_match_reference() {
    let encodings = [
        (
            StringEncoding::Utf8View,
            UserEncoding::String,
            TimeUnit::Millisecond,
            None,
        ),
        (
            StringEncoding::Dictionary,
            UserEncoding::String,
            TimeUnit::Microsecond,
            Some("UTC"),
        ),
        (
            StringEncoding::Utf8,
            UserEncoding::Int64,
            TimeUnit::Second,
            None,
        ),
        (
            StringEncoding::Utf8View,
            UserEncoding::Int64,
            TimeUnit::Nanosecond,
            Some("UTC"),
        ),
        (
            StringEncoding::Dictionary,
            UserEncoding::Int64,
            TimeUnit::Millisecond,
            Some("+05:30"),
        ),
        (
            StringEncoding::Utf8,
            UserEncoding::String,
            TimeUnit::Second,
            Some("UTC"),
        ),
        (
            StringEncoding::Utf8,
            UserEncoding::String,
            TimeUnit::Nanosecond,
            None,
        ),
        (
            StringEncoding::Dictionary,
            UserEncoding::String,
            TimeUnit::Microsecond,
            None,
        ),
    ];
    for seed in 0..case_count(60) {
        let case = Case::new(30_000 + seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for (strings, user, time_unit, time_zone) in encodings {
            let encoding = BatchEncoding {
                strings,
                user,
                time_unit,
                time_zone: time_zone.map(Arc::from),
            };
            let batch = to_record_batch(&case.events, &encoding).expect("batch");
            let partitions = shuffled_partitions(&batch, 2, &mut rng);
            let ctx = context_with_memtable(&case, 2, batch.schema(), partitions).await;
            check_case(&ctx, &case, &format!("encoding {encoding:?}")).await;
            if seed == 0 {
                assert_output_types(&ctx, &case, &batch).await;
            }
        }
    }
}

/// `batch` with the column `name` replaced by `values` (nullable), or added last if it has none.
fn with_column(batch: &RecordBatch, name: &str, values: ArrayRef) -> RecordBatch {
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns = batch.columns().to_vec();
    let field = Field::new(name, values.data_type().clone(), true);
    match schema.index_of(name) {
        Ok(i) => {
            fields[i] = field;
            columns[i] = values;
        }
        Err(_) => {
            fields.push(field);
            columns.push(values);
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
}

/// `check_case` on `batch` shuffled into 1, 2 or 8 partitions (by `seed`).
async fn check_at_1_2_or_8_partitions(
    case: &Case,
    batch: &RecordBatch,
    seed: u64,
    rng: &mut impl Rng,
    what: &str,
) {
    let partitions = [1, 2, 8][seed as usize % 3];
    let input = shuffled_partitions(batch, partitions, rng);
    let ctx = context_with_memtable(case, partitions, batch.schema(), input).await;
    check_case(&ctx, case, what).await;
}

/// Per-event timeouts: random cases (every mode) with a `gap` column naming each event's
/// timeout, NULL for about a third (the case's gap then applies), as integer milliseconds or
/// as an interval, at 1, 2 and 8 partitions, against the reference's per-event rule.
#[tokio::test]
async fn per_event_gaps_match_reference() {
    let timeouts_ms = [
        MINUTE_MS,
        5 * MINUTE_MS,
        10 * MINUTE_MS,
        30 * MINUTE_MS,
        90 * MINUTE_MS,
    ];
    for seed in 0..case_count(300) {
        let mut case = Case::new(60_000 + seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let gaps: Vec<Option<i64>> = case
            .events
            .iter()
            .map(|_| {
                rng.random_bool(0.66)
                    .then(|| *timeouts_ms.choose(&mut rng).expect("timeouts"))
            })
            .collect();
        case.rules.event_gaps_ms = case
            .events
            .iter()
            .zip(&gaps)
            .filter_map(|(event, gap)| gap.map(|gap| (event.row_id, gap)))
            .collect();
        case.options.push("gap_column=gap".to_string());
        let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
        let gap_column: ArrayRef = if seed % 2 == 0 {
            Arc::new(Int64Array::from(gaps))
        } else {
            Arc::new(IntervalMonthDayNanoArray::from(
                gaps.iter()
                    .map(|gap| gap.map(|ms| IntervalMonthDayNano::new(0, 0, ms * 1_000_000)))
                    .collect::<Vec<_>>(),
            ))
        };
        let batch = with_column(&batch, "gap", gap_column);
        check_at_1_2_or_8_partitions(&case, &batch, seed, &mut rng, "per-event gaps").await;
    }
}

/// Reported durations: random cases (every mode and maximum length) with a `reported_ms`
/// column, NULL for about a third, and `reported_duration` naming one of the event types, at
/// 1, 2 and 8 partitions, against the reference's largest value per session.
#[tokio::test]
async fn reported_durations_match_reference() {
    for seed in 0..case_count(300) {
        let mut case = Case::new(70_000 + seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values: Vec<Option<i64>> = case
            .events
            .iter()
            .map(|_| {
                rng.random_bool(0.66)
                    .then(|| rng.random_range(0..3_600_000))
            })
            .collect();
        let types: Vec<&str> = case.events.iter().map(|e| e.event_type.as_str()).collect();
        let Some(&event_type) = types.choose(&mut rng) else {
            continue;
        };
        let event_type = event_type.to_string();
        let reported = case
            .events
            .iter()
            .zip(&values)
            .filter_map(|(event, value)| value.map(|v| (event.row_id, v)))
            .collect();
        case.rules.reported = Some((event_type.clone(), reported));
        case.options
            .push(format!("reported_duration={event_type}.reported_ms"));
        let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
        let batch = with_column(&batch, "reported_ms", Arc::new(Int64Array::from(values)));
        check_at_1_2_or_8_partitions(&case, &batch, seed, &mut rng, "reported durations").await;
    }
}

/// Event counts: random cases (every mode and maximum length) with one to three of the case's
/// event types and one that never occurs listed in `count_event_types`, at 1, 2 and 8
/// partitions, against the reference's count of each type per session.
#[tokio::test]
async fn event_counts_match_reference() {
    for seed in 0..case_count(300) {
        let mut case = Case::new(80_000 + seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut types: Vec<String> = case.events.iter().map(|e| e.event_type.clone()).collect();
        types.sort();
        types.dedup();
        types.shuffle(&mut rng);
        types.truncate(rng.random_range(1..=3));
        types.insert(rng.random_range(0..=types.len()), "never_seen".to_string());
        case.options
            .push(format!("count_event_types={}", types.join(",")));
        case.rules.counted = types;
        let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
        check_at_1_2_or_8_partitions(&case, &batch, seed, &mut rng, "event counts").await;
    }
}

/// Identity stitching: random cases (every mode and rule) where about a third of the events
/// lose their user and three in four carry a device from a pool a little larger than the users
/// (so devices are shared by users, identified on tied instants, or never identified), the
/// device as text or as an integer, at 1, 2 and 8 partitions: the sessions and the sessionized
/// events against the reference run on the events as [`reference::stitch_users`] re-attributes
/// them, and each event's stitched user.
#[tokio::test]
async fn stitched_users_match_reference() {
    for seed in 0..case_count(300) {
        let mut case = Case::new(80_000 + seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pool = rng.random_range(2..12);
        let mut devices: Vec<Option<i64>> = Vec::with_capacity(case.events.len());
        for event in &mut case.events {
            if rng.random_bool(0.33) {
                event.user = None;
            }
            devices.push(rng.random_bool(0.75).then(|| rng.random_range(0..pool)));
        }
        let by_row: BTreeMap<i64, String> = case
            .events
            .iter()
            .zip(&devices)
            .filter_map(|(event, device)| device.map(|d| (event.row_id, d.to_string())))
            .collect();
        case.options.push("anonymous_column=device_id".to_string());
        let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
        let device_column: ArrayRef = if seed % 2 == 0 {
            Arc::new(Int64Array::from(devices))
        } else {
            Arc::new(StringArray::from(
                devices
                    .iter()
                    .map(|d| d.map(|d| d.to_string()))
                    .collect::<Vec<_>>(),
            ))
        };
        let batch = with_column(&batch, "device_id", device_column);
        let original = case.events.clone();
        case.events = reference::stitch_users(&original, &by_row);

        let partitions = [1, 2, 8][seed as usize % 3];
        let input = shuffled_partitions(&batch, partitions, &mut rng);
        let ctx = context_with_memtable(&case, partitions, batch.schema(), input).await;
        check_case(&ctx, &case, "stitched users").await;

        let sql = format!(
            "SELECT row_id, user_id FROM sessionize('events'{})",
            case.sql_arguments()
        );
        let mut users = BTreeMap::new();
        for batch in run(&ctx, &sql, &case).await {
            let row_ids = millis_or_ints(batch.column(0));
            for (row_id, user) in row_ids.into_iter().zip(strings(batch.column(1))) {
                users.insert(row_id.expect("row_id"), user);
            }
        }
        let expected: BTreeMap<i64, Option<String>> = case
            .events
            .iter()
            .map(|e| (e.row_id, e.user.clone()))
            .collect();
        assert_eq!(
            users,
            expected,
            "stitched users per event\n{}",
            case.describe()
        );
    }
}

/// String session ids: random cases in the instrumented modes with the session id column as
/// text in every string encoding (a valid id `n` as `sdk-n`, the invalid -1 as `'-1'`, `'none'`
/// or `''`, NULL as NULL), at 1, 2 and 8 partitions, against the reference given the ids the
/// string rule yields ([`reference::string_session_id`]).
#[tokio::test]
async fn string_session_ids_match_reference() {
    let encodings = [
        DataType::Utf8,
        DataType::LargeUtf8,
        DataType::Utf8View,
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
    ];
    let mut checked = 0;
    for seed in 0..case_count(400) {
        let mut case = Case::new(50_000 + seed);
        if !matches!(case.rules.mode, Mode::Instrumented | Mode::InstrumentedGap) {
            continue;
        }
        let texts: Vec<Option<String>> = case
            .events
            .iter()
            .enumerate()
            .map(|(i, event)| match event.session_id {
                None => None,
                Some(-1) => Some(["-1", "none", ""][i % 3].to_string()),
                Some(id) => Some(format!("sdk-{id}")),
            })
            .collect();
        let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
        let data_type = &encodings[seed as usize % encodings.len()];
        let ids = cast(&StringArray::from(texts.clone()), data_type).expect("cast");
        let batch = with_column(&batch, "session_id", ids);
        for (event, text) in case.events.iter_mut().zip(&texts) {
            event.session_id = reference::string_session_id(text.as_deref());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        check_at_1_2_or_8_partitions(
            &case,
            &batch,
            seed,
            &mut rng,
            &format!("string session ids as {data_type}"),
        )
        .await;
        checked += 1;
    }
    assert!(checked > 0, "no case in an instrumented mode");
}

/// The session times are UTC timestamps in the time column's unit, and `sessions` keeps the
/// user column's type.
async fn assert_output_types(ctx: &SessionContext, case: &Case, input: &RecordBatch) {
    let DataType::Timestamp(unit, _) = input.schema().field(1).data_type().clone() else {
        panic!("event_time is not a timestamp");
    };
    let session_time = DataType::Timestamp(unit, Some("UTC".into()));
    let frame = ctx.sql(&case.sessionize_sql()).await.expect("sessionize");
    let events = frame.schema().inner().clone();
    for (name, data_type) in [
        ("session_key", DataType::Int64),
        ("session_start", session_time.clone()),
        ("session_end", session_time.clone()),
        ("session_index", DataType::Int64),
        ("event_index", DataType::Int64),
    ] {
        let field = events.field_with_name(name).expect("session column");
        assert_eq!(field.data_type(), &data_type, "sessionize: {name}");
    }
    let frame = ctx.sql(&case.sessions_sql()).await.expect("sessions");
    let sessions = frame.schema().inner().clone();
    assert_eq!(sessions.field(0).name(), "user_id");
    assert_eq!(
        sessions.field(0).data_type(),
        input.schema().field(0).data_type(),
        "sessions: user_id keeps its type"
    );
    for (name, data_type) in [
        ("session_start", session_time.clone()),
        ("session_end", session_time),
        ("duration_ms", DataType::Int64),
        ("event_count", DataType::Int64),
    ] {
        let field = sessions.field_with_name(name).expect("sessions column");
        assert_eq!(field.data_type(), &data_type, "sessions: {name}");
    }
}

/// `event_index` and the rest do not change with the selected columns, and a filter on the
/// user (pushed below the operator) only drops other users' rows.
#[tokio::test]
async fn projection_and_user_filter_match_reference() {
    let encoding = BatchEncoding::default();
    for seed in 0..case_count(200) {
        let case = Case::new(40_000 + seed);
        let expected = reference::sessionize(&case.events, &case.rules);
        let batch = to_record_batch(&case.events, &encoding).expect("batch");
        let ctx = context_with_memtable(&case, 2, batch.schema(), vec![vec![batch]]).await;

        let sql = format!(
            "SELECT event_index, session_index, row_id, session_end, session_start, session_key \
             FROM sessionize('events'{})",
            case.sql_arguments()
        );
        let batches = run(&ctx, &sql, &case).await;
        assert_events_match(&engine_events(&batches, &case), &expected, &case, &sql);

        let sql = format!(
            "SELECT * FROM sessionize('events'{}) WHERE user_id = 'u1'",
            case.sql_arguments()
        );
        let batches = run(&ctx, &sql, &case).await;
        let expected_u1: BTreeMap<i64, EventSession> = case
            .events
            .iter()
            .filter(|e| e.user.as_deref() == Some("u1"))
            .map(|e| (e.row_id, expected[&e.row_id]))
            .collect();
        assert_events_match(&engine_events(&batches, &case), &expected_u1, &case, &sql);
    }
}

/// Per session of the reference: the user, key, and the first and last non-NULL `page` and
/// `row_id` in event order, sorted (two sessions of a user can share a key, so rows are
/// compared as a multiset).
type PropertyRow = (String, i64, Option<String>, Option<String>, i64, i64);

fn reference_properties(case: &Case) -> Vec<PropertyRow> {
    let assigned = reference::sessionize(&case.events, &case.rules);
    // (user, session_index) -> the session's key and its events with their event_index
    type KeyAndEvents<'a> = (i64, Vec<(i64, &'a Event)>);
    let mut sessions: BTreeMap<(String, i64), KeyAndEvents> = BTreeMap::new();
    for event in &case.events {
        let session = assigned[&event.row_id];
        let (Some(user), Some(index), Some(key), Some(event_index)) = (
            event.user.clone(),
            session.session_index,
            session.session_key,
            session.event_index,
        ) else {
            continue;
        };
        let entry = sessions.entry((user, index)).or_insert((key, Vec::new()));
        entry.1.push((event_index, event));
    }
    let mut rows: Vec<PropertyRow> = sessions
        .into_iter()
        .map(|((user, _), (key, mut events))| {
            events.sort_by_key(|(i, _)| *i);
            let pages: Vec<&String> = events.iter().filter_map(|(_, e)| e.page.as_ref()).collect();
            (
                user,
                key,
                pages.first().map(|p| p.to_string()),
                pages.last().map(|p| p.to_string()),
                events[0].1.row_id,
                events[events.len() - 1].1.row_id,
            )
        })
        .collect();
    rows.sort();
    rows
}

/// `sessions(..., 'properties=...')`: the first and last non-NULL value of each listed column
/// in event order. `page` comes before `is_active` and `row_id` in the schema, so its scan
/// leaves them out and the order of tied events is decided by fewer columns; `row_id` (never
/// NULL, unique) pins the first and last event of each session exactly.
#[tokio::test]
async fn session_properties_match_reference() {
    let encoding = BatchEncoding::default();
    let mut with_null_page = 0;
    for seed in 0..case_count(300) {
        let case = Case::new(60_000 + seed);
        let expected = reference_properties(&case);
        with_null_page += expected.iter().filter(|r| r.2.is_none()).count();
        let batch = to_record_batch(&case.events, &encoding).expect("batch");
        let ctx = context_with_memtable(&case, 3, batch.schema(), vec![vec![batch]]).await;
        for properties in ["page", "page,row_id"] {
            let sql = format!(
                "SELECT * FROM sessions('{}'{}, 'properties={properties}')",
                case.table,
                case.sql_arguments()
            );
            let batches = run(&ctx, &sql, &case).await;
            let mut rows: Vec<PropertyRow> = Vec::new();
            for batch in &batches {
                let users = strings(batch.column(0));
                let keys = millis_or_ints(column(batch, "session_key"));
                let first_pages = strings(column(batch, "first_page"));
                let last_pages = strings(column(batch, "last_page"));
                let row_ids = |name: &str| match batch.column_by_name(name) {
                    Some(array) => millis_or_ints(array),
                    None => vec![Some(0); batch.num_rows()],
                };
                let (first_ids, last_ids) = (row_ids("first_row_id"), row_ids("last_row_id"));
                for i in 0..batch.num_rows() {
                    rows.push((
                        users[i].clone().expect("user"),
                        keys[i].expect("session_key"),
                        first_pages[i].clone(),
                        last_pages[i].clone(),
                        first_ids[i].expect("first_row_id"),
                        last_ids[i].expect("last_row_id"),
                    ));
                }
            }
            rows.sort();
            let mut want = expected.clone();
            if properties == "page" {
                for row in &mut want {
                    (row.4, row.5) = (0, 0);
                }
                want.sort();
            }
            assert_eq!(rows, want, "{sql}\n{}", case.describe());
        }
    }
    assert!(
        with_null_page > 0,
        "no session without a page was generated"
    );
}

/// A `sessionize` query that selects some columns reads only those (and, for `event_index`,
/// the columns before them): its rows are the same as the reference's on those columns.
#[tokio::test]
async fn narrow_projections_match_reference() {
    let encoding = BatchEncoding::default();
    let mut ties = 0;
    for seed in 0..case_count(300) {
        let case = Case::new(80_000 + seed);
        ties += count_ties(&case);
        let assigned = reference::sessionize(&case.events, &case.rules);
        let batch = to_record_batch(&case.events, &encoding).expect("batch");
        let ctx = context_with_memtable(&case, 2, batch.schema(), vec![vec![batch]]).await;
        type Row = (Option<String>, Option<String>, Option<i64>);
        // `page` follows `session_id`, which decides the order of tied events first
        for index in ["event_index", "session_index"] {
            let sql = format!(
                "SELECT user_id, page, {index} FROM sessionize('{}'{})",
                case.table,
                case.sql_arguments()
            );
            let batches = run(&ctx, &sql, &case).await;
            let mut rows: Vec<Row> = Vec::new();
            for batch in &batches {
                let users = strings(batch.column(0));
                let pages = strings(batch.column(1));
                let indexes = millis_or_ints(batch.column(2));
                for i in 0..batch.num_rows() {
                    rows.push((users[i].clone(), pages[i].clone(), indexes[i]));
                }
            }
            rows.sort();
            let mut want: Vec<Row> = case
                .events
                .iter()
                .map(|e| {
                    let session = assigned[&e.row_id];
                    let index = match index {
                        "event_index" => session.event_index,
                        _ => session.session_index,
                    };
                    (e.user.clone(), e.page.clone(), index)
                })
                .collect();
            want.sort();
            assert_eq!(rows, want, "{sql}\n{}", case.describe());
        }
    }
    assert!(ties > 0, "no ties were generated");
}

/// A `sessions` query computes only the columns it selects (and reads only the columns those
/// need): with the event types, properties and counts of a call selected or not, in every
/// combination below, its rows are the reference's on the selected columns, at 1, 2 and 8
/// partitions of shuffled input, with strings of every encoding.
#[tokio::test]
async fn narrow_sessions_projections_match_reference() {
    let mut ties = 0;
    for seed in 0..case_count(300) {
        let mut case = Case::new(90_000 + seed);
        ties += count_ties(&case);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut types: Vec<String> = case.events.iter().map(|e| e.event_type.clone()).collect();
        types.sort();
        types.dedup();
        types.shuffle(&mut rng);
        types.truncate(2);
        case.options
            .push(format!("count_event_types={}", types.join(",")));
        case.options.push("properties=page".to_string());
        case.rules.counted = types.clone();
        let expected = reference::sessions(&case.events, &case.rules);
        let mut pages = reference_properties(&case);
        for row in &mut pages {
            (row.4, row.5) = (0, 0);
        }
        pages.sort();

        // event types as each string encoding: the counts are flags computed per batch
        let string_encoding = [
            StringEncoding::Utf8,
            StringEncoding::Utf8View,
            StringEncoding::Dictionary,
        ][seed as usize / 3 % 3];
        let encoding = BatchEncoding {
            strings: string_encoding,
            ..BatchEncoding::default()
        };
        let batch = to_record_batch(&case.events, &encoding).expect("batch");
        let partitions = [1, 2, 8][seed as usize % 3];
        let input = shuffled_partitions(&batch, partitions, &mut rng);
        let ctx = context_with_memtable(&case, partitions, batch.schema(), input).await;
        let query = |columns: &str| {
            format!(
                "SELECT {columns} FROM sessions('{}'{})",
                case.table,
                case.sql_arguments()
            )
        };

        // neither event types, properties nor counts: nothing of an event is kept but its
        // entry
        type Spans = (String, i64, i64, i64, i64, i64);
        let sql =
            query("user_id, session_key, session_start, session_end, duration_ms, event_count");
        let mut rows: Vec<Spans> = Vec::new();
        for batch in &run(&ctx, &sql, &case).await {
            let values: Vec<Vec<Option<i64>>> =
                (1..6).map(|c| millis_or_ints(batch.column(c))).collect();
            let users = strings(batch.column(0));
            for i in 0..batch.num_rows() {
                let v = |c: usize| values[c][i].expect("not NULL");
                rows.push((
                    users[i].clone().expect("user"),
                    v(0),
                    v(1),
                    v(2),
                    v(3),
                    v(4),
                ));
            }
        }
        rows.sort();
        let mut want: Vec<Spans> = expected
            .iter()
            .map(|r| {
                let (start, end) = (r.session_start, r.session_end);
                (
                    r.user.clone(),
                    r.session_key,
                    start,
                    end,
                    r.duration_ms,
                    r.event_count,
                )
            })
            .collect();
        want.sort();
        assert_eq!(rows, want, "{sql}\n{}", case.describe());

        // the counts alone: the event type is kept, no column orders tied events
        let counts: Vec<String> = types.iter().map(|t| format!("\"count_{t}\"")).collect();
        let sql = query(&format!("user_id, session_key, {}", counts.join(", ")));
        let mut rows: Vec<(String, i64, Vec<i64>)> = Vec::new();
        for batch in &run(&ctx, &sql, &case).await {
            let users = strings(batch.column(0));
            let keys = millis_or_ints(batch.column(1));
            let counted: Vec<Vec<Option<i64>>> = (2..batch.num_columns())
                .map(|c| millis_or_ints(batch.column(c)))
                .collect();
            for i in 0..batch.num_rows() {
                rows.push((
                    users[i].clone().expect("user"),
                    keys[i].expect("session_key"),
                    counted.iter().map(|c| c[i].expect("count")).collect(),
                ));
            }
        }
        rows.sort();
        let mut want: Vec<(String, i64, Vec<i64>)> = expected
            .iter()
            .map(|r| (r.user.clone(), r.session_key, r.counts.clone()))
            .collect();
        want.sort();
        assert_eq!(rows, want, "{sql}\n{}", case.describe());

        // a property without the event types: the columns up to it order tied events
        let sql = query("last_page, session_key, first_page, user_id");
        let mut rows: Vec<PropertyRow> = Vec::new();
        for batch in &run(&ctx, &sql, &case).await {
            let last = strings(batch.column(0));
            let keys = millis_or_ints(batch.column(1));
            let first = strings(batch.column(2));
            let users = strings(batch.column(3));
            for i in 0..batch.num_rows() {
                let user = users[i].clone().expect("user");
                let key = keys[i].expect("session_key");
                rows.push((user, key, first[i].clone(), last[i].clone(), 0, 0));
            }
        }
        rows.sort();
        assert_eq!(rows, pages, "{sql}\n{}", case.describe());
    }
    assert!(ties > 0, "no ties were generated");
}

/// The window function's keys by `row_id`.
fn window_keys(batches: &[RecordBatch]) -> BTreeMap<i64, Option<i64>> {
    let mut keys = BTreeMap::new();
    for batch in batches {
        let row_ids = millis_or_ints(column(batch, "row_id"));
        let values = millis_or_ints(column(batch, "k"));
        for (row_id, key) in row_ids.into_iter().zip(values) {
            keys.insert(row_id.expect("row_id"), key);
        }
    }
    keys
}

async fn check_window(
    ctx: &SessionContext,
    case: &Case,
    gap_sql: &str,
    gap_ms: impl Fn(&Event) -> i64,
) {
    let sql = format!(
        "SELECT row_id, sessionize(event_time{gap_sql}) \
         OVER (PARTITION BY user_id ORDER BY event_time) AS k FROM events"
    );
    let batches = run(ctx, &sql, case).await;
    let engine = window_keys(&batches);
    let expected = window_sessionize(&case.events, gap_ms);
    if engine != expected {
        let diff: Vec<String> = expected
            .iter()
            .filter(|(row_id, want)| engine.get(row_id) != Some(want))
            .map(|(row_id, want)| {
                format!(
                    "  row_id {row_id}: engine {:?}, reference {want:?}",
                    engine.get(row_id)
                )
            })
            .collect();
        panic!(
            "{sql}\nwindow function differs\n{}\n{}",
            diff.join("\n"),
            case.describe()
        );
    }
}

/// The window function with a constant gap (and the default gap) equals the reference.
#[tokio::test]
async fn window_function_constant_gap_matches_reference() {
    let gaps = [
        ("", 30 * MINUTE_MS),
        (", INTERVAL '30 minutes'", 30 * MINUTE_MS),
        (", INTERVAL '5 minutes'", 5 * MINUTE_MS),
        (", INTERVAL '1799 seconds'", 30 * MINUTE_MS - 1_000),
        (", INTERVAL '2 hours'", 120 * MINUTE_MS),
    ];
    for seed in 0..case_count(200) {
        let case = Case::new(50_000 + seed);
        let (gap_sql, gap_ms) = gaps[seed as usize % gaps.len()];
        let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let partitions = shuffled_partitions(&batch, 3, &mut rng);
        let ctx =
            context_with_memtable(&case, 1 + seed as usize % 4, batch.schema(), partitions).await;
        check_window(&ctx, &case, gap_sql, |_| gap_ms).await;
    }
}

/// The window function with a gap per row: a CASE on the time's minute (so rows tied on time
/// share a gap), and a CASE on the event type over sets without ties.
#[tokio::test]
async fn window_function_per_row_gap_matches_reference() {
    for seed in 0..case_count(200) {
        let mut case = Case::new(60_000 + seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
        let partitions = shuffled_partitions(&batch, 2, &mut rng);
        let ctx = context_with_memtable(&case, 2, batch.schema(), partitions).await;
        let by_minute = ", CASE WHEN date_part('minute', event_time) < 30 \
                         THEN INTERVAL '10 minutes' ELSE INTERVAL '40 minutes' END";
        check_window(&ctx, &case, by_minute, |e| {
            let minute = e
                .time
                .unwrap_or_default()
                .div_euclid(MINUTE_MS)
                .rem_euclid(60);
            if minute < 30 {
                10 * MINUTE_MS
            } else {
                40 * MINUTE_MS
            }
        })
        .await;

        case.events = random_events(
            &mut rng,
            &EventSetShape {
                allow_ties: false,
                ..EventSetShape::default()
            },
        );
        let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
        let partitions = shuffled_partitions(&batch, 2, &mut rng);
        let ctx = context_with_memtable(&case, 2, batch.schema(), partitions).await;
        let by_type = ", CASE event_type WHEN 'click' THEN INTERVAL '5 minutes' \
                       WHEN 'purchase' THEN INTERVAL '1 hour' ELSE INTERVAL '30 minutes' END";
        check_window(&ctx, &case, by_type, |e| match e.event_type.as_str() {
            "click" => 5 * MINUTE_MS,
            "purchase" => 60 * MINUTE_MS,
            _ => 30 * MINUTE_MS,
        })
        .await;
    }
}

/// The comparison itself can fail: a reference that is off by one session must be caught.
#[test]
#[should_panic(expected = "sessionize differs from the reference")]
fn a_wrong_answer_is_detected() {
    let case = (0..)
        .map(Case::new)
        .find(|c| reference::sessions(&c.events, &c.rules).len() > 1)
        .expect("a case with sessions");
    let expected = reference::sessionize(&case.events, &case.rules);
    let mut wrong = expected.clone();
    let some_session = wrong
        .values_mut()
        .find(|s| s.session_index.is_some())
        .expect("a session");
    some_session.event_index = some_session.event_index.map(|i| i + 1);
    assert_events_match(&wrong, &expected, &case, "self-check");
}

/// Many `instrumented_gap` sessions of one user that share start, key and end (one event each,
/// different session ids, times interleaved): `session_index` must still follow the reference's
/// tie rule (then session id), however the engine sorts a long list of sessions.
#[tokio::test]
async fn many_sessions_tied_on_start_are_indexed_by_session_id() {
    let mut events = Vec::new();
    for i in 0..64_i64 {
        events.push(Event {
            row_id: i,
            user: Some("u1".into()),
            // four instants, each shared by 16 session ids, in an order unrelated to the ids
            time: Some(sessionlake_testkit::random_events::BASE_TIME_MS + (i * 37 % 4) * MINUTE_MS),
            event_type: "page_view".into(),
            session_id: Some((i * 29) % 64 + 1),
            page: None,
            is_active: Some(true),
        });
    }
    let case = Case {
        seed: 0,
        events,
        rules: Rules {
            mode: Mode::InstrumentedGap,
            gap_ms: 30 * MINUTE_MS,
            max_length_ms: None,
            inactive_event_types: vec![],
            event_gaps_ms: BTreeMap::new(),
            reported: None,
            counted: Vec::new(),
        },
        options: vec!["mode=instrumented_gap".into(), "max_length=none".into()],
        set_statements: vec![],
        table: "events".into(),
    };
    let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
    let ctx = context_with_memtable(&case, 1, batch.schema(), vec![vec![batch]]).await;
    check_case(&ctx, &case, "64 one-event sessions on 4 instants").await;
}

/// Tables without the optional columns, or with other column names given as options: no
/// `event_type` (ties then order by the remaining columns in schema order) and no `is_active`
/// (every event active), or every column renamed behind a view.
#[tokio::test]
async fn optional_and_renamed_columns_match_reference() {
    for seed in 0..case_count(100) {
        let renamed = seed % 2 == 0;
        let mut case = Case::new(70_000 + seed).without_event_type(!renamed);
        let batch = to_record_batch(&case.events, &BatchEncoding::default()).expect("batch");
        if renamed {
            let ctx = context_with_memtable(&case, 2, batch.schema(), vec![vec![batch]]).await;
            let view = "CREATE VIEW renamed AS SELECT user_id AS who, event_time AS at, \
                        session_id AS sid, page, is_active AS flag, row_id FROM events";
            run(&ctx, view, &case).await;
            case.table = "renamed".into();
            case.options.extend([
                "user_column=who".to_string(),
                "time_column=at".to_string(),
                "sessionlake.session_id_column=sid".to_string(),
                "active_column=flag".to_string(),
            ]);
            check_case(&ctx, &case, "renamed columns behind a view").await;
        } else {
            let without = batch
                .project(&[0, 1, 3, 4, 6])
                .expect("drop event_type and is_active");
            let ctx = context_with_memtable(&case, 2, without.schema(), vec![vec![without]]).await;
            check_case(&ctx, &case, "no event_type and no is_active column").await;
        }
    }
}
