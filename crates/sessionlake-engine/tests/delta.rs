//! Delta tables read through their transaction log (`sessionlake_engine::delta`), on tables these
//! tests write with delta-rs from the seeded lake generator: the same sessions as the same events
//! in memory, only live files after a delete, time travel by version and by timestamp, an
//! `s3://` URL read through the store the session registered, and the errors.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use sessionlake_engine::delta::{DeltaVersion, is_delta_table, open_delta_table};
use sessionlake_testkit::lake::{LakeSpec, write_lake};
use url::Url;

/// The partition column of the Delta tables (and of the generated lake, as a string there).
const DATE_COLUMN: &str = "event_date";

const SESSION_TOTALS: &str =
    "SELECT count(*) AS sessions, sum(duration_ms) AS total_ms FROM sessions('events')";
const SESSIONS_PER_USER: &str = "SELECT user_id, count(*) AS sessions FROM sessions('events') \
     GROUP BY user_id ORDER BY user_id";
/// Rows per value of the partition column, which the Delta provider must return as a column.
const ROWS_PER_DAY: &str = "SELECT CAST(event_date AS VARCHAR) AS day, count(*) AS rows \
     FROM events GROUP BY 1 ORDER BY 1";

/// The columns the Delta tables hold, in the types Delta has: plain strings, timestamps in
/// microseconds in UTC, the day as a date.
fn delta_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("session_id", DataType::Int64, false),
        Field::new("page", DataType::Utf8, true),
        Field::new("is_active", DataType::Boolean, false),
        Field::new(DATE_COLUMN, DataType::Date32, true),
    ]))
}

/// The events of a small seeded lake (3 days from 2024-01-01), written as a hive Parquet lake
/// under `dir/lake` and returned as batches of [`delta_schema`].
async fn generated_events(dir: &FsPath) -> Vec<RecordBatch> {
    let lake = dir.join("lake");
    let spec = LakeSpec {
        events: 20_000,
        days: 3,
        users: 400,
        ..LakeSpec::default()
    };
    write_lake(&spec, &lake).expect("lake");
    let ctx = SessionContext::new();
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE lake STORED AS PARQUET LOCATION '{}/'",
        lake.display()
    ))
    .await
    .expect("register the lake");
    let schema = delta_schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let batches = collect(&ctx, &format!("SELECT {} FROM lake", names.join(", "))).await;
    batches
        .iter()
        .map(|batch| {
            let columns = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, column)| cast(column, field.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .expect("cast to Delta types");
            RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch")
        })
        .collect()
}

