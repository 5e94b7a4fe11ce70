//! A job's sessions and daily metrics against the test kit's naive reference, computed here
//! from the lake's rows: per-event timeouts (`gap_column`), reported lengths, each length rule
//! (`measured`, `reported`, `greatest`) and time per user divided by the day's active users.
// helpers of tests, outside `#[test]` functions: a panic there is a failing test
#![allow(clippy::unwrap_used)]

mod jobs_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, NaiveDate};
use chrono_tz::America::New_York;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use jobs_support::*;
use sessionlake_jobs::Dates;
use sessionlake_jobs::location::Place;
use sessionlake_testkit::reference::{self, Event, Mode, Rules};

const MINUTE_MS: i64 = 60_000;
/// Relative tolerance for averages: the engine and the reference sum in different orders.
const FLOAT_TOLERANCE: f64 = 1e-9;

/// The rows of an app lake as the reference's events, with the `duration_ms` and `timeout_ms`
/// values by row id.
struct LakeEvents {
    events: Vec<Event>,
    durations: BTreeMap<i64, i64>,
    timeouts: BTreeMap<i64, i64>,
}

fn i64s(column: &ArrayRef) -> Vec<Option<i64>> {
    let column = cast(column, &DataType::Int64).unwrap();
    column.as_primitive::<Int64Type>().iter().collect()
}

/// A column read through DataFusion (strings may come as views) as text.
fn strings(column: &ArrayRef) -> Vec<Option<String>> {
    let column = cast(column, &DataType::Utf8).unwrap();
    column
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn i64_column(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    i64s(batch.column_by_name(name).unwrap())
}

fn read_lake(lake: &Path) -> LakeEvents {
    let mut out = LakeEvents {
        events: Vec::new(),
        durations: BTreeMap::new(),
        timeouts: BTreeMap::new(),
    };
    for partition in partition_dirs(lake) {
        let mut files: Vec<_> = std::fs::read_dir(&partition)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let users = batch.column_by_name("user_id").unwrap().as_string::<i32>();
                let times = i64_column(&batch, "event_time");
                let types = batch
                    .column_by_name("event_type")
                    .unwrap()
                    .as_dictionary::<Int32Type>();
                let type_names = types.values().as_string::<i32>();
                let session_ids = i64_column(&batch, "session_id");
                let pages = batch.column_by_name("page").unwrap().as_string::<i32>();
                let active = batch.column_by_name("is_active").unwrap().as_boolean();
                let durations = i64_column(&batch, "duration_ms");
                let timeouts = i64_column(&batch, "timeout_ms");
                for row in 0..batch.num_rows() {
                    let row_id = out.events.len() as i64;
                    out.events.push(Event {
                        row_id,
                        user: users.is_valid(row).then(|| users.value(row).to_string()),
                        time: times[row],
                        event_type: type_names
                            .value(types.keys().value(row) as usize)
                            .to_string(),
                        session_id: session_ids[row],
                        page: pages.is_valid(row).then(|| pages.value(row).to_string()),
                        is_active: active.is_valid(row).then(|| active.value(row)),
                    });
                    if let Some(ms) = durations[row] {
                        out.durations.insert(row_id, ms);
                    }
                    if let Some(ms) = timeouts[row] {
                        out.timeouts.insert(row_id, ms);
                    }
                }
            }
        }
    }
    out
}

fn new_york_day(epoch_ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(epoch_ms)
        .unwrap()
        .with_timezone(&New_York)
        .date_naive()
}

/// One day's expected metrics (a day with active users may have no session).
#[derive(Debug, Default)]
struct Day {
    sessions: usize,
    users: BTreeSet<String>,
    active_users: BTreeSet<String>,
    /// The lengths the length metrics use, in ms (sessions without one left out).
    lengths: Vec<i64>,
}

/// A row of the sessions table: user, start (epoch ms), `duration_ms`, `reported_duration_ms`.
type SessionRow = (String, i64, i64, Option<i64>);

