//! Scheduled lake jobs in process: a daily job over a generated 30-day lake run one day at a
//! time equals one full recompute, every output; late rows in a later partition followed by a
//! rerun equal a full recompute; bad input changes no output.
// helpers of tests, outside `#[test]` functions: a panic there is a failing test
#![allow(clippy::unwrap_used)]

mod jobs_support;

use std::fs;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimestampMillisecondType};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use jobs_support::*;
use sessionlake_jobs::alerting::{SmtpSecurity, WebhookFormat};
use sessionlake_jobs::{Dates, ErrorKind, Job, RunOptions, run_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_runs_over_30_days_equal_one_full_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 30, 24_000, 400);

    // one full recompute over the whole lake
    let full_body = job_toml(lake.to_str().unwrap(), "out_full", "");
    let (_, full_job) = write_job(dir.path(), "full.toml", &full_body);
    let full = run(&full_job, Dates::Pending).await;
    assert_eq!(full.strategy, "full");
    assert_eq!(full.partitions_processed.len(), 30);
    let expected = snapshot(&full_job).await;
    assert!(
        expected["sessions"].len() > 3000,
        "{}",
        expected["sessions"].len()
    );
    assert_eq!(
        expected["daily_metrics"].len(),
        31,
        "30 UTC days span 31 New York days"
    );
    assert!(
        !expected["alerts"].is_empty(),
        "the test job's alerts should trip"
    );

    // the same lake arriving one day at a time, the job run after each day; a day of events
    // (with the few late rows of the days before) reaches back and forward L + g: 3 to 5 New
    // York days
    let daily_lake = dir.path().join("daily_lake");
    let body = job_toml(daily_lake.to_str().unwrap(), "out_daily", "");
    let (_, daily_job) = write_job(dir.path(), "daily.toml", &body);
    run_daily(&lake, &daily_lake, &daily_job, 3..=5).await;
    assert_same(&snapshot(&daily_job).await, &expected);

    // rerunning old days with --from/--to converges to the same rows
    let first = full.partitions_processed[10].parse().unwrap();
    let last = full.partitions_processed[12].parse().unwrap();
    let rerun = run(&daily_job, Dates::Range(first, last)).await;
    assert_eq!(rerun.strategy, "incremental");
    assert_same(&snapshot(&daily_job).await, &expected);

    // --full recomputes everything, to the same rows
    let full_again = run_job(
        &daily_job,
        &RunOptions {
            dates: Dates::Pending,
            dry_run: false,
            progress: None,
            full: true,
            cluster: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        full_again.full_reason.as_deref(),
        Some("asked for (--full)")
    );
    assert_same(&snapshot(&daily_job).await, &expected);

    // superseded run prefixes are cleaned up: every prefix left holds files of the current or
    // the previous state (prefixes of days not rewritten since stay)
    assert_no_garbage(&daily_job).await;
}

/// Copies `rows` rows of one file of `from_partition` into a new file of `to_partition`, with
/// their times moved by `shift_ms` (late rows: they arrive in a later partition).
fn add_late_rows(
    from_file: &std::path::Path,
    to_file: &std::path::Path,
    rows: usize,
    shift_ms: i64,
) {
    write_parquet(to_file, &[moved_rows(from_file, rows, shift_ms)]);
}

/// The first `rows` rows of the Parquet file `from_file`, their times moved by `shift_ms`.
fn moved_rows(from_file: &std::path::Path, rows: usize, shift_ms: i64) -> RecordBatch {
    let file = fs::File::open(from_file).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batch = reader.into_iter().next().unwrap().unwrap();
    let batch = batch.slice(0, rows.min(batch.num_rows()));
    let schema = batch.schema();
    let time_index = schema.index_of("event_time").unwrap();
    let times = batch
        .column(time_index)
        .as_primitive::<TimestampMillisecondType>();
    let moved: TimestampMillisecondArray = times
        .iter()
        .map(|t| t.map(|t| t + shift_ms))
        .collect::<TimestampMillisecondArray>()
        .with_timezone("UTC");
    let mut columns = batch.columns().to_vec();
    columns[time_index] = Arc::new(moved);
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Writes `batches` (at least one) as one Parquet file at `path`.
fn write_parquet(path: &std::path::Path, batches: &[RecordBatch]) {
    let file = fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batches[0].schema(), None).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_rows_in_a_later_partition_then_a_rerun_equal_a_full_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 30, 24_000, 400);
    let body = job_toml(lake.to_str().unwrap(), "out", "");
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    run(&job, Dates::Pending).await;
    let before = snapshot(&job).await;

    // rows of day 10 and day 20, 20 minutes later (they merge and extend sessions), land in the
    // last partition, as rows that arrive late do
    let partitions = partition_dirs(&lake);
    let last = partitions.last().unwrap();
    add_late_rows(
        &partitions[9].join("part-0.parquet"),
        &last.join("late-a.parquet"),
        400,
        20 * 60_000,
    );
    add_late_rows(
        &partitions[19].join("part-1.parquet"),
        &last.join("late-b.parquet"),
        300,
        47 * 60_000,
    );

    // the default run sees that the last partition changed and reprocesses it
    let rerun = run(&job, Dates::Pending).await;
    assert_eq!(rerun.strategy, "incremental");
    assert_eq!(
        rerun.partitions_processed,
        vec![last.file_name().unwrap().to_str().unwrap()[11..].to_string()]
    );
    assert!(
        rerun.days_rewritten.len() >= 9,
        "{:?}",
        rerun.days_rewritten
    );
    let after = snapshot(&job).await;
    assert_ne!(
        after["sessions"], before["sessions"],
        "the late rows must change sessions"
    );

    // a fresh full recompute of the lake as it is now
    let body = job_toml(lake.to_str().unwrap(), "out_fresh", "");
    let (_, fresh) = write_job(dir.path(), "fresh.toml", &body);
    let full = run(&fresh, Dates::Pending).await;
    assert_eq!(full.strategy, "full");
    assert_same(&after, &snapshot(&fresh).await);
}

