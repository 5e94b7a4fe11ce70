//! Criterion benchmarks of sessionize's hot paths on a generated lake:
//! - `split_by_gap`: the gap-detection kernel over one sorted slice of times;
//! - `buffering`: a partition's work per buffered event: interning its user (100k to 5M
//!   distinct users, a partition's users at 10M to 500M events), and appending its entry to the
//!   pieces a batch at a time or one at a time;
//! - `sessions` / `sessionize`: the table functions end to end over Parquet (scan, repartition
//!   by user, session assignment, output); `sessions_properties` adds the first and last
//!   non-NULL page per session (`'properties=page'`);
//! - `window_sql`: the same sessions by DataFusion's own window functions (`lag` + running
//!   `sum`), the hand-written SQL sessionlake replaces;
//! - `spilling`: sessions with their first country by country (the side-by-side benchmark's
//!   `by_country`) under a memory budget of [`SPILL_BYTES_PER_EVENT`] bytes per event, far
//!   below what the query holds in memory, so the operator writes its spill buckets and reads
//!   them back (checked before it is timed), next to the same query unbounded.
//!
//! `SESSIONLAKE_BENCH_EVENTS` sets the lake size (default 1,000,000 events over 30 days).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{ArrayRef, StringViewArray};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use sessionlake_engine::assign::{Entry, Pieces, UserIds};
use sessionlake_engine::memory::MemoryLimit;
use sessionlake_functions::session_split::split_by_gap;
use sessionlake_testkit::lake::{LakeSpec, write_lake};
use tokio::runtime::Runtime;

const DEFAULT_EVENTS: u64 = 1_000_000;

fn bench_events() -> u64 {
    std::env::var("SESSIONLAKE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_EVENTS)
}

/// The next value of a seeded xorshift sequence, the benches' source of random inputs.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn split_kernel(c: &mut Criterion) {
    // one user-sorted run of a million times with gaps of 0..=40 minutes, seeded
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut time = 1_700_000_000_000_i64;
    let times: Vec<i64> = (0..1_000_000)
        .map(|_| {
            time += (xorshift(&mut state) % (40 * 60_000)) as i64;
            time
        })
        .collect();
    let mut group = c.benchmark_group("split_by_gap");
    group.throughput(Throughput::Elements(times.len() as u64));
    group.bench_function("1M_times", |b| {
        b.iter(|| {
            let mut sessions = 0_usize;
            split_by_gap(black_box(&times), 30 * 60_000, |_| sessions += 1);
            sessions
        })
    });
    group.finish();
}

/// Batches of 8192 users of the generated lakes' form (`u123456`), drawn at random from
/// `distinct` users.
fn user_batches(rows: usize, distinct: u64) -> Vec<ArrayRef> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ distinct;
    (0..rows / 8192)
        .map(|_| {
            let users = (0..8192).map(|_| Some(format!("u{}", xorshift(&mut state) % distinct)));
            Arc::new(users.collect::<StringViewArray>()) as ArrayRef
        })
        .collect()
}

/// Buffering's per-event work on 4M events: interning users, and appending entries to pieces
/// a batch at a time (`push_all`) or one at a time (`push`).
fn buffering(c: &mut Criterion) {
    const ROWS: usize = 4_000_000;
    let mut group = c.benchmark_group("buffering");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    for distinct in [100_000_u64, 1_000_000, 5_000_000] {
        let batches = user_batches(ROWS, distinct);
        group.bench_with_input(
            BenchmarkId::new("user_ids", distinct),
            &batches,
            |b, batches| {
                b.iter(|| {
                    let mut users = UserIds::new();
                    for batch in batches {
                        black_box(users.intern(batch).expect("intern"));
                    }
                    users.len()
                })
            },
        );
    }
    let mut users = UserIds::new();
    let entries: Vec<Vec<Entry<i64>>> = user_batches(ROWS, 500_000)
        .iter()
        .enumerate()
        .map(|(b, batch)| {
            let ids = users.intern(batch).expect("intern");
            ids.iter()
                .enumerate()
                .map(|(i, &user)| Entry {
                    time: (b * 8192 + i) as i64,
                    user: user as u32,
                    row: (b * 8192 + i) as u32,
                    session: i as i64,
                })
                .collect()
        })
        .collect();
    group.bench_function("pieces_push_all", |b| {
        b.iter(|| {
            let mut pieces = Pieces::<i64>::default();
            for batch in &entries {
                pieces.push_all(batch.iter().copied());
            }
            pieces.len()
        })
    });
    group.bench_function("pieces_push", |b| {
        b.iter(|| {
            let mut pieces = Pieces::<i64>::default();
            for batch in &entries {
                batch.iter().for_each(|&e| pieces.push(e));
            }
            pieces.len()
        })
    });
    group.finish();
}

async fn lake_context(lake: &Path, partitions: usize) -> SessionContext {
    let config = sessionlake_engine::session_config().with_target_partitions(partitions);
    let ctx = sessionlake_engine::new_context_with_config(config).expect("context");
    register_events(ctx, lake).await
}

