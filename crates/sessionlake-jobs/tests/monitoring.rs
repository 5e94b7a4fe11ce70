//! Monitoring outputs of lake jobs on hand-written lakes whose answers are known: daily metrics
//! per segment and alerts on one segment value, the `(other)` row past `segment_limit`, quality
//! classes at their exact thresholds; the users table and a cohort export from it against a
//! naive reference over the sessions table; and on a generated lake, 30 daily runs with
//! segments, quality and users equal one full recompute.
// helpers of tests, outside `#[test]` functions: a panic there is a failing test
#![allow(clippy::unwrap_used)]

mod jobs_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use jobs_support::*;
use sessionlake_jobs::Dates;

/// One hand-written event: user, time (`2024-05-01T10:00:00`), type, platform, country.
type Event = (
    &'static str,
    String,
    &'static str,
    Option<&'static str>,
    &'static str,
);

/// Writes `events` as the partition `event_date=<day>` of `lake`.
fn write_day(lake: &Path, day: &str, events: &[Event]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("platform", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, false),
    ]));
    let millis = |t: &str| {
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    };
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.0))),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(events.iter().map(|e| millis(&e.1)))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.2))),
            Arc::new(StringArray::from_iter(events.iter().map(|e| e.3))),
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.4))),
        ],
    )
    .unwrap();
    let dir = lake.join(format!("event_date={day}"));
    fs::create_dir_all(&dir).unwrap();
    let mut writer = ArrowWriter::try_new(
        fs::File::create(dir.join("part-0.parquet")).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// `user`'s session on `day`: events at the given minutes after 10:00, the first on `first`
/// platform (then `platform`), all in `country`, each of `types` in turn.
fn session(
    user: &'static str,
    day: &str,
    minutes: &[u32],
    types: &[&'static str],
    first: Option<&'static str>,
    platform: &'static str,
    country: &'static str,
) -> Vec<Event> {
    minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                user,
                format!("{day}T{:02}:{:02}:{:02}", 10 + m / 60, m % 60, 0),
                types[i % types.len()],
                if i == 0 { first } else { Some(platform) },
                country,
            )
        })
        .collect()
}

/// The rows of `table` in `snapshot` that start with `prefix`.
fn rows_starting(
    snapshot: &BTreeMap<String, Vec<String>>,
    table: &str,
    prefix: &str,
) -> Vec<String> {
    snapshot[table]
        .iter()
        .filter(|r| r.starts_with(prefix))
        .cloned()
        .collect()
}

