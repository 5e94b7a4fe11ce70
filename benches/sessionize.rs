//! Criterion benchmarks of sessionize's hot paths on a generated lake:
//! - `split_by_gap`: the gap-detection kernel over one sorted slice of times;
//! - `buffering`: a partition's work per buffered event: interning its user (100k to 5M
//!   distinct users, a partition's users at 10M to 500M events), and appending its entry to the
//!   pieces a batch at a time or one at a time;
//! - `sessions` / `sessionize`: the table functions end to end over Parquet (scan, repartition
//!   by user, session assignment, output); `sessions_properties` adds the first and last
//!   non-NULL page per session (`'properties=page'`);
//! - `window_sql`: the same sessions by DataFusion's own window functions (`lag` + running
//!   `sum`), the hand-written SQL sessionlake replaces.
//!
//! `SESSIONLAKE_BENCH_EVENTS` sets the lake size (default 1,000,000 events over 30 days).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{ArrayRef, StringViewArray};
use datafusion::prelude::SessionContext;
use sessionlake_engine::assign::{Entry, Pieces, UserIds};
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

fn end_to_end(c: &mut Criterion) {
    let events = bench_events();
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = dir.path().join("lake");
    let spec = LakeSpec {
        events,
        days: 30,
        users: (events / 50).max(10),
        ..LakeSpec::default()
    };
    write_lake(&spec, &lake).expect("generate the lake");
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

criterion_group!(benches, split_kernel, buffering, end_to_end);
criterion_main!(benches);