/// The day of the month (0-based) before which `log_out_devices` takes the user off a device's
/// events: one device in six signs in late, on a day its id's hash picks; one in forty never
/// does (`i64::MAX`); the others are always signed in (`None`).
fn logged_out_before(device: &str) -> Option<i64> {
    let hash = device.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    if hash.is_multiple_of(40) {
        Some(i64::MAX)
    } else if hash % 6 == 1 {
        Some((hash / 6 % 25) as i64 + 2)
    } else {
        None
    }
}

/// The user, device and time columns of a batch of the generated lake.
fn users_devices_times(
    batch: &RecordBatch,
) -> (&StringArray, &StringArray, &TimestampMillisecondArray) {
    let column = |name: &str| batch.column_by_name(name).unwrap();
    (
        column("user_id").as_string::<i32>(),
        column("device_id").as_string::<i32>(),
        column("event_time").as_primitive::<TimestampMillisecondType>(),
    )
}

/// Rewrites every file of `lake` so that logged-out traffic looks as web products log it: the
/// events of one device in six lose their user before a day of the month that the device's
/// hash picks (they sign in late, after anonymous events on earlier days), and those of one
/// device in forty lose it always (never identified). Every file also gains `timeout_ms`,
/// a per-event timeout.
fn log_out_devices(lake: &std::path::Path) {
    let first_day_ms = 1_709_251_200_000; // 2024-03-01T00:00:00Z
    for partition in partition_dirs(lake) {
        for file in fs::read_dir(&partition).unwrap() {
            let path = file.unwrap().path();
            let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap())
                .unwrap()
                .build()
                .unwrap();
            let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
            let user_index = batches[0].schema().index_of("user_id").unwrap();
            let mut fields: Vec<Field> = batches[0]
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new("timeout_ms", DataType::Int64, true));
            let schema = Arc::new(Schema::new(fields));
            let mut out = Vec::new();
            for batch in &batches {
                let (users, devices, times) = users_devices_times(batch);
                let users: StringArray = (0..batch.num_rows())
                    .map(|i| {
                        let day = (times.value(i) - first_day_ms) / 86_400_000;
                        let logged_out =
                            logged_out_before(devices.value(i)).is_some_and(|before| day < before);
                        (!logged_out && users.is_valid(i)).then(|| users.value(i))
                    })
                    .collect();
                // per-event timeouts: 30 minutes on the web, 5 in the apps, NULL (the gap)
                // on one event in seven
                let platforms = batch.column_by_name("platform").unwrap().as_string::<i32>();
                let timeouts: Int64Array = (0..batch.num_rows())
                    .map(|i| {
                        let web = platforms.value(i) == "web";
                        (times.value(i) % 7 != 0).then_some(if web { 1_800_000 } else { 300_000 })
                    })
                    .collect();
                let mut columns = batch.columns().to_vec();
                columns[user_index] = Arc::new(users);
                columns.push(Arc::new(timeouts));
                out.push(RecordBatch::try_new(Arc::clone(&schema), columns).unwrap());
            }
            write_parquet(&path, &out);
        }
    }
}

/// Identity stitching (`session.anonymous_column`) with per-event timeouts (`gap_column`):
/// the 30-day lake with logged-out devices
/// arriving one day at a time, the job run after each day, equals one full recompute, and so
/// does a late row in the last partition that identifies a device earlier, as another user,
/// than the sign-in already committed (every anonymous event of that device moves to the new
/// user, on days long committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_runs_with_late_identifications_equal_one_full_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 30, 24_000, 400);
    log_out_devices(&lake);
    let stitching = |body: String| {
        body.replace(
            "[session]\n",
            "[session]\nanonymous_column = \"device_id\"\ngap_column = \"timeout_ms\"\n\
             max_gap = \"30 minutes\"\n",
        )
    };

    let daily_lake = dir.path().join("daily_lake");
    fs::create_dir_all(&daily_lake).unwrap();
    let body = stitching(job_toml(daily_lake.to_str().unwrap(), "out_daily", ""));
    let (_, daily_job) = write_job(dir.path(), "daily.toml", &body);
    let mut rewired_runs = 0;
    let partitions = partition_dirs(&lake);
    for (i, partition) in partitions.iter().enumerate() {
        copy_partition(partition, &daily_lake);
        let summary = run(&daily_job, Dates::Pending).await;
        assert_eq!(summary.status, "committed", "day {i}");
        if i > 0 {
            assert_eq!(summary.strategy, "incremental", "day {i}");
            // a sign-in re-attributes the device's anonymous events of earlier days
            if summary.days_rewritten.len() > 5 {
                rewired_runs += 1;
            }
        }
    }
    assert!(
        rewired_runs >= 5,
        "only {rewired_runs} runs rewrote earlier days for late sign-ins"
    );

    // a late row in the last partition: a device that signs in late was used by another user
    // on day 3 already
    let (late_device, late_time) = first_late_signer(&lake);
    let last = daily_lake.join(partitions.last().unwrap().file_name().unwrap());
    let template = ParquetRecordBatchReaderBuilder::try_new(
        fs::File::open(partitions[0].join("part-0.parquet")).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .next()
    .unwrap()
    .unwrap()
    .slice(0, 1);
    let schema = template.schema();
    let mut columns = template.columns().to_vec();
    columns[schema.index_of("user_id").unwrap()] =
        Arc::new(StringArray::from(vec![Some("early-signer")]));
    columns[schema.index_of("device_id").unwrap()] =
        Arc::new(StringArray::from(vec![late_device.as_str()]));
    columns[schema.index_of("event_time").unwrap()] =
        Arc::new(TimestampMillisecondArray::from(vec![late_time]).with_timezone("UTC"));
    let late = RecordBatch::try_new(schema, columns).unwrap();
    write_parquet(&last.join("late-identification.parquet"), &[late]);
    let rerun = run(&daily_job, Dates::Pending).await;
    assert_eq!(rerun.strategy, "incremental");
    let daily = snapshot(&daily_job).await;
    let early_signer_sessions = daily["sessions"]
        .iter()
        .filter(|row| row.contains("early-signer"))
        .count();
    assert!(
        early_signer_sessions >= 2,
        "the late row should take over the device's anonymous sessions: {early_signer_sessions}"
    );
    assert!(
        daily["sessions"]
            .iter()
            .any(|row| row.contains("anonymous:")),
        "devices never identified are users of their own"
    );

    // one full recompute of the lake as it is now
    let body = stitching(job_toml(daily_lake.to_str().unwrap(), "out_full", ""));
    let (_, full_job) = write_job(dir.path(), "full.toml", &body);
    let full = run(&full_job, Dates::Pending).await;
    assert_eq!(full.strategy, "full");
    assert_same(&daily, &snapshot(&full_job).await);

    // and stitching changes what the job computes
    let body = job_toml(daily_lake.to_str().unwrap(), "out_plain", "");
    let (_, plain_job) = write_job(dir.path(), "plain.toml", &body);
    run(&plain_job, Dates::Pending).await;
    assert_ne!(snapshot(&plain_job).await["sessions"], daily["sessions"]);
}