/// The expected per-day metrics of the job's rules under the length rule `length`, and the
/// expected sessions table rows (user, start, duration, reported duration).
fn expected(lake: &LakeEvents, length: &str) -> (BTreeMap<NaiveDate, Day>, BTreeSet<SessionRow>) {
    let rules = Rules {
        mode: Mode::Gap,
        gap_ms: 30 * MINUTE_MS,
        max_length_ms: Some(24 * 60 * MINUTE_MS),
        inactive_event_types: vec![],
        event_gaps_ms: lake.timeouts.clone(),
        reported: Some(("session_end".to_string(), lake.durations.clone())),
        counted: Vec::new(),
    };
    let mut days: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    let mut rows = BTreeSet::new();
    for session in reference::sessions(&lake.events, &rules) {
        let day = days.entry(new_york_day(session.session_start)).or_default();
        day.sessions += 1;
        day.users.insert(session.user.clone());
        let measured = session.duration_ms;
        let reported = session.reported_duration_ms;
        let used = match length {
            "measured" => Some(measured),
            "reported" => reported,
            _ => Some(reported.map_or(measured, |r| r.max(measured))),
        };
        day.lengths.extend(used);
        rows.insert((session.user, session.session_start, measured, reported));
    }
    // active users: those with an event in a kept session, on that event's day
    for (row_id, assigned) in reference::sessionize(&lake.events, &rules) {
        if assigned.session_key.is_some() {
            let event = &lake.events[row_id as usize];
            let day = days.entry(new_york_day(event.time.unwrap())).or_default();
            day.active_users.insert(event.user.clone().unwrap());
        }
    }
    (days, rows)
}

fn close(actual: Option<f64>, expected: Option<f64>) -> bool {
    match (actual, expected) {
        (Some(a), Some(e)) => a == e || (a - e).abs() <= FLOAT_TOLERANCE * a.abs().max(e.abs()),
        (a, e) => a == e,
    }
}

fn f64_at(column: &ArrayRef, row: usize) -> Option<f64> {
    let column = cast(column, &DataType::Float64).unwrap();
    let column = column.as_primitive::<Float64Type>();
    column.is_valid(row).then(|| column.value(row))
}

fn i64_at(column: &ArrayRef, row: usize) -> i64 {
    i64s(column)[row].unwrap()
}

