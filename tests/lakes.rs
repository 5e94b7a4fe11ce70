//! Lake discovery on lakes as real pipelines leave them: Spark/Hadoop markers, checksum side
//! files, `_temporary/` directories, several partition levels, unpartitioned directories,
//! drifting schemas, symbolic links, and the errors for layouts that are not a lake.
//!
//! Each lake is compared with the clean lake it was made from, through `CREATE EXTERNAL TABLE`
//! (what `--lake` runs), a path where a table name goes, and `sessions()`.

use std::path::{Path, PathBuf};

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use sessionlake_testkit::lake::{LakeSpec, write_lake};

mod common;

/// A small generated lake: 4 days of `event_date=YYYY-MM-DD/part-N.parquet`.
fn clean_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("clean");
    let spec = LakeSpec {
        seed: 7,
        events: 12_000,
        days: 4,
        users: 300,
        files_per_day: 2,
        ..LakeSpec::default()
    };
    write_lake(&spec, &lake).expect("the generator writes the lake");
    lake
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("the test lake is written");
    for entry in std::fs::read_dir(from).expect("the test lake is written") {
        let entry = entry.expect("the test lake is written");
        let target = to.join(entry.file_name());
        if entry
            .file_type()
            .expect("the test lake is written")
            .is_dir()
        {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("the test lake is written");
        }
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("the test lake is written"))
        .expect("the test lake is written");
    std::fs::write(path, bytes).expect("the test lake is written");
}

/// The clean lake as Spark, Hadoop, Glue and a Mac leave it: markers and side files at the
/// root and in every partition, and real Parquet files (copies of data, which would be counted
/// twice if read) under `_temporary/`, behind hidden names and in a hidden directory.
fn dirty_lake(clean: &Path, dir: &Path) -> PathBuf {
    let lake = dir.join("dirty");
    copy_dir(clean, &lake);
    let data = std::fs::read(clean.join("event_date=2024-01-01/part-0.parquet"))
        .expect("the test lake is written");
    write(&lake.join("_SUCCESS"), b"");
    write(
        &lake.join("_something.json"),
        b"{\"written_by\": \"spark\"}",
    );
    write(&lake.join("_common_metadata"), b"not parquet");
    write(&lake.join(".DS_Store"), b"\0\0\0\x01Bud1");
    write(
        &lake.join("_temporary/0/_temporary/attempt_202401010000_0001_m_000000_0/event_date=2024-01-01/part-0.parquet"),
        &data,
    );
    write(
        &lake.join(".spark-staging-1/event_date=2024-01-01/part-0.parquet"),
        &data,
    );
    for entry in std::fs::read_dir(clean).expect("the test lake is written") {
        let partition = lake.join(entry.expect("the test lake is written").file_name());
        write(&partition.join("_SUCCESS"), b"");
        write(&partition.join("_committed_4837"), b"{\"added\": []}");
        write(&partition.join("_started_4837"), b"");
        write(&partition.join(".part-0.parquet.crc"), b"crc garbage");
        write(&partition.join("_tmp-part-9.parquet"), &data);
        write(&partition.join(".part-9.parquet"), &data);
        write(&partition.join("_temporary/0/part-0.parquet"), &data);
    }
    lake
}

fn context() -> SessionContext {
    sessionlake_engine::new_context().expect("a sessionlake context")
}

async fn register(ctx: &SessionContext, name: &str, lake: &Path) -> datafusion::error::Result<()> {
    let sql = format!(
        "CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{}/'",
        lake.display()
    );
    ctx.sql(&sql).await?.collect().await?;
    Ok(())
}

async fn answer(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&batches)
        .expect("printable batches")
        .to_string()
}