/// A device of `log_out_devices`' late sign-ins with anonymous events on day 3 or later, and
/// an instant on day 3 (before its first anonymous event there) for a late identifying row.
fn first_late_signer(lake: &std::path::Path) -> (String, i64) {
    let day_3 = 1_709_251_200_000 + 2 * 86_400_000;
    for partition in partition_dirs(lake).iter().skip(2) {
        for file in fs::read_dir(partition).unwrap() {
            let reader = ParquetRecordBatchReaderBuilder::try_new(
                fs::File::open(file.unwrap().path()).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let (users, devices, times) = users_devices_times(&batch);
                for i in 0..batch.num_rows() {
                    let signs_in_late =
                        logged_out_before(devices.value(i)).is_some_and(|before| before < i64::MAX);
                    if users.is_null(i) && signs_in_late && times.value(i) >= day_3 {
                        return (devices.value(i).to_string(), day_3 + 60_000);
                    }
                }
            }
        }
    }
    panic!("no late sign-in with anonymous events after day 3");
}

fn small_lake(dir: &std::path::Path) -> std::path::PathBuf {
    let lake = dir.join("lake");
    generate_lake(&lake, 5, 3_000, 100);
    lake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_change_or_a_corrupt_file_fails_with_65_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path());
    let body = job_toml(lake.to_str().unwrap(), "out", "");
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    run(&job, Dates::Pending).await;
    let committed = snapshot(&job).await;
    let runs_before = run_dirs(&dir.path().join("out"));
    let options = RunOptions {
        dates: Dates::Pending,
        dry_run: false,
        progress: None,
        full: false,
        cluster: None,
    };

    // a new partition whose file has an extra column
    let new_partition = lake.join("event_date=2024-03-06");
    fs::create_dir_all(&new_partition).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new("campaign", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["u1"])),
            Arc::new(Int64Array::from(vec![1])),
        ],
    )
    .unwrap();
    write_parquet(
        &new_partition.join("part-0.parquet"),
        std::slice::from_ref(&batch),
    );
    let err = run_job(&job, &options).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Data, "{err}");
    assert!(
        err.message.contains("event_date=2024-03-06/part-0.parquet"),
        "{err}"
    );
    assert!(err.message.contains("column 'campaign'"), "{err}");

    // a column whose type changed
    let schema = Arc::new(Schema::new(vec![Field::new(
        "user_id",
        DataType::Int64,
        true,
    )]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    write_parquet(
        &new_partition.join("part-0.parquet"),
        std::slice::from_ref(&batch),
    );
    let err = run_job(&job, &options).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Data);
    assert!(
        err.message.contains("column 'user_id' has type Int64"),
        "{err}"
    );

    // a corrupt file
    fs::write(
        new_partition.join("part-0.parquet"),
        b"PAR1 this is not parquet",
    )
    .unwrap();
    let err = run_job(&job, &options).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Data, "{err}");
    assert!(
        err.message.contains("event_date=2024-03-06/part-0.parquet"),
        "{err}"
    );

    // nothing changed: same rows, no new run prefix left behind
    assert_same(&snapshot(&job).await, &committed);
    assert_eq!(run_dirs(&dir.path().join("out")), runs_before);

    // a missing partition asked for by date
    let date = "2024-04-01".parse().unwrap();
    let err = run_job(
        &job,
        &RunOptions {
            dates: Dates::Range(date, date),
            ..options
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Data);
    assert!(
        err.message.contains("no partition event_date=2024-04-01"),
        "{err}"
    );
}

