//! The codecs without a cluster: a plan with `sessions()` / `sessionize()` goes through bytes
//! and back, as between client, scheduler and executors, and still gives the same rows.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::ScalarValue;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::{SessionContext, col, lit};
use datafusion_proto::logical_plan::AsLogicalPlan;
use datafusion_proto::physical_plan::AsExecutionPlan;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use prost::Message;
use sessionlake_ballista::codec::MAGIC;
use sessionlake_ballista::sql_client::register_lake;
use sessionlake_ballista::{SessionLakeLogicalCodec, SessionLakePhysicalCodec};
use sessionlake_testkit::lake::{LakeSpec, write_lake};

const QUERIES: [&str; 4] = [
    "SELECT user_id, session_key, session_start, duration_ms, event_count, first_event_type \
     FROM sessions('events', 'gap=5 minutes', 'max_length=2 hours') \
     ORDER BY user_id, session_key",
    "SELECT user_id, session_key, event_index, event_time, event_type \
     FROM sessionize('events') WHERE user_id IS NOT NULL \
     ORDER BY user_id, session_key, event_index, event_time, event_type",
    "SELECT count(*) AS sessions FROM sessions('events', 'mode=instrumented_gap')",
    "SELECT user_id, session_key, first_page, last_page, last_country, count_page_view, \
     count_purchase FROM sessions('events', 'properties=page,country', \
     'count_event_types=page_view,purchase') ORDER BY user_id, session_key",
];

async fn lake_context(dir: &std::path::Path) -> SessionContext {
    let lake = dir.join("lake");
    let spec = LakeSpec {
        seed: 3,
        events: 3_000,
        days: 2,
        users: 60,
        files_per_day: 2,
        ..LakeSpec::default()
    };
    write_lake(&spec, &lake).expect("lake");
    let ctx = sessionlake_engine::new_context().expect("context");
    register_lake(&ctx, "events", &lake)
        .await
        .expect("register");
    ctx
}

fn text(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches).expect("format").to_string()
}

/// A fresh context with sessionlake's functions but no tables: what a scheduler or an executor
/// decodes in.
fn remote_task_context() -> Arc<TaskContext> {
    sessionlake_engine::new_context()
        .expect("context")
        .task_ctx()
}

#[tokio::test]
async fn logical_plans_round_trip_through_the_codec() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = lake_context(dir.path()).await;
    let codec = SessionLakeLogicalCodec::default();
    for sql in QUERIES {
        let plan = ctx
            .sql(sql)
            .await
            .expect("plans")
            .into_optimized_plan()
            .expect("optimizes");
        let bytes = LogicalPlanNode::try_from_logical_plan(&plan, &codec)
            .expect("encodes")
            .encode_to_vec();
        let decoded = LogicalPlanNode::decode(bytes.as_slice())
            .expect("protobuf")
            .try_into_logical_plan(&remote_task_context(), &codec)
            .expect("decodes");
        assert_eq!(
            format!("{}", decoded.display_indent()),
            format!("{}", plan.display_indent()),
            "{sql}"
        );
        let expected = ctx.execute_logical_plan(plan).await.expect("runs");
        let actual = ctx
            .execute_logical_plan(decoded)
            .await
            .expect("runs decoded");
        assert_eq!(
            text(&actual.collect().await.expect("collect decoded")),
            text(&expected.collect().await.expect("collect")),
            "{sql}"
        );
    }
}

