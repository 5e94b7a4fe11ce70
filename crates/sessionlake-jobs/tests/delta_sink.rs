//! Delta in lake jobs, in process. The Delta sink (`sink.format = "delta"`): its tables, read
//! through their Delta logs as any Delta reader does, hold the rows of the Parquet sink; a job
//! run one day at a time equals one full recompute after every run, keeps every earlier version
//! readable and removes (in the log) the files of rewritten days; a table behind the manifest
//! is brought up by the next run; a format that does not exist is a job file error naming the
//! key. A Delta source: read through its log (a removed file is never read) and recomputed at
//! each new version. Kills, concurrent runs and S3 are in `job_process.rs` and `jobs_s3.rs`.

// helpers of tests, outside `#[test]` functions: a panic there is a failing test
#![allow(clippy::unwrap_used)]

mod jobs_support;

use std::fs;
use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use jobs_support::*;
use sessionlake_jobs::{Dates, ErrorKind, Job, run_job};

/// The Delta log entries (`00000000000000000003.json`) of `table` under a local sink, in order.
fn log_entries(sink: &Path, table: &str) -> Vec<String> {
    let mut entries: Vec<String> = fs::read_dir(sink.join(table).join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    entries.sort();
    entries
        .iter()
        .map(|name| fs::read_to_string(sink.join(table).join("_delta_log").join(name)).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_tables_hold_the_rows_of_the_parquet_sink() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 8, 8_000, 200);
    let body = job_toml(lake.to_str().unwrap(), "out_parquet", "");
    let (_, parquet_job) = write_job(dir.path(), "parquet.toml", &body);
    let body = with_delta_sink(&job_toml(lake.to_str().unwrap(), "out_delta", ""));
    let (_, delta_job) = write_job(dir.path(), "delta.toml", &body);
    run(&parquet_job, Dates::Pending).await;
    let summary = run(&delta_job, Dates::Pending).await;
    assert_eq!(summary.version, Some(1));

    let expected = snapshot(&parquet_job).await;
    assert!(
        expected["sessions"].len() > 1_000,
        "{}",
        expected["sessions"].len()
    );
    assert!(
        !expected["alerts"].is_empty(),
        "the test job's alerts should trip"
    );
    // sessionlake's own readers (the manifest) see the same rows, exports included
    assert_same(&snapshot(&delta_job).await, &expected);
    // and so does a Delta reader, through the tables' logs
    let delta = delta_snapshot(&delta_job).await;
    assert_eq!(
        delta.keys().collect::<Vec<_>>(),
        ["alerts", "daily_metrics", "sessions"]
    );
    assert_same(&delta, &delta_tables_of(&expected));

    // one commit per table, created with its files, statistics and the job's txn marker
    let sink = dir.path().join("out_delta");
    let log = log_entries(&sink, "sessions");
    assert_eq!(log.len(), 1);
    for needle in [
        "{\"protocol\":",
        "{\"metaData\":",
        "numRecords",
        "{\"txn\":{\"appId\":\"sessionlake-job:test_job\",\"version\":1",
    ] {
        assert!(log[0].contains(needle), "{needle} not in {}", log[0]);
    }
    // one file a day, each in the run's directory inside the table
    let run_id = summary.run_id.unwrap();
    let day_files = fs::read_dir(sink.join("sessions").join(&run_id))
        .unwrap()
        .count();
    assert_eq!(day_files, expected["daily_metrics"].len());

    // nothing new: no new Delta version
    let again = run(&delta_job, Dates::Pending).await;
    assert_eq!(again.status, "up_to_date");
    assert_eq!(log_entries(&sink, "sessions").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_delta_runs_equal_a_full_recompute_and_keep_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 10, 9_000, 220);

    let body = with_delta_sink(&job_toml(lake.to_str().unwrap(), "out_full", ""));
    let (_, full_job) = write_job(dir.path(), "full.toml", &body);
    run(&full_job, Dates::Pending).await;
    let expected = delta_snapshot(&full_job).await;
    assert_same(&expected, &delta_tables_of(&snapshot(&full_job).await));

    let daily_lake = dir.path().join("daily_lake");
    fs::create_dir_all(&daily_lake).unwrap();
    let body = with_delta_sink(&job_toml(daily_lake.to_str().unwrap(), "out_daily", ""));
    let (_, daily_job) = write_job(dir.path(), "daily.toml", &body);
    let mut sessions_by_version = Vec::new();
    for (i, partition) in partition_dirs(&lake).iter().enumerate() {
        copy_partition(partition, &daily_lake);
        let summary = run(&daily_job, Dates::Pending).await;
        assert_eq!(summary.status, "committed", "day {i}");
        // after every run a Delta reader sees exactly the committed state
        let delta = delta_snapshot(&daily_job).await;
        assert_same(&delta, &delta_tables_of(&snapshot(&daily_job).await));
        sessions_by_version.push(delta["sessions"].clone());
    }
    assert_same(&delta_snapshot(&daily_job).await, &expected);

    // every version stays readable: time travel to each run's state
    for (version, rows) in sessions_by_version.iter().enumerate() {
        let version = i64::try_from(version).unwrap();
        let old = delta_rows(&daily_job, "sessions", Some(version))
            .await
            .unwrap();
        assert_eq!(&old, rows, "sessions at version {version}");
    }
    // a rewritten day's old file is removed in the log, not listed: it stays on disk for
    // time travel
    let sink = dir.path().join("out_daily");
    let log = log_entries(&sink, "sessions");
    assert_eq!(log.len(), sessions_by_version.len());
    assert!(log[1..].iter().all(|entry| entry.contains("\"remove\"")));

    // --full recomputes everything, to the same rows, as one more version
    run_job(&daily_job, &options(Dates::Pending, true))
        .await
        .unwrap();
    assert_same(&delta_snapshot(&daily_job).await, &expected);
    assert_eq!(
        log_entries(&sink, "sessions").len(),
        sessions_by_version.len() + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_table_behind_the_manifest_is_brought_up_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 5, 4_000, 100);
    let body = with_delta_sink(&job_toml(lake.to_str().unwrap(), "out", ""));
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    run(&job, Dates::Pending).await;
    let expected = delta_snapshot(&job).await;

    // as if the run had died after its manifest commit: no Delta table was published
    for table in sessionlake_jobs::delta_sink::TABLES {
        fs::remove_dir_all(dir.path().join("out").join(table).join("_delta_log")).unwrap();
    }
    assert!(delta_snapshot(&job).await.is_empty());
    let again = run(&job, Dates::Pending).await;
    assert_eq!(again.status, "up_to_date");
    assert_same(&delta_snapshot(&job).await, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_a_sink_between_formats_recomputes_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 4, 3_000, 80);
    let parquet_body = job_toml(lake.to_str().unwrap(), "out", "");
    let (_, parquet_job) = write_job(dir.path(), "parquet.toml", &parquet_body);
    run(&parquet_job, Dates::Pending).await;
    let expected = snapshot(&parquet_job).await;

    let (_, delta_job) = write_job(dir.path(), "delta.toml", &with_delta_sink(&parquet_body));
    let switched = run(&delta_job, Dates::Pending).await;
    assert_eq!(
        switched.full_reason.as_deref(),
        Some("the job's settings changed")
    );
    assert_same(&snapshot(&delta_job).await, &expected);
    assert_same(
        &delta_snapshot(&delta_job).await,
        &delta_tables_of(&expected),
    );

    // and back: the manifest is the Parquet sink's again; the Delta tables stay as they were
    let back = run(&parquet_job, Dates::Pending).await;
    assert_eq!(
        back.full_reason.as_deref(),
        Some("the job's settings changed")
    );
    assert_same(&snapshot(&parquet_job).await, &expected);
    assert_eq!(log_entries(&dir.path().join("out"), "sessions").len(), 1);
}

#[test]
fn a_sink_format_that_does_not_exist_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let body = job_toml("lake", "out", "").replacen("[sink]\n", "[sink]\nformat = \"csv\"\n", 1);
    let path = dir.path().join("job.toml");
    fs::write(&path, body).unwrap();
    let error = Job::load(&path).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(error.message.contains("sink.format"), "{}", error.message);
    assert!(
        error
            .message
            .contains("'csv' is not a sink format: use parquet or delta"),
        "{}",
        error.message
    );
}