/// Adds what Spark, Hadoop and Glue leave in a lake: markers, checksum side files, a
/// `_temporary/` directory and hidden copies of real data files (which would be counted twice
/// if read).
fn add_pipeline_leftovers(lake: &std::path::Path) {
    let partitions = partition_dirs(lake);
    let data = fs::read(partitions[0].join("part-0.parquet")).unwrap();
    fs::write(lake.join("_SUCCESS"), b"").unwrap();
    fs::write(lake.join("_something.json"), b"{}").unwrap();
    let temporary = lake.join("_temporary/0/event_date=2024-03-01");
    fs::create_dir_all(&temporary).unwrap();
    fs::write(temporary.join("part-0.parquet"), &data).unwrap();
    for partition in &partitions {
        fs::write(partition.join("_SUCCESS"), b"").unwrap();
        fs::write(partition.join(".part-0.parquet.crc"), b"crc").unwrap();
        fs::write(partition.join("_tmp-part-9.parquet"), &data).unwrap();
        fs::write(partition.join(".part-9.parquet"), &data).unwrap();
        fs::create_dir_all(partition.join("_temporary")).unwrap();
        fs::write(partition.join("_temporary/part-0.parquet"), &data).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_leftovers_in_the_lake_change_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let clean = small_lake(dir.path());
    let dirty = dir.path().join("dirty");
    for partition in partition_dirs(&clean) {
        copy_partition(&partition, &dirty);
    }
    add_pipeline_leftovers(&dirty);
    let mut outputs = Vec::new();
    for (lake, sink) in [(&clean, "out_clean"), (&dirty, "out_dirty")] {
        let body = job_toml(lake.to_str().unwrap(), sink, "");
        let (_, job) = write_job(dir.path(), &format!("{sink}.toml"), &body);
        let summary = run(&job, Dates::Pending).await;
        assert_eq!(summary.status, "committed");
        outputs.push((summary.events_read, snapshot(&job).await));
    }
    assert_eq!(outputs[0].0, 3_000);
    assert_eq!(outputs[1].0, outputs[0].0);
    assert_same(&outputs[0].1, &outputs[1].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_settings_recompute_everything_without_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path());
    let body = job_toml(lake.to_str().unwrap(), "out", "");
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    run(&job, Dates::Pending).await;
    assert_eq!(run(&job, Dates::Pending).await.status, "up_to_date");

    // the same sink, a shorter gap, no new partition: every day is recomputed
    let shorter = body.replace("gap = \"30 minutes\"", "gap = \"10 minutes\"");
    assert_ne!(shorter, body);
    let (_, changed) = write_job(dir.path(), "changed.toml", &shorter);
    let rerun = run(&changed, Dates::Pending).await;
    assert_eq!(rerun.status, "committed");
    assert_eq!(
        rerun.full_reason.as_deref(),
        Some("the job's settings changed")
    );
    let shorter_fresh = shorter.replace("path = \"out\"", "path = \"fresh\"");
    let (_, fresh) = write_job(dir.path(), "fresh.toml", &shorter_fresh);
    run(&fresh, Dates::Pending).await;
    let recomputed = snapshot(&changed).await;
    assert_same(&recomputed, &snapshot(&fresh).await);
    assert_eq!(run(&changed, Dates::Pending).await.status, "up_to_date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = small_lake(dir.path());
    let body = job_toml(lake.to_str().unwrap(), "out", "");
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    let summary = run_job(
        &job,
        &RunOptions {
            dates: Dates::Pending,
            dry_run: true,
            progress: None,
            full: false,
            cluster: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(summary.status, "dry_run");
    assert!(summary.sessions_written > 0);
    assert!(!dir.path().join("out").join("_manifests").exists());
}

/// The message of the configuration error that the job file `body` (read from `bad.toml`)
/// fails with.
fn config_error(body: &str) -> String {
    let e = Job::parse(body, std::path::Path::new("bad.toml")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    e.message
}

#[test]
fn job_file_errors_name_the_file_and_the_key() {
    let error = config_error;
    let base = job_toml("lake", "out", "");
    let e = error(&base.replace("[session]\n", "[session]\ngapp = \"5 minutes\"\n"));
    assert!(e.contains("bad.toml") && e.contains("gapp"), "{e}");
    let e = error(&base.replace("gap = \"30 minutes\"", "gap = 30"));
    assert!(e.contains("bad.toml") && e.contains("invalid type"), "{e}");
    let e = error(&base.replace("gap = \"30 minutes\"", "gap = \"0 minutes\""));
    assert!(
        e.contains("session.gap: sessionlake.gap: must be positive"),
        "{e}"
    );
    let e = error(&base.replace("America/New_York", "Mars/Olympus"));
    assert!(
        e.contains("session.time_zone") && e.contains("Mars/Olympus"),
        "{e}"
    );
    let e = error(&base.replace("metric = \"avg_length_s\"", "metric = \"avg_lenght_s\""));
    assert!(
        e.contains("alerts[0].metric") && e.contains("avg_lenght_s"),
        "{e}"
    );
    let e = error(&base.replace(
        "median_length_below = \"1 minute\"",
        "median_length_below = \"soon\"",
    ));
    assert!(e.contains("exports[0].median_length_below"), "{e}");
    let e = error(&base.replace(
        "max_events_per_minute = 10.0",
        "max_events_per_minute = -1.0",
    ));
    assert!(e.contains("bots.max_events_per_minute"), "{e}");
    let e = error(&base.replace("lake = \"lake\"", "lake = \"gs://bucket/x\""));
    assert!(e.contains("source.lake"), "{e}");
    let e = error(&format!("{base}\n[bots2]\nx = 1\n"));
    assert!(e.contains("bots2"), "{e}");
}

#[test]
fn alerting_keys_are_validated_and_errors_name_the_key() {
    let base = job_toml("lake", "out", "");
    let with = |alerting: &str| format!("{base}\n{alerting}\n");
    let email = |keys: &str| {
        with(&format!(
            "[alerting.email]\nhost = \"smtp.example.com\"\nfrom = \"jobs@example.com\"\n{keys}"
        ))
    };
    let parse = |body: &str| Job::parse(body, std::path::Path::new("ok.toml")).unwrap();

    // defaults, and everything given
    let job = parse(&base);
    assert!(job.alerting.webhook.is_none() && job.alerting.email.is_none());
    assert_eq!(job.alerting.attempts, 3);
    assert_eq!(job.alerting.retry_delay, std::time::Duration::from_secs(2));
    let job = parse(&with(
        "[alerting]\nwebhook = \"https://hooks.slack.com/services/T/B/X\"\n\
         webhook_format = \"slack\"\nattempts = 5\nretry_delay = \"250 milliseconds\"\n\
         [alerting.email]\nhost = \"smtp.example.com\"\n\
         from = \"sessionlake <jobs@example.com>\"\nto = [\"a@example.com\", \"B <b@example.com>\"]\n\
         username = \"jobs\"\npassword_env = \"SMTP_PASSWORD\"",
    ));
    let webhook = job.alerting.webhook.unwrap();
    assert_eq!(webhook.format, WebhookFormat::Slack);
    assert_eq!(job.alerting.attempts, 5);
    assert_eq!(
        job.alerting.retry_delay,
        std::time::Duration::from_millis(250)
    );
    let email_settings = job.alerting.email.unwrap();
    assert_eq!(email_settings.port, 587);
    assert_eq!(email_settings.security, SmtpSecurity::StartTls);
    assert_eq!(email_settings.to.len(), 2);
    assert_eq!(email_settings.to[1].email.to_string(), "b@example.com");
    assert_eq!(email_settings.login.unwrap().password_env, "SMTP_PASSWORD");
    let json = parse(&with("[alerting]\nwebhook = \"http://localhost:9/x\""));
    assert_eq!(json.alerting.webhook.unwrap().format, WebhookFormat::Json);

    let cases = [
        (
            with("[alerting]\nwebhook = \"https://h.example/x\"\nwebhook_format = \"teams\""),
            "alerting.webhook_format: 'teams' is not a webhook format: use json or slack",
        ),
        (
            with("[alerting]\nwebhook_format = \"slack\""),
            "alerting.webhook_format: only applies with alerting.webhook",
        ),
        (
            with("[alerting]\nwebhook = \"ftp://h.example/x\""),
            "alerting.webhook: 'ftp://h.example/x' must be an http:// or https:// URL",
        ),
        (
            with("[alerting]\nattempts = 0"),
            "alerting.attempts: must be from 1 to 10, found 0",
        ),
        (
            with("[alerting]\nretry_delay = \"2 minutes\""),
            "alerting.retry_delay: '2 minutes' is longer than the longest wait, 1 minute",
        ),
        (
            with("[alerting]\nwebhok = \"https://h.example/x\""),
            "unknown field `webhok`",
        ),
        (
            email("to = []"),
            "alerting.email.to: must name at least one address",
        ),
        (
            email(""),
            "alerting.email.to: required: a list of addresses",
        ),
        (
            email("to = [\"ops@example.com\", \"not an address\"]"),
            "alerting.email.to[1]: 'not an address' is not an e-mail address",
        ),
        (
            with("[alerting.email]\nhost = \"h\"\nfrom = \"jobs@\"\nto = [\"a@example.com\"]"),
            "alerting.email.from: 'jobs@' is not an e-mail address",
        ),
        (
            email("to = [\"a@example.com\"]\nsecurity = \"tls\""),
            "alerting.email.security: 'tls' is not a security: use starttls or none",
        ),
        (
            email("to = [\"a@example.com\"]\nusername = \"jobs\""),
            "alerting.email.password_env: required with alerting.email.username",
        ),
        (
            email("to = [\"a@example.com\"]\nusername = \"jobs\"\npassword_env = \"hunter2!\""),
            "alerting.email.password_env: must be the name of an environment variable",
        ),
        (
            email(
                "to = [\"a@example.com\"]\nsecurity = \"none\"\nusername = \"jobs\"\n\
                 password_env = \"SMTP_PASSWORD\"",
            ),
            "alerting.email.username: a login is never sent over an unencrypted connection",
        ),
        (
            email("to = [\"a@example.com\"]\npassword = \"hunter2\""),
            "unknown field `password`",
        ),
        (
            with("[alerting.email]\nfrom = \"jobs@example.com\"\nto = [\"a@example.com\"]"),
            "alerting.email.host: required",
        ),
    ];
    for (body, expected) in cases {
        let e = config_error(&body);
        assert!(
            e.starts_with("job file bad.toml") && e.contains(expected),
            "expected '{expected}' in: {e}"
        );
    }
    // a password written where its variable's name goes is not echoed
    let e = config_error(&email(
        "to = [\"a@example.com\"]\nusername = \"jobs\"\npassword_env = \"hunter2!\"",
    ));
    assert!(!e.contains("hunter2"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_lake_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let body = job_toml(dir.path().join("nowhere").to_str().unwrap(), "out", "");
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    let err = run_job(
        &job,
        &RunOptions {
            dates: Dates::Pending,
            dry_run: false,
            progress: None,
            full: false,
            cluster: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Data, "{err}");
    assert!(err.message.contains("nowhere"), "{err}");
}

/// One hand-written event: user, time (`2024-05-01T10:00:00`), type, user agent.
type Event = (&'static str, String, &'static str, &'static str);

/// Writes `events` as the partition `event_date=<day>` (file `name`) of a small lake whose
/// schema has a `user_agent` column.
fn write_events(lake: &std::path::Path, day: &str, name: &str, events: &[Event]) {
    write_partition_file(lake, day, name, &events_batch(events, None));
}

/// `events` as a batch of the hand-written lake's schema, with a `timeout_ms` column holding
/// `timeouts` if given.
fn events_batch(events: &[Event], timeouts: Option<&[Option<i64>]>) -> RecordBatch {
    let mut fields = vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new(
            "event_time",
            DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Millisecond,
                Some("UTC".into()),
            ),
            false,
        ),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("page", DataType::Utf8, true),
        Field::new("user_agent", DataType::Utf8, true),
    ];
    let millis = |t: &str| {
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    };
    let mut columns: Vec<datafusion::arrow::array::ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.0))),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(events.iter().map(|e| millis(&e.1)))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.2))),
        Arc::new(StringArray::from_iter(
            events
                .iter()
                .map(|e| (e.2 == "page_view").then_some("/home")),
        )),
        Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.3))),
    ];
    if let Some(timeouts) = timeouts {
        fields.push(Field::new("timeout_ms", DataType::Int64, true));
        columns.push(Arc::new(Int64Array::from(timeouts.to_vec())));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// Writes `batch` as the file `name` of the partition `event_date=<day>` of `lake`.
fn write_partition_file(lake: &std::path::Path, day: &str, name: &str, batch: &RecordBatch) {
    let dir = lake.join(format!("event_date={day}"));
    fs::create_dir_all(&dir).unwrap();
    write_parquet(&dir.join(name), std::slice::from_ref(batch));
}

fn hand_job(dir: &std::path::Path, lake: &std::path::Path, sink: &str) -> Job {
    write_job(dir, &format!("{sink}.toml"), &hand_job_toml(lake, sink)).1
}

/// The hand-written lakes' job: UTC days, the first user agent, bots by rate and user agent.
fn hand_job_toml(lake: &std::path::Path, sink: &str) -> String {
    format!(
        r#"[source]
lake = "{}"

[sink]
path = "{sink}"

[session]
time_zone = "UTC"

[outputs.sessions]
first = ["user_agent"]

[bots]
max_events_per_minute = 10.0
user_agent_pattern = "(?i)bot"
"#,
        lake.display()
    )
}

/// The sessions table's rows whose text contains `needle`.
fn rows_with(
    snapshot: &std::collections::BTreeMap<String, Vec<String>>,
    needle: &str,
) -> Vec<String> {
    snapshot["sessions"]
        .iter()
        .filter(|r| r.contains(needle))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_across_midnight_late_bridges_and_bots_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // a chain every 20 minutes from 05-01 10:00 to 05-02 12:00: 26 hours, over max_length
    let chain: Vec<Event> = (0..=78)
        .map(|k| {
            let t = chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
                .unwrap()
                .and_hms_opt(10, 0, 0)
                .unwrap()
                + chrono::Duration::minutes(20 * k);
            (
                "chain",
                t.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "click",
                "Mozilla/5.0",
            )
        })
        .collect();
    let (day1, day2): (Vec<Event>, Vec<Event>) = chain
        .into_iter()
        .partition(|e| e.1.starts_with("2024-05-01"));
    let mut day1 = day1;
    day1.extend([
        (
            "midnight",
            "2024-05-01T23:50:00".to_string(),
            "page_view",
            "Mozilla/5.0",
        ),
        (
            "late",
            "2024-05-01T09:00:00".to_string(),
            "page_view",
            "Mozilla/5.0",
        ),
        (
            "late",
            "2024-05-01T10:00:00".to_string(),
            "click",
            "Mozilla/5.0",
        ),
    ]);
    let mut day2 = day2;
    day2.extend([
        (
            "midnight",
            "2024-05-02T00:10:00".to_string(),
            "click",
            "Mozilla/5.0",
        ),
        (
            "midnight",
            "2024-05-02T00:25:00".to_string(),
            "click",
            "Mozilla/5.0",
        ),
        (
            "crawler",
            "2024-05-02T08:00:00".to_string(),
            "page_view",
            "Googlebot/2.1",
        ),
        (
            "crawler",
            "2024-05-02T08:01:00".to_string(),
            "page_view",
            "Googlebot/2.1",
        ),
    ]);
    for s in 0..30 {
        day2.push((
            "burst",
            format!("2024-05-02T14:00:{s:02}"),
            "click",
            "Mozilla/5.0",
        ));
    }
    let day3: Vec<Event> = vec![
        (
            "normal",
            "2024-05-03T12:00:00".to_string(),
            "page_view",
            "Mozilla/5.0",
        ),
        (
            "normal",
            "2024-05-03T12:05:00".to_string(),
            "click",
            "Mozilla/5.0",
        ),
        // late: happened on 05-01, arrived on 05-03; bridges the two sessions of "late"
        (
            "late",
            "2024-05-01T09:30:00".to_string(),
            "click",
            "Mozilla/5.0",
        ),
    ];
    let days = [
        ("2024-05-01", day1),
        ("2024-05-02", day2),
        ("2024-05-03", day3),
    ];

    let job = hand_job(dir.path(), &lake, "out");
    let mut summaries = Vec::new();
    for (day, events) in &days {
        write_events(&lake, day, "part-0.parquet", events);
        summaries.push(run(&job, Dates::Pending).await);
        let state = snapshot(&job).await;
        match *day {
            "2024-05-01" => {
                // seen alone, the first 14 hours of the chain are a session under a day
                assert_eq!(rows_with(&state, "chain").len(), 1);
                assert_eq!(rows_with(&state, "|late|").len(), 2);
            }
            "2024-05-02" => {
                // day 2 reaches back to day 1: the whole chain is over a day, and left out
                assert!(rows_with(&state, "chain").is_empty(), "{state:#?}");
                let midnight = rows_with(&state, "midnight");
                assert_eq!(midnight.len(), 1);
                assert!(
                    midnight[0].starts_with("2024-05-01|midnight|"),
                    "{midnight:?}"
                );
                assert!(
                    midnight[0].contains("|2100000|3|"),
                    "35 minutes, 3 events: {midnight:?}"
                );
                let crawler = rows_with(&state, "crawler");
                assert!(crawler[0].ends_with("|user_agent"), "{crawler:?}");
                let burst = rows_with(&state, "burst");
                assert!(burst[0].ends_with("|events_per_minute"), "{burst:?}");
            }
            _ => {
                let late = rows_with(&state, "|late|");
                assert_eq!(
                    late.len(),
                    1,
                    "the late event bridges the two sessions: {late:?}"
                );
                assert!(late[0].contains("|3600000|3|"), "{late:?}");
            }
        }
    }
    assert_eq!(summaries[1].long_sessions_excluded, 1);
    assert_eq!(summaries[1].bot_sessions.get("user_agent"), Some(&1));
    assert_eq!(summaries[1].bot_sessions.get("events_per_minute"), Some(&1));
    assert!(
        summaries[2]
            .days_rewritten
            .contains(&"2024-05-01".to_string())
    );

    // bots and the over-long chain are out of the metrics, and counted there
    let state = snapshot(&job).await;
    let day2_metrics = state["daily_metrics"]
        .iter()
        .find(|r| r.starts_with("2024-05-02|"))
        .unwrap();
    assert!(
        day2_metrics.starts_with("2024-05-02|0|0|"),
        "{day2_metrics}"
    );
    assert!(
        day2_metrics.ends_with("|2|0"),
        "2 bot sessions, none too long: {day2_metrics}"
    );
    let day1_metrics = state["daily_metrics"]
        .iter()
        .find(|r| r.starts_with("2024-05-01|"))
        .unwrap();
    assert!(
        day1_metrics.starts_with("2024-05-01|2|2|"),
        "{day1_metrics}"
    );
    assert!(
        day1_metrics.ends_with("|0|1"),
        "the chain is counted as too long: {day1_metrics}"
    );

    // all three days at once give the same
    let full = hand_job(dir.path(), &lake, "out_full");
    run(&full, Dates::Pending).await;
    assert_same(&state, &snapshot(&full).await);
}

/// The test job over `lake` into `sink` with per-event timeouts (`gap_column`, `max_gap` of 2
/// hours), reported lengths and `length = "greatest"`.
fn app_job_toml(lake: &std::path::Path, sink: &str) -> String {
    let body = job_toml(lake.to_str().unwrap(), sink, "");
    let body = with_keys(&body, "session", APP_SESSION_KEYS);
    with_keys(&body, "outputs.metrics", "length = \"greatest\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_runs_with_per_event_timeouts_equal_one_full_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_app_lake(&lake, 30, 24_000, 400);

    let (_, full_job) = write_job(dir.path(), "full.toml", &app_job_toml(&lake, "out_full"));
    let full = run(&full_job, Dates::Pending).await;
    assert_eq!(full.strategy, "full");
    let expected = snapshot(&full_job).await;
    assert!(
        expected["sessions"].len() > 3000,
        "{}",
        expected["sessions"].len()
    );

    // the timeouts matter: one global gap gives other sessions
    let plain = job_toml(lake.to_str().unwrap(), "out_plain", "");
    let (_, plain_job) = write_job(dir.path(), "plain.toml", &plain);
    run(&plain_job, Dates::Pending).await;
    let plain_sessions = snapshot(&plain_job).await["sessions"].len();
    assert_ne!(plain_sessions, expected["sessions"].len());

    // one day at a time: events keep sessions open up to 2 hours, so each day reaches back and
    // forward L + 2 hours
    let daily_lake = dir.path().join("daily_lake");
    let body = app_job_toml(&daily_lake, "out_daily");
    let (_, daily_job) = write_job(dir.path(), "daily.toml", &body);
    run_daily(&lake, &daily_lake, &daily_job, 3..=6).await;
    assert_same(&snapshot(&daily_job).await, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_over_max_gap_fails_with_65_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_app_lake(&lake, 3, 2_000, 80);
    let body = app_job_toml(&lake, "out");
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    run(&job, Dates::Pending).await;
    let committed = snapshot(&job).await;
    let runs_before = run_dirs(&dir.path().join("out"));

    // a new partition, the last one a day later, where one event keeps its session open 3 hours
    let partitions = partition_dirs(&lake);
    let new_partition = lake.join("event_date=2024-03-04");
    fs::create_dir_all(&new_partition).unwrap();
    let batch = moved_rows(&partitions[2].join("part-0.parquet"), 200, 86_400_000);
    let timeout = batch.schema().index_of("timeout_ms").unwrap();
    let mut timeouts: Vec<Option<i64>> = batch
        .column(timeout)
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .iter()
        .collect();
    timeouts[57] = Some(3 * 3_600_000);
    let mut columns = batch.columns().to_vec();
    columns[timeout] = Arc::new(Int64Array::from(timeouts));
    let batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
    write_parquet(
        &new_partition.join("part-0.parquet"),
        std::slice::from_ref(&batch),
    );

    let error_of = async |job: &Job| {
        let err = run_job(job, &options(Dates::Pending, false))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Data, "{err}");
        err.message
    };
    let message = error_of(&job).await;
    for part in [
        "column 'timeout_ms' (session.gap_column)",
        "a timeout of 10800000 ms",
        "over session.max_gap (2 hours)",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_same(&snapshot(&job).await, &committed);
    assert_eq!(run_dirs(&dir.path().join("out")), runs_before);

    // a first run reads the whole lake for the first time, and fails the same way
    let (_, fresh) = write_job(dir.path(), "fresh.toml", &app_job_toml(&lake, "fresh"));
    assert!(error_of(&fresh).await.contains("10800000 ms"));
    assert!(!dir.path().join("fresh").join("_manifests").exists());

    // a larger max_gap takes it; the settings changed, so everything is recomputed (and checked)
    let raised = body.replace("max_gap = \"2 hours\"", "max_gap = \"3 hours\"");
    assert_ne!(raised, body);
    let (_, raised_job) = write_job(dir.path(), "raised.toml", &raised);
    let summary = run(&raised_job, Dates::Pending).await;
    assert_eq!(
        summary.full_reason.as_deref(),
        Some("the job's settings changed")
    );
    let raised_fresh = raised.replace("path = \"out\"", "path = \"raised_fresh\"");
    let (_, raised_fresh) = write_job(dir.path(), "raised_fresh.toml", &raised_fresh);
    run(&raised_fresh, Dates::Pending).await;
    assert_same(&snapshot(&raised_job).await, &snapshot(&raised_fresh).await);
    assert_eq!(run(&raised_job, Dates::Pending).await.status, "up_to_date");
}

#[test]
fn session_rule_errors_name_both_keys() {
    let base = job_toml("lake", "out", "");
    let e = config_error(&with_keys(&base, "session", "gap_column = \"timeout_ms\""));
    assert!(
        e.contains("session.max_gap: required when session.gap_column is set"),
        "{e}"
    );
    let e = config_error(&with_keys(
        &base,
        "session",
        "gap_column = \"timeout_ms\"\nmax_gap = \"10 minutes\"",
    ));
    assert!(
        e.contains("session.max_gap: '10 minutes' must be at least session.gap ('30 minutes')"),
        "{e}"
    );
    let e = config_error(&with_keys(&base, "session", "max_gap = \"2 hours\""));
    assert!(
        e.contains("session.max_gap: only applies with session.gap_column"),
        "{e}"
    );
    for length in ["reported", "greatest"] {
        let e = config_error(&with_keys(
            &base,
            "outputs.metrics",
            &format!("length = \"{length}\""),
        ));
        assert!(
            e.contains(&format!(
                "outputs.metrics.length: '{length}' needs session.reported_duration"
            )),
            "{e}"
        );
    }
    let e = config_error(&with_keys(&base, "outputs.metrics", "length = \"longest\""));
    assert!(
        e.contains("outputs.metrics.length: 'longest' is not a length"),
        "{e}"
    );
    let e = config_error(&with_keys(
        &base,
        "session",
        "reported_duration = \"duration_ms\"",
    ));
    assert!(
        e.contains("session.reported_duration") && e.contains("EVENT_TYPE.COLUMN"),
        "{e}"
    );
    // with reported_duration set, both rules are accepted
    for length in ["measured", "reported", "greatest"] {
        let body = with_keys(&base, "session", APP_SESSION_KEYS);
        let body = with_keys(&body, "outputs.metrics", &format!("length = \"{length}\""));
        Job::parse(&body, std::path::Path::new("rules.toml")).unwrap();
    }
}

/// `n` events of `user` every 20 minutes from `start` (`2024-05-02T12:00:00`).
fn every_20_minutes(user: &'static str, start: &str, n: i64) -> Vec<Event> {
    let start = chrono::NaiveDateTime::parse_from_str(start, "%Y-%m-%dT%H:%M:%S").unwrap();
    (0..n)
        .map(|k| {
            let t = start + chrono::Duration::minutes(20 * k);
            let time = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            (user, time, "click", "Mozilla/5.0")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_users_stay_exact_a_length_away_from_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // "b": one session from 05-02 12:00 to 05-03 11:40, 23 h 40 min; "other": 5 minutes on
    // 05-03; then a late event of "b" at 05-02 11:35 makes b's session 24 h 5 min, over a day;
    // then an event of "other" at 05-05 00:30, which rewrites the days from 05-03 on, where a
    // read window starting 30 minutes before 05-03 would see a part of b's session under a day
    let mut day3 = every_20_minutes("b", "2024-05-03T00:00:00", 36);
    day3.extend([
        (
            "other",
            "2024-05-03T15:00:00".to_string(),
            "page_view",
            "Mozilla/5.0",
        ),
        (
            "other",
            "2024-05-03T15:05:00".to_string(),
            "click",
            "Mozilla/5.0",
        ),
    ]);
    let days = [
        (
            "2024-05-02",
            every_20_minutes("b", "2024-05-02T12:00:00", 36),
        ),
        ("2024-05-03", day3),
        (
            "2024-05-04",
            every_20_minutes("b", "2024-05-02T11:35:00", 1),
        ),
        (
            "2024-05-05",
            every_20_minutes("other", "2024-05-05T00:30:00", 1),
        ),
    ];
    let job = hand_job(dir.path(), &lake, "out");
    let metrics_of = |state: &std::collections::BTreeMap<String, Vec<String>>, day: &str| {
        state["daily_metrics"]
            .iter()
            .find(|r| r.starts_with(day))
            .cloned()
            .unwrap()
    };
    for (day, events) in &days {
        write_events(&lake, day, "part-0.parquet", events);
        run(&job, Dates::Pending).await;
        let state = snapshot(&job).await;
        match *day {
            "2024-05-02" => {}
            "2024-05-03" => {
                // b is active on 05-03 in a session of 05-02: 300 s of time over 2 active users
                assert!(
                    metrics_of(&state, "2024-05-03").starts_with("2024-05-03|1|1|2|300.0|150.0|"),
                    "{state:#?}"
                );
            }
            _ => {
                // b's session is over a day and left out: b is active on no day. The late
                // event is on 05-02; 05-03 is a day (L) later and must be rewritten too
                let day2 = metrics_of(&state, "2024-05-02");
                assert!(day2.starts_with("2024-05-02|0|0|0|NULL|NULL|"), "{day2}");
                assert!(day2.ends_with("|0|1"), "{day2}");
                let day3 = metrics_of(&state, "2024-05-03");
                assert!(day3.starts_with("2024-05-03|1|1|1|300.0|300.0|"), "{day3}");
            }
        }
    }
    let full = hand_job(dir.path(), &lake, "out_full");
    run(&full, Dates::Pending).await;
    assert_same(&snapshot(&job).await, &snapshot(&full).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_hour_timeout_reaches_a_day_the_gap_would_not() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // "a": every 20 minutes from 05-01 23:55 to 05-02 23:35 (23 h 40 min, kept), the last
    // event keeping the session open 2 hours; then an event at 05-03 01:30, 1 h 55 min later,
    // joins it: 25 h 35 min, over a day. That run's events reach back L + g: with g = 30
    // minutes to 05-02 00:30, with g = max_gap = 2 hours to 05-01 23:00, the session's day
    let chain = every_20_minutes("a", "2024-05-01T23:55:00", 72);
    let (day1, day2): (Vec<Event>, Vec<Event>) = chain
        .into_iter()
        .partition(|e| e.1.starts_with("2024-05-01"));
    let mut day2_timeouts = vec![None; day2.len()];
    if let Some(last) = day2_timeouts.last_mut() {
        *last = Some(2 * 3_600_000);
    }
    let day3 = every_20_minutes("a", "2024-05-03T01:30:00", 1);
    let days = [
        ("2024-05-01", day1.clone(), vec![None; day1.len()]),
        ("2024-05-02", day2, day2_timeouts),
        ("2024-05-03", day3, vec![None]),
    ];
    let keys = "gap_column = \"timeout_ms\"\nmax_gap = \"2 hours\"";
    let body = with_keys(&hand_job_toml(&lake, "out"), "session", keys);
    let (_, job) = write_job(dir.path(), "out.toml", &body);
    for (day, events, timeouts) in &days {
        let batch = events_batch(events, Some(timeouts));
        write_partition_file(&lake, day, "part-0.parquet", &batch);
        let summary = run(&job, Dates::Pending).await;
        if *day == "2024-05-02" {
            assert_eq!(rows_with(&snapshot(&job).await, "|a|").len(), 1);
        }
        if *day == "2024-05-03" {
            assert_eq!(summary.days_rewritten[0], "2024-05-01");
        }
    }
    let state = snapshot(&job).await;
    assert!(rows_with(&state, "|a|").is_empty(), "{state:#?}");
    let full_body = with_keys(&hand_job_toml(&lake, "out_full"), "session", keys);
    let (_, full) = write_job(dir.path(), "out_full.toml", &full_body);
    run(&full, Dates::Pending).await;
    assert_same(&state, &snapshot(&full).await);
}
