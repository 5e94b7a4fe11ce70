//! Criterion benchmarks of sessionize's hot paths on a generated lake:
//! - `split_by_gap`: the gap-detection kernel over one sorted slice of times;
//! - `sessions` / `sessionize`: the table functions end to end over Parquet (scan, repartition
//!   by user, session assignment, output); `sessions_properties` adds the first and last
//!   non-NULL page per session (`'properties=page'`);
//! - `window_sql`: the same sessions by DataFusion's own window functions (`lag` + running
//!   `sum`), the hand-written SQL sessionlake replaces.
//!
//! `SESSIONLAKE_BENCH_EVENTS` sets the lake size (default 1,000,000 events over 30 days).

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::prelude::SessionContext;
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

fn split_kernel(c: &mut Criterion) {
    // one user-sorted run of a million times with gaps of 0..=40 minutes, seeded
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut time = 1_700_000_000_000_i64;
    let times: Vec<i64> = (0..1_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            time += (state % (40 * 60_000)) as i64;
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

criterion_group!(benches, split_kernel, end_to_end);
criterion_main!(benches);
