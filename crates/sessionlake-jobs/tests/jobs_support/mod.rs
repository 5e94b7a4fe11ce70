//! Shared helpers of the job tests: generated lakes, job files, and a snapshot of every
//! committed output read through the manifest. The tests that run the `sessionlake-job` binary
//! (in `sessionlake-cli`, which builds it) use them too, with `tests/job_binary` of that crate.

#![allow(dead_code)]
// each test binary uses a different subset
// helpers of tests, outside `#[test]` functions: a panic here is a failing test, as in one
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sessionlake_jobs::location::Place;
use sessionlake_jobs::{Dates, Job, RunOptions, RunSummary, run_job};
use sessionlake_testkit::app_lake::write_app_lake;
use sessionlake_testkit::lake::{LakeSpec, write_lake};

/// The spec of the test lakes: `days` days starting 2024-03-01.
fn test_spec(days: u32, events: u64, users: u64) -> LakeSpec {
    LakeSpec {
        seed: 7,
        events,
        days,
        users,
        start_date: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        files_per_day: 2,
        ..LakeSpec::default()
    }
}

/// A seeded lake of `days` days starting 2024-03-01, small enough for quick tests.
pub fn generate_lake(dir: &Path, days: u32, events: u64, users: u64) {
    write_lake(&test_spec(days, events, users), dir).unwrap();
}

/// The same lake as an app logs it (`sessionlake_testkit::app_lake`): `session_end` events
/// with `duration_ms`, and every event's own timeout in `timeout_ms` (NULL, 5 or 10 minutes,
/// 45 minutes or 2 hours).
pub fn generate_app_lake(dir: &Path, days: u32, events: u64, users: u64) {
    write_app_lake(&test_spec(days, events, users), dir).unwrap();
}

/// `body` (a job file from [`job_toml`]) with `lines` added at the start of its `[section]`.
pub fn with_keys(body: &str, section: &str, lines: &str) -> String {
    let header = format!("[{section}]\n");
    assert!(body.contains(&header), "no [{section}] in the job file");
    body.replacen(&header, &format!("{header}{lines}\n"), 1)
}

/// The `[session]` keys of per-event timeouts over an app lake (`timeout_ms`, at most 2 hours)
/// and of its reported lengths.
pub const APP_SESSION_KEYS: &str = "gap_column = \"timeout_ms\"
max_gap = \"2 hours\"
reported_duration = \"session_end.duration_ms\"";

/// Copies the partitions of `lake` one at a time into `daily_lake`, running `job` (whose
/// source is `daily_lake`) after each; each run processes the new partition, incrementally
/// after the first, rewriting a number of days in `rewritten`. Then the job is up to date.
pub async fn run_daily(
    lake: &Path,
    daily_lake: &Path,
    job: &Job,
    rewritten: std::ops::RangeInclusive<usize>,
) {
    fs::create_dir_all(daily_lake).unwrap();
    for (i, partition) in partition_dirs(lake).iter().enumerate() {
        copy_partition(partition, daily_lake);
        let summary = run(job, Dates::Pending).await;
        assert_eq!(summary.partitions_processed.len(), 1, "day {i}");
        assert_eq!(summary.status, "committed");
        if i > 0 {
            assert_eq!(summary.strategy, "incremental", "day {i}");
            let days = summary.days_rewritten.len();
            assert!(
                rewritten.contains(&days),
                "day {i}: {days} days rewritten, not in {rewritten:?}"
            );
        }
    }
    let again = run(job, Dates::Pending).await;
    assert_eq!(again.status, "up_to_date");
}