/// Every committed row of `sql` over the job's outputs.
async fn query(job: &sessionlake_jobs::Job, sql: &str) -> Vec<RecordBatch> {
    let sink = Place::open(&job.sink, &job.storage).unwrap();
    let ctx = sessionlake_jobs::compute::new_context(&[&sink]).unwrap();
    sessionlake_jobs::register_outputs(&ctx, job).await.unwrap();
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

/// Checks the job's sessions table and daily metrics against the reference; returns the
/// number of days whose active users differ from the users with a session starting that day.
async fn check_against_reference(
    job: &sessionlake_jobs::Job,
    lake: &LakeEvents,
    length: &str,
) -> usize {
    let (days, rows) = expected(lake, length);

    let mut sessions = BTreeSet::new();
    let sql = "SELECT user_id, CAST(session_start AS BIGINT), duration_ms, reported_duration_ms \
               FROM sessions";
    for batch in query(job, sql).await {
        let users = strings(batch.column(0));
        let starts = i64s(batch.column(1));
        let durations = i64s(batch.column(2));
        let reported = i64s(batch.column(3));
        for row in 0..batch.num_rows() {
            sessions.insert((
                users[row].clone().unwrap(),
                starts[row].unwrap(),
                durations[row].unwrap(),
                reported[row],
            ));
        }
    }
    assert_eq!(sessions.len(), rows.len(), "sessions ({length})");
    assert!(
        sessions == rows,
        "the sessions table differs from the reference ({length})"
    );

    let sql = "SELECT CAST(session_date AS VARCHAR), sessions, users, active_users, avg_length_s, \
               time_per_user_s, length_distribution FROM daily_metrics";
    let mut seen = BTreeSet::new();
    let mut divisors_differ = 0;
    for batch in query(job, sql).await {
        for (row, date) in strings(batch.column(0)).into_iter().enumerate() {
            let date: NaiveDate = date.unwrap().parse().unwrap();
            let empty = Day::default();
            let day = days.get(&date).unwrap_or(&empty);
            if day.sessions > 0 {
                seen.insert(date);
            }
            let what = format!("{date} ({length})");
            assert_eq!(
                i64_at(batch.column(1), row),
                day.sessions as i64,
                "sessions {what}"
            );
            assert_eq!(
                i64_at(batch.column(2), row),
                day.users.len() as i64,
                "users {what}"
            );
            let active = day.active_users.len();
            assert_eq!(
                i64_at(batch.column(3), row),
                active as i64,
                "active users {what}"
            );
            divisors_differ += usize::from(active != day.users.len());
            let total_s = day.lengths.iter().sum::<i64>() as f64 / 1000.0;
            let has_lengths = !day.lengths.is_empty();
            let average = has_lengths.then(|| total_s / day.lengths.len() as f64);
            let per_user = has_lengths.then(|| total_s / active as f64);
            let avg_length = f64_at(batch.column(4), row);
            assert!(
                close(avg_length, average),
                "avg_length_s {what}: {avg_length:?} vs {average:?}"
            );
            let time_per_user = f64_at(batch.column(5), row);
            assert!(
                close(time_per_user, per_user),
                "time_per_user_s {what}: {time_per_user:?} vs {per_user:?}"
            );
            // each bin [lo, hi) of the length distribution counts the day's lengths in it
            let bins = batch.column(6).as_list::<i32>();
            if bins.is_valid(row) {
                let bins = bins.value(row);
                let bins = bins.as_struct();
                let (lo, hi, count) = (bins.column(0), bins.column(1), bins.column(2));
                for bin in 0..bins.len() {
                    let (lo, hi) = (f64_at(lo, bin).unwrap(), f64_at(hi, bin).unwrap());
                    let expected = day
                        .lengths
                        .iter()
                        .filter(|ms| (lo..hi).contains(&(**ms as f64)))
                        .count();
                    assert_eq!(
                        i64_at(count, bin),
                        expected as i64,
                        "bin [{lo}, {hi}) {what}"
                    );
                }
            } else {
                assert!(day.lengths.is_empty(), "no length distribution {what}");
            }
        }
    }
    let expected_days: BTreeSet<NaiveDate> = days
        .iter()
        .filter(|(_, day)| day.sessions > 0)
        .map(|(date, _)| *date)
        .collect();
    assert_eq!(seen, expected_days, "days with a session ({length})");
    divisors_differ
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_length_rule_and_time_per_active_user_match_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    generate_app_lake(&lake_dir, 10, 20_000, 600);
    let lake = read_lake(&lake_dir);
    assert!(
        lake.durations.len() > 100,
        "{} reported lengths",
        lake.durations.len()
    );

    // the rules give different lengths on this lake, so a job using the wrong one fails
    let totals: Vec<(usize, i64)> = ["measured", "reported", "greatest"]
        .iter()
        .map(|length| {
            let (days, _) = expected(&lake, length);
            let lengths = days.values().flat_map(|d| d.lengths.iter());
            (lengths.clone().count(), lengths.sum())
        })
        .collect();
    assert!(
        totals[0] != totals[1] && totals[1] != totals[2] && totals[0] != totals[2],
        "{totals:?}"
    );

    // one sink, the rule changed between runs: each run recomputes everything
    let body = format!(
        "name = \"lengths\"\n\n[source]\nlake = \"{}\"\n\n[sink]\npath = \"out\"\n\n\
         [session]\n{APP_SESSION_KEYS}\ntime_zone = \"America/New_York\"\n\n[outputs.metrics]\n",
        lake_dir.display()
    );
    for (i, length) in ["measured", "reported", "greatest"].into_iter().enumerate() {
        let rule = with_keys(&body, "outputs.metrics", &format!("length = \"{length}\""));
        let (_, job) = write_job(dir.path(), &format!("{length}.toml"), &rule);
        let summary = run(&job, Dates::Pending).await;
        if i > 0 {
            assert_eq!(
                summary.full_reason.as_deref(),
                Some("the job's settings changed")
            );
        }
        let differ = check_against_reference(&job, &lake, length).await;
        // the test tells the divisors apart: on some days a user is active in a session that
        // started the day before, without a session starting that day
        assert!(
            differ > 0,
            "active users equal users on every day ({length})"
        );
    }
}
