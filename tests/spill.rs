//! `SessionizeExec` under a memory limit: a partition that does not fit spills to disk by user
//! bucket and still gives exactly the sessions it gives in memory.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use sessionlake_testkit::lake::{LakeSpec, write_lake};

async fn context(lake: &std::path::Path, memory_limit: Option<usize>) -> SessionContext {
    let config = sessionlake_engine::session_config().with_target_partitions(2);
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = memory_limit {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
    }
    let runtime = runtime.build_arc().expect("runtime");
    let mut ctx = SessionContext::new_with_config_rt(config, runtime);
    sessionlake_engine::register_all(&mut ctx).expect("register");
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
        lake.display()
    ))
    .await
    .expect("lake");
    ctx
}

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches: Vec<RecordBatch> = ctx
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let text = pretty_format_batches(&batches).expect("format").to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spilled_partitions_give_the_in_memory_sessions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = dir.path().join("lake");
    let spec = LakeSpec {
        events: 60_000,
        days: 3,
        users: 600,
        ..LakeSpec::default()
    };
    write_lake(&spec, &lake).expect("lake");

    let unlimited = context(&lake, None).await;
    // far below what one partition's rows need in memory, far above one bucket's
    let limited = context(&lake, Some(3 << 20)).await;

    for sql in [
        "SELECT * FROM sessions('events')",
        "SELECT user_id, event_time, event_type, page, session_key, session_start, session_end, \
         session_index, event_index FROM sessionize('events')",
        "SELECT * FROM sessions('events', 'mode=instrumented_gap')",
    ] {
        let expected = rows(&unlimited, sql).await;
        assert!(expected.len() > 1000, "{sql}: {} rows", expected.len());
        assert_eq!(rows(&limited, sql).await, expected, "{sql}");
    }

    // the limited run really spilled
    let analyzed = rows(
        &limited,
        "EXPLAIN ANALYZE SELECT count(*) FROM sessions('events')",
    )
    .await;
    let sessionize_line = analyzed
        .iter()
        .find(|line| line.contains("SessionizeExec"))
        .expect("SessionizeExec in the plan");
    let spilled = sessionize_line
        .split("spill_count=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("SessionizeExec reports spill_count");
    assert!(spilled > 0, "{sessionize_line}");
}