/// The partition directories of a lake, sorted.
pub fn partition_dirs(lake: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(lake)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Copies one partition directory of a lake into another lake.
pub fn copy_partition(partition: &Path, to_lake: &Path) {
    let target = to_lake.join(partition.file_name().unwrap());
    fs::create_dir_all(&target).unwrap();
    for file in fs::read_dir(partition).unwrap() {
        let file = file.unwrap().path();
        fs::copy(&file, target.join(file.file_name().unwrap())).unwrap();
    }
}

/// The body of a job file over `lake` into `sink` (paths or s3:// URLs), with `extra` TOML
/// appended.
pub fn job_toml(lake: &str, sink: &str, extra: &str) -> String {
    format!(
        r#"name = "test_job"

[source]
lake = "{lake}"

[sink]
path = "{sink}"

[session]
gap = "30 minutes"
max_length = "1 day"
time_zone = "America/New_York"

[outputs.sessions]
entry = ["page"]
exit = ["page"]
first = ["platform"]
last = ["plan"]

[outputs.metrics]
bounce_event_type = "page_view"

[[alerts]]
name = "short"
metric = "avg_length_s"
below = 150.0

[[alerts]]
name = "drop"
metric = "sessions"
drop_percent = 15.0
trailing_days = 3

[[exports]]
name = "short_users"
format = "csv"
days = 7
median_length_below = "1 minute"

[[exports]]
name = "engaged"
format = "parquet"
days = 14
min_sessions = 3
session_longer_than = "5 minutes"

[bots]
max_events_per_minute = 10.0
{extra}"#
    )
}

/// Writes a job file into `dir` and loads it.
pub fn write_job(dir: &Path, name: &str, body: &str) -> (PathBuf, Job) {
    let path = dir.join(name);
    fs::write(&path, body).unwrap();
    let job = Job::load(&path).unwrap();
    (path, job)
}

/// The options of a run in this process that writes: `dates`, and `full` for `--full`.
pub fn options(dates: Dates, full: bool) -> RunOptions {
    RunOptions {
        dates,
        dry_run: false,
        progress: None,
        full,
        cluster: None,
    }
}

/// Runs a job in this process.
pub async fn run(job: &Job, dates: Dates) -> RunSummary {
    run_job(job, &options(dates, false)).await.unwrap()
}

/// Every committed output table (read through the current manifest) as sorted text rows;
/// the run summary (timings) is left out.
pub async fn snapshot(job: &Job) -> BTreeMap<String, Vec<String>> {
    let sink = Place::open(&job.sink, &job.storage).unwrap();
    let Some(manifest) = sessionlake_jobs::read_current(&sink).await.unwrap() else {
        return BTreeMap::new();
    };
    let ctx = sessionlake_jobs::compute::new_context(&[&sink]).unwrap();
    let mut out = BTreeMap::new();
    for (table, files) in &manifest.tables {
        let mut rows = Vec::new();
        for relative in files.values() {
            let key = sink.key(relative);
            if relative.ends_with(".csv") {
                let bytes = sink.store.get_opts(&key, Default::default()).await.unwrap();
                let text = String::from_utf8(bytes.bytes().await.unwrap().to_vec()).unwrap();
                rows.extend(text.lines().map(str::to_string));
                continue;
            }
            let table = sessionlake_jobs::compute::files_table(&ctx, &[sink.url(&key)], None)
                .await
                .unwrap();
            let batches = ctx.read_table(table).unwrap().collect().await.unwrap();
            rows.extend(batches.iter().flat_map(format_rows));
        }
        rows.sort();
        out.insert(table.clone(), rows);
    }
    out
}

/// Each row of `batch` as `a|b|c`.
pub fn format_rows(batch: &RecordBatch) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters: Vec<ArrayFormatter> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// Asserts two snapshots are equal table by table, with a short diff on failure.
pub fn assert_same(left: &BTreeMap<String, Vec<String>>, right: &BTreeMap<String, Vec<String>>) {
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        right.keys().collect::<Vec<_>>(),
        "tables differ"
    );
    for (table, rows) in left {
        let other = &right[table];
        if rows != other {
            let only_left: Vec<_> = rows.iter().filter(|r| !other.contains(r)).take(5).collect();
            let only_right: Vec<_> = other.iter().filter(|r| !rows.contains(r)).take(5).collect();
            panic!(
                "table {table}: {} rows vs {} rows\nonly left: {only_left:#?}\nonly right: {only_right:#?}",
                rows.len(),
                other.len()
            );
        }
    }
}