async fn collect(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("plan {sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("run {sql}: {e}"))
}

/// `events` restricted by `predicate` (SQL over [`delta_schema`]'s columns).
async fn filtered(events: &[RecordBatch], predicate: &str) -> Vec<RecordBatch> {
    let ctx = SessionContext::new();
    ctx.register_table("events", mem_table(events))
        .expect("register");
    collect(&ctx, &format!("SELECT * FROM events WHERE {predicate}")).await
}

fn mem_table(events: &[RecordBatch]) -> Arc<MemTable> {
    Arc::new(MemTable::try_new(delta_schema(), vec![events.to_vec()]).expect("mem table"))
}

fn directory_url(dir: &FsPath) -> Url {
    std::fs::create_dir_all(dir).expect("create table dir");
    Url::from_directory_path(dir).expect("directory URL")
}

/// Writes `events` to the Delta table at `url` as one commit, partitioned by day.
async fn write_delta(url: &Url, events: &[RecordBatch], mode: SaveMode) -> DeltaTable {
    let table = DeltaTable::try_from_url(url.clone())
        .await
        .expect("open for write");
    table
        .write(events.to_vec())
        .with_partition_columns([DATE_COLUMN])
        .with_save_mode(mode)
        .await
        .expect("write Delta commit")
}

/// A context with sessionlake registered and `table` as `events`.
fn context_with(table: Arc<dyn TableProvider>) -> SessionContext {
    let ctx = sessionlake_engine::new_context().expect("context");
    ctx.register_table("events", table)
        .expect("register events");
    ctx
}

/// A sessionlake context with the Delta table at `url` opened through it as `events`.
async fn open(url: &Url, version: DeltaVersion) -> Result<SessionContext> {
    open_in(sessionlake_engine::new_context()?, url, version).await
}

/// `ctx` with the Delta table at `url` opened through it (and its object stores) as `events`.
async fn open_in(ctx: SessionContext, url: &Url, version: DeltaVersion) -> Result<SessionContext> {
    let table = open_delta_table(&ctx.state(), url, version).await?;
    ctx.register_table("events", table)?;
    Ok(ctx)
}

/// The answer of `sql` as printed text (a stable form to compare two contexts by).
async fn answer(ctx: &SessionContext, sql: &str) -> String {
    pretty_format_batches(&collect(ctx, sql).await)
        .expect("format")
        .to_string()
}

async fn count_rows(ctx: &SessionContext, table: &str) -> String {
    answer(ctx, &format!("SELECT count(*) AS rows FROM {table}")).await
}

/// Asserts that `delta` and `reference` agree on the session queries and on the rows per day.
async fn assert_same_sessions(delta: &SessionContext, reference: &SessionContext) {
    for sql in [SESSION_TOTALS, SESSIONS_PER_USER, ROWS_PER_DAY] {
        assert_eq!(
            answer(delta, sql).await,
            answer(reference, sql).await,
            "{sql}"
        );
    }
}

fn error_text(result: Result<SessionContext>) -> String {
    match result {
        Ok(_) => panic!("expected an error, the table opened"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_version_gives_the_sessions_of_the_same_events_in_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = generated_events(dir.path()).await;
    let url = directory_url(&dir.path().join("delta"));
    write_delta(&url, &events, SaveMode::Append).await;

    let delta = open(&url, DeltaVersion::Latest).await.expect("open");
    let reference = context_with(mem_table(&events));
    assert_same_sessions(&delta, &reference).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_the_log_removed_are_not_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = generated_events(dir.path()).await;
    let delta_dir = dir.path().join("delta");
    let url = directory_url(&delta_dir);
    let table = write_delta(&url, &events, SaveMode::Append).await;
    // A predicate on the partition column only: delta-rs removes the day's files from the log
    // without rewriting anything, and the files stay on disk (no vacuum).
    let (_, metrics) = table
        .delete()
        .with_predicate("event_date = '2024-01-02'")
        .await
        .expect("delete a day");
    assert!(metrics.num_removed_files > 0, "{metrics:?}");

    let delta = open(&url, DeltaVersion::Latest).await.expect("open");
    let live = filtered(&events, "event_date <> DATE '2024-01-02'").await;
    assert_same_sessions(&delta, &context_with(mem_table(&live))).await;

    // Listing the directory's Parquet files instead finds the removed day again: what the log
    // is for, and what makes the check above able to fail.
    let listed = SessionContext::new();
    listed
        .sql(&format!(
            "CREATE EXTERNAL TABLE listed STORED AS PARQUET LOCATION '{}/'",
            delta_dir.display()
        ))
        .await
        .expect("list the directory");
    let all = context_with(mem_table(&events));
    assert_eq!(
        count_rows(&listed, "listed").await,
        count_rows(&all, "events").await
    );
    assert_ne!(
        count_rows(&listed, "listed").await,
        count_rows(&delta, "events").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_timestamps_read_the_table_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = generated_events(dir.path()).await;
    let first_days = filtered(&events, "event_date < DATE '2024-01-03'").await;
    let last_day = filtered(&events, "event_date = DATE '2024-01-03'").await;
    let url = directory_url(&dir.path().join("delta"));

    // Commit times are the log files' modification times; the pauses put `before` and `between`
    // clearly on one side of each commit.
    let pause = || tokio::time::sleep(Duration::from_millis(100));
    let before: DateTime<Utc> = Utc::now();
    pause().await;
    write_delta(&url, &first_days, SaveMode::Append).await;
    pause().await;
    let between = Utc::now();
    pause().await;
    write_delta(&url, &last_day, SaveMode::Append).await;

    let first = context_with(mem_table(&first_days));
    let all = context_with(mem_table(&events));
    for (version, expected) in [
        (DeltaVersion::Version(0), &first),
        (DeltaVersion::Timestamp(between), &first),
        (DeltaVersion::Version(1), &all),
        (DeltaVersion::Latest, &all),
        (DeltaVersion::Timestamp(Utc::now()), &all),
    ] {
        let delta = open(&url, version)
            .await
            .unwrap_or_else(|e| panic!("open at {version}: {e}"));
        assert_same_sessions(&delta, expected).await;
    }
    assert_ne!(
        answer(&first, SESSION_TOTALS).await,
        answer(&all, SESSION_TOTALS).await,
        "the two versions must differ for the checks above to mean anything"
    );

    let past_latest = error_text(open(&url, DeltaVersion::Version(7)).await);
    assert!(
        past_latest.contains(&format!(
            "delta table {url} (version 7): version 7 does not exist: \
             the table's latest version is 1"
        )),
        "{past_latest}"
    );
    let negative = error_text(open(&url, DeltaVersion::Version(-1)).await);
    assert!(negative.contains("version -1 is negative"), "{negative}");
    let too_early = error_text(open(&url, DeltaVersion::Timestamp(before)).await);
    assert!(
        too_early.contains(&format!("delta table {url} (version as of "))
            && too_early.contains("no version was committed at or before")
            && too_early.contains("the earliest readable version, 0, was committed at"),
        "{too_early}"
    );
    for message in [&past_latest, &negative, &too_early] {
        assert!(!message.contains('\n'), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_delta_table_tells_a_delta_table_from_a_parquet_lake() {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = generated_events(dir.path()).await;
    let url = directory_url(&dir.path().join("delta"));
    write_delta(&url, &events[..1], SaveMode::Append).await;

    let store = LocalFileSystem::new();
    let path = |name: &str| Path::from_absolute_path(dir.path().join(name)).expect("path");
    assert!(is_delta_table(&store, &path("delta")).await.expect("check"));
    assert!(!is_delta_table(&store, &path("lake")).await.expect("check"));
    assert!(
        !is_delta_table(&store, &path("missing"))
            .await
            .expect("check")
    );

    let lake_url = directory_url(&dir.path().join("lake"));
    let not_delta = error_text(open(&lake_url, DeltaVersion::Latest).await);
    assert!(
        not_delta.contains(&format!(
            "delta table {lake_url} (latest version): not a Delta table: \
             no commit file under _delta_log/"
        )),
        "{not_delta}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_url_reads_through_the_store_the_session_registered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = generated_events(dir.path()).await;
    let url = directory_url(&dir.path().join("bucket").join("tables").join("events"));
    write_delta(&url, &events, SaveMode::Append).await;

    // The bucket `lake` is the local directory `bucket/`: whatever the session registered for
    // `s3://lake` is what the table is read through (the CLI registers its S3 client there).
    let bucket = sessionlake_engine::new_context().expect("context");
    let bucket_root = Path::from_absolute_path(dir.path().join("bucket")).expect("path");
    bucket.register_object_store(
        &Url::parse("s3://lake").expect("url"),
        Arc::new(PrefixStore::new(LocalFileSystem::new(), bucket_root)),
    );
    let s3_url = Url::parse("s3://lake/tables/events/").expect("url");
    let delta = open_in(bucket, &s3_url, DeltaVersion::Latest)
        .await
        .expect("open s3 table");
    assert_same_sessions(&delta, &context_with(mem_table(&events))).await;

    let unregistered = Url::parse("s3://other-bucket/events/").expect("url");
    let message = error_text(open(&unregistered, DeltaVersion::Latest).await);
    assert!(
        message.contains(
            "delta table s3://other-bucket/events/ (latest version): no object store for this URL"
        ),
        "{message}"
    );
}

/// A sessionlake context with the Delta table at `location` registered as `events` the way
/// `--lake` does it, through `CREATE EXTERNAL TABLE`.
async fn created(location: &str) -> SessionContext {
    let ctx = sessionlake_engine::new_context().expect("context");
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{location}'"
    ))
    .await
    .unwrap_or_else(|e| panic!("create {location}: {e}"))
    .collect()
    .await
    .unwrap_or_else(|e| panic!("create {location}: {e}"));
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_registration_and_paths_read_delta_through_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = generated_events(dir.path()).await;
    let first_days = filtered(&events, "event_date < DATE '2024-01-03'").await;
    let last_day = filtered(&events, "event_date = DATE '2024-01-03'").await;
    let delta_dir = dir.path().join("delta");
    let url = directory_url(&delta_dir);
    write_delta(&url, &first_days, SaveMode::Append).await;
    let table = write_delta(&url, &last_day, SaveMode::Append).await;
    // version 2 removes the first day's files from the log (they stay on disk)
    table
        .delete()
        .with_predicate("event_date = '2024-01-01'")
        .await
        .expect("delete a day");
    let live = context_with(mem_table(
        &filtered(&events, "event_date <> DATE '2024-01-01'").await,
    ));
    let first = context_with(mem_table(&first_days));

    let root = format!("{}/", delta_dir.display());
    assert_same_sessions(&created(&root).await, &live).await;
    assert_same_sessions(&created(&format!("{root}@0")).await, &first).await;
    // a path where a table name goes: the same table, the same version suffix
    let ctx = sessionlake_engine::new_context().expect("context");
    for (location, expected) in [(root.clone(), &live), (format!("{root}@0"), &first)] {
        assert_eq!(
            answer(
                &ctx,
                &format!("SELECT count(*) AS sessions, sum(duration_ms) AS duration FROM sessions('{location}')")
            )
            .await,
            answer(
                expected,
                "SELECT count(*) AS sessions, sum(duration_ms) AS duration FROM sessions('events')"
            )
            .await,
            "{location}"
        );
    }
    let error = ctx
        .sql(&format!("SELECT count(*) FROM '{root}@9'"))
        .await
        .expect_err("version 9 does not exist");
    assert!(
        error
            .to_string()
            .contains("version 9 does not exist: the table's latest version is 2"),
        "{error}"
    );
}