/// A hand-written job over `lake`: UTC days, with `extra` appended.
fn hand_job_toml(lake: &Path, sink: &str, extra: &str) -> String {
    format!(
        "[source]\nlake = \"{}\"\n\n[sink]\npath = \"{sink}\"\n\n[session]\ntime_zone = \"UTC\"\n\n{extra}",
        lake.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_on_one_platform_trips_only_that_segments_alert() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // six users a day, two per platform, one session each of 5 minutes (events a minute apart);
    // on the last day the iOS sessions last 1 minute. w2's first event has no platform: its
    // session's platform is the first non-NULL one, web.
    let days = ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"];
    for day in days {
        let ios = if day == "2024-05-04" {
            vec![0, 1]
        } else {
            vec![0, 1, 2, 3, 4, 5]
        };
        let five = [0, 1, 2, 3, 4, 5];
        type Visitor<'a> = (
            &'static str,
            &'a [u32],
            Option<&'static str>,
            &'static str,
            &'static str,
        );
        let visitors: [Visitor; 6] = [
            ("i1", &ios, Some("ios"), "ios", "us"),
            ("i2", &ios, Some("ios"), "ios", "us"),
            ("w1", &five, Some("web"), "web", "us"),
            ("w2", &five, None, "web", "de"),
            ("a1", &five, Some("android"), "android", "fr"),
            ("a2", &five, Some("android"), "android", "jp"),
        ];
        let mut events = Vec::new();
        for (user, minutes, first, platform, country) in visitors {
            events.extend(session(
                user,
                day,
                minutes,
                &["click"],
                first,
                platform,
                country,
            ));
        }
        write_day(&lake, day, &events);
    }
    let body = hand_job_toml(
        &lake,
        "out",
        r#"[outputs.metrics]
segment_by = ["platform", "country"]
segment_limit = 3

[[alerts]]
name = "short_overall"
metric = "avg_length_s"
below = 120.0

[[alerts]]
name = "short_by_platform"
metric = "avg_length_s"
below = 120.0
segment = "platform"
"#,
    );
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    let summary = run(&job, Dates::Pending).await;
    assert_eq!(summary.status, "committed");
    let tables = snapshot(&job).await;

    // day, segment, value, sessions, users, active users, avg length, time per user, bounce
    // rate, histogram, bots, long
    let last_day = rows_starting(&tables, "daily_metrics", "2024-05-04|");
    let columns = |row: &str| -> Vec<String> {
        row.split('|')
            .enumerate()
            .filter(|(i, _)| matches!(i, 1..=6))
            .map(|(_, v)| v.to_string())
            .collect()
    };
    let shown: Vec<Vec<String>> = last_day.iter().map(|r| columns(r)).collect();
    let expected: Vec<Vec<String>> = [
        // 2 x 60 s + 4 x 300 s over 6 sessions
        ["NULL", "NULL", "6", "6", "6", "220.0"],
        ["country", "(other)", "1", "1", "1", "300.0"],
        ["country", "de", "1", "1", "1", "300.0"],
        ["country", "fr", "1", "1", "1", "300.0"],
        ["country", "us", "3", "3", "3", "140.0"],
        ["platform", "android", "2", "2", "2", "300.0"],
        ["platform", "ios", "2", "2", "2", "60.0"],
        ["platform", "web", "2", "2", "2", "300.0"],
    ]
    .iter()
    .map(|r| r.iter().map(|v| v.to_string()).collect())
    .collect();
    assert_eq!(shown, expected, "{last_day:#?}");
    // four days of 8 rows
    assert_eq!(tables["daily_metrics"].len(), 32);

    // only the iOS value trips, only on the last day; the overall average (220 s) does not
    let alerts = &tables["alerts"];
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        alerts[0],
        "2024-05-04|short_by_platform|avg_length_s|platform|ios|60.0|120.0|\
         avg_length_s on platform=ios = 60.000 is below 120"
    );
    assert_eq!(summary.alerts.len(), 1);
    assert_eq!(summary.alerts[0].segment_value.as_deref(), Some("ios"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_classes_hold_at_their_exact_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let day = "2024-05-01";
    let at = |user: &'static str, times: &[&str], types: &[&'static str]| -> Vec<Event> {
        times
            .iter()
            .zip(types)
            .map(|(t, kind)| (user, format!("{day}T{t}"), *kind, Some("web"), "us"))
            .collect()
    };
    let mut events = Vec::new();
    // exactly 5 minutes and 3 interactions: good
    events.extend(at(
        "q1",
        &["10:00:00", "10:01:00", "10:02:00", "10:05:00"],
        &["page_view", "click", "click", "scroll"],
    ));
    // exactly 5 minutes, 1 interaction: medium
    events.extend(at(
        "q2",
        &["10:00:00", "10:01:00", "10:05:00"],
        &["page_view", "click", "page_view"],
    ));
    // exactly 1 minute: medium
    events.extend(at("q3", &["10:00:00", "10:01:00"], &["page_view", "click"]));
    // 59 seconds: poor
    events.extend(at("q4", &["10:00:00", "10:00:59"], &["page_view", "click"]));
    // 6 minutes, 2 interactions (form_submit does not count): medium
    events.extend(at(
        "q5",
        &["10:00:00", "10:02:00", "10:04:00", "10:06:00"],
        &["click", "form_submit", "click", "page_view"],
    ));
    // a single event: 0 s, poor
    events.extend(at("q6", &["10:00:00"], &["click"]));
    write_day(&lake, day, &events);
    let body = hand_job_toml(
        &lake,
        "out",
        r#"[outputs.sessions.quality]
interactions = ["click", "scroll"]
classes = [
  { name = "good", duration_at_least = "5 minutes", interactions_at_least = 3 },
  { name = "medium", duration_at_least = "1 minute" },
  { name = "poor" },
]
"#,
    );
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    run(&job, Dates::Pending).await;
    let tables = snapshot(&job).await;
    // user, then the last columns: interactions, quality, is_bounce, bot_reason
    let quality: Vec<String> = tables["sessions"]
        .iter()
        .map(|row| {
            let cells: Vec<&str> = row.split('|').collect();
            let n = cells.len();
            format!("{} {} {}", cells[1], cells[n - 4], cells[n - 3])
        })
        .collect();
    assert_eq!(
        quality,
        [
            "q1 3 good",
            "q2 1 medium",
            "q3 1 medium",
            "q4 1 poor",
            "q5 2 medium",
            "q6 1 poor"
        ]
    );
    // the daily counts per class, after the metrics
    let metrics = &tables["daily_metrics"];
    assert_eq!(metrics.len(), 1);
    assert!(metrics[0].ends_with("|0|0|1|3|2"), "{}", metrics[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_runs_with_segments_and_quality_equal_one_full_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 30, 24_000, 400);
    let extra_metrics = "segment_by = [\"platform\", \"country\"]\nsegment_limit = 3";
    let quality = r#"
[outputs.users]

[[exports]]
name = "short_regulars"
from = "users"
where = "median_length_s < 60 AND lifetime_sessions >= 3"

[outputs.sessions.quality]
interactions = ["click", "search", "add_to_cart"]
classes = [
  { name = "good", duration_at_least = "5 minutes", interactions_at_least = 3 },
  { name = "medium", duration_at_least = "1 minute" },
  { name = "poor" },
]

[[alerts]]
name = "short_by_platform"
metric = "avg_length_s"
below = 150.0
segment = "platform"
"#;
    let body = |lake: &Path, sink: &str| {
        with_keys(
            &job_toml(lake.to_str().unwrap(), sink, quality),
            "outputs.metrics",
            extra_metrics,
        )
    };
    let (_, full_job) = write_job(dir.path(), "full.toml", &body(&lake, "out_full"));
    run(&full_job, Dates::Pending).await;
    let expected = snapshot(&full_job).await;

    // per day and segment column, the rows' sessions add up to the day's total
    let mut totals: BTreeMap<(String, String), i64> = BTreeMap::new();
    for row in &expected["daily_metrics"] {
        let cells: Vec<&str> = row.split('|').collect();
        let sessions: i64 = cells[3].parse().unwrap();
        *totals
            .entry((cells[0].to_string(), cells[1].to_string()))
            .or_default() += sessions;
    }
    let mut checked = 0;
    for ((day, segment), sum) in &totals {
        if segment != "NULL" {
            assert_eq!(
                sum,
                &totals[&(day.clone(), "NULL".to_string())],
                "{day} {segment}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * 31, "two segment columns on 31 New York days");
    assert!(
        expected["daily_metrics"]
            .iter()
            .any(|r| r.contains("|country|(other)|")),
        "more than 3 countries a day"
    );
    assert!(
        expected["alerts"].iter().any(|r| r.contains("|platform|")),
        "the segment alert should trip"
    );
    assert!(
        ["|good|", "|medium|", "|poor|"]
            .iter()
            .all(|class| expected["sessions"].iter().any(|r| r.contains(class))),
        "every quality class occurs"
    );

    assert!(expected["users"].len() > 300, "{}", expected["users"].len());
    assert!(!expected["exports/short_regulars"].is_empty());

    let daily_lake = dir.path().join("daily_lake");
    let (_, daily_job) = write_job(dir.path(), "daily.toml", &body(&daily_lake, "out_daily"));
    run_daily(&lake, &daily_lake, &daily_job, 3..=5).await;
    assert_same(&snapshot(&daily_job).await, &expected);
}

/// A user's row of the users table, computed naively from their sessions' rows.
#[derive(Debug, PartialEq)]
struct UserRow {
    user: String,
    first_start: i64,
    last_start: i64,
    sessions: i64,
    total_length_s: f64,
    median_length_s: f64,
    sessions_7d: i64,
    sessions_30d: i64,
    shares: Vec<f64>,
    lifetime_quality: Option<String>,
}

/// A sessions table row: user, day, start (ms), duration (ms), quality, is a bot.
type SessionRow = (String, chrono::NaiveDate, i64, i64, Option<String>, bool);

/// The users table from the sessions table's rows, as `docs/jobs.md` defines it, for classes
/// `classes` and the latest day `latest`.
fn reference_users(
    sessions: &[SessionRow],
    classes: &[&str],
    latest: chrono::NaiveDate,
) -> Vec<UserRow> {
    let mut by_user: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for s in sessions.iter().filter(|s| !s.5) {
        by_user.entry(s.0.as_str()).or_default().push(s);
    }
    by_user
        .into_iter()
        .map(|(user, rows)| {
            let mut lengths: Vec<i64> = rows.iter().map(|r| r.3).collect();
            lengths.sort_unstable();
            let n = lengths.len();
            let median_ms = if n % 2 == 1 {
                lengths[n / 2] as f64
            } else {
                (lengths[n / 2 - 1] + lengths[n / 2]) as f64 / 2.0
            };
            let recent = |days: i64| {
                rows.iter()
                    .filter(|r| (latest - r.1).num_days() < days)
                    .count() as i64
            };
            let counts: Vec<usize> = classes
                .iter()
                .map(|c| rows.iter().filter(|r| r.4.as_deref() == Some(c)).count())
                .collect();
            // the most sessions; a tie goes to the class listed first
            let mut best: Option<usize> = None;
            for (i, &count) in counts.iter().enumerate() {
                if count > 0 && best.is_none_or(|b| count > counts[b]) {
                    best = Some(i);
                }
            }
            UserRow {
                user: user.to_string(),
                first_start: rows.iter().map(|r| r.2).min().unwrap(),
                last_start: rows.iter().map(|r| r.2).max().unwrap(),
                sessions: n as i64,
                total_length_s: lengths.iter().sum::<i64>() as f64 / 1000.0,
                median_length_s: median_ms / 1000.0,
                sessions_7d: recent(7),
                sessions_30d: recent(30),
                shares: counts.iter().map(|&c| c as f64 / n as f64).collect(),
                lifetime_quality: best.map(|i| classes[i].to_string()),
            }
        })
        .collect()
}

/// Any string array as `Utf8`.
fn strings(array: &datafusion::arrow::array::ArrayRef) -> StringArray {
    use datafusion::arrow::array::AsArray;
    datafusion::arrow::compute::cast(array, &DataType::Utf8)
        .unwrap()
        .as_string::<i32>()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_table_and_its_cohort_equal_a_naive_reference() {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Date32Type, Float64Type, Int64Type};

    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 40, 12_000, 150);
    let extra = r#"
[outputs.users]

[[exports]]
name = "short_regulars"
from = "users"
where = "median_length_s < 60 AND lifetime_sessions >= 3"
format = "parquet"

[outputs.sessions.quality]
interactions = ["click", "search"]
classes = [
  { name = "good", duration_at_least = "3 minutes", interactions_at_least = 2 },
  { name = "medium", duration_at_least = "30 seconds" },
  { name = "poor", duration_below = "30 seconds" },
]
"#;
    // a low bot rate, so that some sessions are bots and the table must leave them out
    let body = job_toml(lake.to_str().unwrap(), "out", extra).replace(
        "max_events_per_minute = 10.0",
        "max_events_per_minute = 2.0",
    );
    let (_, job) = write_job(dir.path(), "job.toml", &body);
    run(&job, Dates::Pending).await;

    let ctx = datafusion::prelude::SessionContext::new();
    sessionlake_jobs::register_outputs(&ctx, &job)
        .await
        .unwrap();
    let collect = |sql: &'static str| {
        let ctx = ctx.clone();
        async move { ctx.sql(sql).await.unwrap().collect().await.unwrap() }
    };
    let mut sessions = Vec::new();
    for batch in collect(
        "SELECT user_id, session_date, arrow_cast(session_start, 'Int64'), duration_ms, quality, \
         bot_reason IS NOT NULL FROM sessions",
    )
    .await
    {
        let users = strings(batch.column(0));
        let days = batch.column(1).as_primitive::<Date32Type>();
        let starts = batch.column(2).as_primitive::<Int64Type>();
        let lengths = batch.column(3).as_primitive::<Int64Type>();
        let quality = strings(batch.column(4));
        let bots = batch.column(5).as_boolean();
        for row in 0..batch.num_rows() {
            sessions.push((
                users.value(row).to_string(),
                Date32Type::to_naive_date_opt(days.value(row)).unwrap(),
                starts.value(row),
                lengths.value(row),
                quality
                    .is_valid(row)
                    .then(|| quality.value(row).to_string()),
                bots.value(row),
            ));
        }
    }
    assert!(sessions.iter().any(|s| s.5), "some sessions are bots");
    let latest = sessions.iter().map(|s| s.1).max().unwrap();
    let classes = ["good", "medium", "poor"];
    let expected = reference_users(&sessions, &classes, latest);

    let mut actual = Vec::new();
    for batch in collect(
        "SELECT user_id, arrow_cast(first_session_start, 'Int64'), \
         arrow_cast(last_session_start, 'Int64'), lifetime_sessions, total_length_s, \
         median_length_s, sessions_7d, sessions_30d, share_good, share_medium, share_poor, \
         lifetime_quality FROM users ORDER BY 1",
    )
    .await
    {
        let text = |i: usize| strings(batch.column(i));
        let int = |i: usize| batch.column(i).as_primitive::<Int64Type>().clone();
        let float = |i: usize| batch.column(i).as_primitive::<Float64Type>().clone();
        let (users, lifetime) = (text(0), text(11));
        for row in 0..batch.num_rows() {
            actual.push(UserRow {
                user: users.value(row).to_string(),
                first_start: int(1).value(row),
                last_start: int(2).value(row),
                sessions: int(3).value(row),
                total_length_s: float(4).value(row),
                median_length_s: float(5).value(row),
                sessions_7d: int(6).value(row),
                sessions_30d: int(7).value(row),
                shares: (8..11).map(|i| float(i).value(row)).collect(),
                lifetime_quality: lifetime
                    .is_valid(row)
                    .then(|| lifetime.value(row).to_string()),
            });
        }
    }
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(&expected) {
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y.abs().max(1.0);
        assert!(
            a.user == e.user
                && (a.first_start, a.last_start, a.sessions)
                    == (e.first_start, e.last_start, e.sessions)
                && (a.sessions_7d, a.sessions_30d) == (e.sessions_7d, e.sessions_30d)
                && close(a.total_length_s, e.total_length_s)
                && close(a.median_length_s, e.median_length_s)
                && a.shares.iter().zip(&e.shares).all(|(x, y)| close(*x, *y))
                && a.lifetime_quality == e.lifetime_quality,
            "{a:?}\n{e:?}"
        );
    }
    // the windows and classes are not trivially equal for everyone
    assert!(expected.iter().any(|u| u.sessions_7d < u.sessions_30d));
    assert!(expected.iter().any(|u| u.sessions_30d < u.sessions));
    for class in classes {
        assert!(
            expected
                .iter()
                .any(|u| u.lifetime_quality.as_deref() == Some(class)),
            "no user is mostly {class}"
        );
    }

    // the export holds exactly the users the rule selects
    let cohort: Vec<&str> = expected
        .iter()
        .filter(|u| u.median_length_s < 60.0 && u.sessions >= 3)
        .map(|u| u.user.as_str())
        .collect();
    assert!(cohort.len() >= 3, "{cohort:?}");
    let tables = snapshot(&job).await;
    let exported: Vec<String> = tables["exports/short_regulars"]
        .iter()
        .map(|row| row.split('|').next().unwrap().to_string())
        .collect();
    assert_eq!(exported, cohort);
}

#[test]
fn monitoring_key_errors_name_the_key() {
    let error = |extra: &str, metrics: &str| {
        let body = with_keys(&job_toml("lake", "out", extra), "outputs.metrics", metrics);
        let e = sessionlake_jobs::Job::parse(&body, Path::new("bad.toml")).unwrap_err();
        assert_eq!(e.kind, sessionlake_jobs::ErrorKind::Config, "{e}");
        e.message
    };
    let quality = |classes: &str| {
        format!("\n[outputs.sessions.quality]\ninteractions = [\"click\"]\nclasses = [{classes}]\n")
    };
    // unknown keys stay rejected in every new table
    let e = error("\n[outputs.users]\nkeep = true\n", "");
    assert!(e.contains("keep"), "{e}");
    let e = error(
        &quality("{ name = \"good\", duration_over = \"1 minute\" }"),
        "",
    );
    assert!(e.contains("duration_over"), "{e}");
    let e = error("", "segment_by = [\"platform\"]\nsegment_cap = 3");
    assert!(e.contains("segment_cap"), "{e}");
    // values
    let e = error("", "segment_by = [\"user_id\"]");
    assert!(
        e.contains("outputs.metrics.segment_by") && e.contains("user column"),
        "{e}"
    );
    let e = error("", "segment_by = [\"platform\"]\nsegment_limit = 0");
    assert!(e.contains("outputs.metrics.segment_limit"), "{e}");
    let e = error(
        "\n[[alerts]]\nname = \"by_country\"\nmetric = \"sessions\"\nbelow = 1.0\nsegment = \"country\"\n",
        "segment_by = [\"platform\"]",
    );
    assert!(
        e.contains("alerts[2].segment") && e.contains("'country'"),
        "{e}"
    );
    let e = error(
        &quality("{ name = \"good\", duration_at_least = \"soon\" }"),
        "",
    );
    assert!(
        e.contains("outputs.sessions.quality.classes[0].duration_at_least"),
        "{e}"
    );
    let e = error(
        "\n[[exports]]\nname = \"u\"\nfrom = \"users\"\nwhere = \"lifetime_sessions > 1\"\n",
        "",
    );
    assert!(
        e.contains("exports[2].from") && e.contains("[outputs.users]"),
        "{e}"
    );
    let e = error(
        "\n[outputs.users]\n\n[[exports]]\nname = \"u\"\nfrom = \"users\"\ndays = 7\nwhere = \"x\"\n",
        "",
    );
    assert!(e.contains("exports[2].from"), "{e}");
    let e = error(
        "\n[outputs.users]\n\n[[exports]]\nname = \"u\"\nfrom = \"users\"\n",
        "",
    );
    assert!(e.contains("exports[2].where"), "{e}");
}