/// Directories under the sink's `runs/`.
pub fn run_dirs(sink: &Path) -> Vec<String> {
    match fs::read_dir(sink.join("runs")) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
        Err(_) => Vec::new(),
    }
}

/// Asserts that every run prefix under a local sink is used by the current or the previous
/// manifest.
pub async fn assert_no_garbage(job: &Job) {
    let sink = Place::open(&job.sink, &job.storage).unwrap();
    let current = sessionlake_jobs::read_current(&sink)
        .await
        .unwrap()
        .unwrap();
    let mut used = current.run_dirs();
    if current.version > 1 {
        let previous = sessionlake_jobs::manifest::read_version(&sink, current.version - 1)
            .await
            .unwrap();
        used.extend(previous.run_dirs());
    }
    let sessionlake_jobs::location::Location::Local(dir) = &job.sink else {
        panic!("local sinks only");
    };
    for name in run_dirs(dir) {
        assert!(
            used.contains(&format!("runs/{name}")),
            "runs/{name} is garbage: {used:?}"
        );
    }
    // a Delta sink's tables keep the files of every committed run (each Delta version stays
    // readable), and only those
    let mut committed = Vec::new();
    for version in sessionlake_jobs::manifest::versions(&sink).await.unwrap() {
        let manifest = sessionlake_jobs::manifest::read_version(&sink, version)
            .await
            .unwrap();
        committed.push(manifest.run_id);
    }
    for table in ["sessions", "daily_metrics", "alerts"] {
        let Ok(entries) = fs::read_dir(dir.join(table)) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.starts_with('_') || committed.contains(&name),
                "{table}/{name} is garbage: no manifest's run"
            );
        }
    }
}

/// `body` (a job file from [`job_toml`]) with the Delta sink: `[sink] format = "delta"`.
pub fn with_delta_sink(body: &str) -> String {
    body.replacen("[sink]\n", "[sink]\nformat = \"delta\"\n", 1)
}

/// The tables of `snapshot` that a Delta sink holds as Delta tables.
#[cfg(feature = "delta")]
pub fn delta_tables_of(snapshot: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    snapshot
        .iter()
        .filter(|(table, _)| sessionlake_jobs::delta_sink::TABLES.contains(&table.as_str()))
        .map(|(table, rows)| (table.clone(), rows.clone()))
        .collect()
}

/// The rows of the Delta table `table` under the job's sink as a Delta reader sees them:
/// through its log, at `version` or the latest, as sorted text rows; `None` when there is no
/// Delta table there.
#[cfg(feature = "delta")]
pub async fn delta_rows(job: &Job, table: &str, version: Option<i64>) -> Option<Vec<String>> {
    use sessionlake_engine::delta::{DeltaVersion, is_delta_table, open_delta_table};
    let sink = Place::open(&job.sink, &job.storage).unwrap();
    if !is_delta_table(sink.store.as_ref(), &sink.key(table))
        .await
        .unwrap()
    {
        return None;
    }
    let ctx = sessionlake_jobs::compute::new_context(&[&sink]).unwrap();
    let url = url::Url::parse(&format!("{}/", sink.url(&sink.key(table)))).unwrap();
    let version = version.map_or(DeltaVersion::Latest, DeltaVersion::Version);
    let provider = open_delta_table(&ctx.state(), &url, version).await.unwrap();
    let batches = ctx.read_table(provider).unwrap().collect().await.unwrap();
    let mut rows: Vec<String> = batches.iter().flat_map(format_rows).collect();
    rows.sort();
    Some(rows)
}

/// Every Delta table under the job's sink, read as [`delta_rows`] does at the latest version.
#[cfg(feature = "delta")]
pub async fn delta_snapshot(job: &Job) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for table in sessionlake_jobs::delta_sink::TABLES {
        if let Some(rows) = delta_rows(job, table, None).await {
            out.insert(table.to_string(), rows);
        }
    }
    out
}