/// The answers that show a lake is read exactly: rows, users, per-day counts and sessions.
async fn lake_answers(ctx: &SessionContext, table: &str) -> Vec<String> {
    let quoted = format!("'{}'", table.replace('\'', "''"));
    let from = if table.contains('/') {
        quoted.clone()
    } else {
        table.to_string()
    };
    vec![
        answer(
            ctx,
            &format!("SELECT count(*) AS events, count(DISTINCT user_id) AS users FROM {from}"),
        )
        .await,
        answer(
            ctx,
            &format!(
                "SELECT CAST(date_trunc('day', event_time) AS DATE) AS day, count(*) AS events \
                 FROM {from} GROUP BY 1 ORDER BY 1"
            ),
        )
        .await,
        answer(
            ctx,
            &format!(
                "SELECT count(*) AS sessions, sum(duration_ms) AS duration, \
                 sum(event_count) AS events FROM sessions({quoted})"
            ),
        )
        .await,
    ]
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_side_files_and_temporary_dirs_are_not_data() {
    let dir = temp_dir();
    let clean = clean_lake(dir.path());
    let dirty = dirty_lake(&clean, dir.path());
    let ctx = context();
    register(&ctx, "clean", &clean).await.unwrap();
    register(&ctx, "dirty", &dirty).await.unwrap();
    let expected = lake_answers(&ctx, "clean").await;
    assert!(expected[0].contains("| 12000  |"), "{}", expected[0]);
    assert_eq!(lake_answers(&ctx, "dirty").await, expected);
    // a path where a table name goes reads the same
    let path = format!("{}/", dirty.display());
    assert_eq!(lake_answers(&ctx, &path).await, expected);

    // DataFusion's own listing table does not read this lake correctly: either it fails on the
    // marker or it counts the hidden copies
    let plain = SessionContext::new();
    let read = register(&plain, "dirty", &dirty).await;
    if read.is_ok() {
        let counted = answer(&plain, "SELECT count(*) AS events FROM dirty").await;
        assert!(!counted.contains("| 12000  |"), "{counted}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_partition_depth_and_no_partitions_read_the_same_events() {
    let dir = temp_dir();
    let clean = clean_lake(dir.path());
    let ctx = context();
    register(&ctx, "clean", &clean).await.unwrap();
    let expected = lake_answers(&ctx, "clean").await;
    let columns = "user_id, device_id, event_time, event_type, session_id, platform, is_active";
    let layouts = [
        (
            "two_levels",
            "PARTITIONED BY (dt, hour)",
            "to_char(event_time, '%Y-%m-%d') AS dt, to_char(event_time, '%H') AS hour",
        ),
        (
            "three_levels",
            "PARTITIONED BY (year, month, day)",
            "to_char(event_time, '%Y') AS year, to_char(event_time, '%m') AS month, \
             to_char(event_time, '%d') AS day",
        ),
        ("unpartitioned", "", ""),
    ];
    for (name, partitioned, keys) in layouts {
        let out = dir.path().join(name);
        let select = if partitioned.is_empty() {
            format!("SELECT {columns} FROM clean")
        } else {
            format!("SELECT {columns}, {keys} FROM clean")
        };
        let copy = format!(
            "COPY ({select}) TO '{}/' STORED AS PARQUET {partitioned}",
            out.display()
        );
        ctx.sql(&copy).await.unwrap().collect().await.unwrap();
        write(&out.join("_SUCCESS"), b"");
        register(&ctx, name, &out).await.unwrap();
        assert_eq!(lake_answers(&ctx, name).await, expected, "{name}");
    }
    let hours = answer(
        &ctx,
        "SELECT count(DISTINCT dt) AS days, count(DISTINCT hour) AS hours FROM two_levels",
    )
    .await;
    assert!(hours.contains("| 4    | 24    |"), "{hours}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_column_reads_as_null_in_older_files() {
    let dir = temp_dir();
    let clean = clean_lake(dir.path());
    let ctx = context();
    register(&ctx, "clean", &clean).await.unwrap();
    let lake = dir.path().join("drift");
    let old = "SELECT user_id, event_time, event_type, session_id, is_active FROM clean";
    for (day, select) in [
        (
            "2024-01-01",
            format!("{old} WHERE event_date = '2024-01-01'"),
        ),
        (
            "2024-01-02",
            "SELECT user_id, event_time, event_type, session_id, is_active, platform FROM clean \
             WHERE event_date <> '2024-01-01'"
                .to_string(),
        ),
    ] {
        let file = lake.join(format!("event_date={day}/part-0.parquet"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let copy = format!("COPY ({select}) TO '{}' STORED AS PARQUET", file.display());
        ctx.sql(&copy).await.unwrap().collect().await.unwrap();
    }
    register(&ctx, "drift", &lake).await.unwrap();
    assert_eq!(
        answer(
            &ctx,
            "SELECT count(*) AS events, count(platform) AS with_platform FROM drift"
        )
        .await,
        answer(
            &ctx,
            "SELECT count(*) AS events, count(platform) FILTER (WHERE event_date <> '2024-01-01') \
             AS with_platform FROM clean"
        )
        .await
    );
    let nulls = answer(
        &ctx,
        "SELECT count(*) AS n FROM drift WHERE event_date = '2024-01-01' AND platform IS NOT NULL",
    )
    .await;
    assert!(nulls.contains("| 0 |"), "{nulls}");
    assert_eq!(
        answer(
            &ctx,
            "SELECT count(*), sum(duration_ms) FROM sessions('drift')"
        )
        .await,
        answer(
            &ctx,
            "SELECT count(*), sum(duration_ms) FROM sessions('clean')"
        )
        .await
    );
}

/// The error of registering `lake`, as one line.
async fn registration_error(lake: &Path) -> String {
    let ctx = context();
    let error = register(&ctx, "lake", lake)
        .await
        .expect_err("the lake is refused");
    let message = sessionlake_engine::lake::find_lake_error(&error)
        .unwrap_or_else(|| panic!("a lake error, not {error}"))
        .to_string();
    assert!(!message.contains('\n'), "{message}");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_type_names_both_files_and_types() {
    let dir = temp_dir();
    let clean = clean_lake(dir.path());
    let ctx = context();
    register(&ctx, "clean", &clean).await.unwrap();
    let lake = dir.path().join("changed");
    for (day, session_id) in [
        ("2024-01-01", "session_id"),
        ("2024-01-02", "CAST(session_id AS VARCHAR) AS session_id"),
    ] {
        let file = lake.join(format!("event_date={day}/part-0.parquet"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let copy = format!(
            "COPY (SELECT user_id, event_time, {session_id} FROM clean WHERE event_date = '{day}') \
             TO '{}' STORED AS PARQUET",
            file.display()
        );
        ctx.sql(&copy).await.unwrap().collect().await.unwrap();
    }
    let message = registration_error(&lake).await;
    assert!(
        message.contains(
            "column 'session_id' is Int64 in 'event_date=2024-01-01/part-0.parquet' but Utf8View \
             in 'event_date=2024-01-02/part-0.parquet'"
        ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layouts_that_are_not_a_lake_get_one_line_saying_why() {
    let dir = temp_dir();
    let clean = clean_lake(dir.path());

    // the lake one level down
    let above = dir.path().join("exports");
    copy_dir(&clean, &above.join("events"));
    write(&above.join("_SUCCESS"), b"");
    let message = registration_error(&above).await;
    assert!(
        message.contains(&format!(
            "the Parquet files are below '{}/events/': name that directory as the lake",
            above.display()
        )),
        "{message}"
    );

    // a stray file below a plain directory beside the partitions
    let stray = dir.path().join("stray");
    copy_dir(&clean, &stray);
    std::fs::copy(clean.join("event_date=2024-01-01/part-0.parquet"), {
        std::fs::create_dir_all(stray.join("backup")).unwrap();
        stray.join("backup/old.parquet")
    })
    .unwrap();
    let message = registration_error(&stray).await;
    assert!(
        message.contains(
            "'backup/old.parquet' is below a directory that is not a key=value partition"
        ),
        "{message}"
    );

    // a file at the root beside partitions
    let mixed = dir.path().join("mixed");
    copy_dir(&clean, &mixed);
    std::fs::copy(
        clean.join("event_date=2024-01-01/part-0.parquet"),
        mixed.join("part-0.parquet"),
    )
    .unwrap();
    let message = registration_error(&mixed).await;
    assert!(
        message.contains("mixed partition layouts: 'event_date=2024-01-01/part-0.parquet' is partitioned by (event_date), 'part-0.parquet' by ()")
            || message.contains("mixed partition layouts: 'part-0.parquet' is partitioned by (), 'event_date=2024-01-01/part-0.parquet' by (event_date)"),
        "{message}"
    );

    // nothing but markers
    let empty = dir.path().join("empty");
    write(&empty.join("_SUCCESS"), b"");
    write(&empty.join("event_date=2024-01-01/notes.txt"), b"hello");
    let message = registration_error(&empty).await;
    assert_eq!(
        message,
        format!(
            "no .parquet data files in {}/ (found 1 other file, such as \
             'event_date=2024-01-01/notes.txt'); names starting with '_' or '.' are not data",
            empty.display()
        )
    );

    // a corrupt footer
    let corrupt = dir.path().join("corrupt");
    copy_dir(&clean, &corrupt);
    write(
        &corrupt.join("event_date=2024-01-03/part-1.parquet"),
        b"PAR1 this is not a parquet file",
    );
    let message = registration_error(&corrupt).await;
    assert!(
        message.starts_with(&format!(
            "{}/event_date=2024-01-03/part-1.parquet: not a readable Parquet file: ",
            corrupt.display()
        )),
        "{message}"
    );

    // a Delta table is never read as a listing: a log without metadata is the log's error
    let delta = dir.path().join("delta");
    copy_dir(&clean, &delta);
    write(&delta.join("_delta_log/00000000000000000000.json"), b"{}");
    let message = registration_error(&delta).await;
    assert!(
        message.starts_with(&format!(
            "delta table file://{}/ (latest version): ",
            delta.display()
        )),
        "{message}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinked_partitions_are_followed_and_broken_links_named() {
    let dir = temp_dir();
    let clean = clean_lake(dir.path());
    let linked = dir.path().join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    for entry in std::fs::read_dir(&clean).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), linked.join(entry.file_name())).unwrap();
    }
    let ctx = context();
    register(&ctx, "clean", &clean).await.unwrap();
    register(&ctx, "linked", &linked).await.unwrap();
    assert_eq!(
        lake_answers(&ctx, "linked").await,
        lake_answers(&ctx, "clean").await
    );

    std::os::unix::fs::symlink(
        dir.path().join("gone"),
        linked.join("event_date=2024-01-09"),
    )
    .unwrap();
    let message = registration_error(&linked).await;
    assert_eq!(
        message,
        format!(
            "lake {}/: 'event_date=2024-01-09' is a symbolic link to '{}', which does not exist",
            linked.display(),
            dir.path().join("gone").display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_directories_are_queried_by_path() {
    let dir = temp_dir();
    let clean = clean_lake(dir.path());
    let dirty = dirty_lake(&clean, dir.path());
    let ctx = context();
    register(&ctx, "clean", &clean).await.unwrap();
    let file = clean.join("event_date=2024-01-02/part-1.parquet");
    let by_path = answer(
        &ctx,
        &format!("SELECT count(*) AS events FROM '{}'", file.display()),
    )
    .await;
    let direct = SessionContext::new()
        .read_parquet(file.display().to_string(), Default::default())
        .await
        .unwrap()
        .count()
        .await
        .unwrap();
    assert!(by_path.contains(&format!("| {direct} ")), "{by_path}");
    assert!(direct > 0);

    let expected = lake_answers(&ctx, "clean").await;
    for location in [format!("{}/", dirty.display()), dirty.display().to_string()] {
        assert_eq!(lake_answers(&ctx, &location).await, expected, "{location}");
    }
    // a missing path is a clear error, not "table not found"
    let missing = ctx
        .sql(&format!(
            "SELECT count(*) FROM sessions('{}/nowhere/')",
            dir.path().display()
        ))
        .await
        .expect_err("a missing lake");
    assert!(
        missing.to_string().contains("no .parquet data files in"),
        "{missing}"
    );
}

#[test]
fn the_command_line_reads_a_dirty_lake_like_the_clean_one() {
    let dir = temp_dir();
    let clean = clean_lake(dir.path());
    let dirty = dirty_lake(&clean, dir.path());
    let query = "SELECT count(*) AS sessions, sum(duration_ms) AS duration FROM sessions('events')";
    let run = |lake: &Path| {
        let lake_arg = format!("events={}", lake.display());
        let output = common::run(common::command_in(
            common::repo_root(),
            &["--lake", &lake_arg, "-q", "-c", query],
        ));
        assert!(output.status.success(), "{}", common::stderr(&output));
        common::stdout(&output)
    };
    let expected = run(&clean);
    assert!(expected.contains("sessions"), "{expected}");
    assert_eq!(run(&dirty), expected);

    let above = dir.path().join("above");
    copy_dir(&clean, &above.join("events"));
    let lake_arg = format!("events={}", above.display());
    let output = common::run(common::command_in(
        common::repo_root(),
        &["--lake", &lake_arg, "-c", query],
    ));
    assert_eq!(output.status.code(), Some(2));
    let stderr = common::stderr(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("below '{}/events/'", above.display())),
        "{stderr}"
    );
}