/// Regression: `sessions()` over a view (here a filtered DataFrame registered as a table, as a
/// job registers its read window) reached the scheduler as an inlined `SubqueryAlias`, which
/// the codec rejected ("expected a table scan"). It decodes as a view of that plan now.
#[tokio::test]
async fn sessions_over_a_filtered_view_round_trip_through_the_codec() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = lake_context(dir.path()).await;
    let window = ctx
        .table("events")
        .await
        .expect("events")
        // before 2024-01-02T00:00:00Z
        .filter(col("event_time").lt(lit(ScalarValue::TimestampMillisecond(
            Some(1_704_153_600_000),
            Some("UTC".into()),
        ))))
        .expect("filter");
    ctx.register_table("window", window.into_view())
        .expect("register the view");
    let codec = SessionLakeLogicalCodec::default();
    let sql = "SELECT count(*) AS sessions, sum(event_count) AS events, \
               max(session_start) AS last_start FROM sessions('window')";
    let plan = ctx
        .sql(sql)
        .await
        .expect("plans")
        .into_optimized_plan()
        .expect("optimizes");
    let bytes = LogicalPlanNode::try_from_logical_plan(&plan, &codec)
        .expect("encodes")
        .encode_to_vec();
    let decoded = LogicalPlanNode::decode(bytes.as_slice())
        .expect("protobuf")
        .try_into_logical_plan(&remote_task_context(), &codec)
        .expect("decodes");
    let expected = text(
        &ctx.execute_logical_plan(plan)
            .await
            .expect("runs")
            .collect()
            .await
            .expect("collect"),
    );
    let actual = text(
        &ctx.execute_logical_plan(decoded)
            .await
            .expect("runs decoded")
            .collect()
            .await
            .expect("collect decoded"),
    );
    assert_eq!(actual, expected);
    // the filter took effect: the last session starts on the first day
    assert!(expected.contains("2024-01-01T"), "{expected}");
}

/// Whether `plan` holds a `SessionizeExec`.
fn has_sessionize(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.name() == "SessionizeExec" || plan.children().into_iter().any(has_sessionize)
}

#[tokio::test]
async fn physical_plans_round_trip_through_the_codec() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = lake_context(dir.path()).await;
    let codec = SessionLakePhysicalCodec::default();
    for sql in QUERIES {
        let plan = ctx
            .sql(sql)
            .await
            .expect("plans")
            .create_physical_plan()
            .await
            .expect("physical plan");
        assert!(has_sessionize(&plan), "{sql}: no SessionizeExec");
        let node =
            PhysicalPlanNode::try_from_physical_plan(Arc::clone(&plan), &codec).expect("encodes");
        let bytes = node.encode_to_vec();
        let decoded = PhysicalPlanNode::decode(bytes.as_slice())
            .expect("protobuf")
            .try_into_physical_plan(&remote_task_context(), &codec)
            .expect("decodes");
        assert_eq!(
            displayable(decoded.as_ref()).indent(true).to_string(),
            displayable(plan.as_ref()).indent(true).to_string(),
            "{sql}"
        );
        assert_eq!(
            decoded.schema(),
            plan.schema(),
            "{sql}: the schema (and its call metadata) survives"
        );
        let expected = collect(plan, ctx.task_ctx()).await.expect("runs");
        let actual = collect(decoded, ctx.task_ctx())
            .await
            .expect("runs decoded");
        assert_eq!(text(&actual), text(&expected), "{sql}");
    }
}

#[test]
fn foreign_bytes_are_left_to_ballista() {
    // Ballista's codec rejects bytes it cannot read with an error, not a panic; ours must not
    // claim them.
    let codec = SessionLakePhysicalCodec::default();
    let ctx = remote_task_context();
    let converter = datafusion_proto::physical_plan::DefaultPhysicalProtoConverter {};
    let result = datafusion_proto::physical_plan::PhysicalExtensionCodec::try_decode(
        &codec,
        b"\x08\x01",
        &[],
        &ctx,
        &converter,
    );
    assert!(result.is_err());
    // and bytes with our prefix but a broken body are a clear error
    let mut broken = MAGIC.to_vec();
    broken.extend_from_slice(&[0xff, 0xff, 0xff]);
    let err = datafusion_proto::physical_plan::PhysicalExtensionCodec::try_decode(
        &codec,
        &broken,
        &[],
        &ctx,
        &converter,
    )
    .expect_err("broken node");
    assert!(
        err.to_string().contains("sessionlake-ballista codec"),
        "{err}"
    );
}