/// A context over `lake` with the memory pool `limit` gives (as the command line's `-m`).
async fn limited_context(lake: &Path, partitions: usize, limit: MemoryLimit) -> SessionContext {
    let config = sessionlake_engine::session_config().with_target_partitions(partitions);
    let runtime = limit
        .resolve()
        .apply(RuntimeEnvBuilder::new())
        .build_arc()
        .expect("runtime");
    let mut ctx = SessionContext::new_with_config_rt(config, runtime);
    sessionlake_engine::register_all(&mut ctx).expect("register");
    register_events(ctx, lake).await
}

async fn register_events(ctx: SessionContext, lake: &Path) -> SessionContext {
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
        lake.display()
    ))
    .await
    .expect("register the lake");
    ctx
}

async fn run(ctx: &SessionContext, sql: &str) -> usize {
    let batches = ctx
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    batches.iter().map(|b| b.num_rows()).sum()
}

const QUERIES: [(&str, &str); 4] = [
    (
        "sessions",
        "SELECT count(*), sum(duration_ms), count(DISTINCT user_id) FROM sessions('events')",
    ),
    (
        "sessions_properties",
        "SELECT count(first_page), count(last_page) FROM sessions('events', 'properties=page')",
    ),
    (
        "sessionize",
        "SELECT count(DISTINCT session_key), count(session_key) FROM sessionize('events')",
    ),
    (
        "window_sql",
        "SELECT count(*), sum(duration_ms) FROM (
           SELECT user_id, session_no,
             CAST(max(event_time) AS BIGINT) - CAST(min(event_time) AS BIGINT) AS duration_ms
           FROM (
             SELECT user_id, event_time,
               sum(CASE WHEN prev IS NULL OR event_time - prev > INTERVAL '30 minutes' THEN 1 ELSE 0 END)
                 OVER (PARTITION BY user_id ORDER BY event_time ROWS UNBOUNDED PRECEDING) AS session_no
             FROM (
               SELECT user_id, event_time,
                 lag(event_time) OVER (PARTITION BY user_id ORDER BY event_time) AS prev
               FROM events WHERE is_active IS NOT FALSE AND user_id IS NOT NULL AND event_time IS NOT NULL))
           GROUP BY user_id, session_no)",
    ),
];

/// A generated lake of `events` events (30 days, 50 events per user) in `dir`.
fn bench_lake(dir: &Path, events: u64) -> PathBuf {
    let lake = dir.join("lake");
    let spec = LakeSpec {
        events,
        days: 30,
        users: (events / 50).max(10),
        ..LakeSpec::default()
    };
    write_lake(&spec, &lake).expect("generate the lake");
    lake
}

fn end_to_end(c: &mut Criterion) {
    let events = bench_events();
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = bench_lake(dir.path(), events);
    let runtime = Runtime::new().expect("tokio runtime");
    let partitions = std::thread::available_parallelism().map_or(2, |n| n.get());
    let ctx = runtime.block_on(lake_context(&lake, partitions));

    let mut group = c.benchmark_group("lake");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    for (name, sql) in QUERIES {
        group.bench_with_input(BenchmarkId::new(name, events), &sql, |b, sql| {
            b.to_async(&runtime).iter(|| run(&ctx, sql))
        });
    }
    group.finish();
}

/// The memory budget of the `spilling` benchmark, per event of its lake.
const SPILL_BYTES_PER_EVENT: usize = 16;

const BY_COUNTRY: &str = "SELECT first_country, count(*), count(DISTINCT user_id), \
     sum(duration_ms) FROM sessions('events', 'properties=country') GROUP BY first_country";

/// How many times `SessionizeExec` spilled running `sql` in `ctx`.
async fn sessionize_spills(ctx: &SessionContext, sql: &str) -> usize {
    let batches = ctx
        .sql(&format!("EXPLAIN ANALYZE {sql}"))
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let plan = batches
        .iter()
        .flat_map(|batch| {
            (0..batch.num_rows())
                .map(|row| array_value_to_string(batch.column(1), row).expect("an EXPLAIN line"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    plan.lines()
        .filter(|line| line.contains("SessionizeExec"))
        .filter_map(|line| line.split("spill_count=").nth(1))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|count| count.parse::<usize>().ok())
        .sum()
}

fn spilling(c: &mut Criterion) {
    let events = bench_events();
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = bench_lake(dir.path(), events);
    let runtime = Runtime::new().expect("tokio runtime");
    let partitions = std::thread::available_parallelism().map_or(2, |n| n.get());
    let budget = usize::try_from(events).unwrap_or(usize::MAX) * SPILL_BYTES_PER_EVENT;
    let limited = runtime.block_on(limited_context(
        &lake,
        partitions,
        MemoryLimit::Bytes(budget),
    ));
    let unbounded = runtime.block_on(limited_context(&lake, partitions, MemoryLimit::Unbounded));
    let spills = runtime.block_on(sessionize_spills(&limited, BY_COUNTRY));
    assert!(
        spills > 0,
        "a budget of {budget} bytes did not make sessionize spill"
    );

    let mut group = c.benchmark_group("spilling");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    for (name, ctx) in [
        ("by_country_limited", &limited),
        ("by_country_unbounded", &unbounded),
    ] {
        group.bench_with_input(BenchmarkId::new(name, events), ctx, |b, ctx| {
            b.to_async(&runtime).iter(|| run(ctx, BY_COUNTRY))
        });
    }
    group.finish();
}

criterion_group!(benches, split_kernel, buffering, end_to_end, spilling);
criterion_main!(benches);