/// The events of `partitions` (directories of a generated lake), with Delta's types.
fn events_of(partitions: &[std::path::PathBuf]) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for partition in partitions {
        let mut files: Vec<_> = fs::read_dir(partition)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(file).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                batches.push(sessionlake_jobs::delta_sink::delta_batch(&batch.unwrap()).unwrap());
            }
        }
    }
    batches
}

/// Commits `events` to the Delta table at `table` (created by the first write).
async fn write_delta(table: &Path, events: Vec<RecordBatch>, mode: SaveMode) {
    fs::create_dir_all(table).unwrap();
    let url = url::Url::from_directory_path(table).unwrap();
    DeltaTable::try_from_url(url)
        .await
        .unwrap()
        .write(events)
        .with_save_mode(mode)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_source_is_read_through_its_log_and_recomputed_at_each_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 6, 5_000, 120);
    let partitions = partition_dirs(&lake);
    // the same job over the Parquet lake's first four days, then all six
    let first_four = dir.path().join("first_four");
    for partition in &partitions[..4] {
        copy_partition(partition, &first_four);
    }
    let (_, four_job) = write_job(
        dir.path(),
        "four.toml",
        &job_toml(first_four.to_str().unwrap(), "out_four", ""),
    );
    run(&four_job, Dates::Pending).await;
    let expected_four = snapshot(&four_job).await;
    let (_, six_job) = write_job(
        dir.path(),
        "six.toml",
        &job_toml(lake.to_str().unwrap(), "out_six", ""),
    );
    run(&six_job, Dates::Pending).await;
    let expected_six = snapshot(&six_job).await;

    // version 0 holds the four days plus a duplicate of the first; version 1 overwrites it
    // with the four days alone, so the duplicate's files stay on disk, removed in the log
    let table = dir.path().join("events_delta");
    let mut doubled = events_of(&partitions[..4]);
    doubled.extend(events_of(&partitions[..1]));
    write_delta(&table, doubled, SaveMode::Append).await;
    write_delta(&table, events_of(&partitions[..4]), SaveMode::Overwrite).await;
    let (_, job) = write_job(
        dir.path(),
        "delta_source.toml",
        &job_toml(table.to_str().unwrap(), "out", ""),
    );
    let first = run(&job, Dates::Pending).await;
    assert_eq!(first.partitions_processed, ["delta_version=1"]);
    assert_eq!(first.watermark_after.as_deref(), Some("delta_version=1"));
    assert_same(&snapshot(&job).await, &expected_four);
    assert_eq!(run(&job, Dates::Pending).await.status, "up_to_date");

    // a new version: recomputed whole
    write_delta(&table, events_of(&partitions[4..]), SaveMode::Append).await;
    let second = run(&job, Dates::Pending).await;
    assert_eq!(second.strategy, "full");
    assert_eq!(
        second.full_reason.as_deref(),
        Some("a Delta source is recomputed whole at each new version")
    );
    assert_eq!(second.partitions_processed, ["delta_version=2"]);
    assert_same(&snapshot(&job).await, &expected_six);

    // days of a Delta table are not partitions to name
    let day = "2024-03-02".parse().unwrap();
    let error = run_job(&job, &options(Dates::Range(day, day), false))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(error.message.contains("--from/--to"), "{}", error.message);
}
