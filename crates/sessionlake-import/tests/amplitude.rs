//! `import_amplitude` end to end on seeded exports from `sessionlake_testkit::amplitude_export`:
//! sessions of the imported lake against the naive reference, idempotence, partition
//! replacement, bad lines, corrupt files and directory input.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sessionlake_import::{ErrorKind, ImportError, ImportOptions, ImportSummary, import_amplitude};
use sessionlake_testkit::amplitude_export::{AmplitudeExport, ExportSpec, gzip_lines, write_zip};
use sessionlake_testkit::random_events::{EventSetShape, random_events};
use sessionlake_testkit::reference::{self, Event, Mode, Rules};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

fn import(input: &Path, out: &Path, skip_bad_lines: bool) -> Result<ImportSummary, ImportError> {
    import_amplitude(input, out, ImportOptions { skip_bad_lines }, &mut |_| {})
}

fn day_of(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms)
        .expect("time in range")
        .date_naive()
}

/// Every file under `dir`, hidden ones too, by path relative to `dir`, with its bytes.
fn lake_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let relative = path.strip_prefix(root).expect("inside").to_path_buf();
                files.insert(relative, fs::read(&path).expect("read"));
            }
        }
    }
    let mut files = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut files);
    }
    files
}

/// The rows of `sql` on the lake at `lake`, every value as text (NULL as `NULL`), sorted.
async fn query(lake: &Path, sql: &str) -> Vec<Vec<String>> {
    let ctx = sessionlake_engine::new_context().expect("context");
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}/'",
        lake.display()
    ))
    .await
    .expect("register the lake");
    let batches = ctx
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("query");
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Utf8).expect("cast to text"))
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|c| {
                        let text = c.as_string::<i32>();
                        if text.is_valid(row) {
                            text.value(row).to_string()
                        } else {
                            "NULL".to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    rows.sort();
    rows
}

const SESSIONS_SQL: &str = "SELECT user_id, session_key, CAST(session_start AS BIGINT) / 1000, \
     CAST(session_end AS BIGINT) / 1000, duration_ms, event_count, first_event_type, \
     last_event_type FROM sessions";

/// The reference's sessions, as [`query`] returns the engine's.
fn reference_sessions(events: &[Event], mode: Mode) -> Vec<Vec<String>> {
    let rules = Rules {
        mode,
        gap_ms: 30 * MINUTE_MS,
        max_length_ms: Some(DAY_MS),
        inactive_event_types: Vec::new(),
        event_gaps_ms: BTreeMap::new(),
        reported: None,
        counted: Vec::new(),
    };
    let mut rows: Vec<Vec<String>> = reference::sessions(events, &rules)
        .into_iter()
        .map(|s| {
            vec![
                s.user,
                s.session_key.to_string(),
                s.session_start.to_string(),
                s.session_end.to_string(),
                s.duration_ms.to_string(),
                s.event_count.to_string(),
                s.first_event_type,
                s.last_event_type,
            ]
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn imported_sessions_equal_the_reference_in_gap_and_instrumented_modes() {
    let export = AmplitudeExport::generate(&ExportSpec::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("export.zip");
    export.write_zip(&zip).expect("zip");
    let out = dir.path().join("lake");
    let summary = import(&zip, &out, false).expect("import");

    let event_days: BTreeSet<NaiveDate> = export
        .events
        .iter()
        .map(|e| day_of(e.time.expect("timed")))
        .collect();
    assert!(event_days.len() >= 3, "{event_days:?}");
    assert!(export.events_off_their_file_day() > 0);
    assert_eq!(summary.files, export.files.len());
    assert_eq!(summary.lines, export.events.len() as u64);
    assert_eq!(summary.events_written, export.events.len() as u64);
    assert_eq!(summary.bad_lines_skipped, 0);
    assert_eq!(summary.days, event_days.iter().copied().collect::<Vec<_>>());
    let partitions: BTreeSet<String> = fs::read_dir(&out)
        .expect("lake")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = event_days
        .iter()
        .map(|d| format!("event_date={d}"))
        .collect();
    assert_eq!(partitions, expected, "no staging directory is left");

    // every event once, each in the partition of its own UTC day
    let counts = query(
        &out,
        "SELECT count(*), count(DISTINCT event_id), \
         count(*) FILTER (WHERE CAST(event_date AS DATE) <> CAST(event_time AS DATE)), \
         count(*) FILTER (WHERE user_id IS NULL), count(*) FILTER (WHERE session_id = -1) \
         FROM events",
    )
    .await;
    let null_users = export.events.iter().filter(|e| e.user.is_none()).count();
    let no_session = export
        .events
        .iter()
        .filter(|e| e.session_id == Some(-1))
        .count();
    assert!(null_users > 0 && no_session > 0);
    let n = export.events.len().to_string();
    assert_eq!(
        counts,
        [vec![
            n.clone(),
            n,
            "0".into(),
            null_users.to_string(),
            no_session.to_string()
        ]]
    );

    let gap = query(
        &out,
        &SESSIONS_SQL.replace("sessions", "sessions('events')"),
    )
    .await;
    assert_eq!(gap, reference_sessions(&export.events, Mode::Gap));
    assert!(gap.len() > 50, "{} sessions", gap.len());
    let instrumented = query(
        &out,
        &SESSIONS_SQL.replace("sessions", "sessions('events', 'mode=instrumented')"),
    )
    .await;
    assert_eq!(
        instrumented,
        reference_sessions(&export.events, Mode::Instrumented)
    );
}

#[tokio::test]
async fn json_columns_are_queryable_as_text() {
    let export = AmplitudeExport::generate(&ExportSpec::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("export.zip");
    export.write_zip(&zip).expect("zip");
    let out = dir.path().join("lake");
    import(&zip, &out, false).expect("import");
    let home_pages = export
        .events
        .iter()
        .filter(|e| e.page.as_deref() == Some("/home"))
        .count();
    let rows = query(
        &out,
        "SELECT count(*) FROM events WHERE event_properties = '{\"page\":\"/home\"}'",
    )
    .await;
    assert_eq!(rows, [vec![home_pages.to_string()]]);
    let quoted = query(
        &out,
        "SELECT DISTINCT city FROM events WHERE city LIKE 'S%'",
    )
    .await;
    assert_eq!(quoted, [vec!["São \"Paulo\"".to_string()]]);
}

#[test]
fn a_rerun_writes_identical_bytes_and_a_second_export_replaces_only_its_days() {
    let export = AmplitudeExport::generate(&ExportSpec::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("export.zip");
    export.write_zip(&zip).expect("zip");
    let out = dir.path().join("lake");
    let first = import(&zip, &out, false).expect("import");
    let before = lake_files(&out);
    let second = import(&zip, &out, false).expect("rerun");
    assert_eq!(first, second);
    assert_eq!(lake_files(&out), before, "a rerun changes no byte");

    // another export whose events all fall on the lake's second day
    let replaced_day = first.days[1];
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let shape = EventSetShape {
        max_events: 3_000,
        max_users: 12,
        allow_ties: true,
    };
    let other_events: Vec<Event> = random_events(&mut rng, &shape)
        .into_iter()
        .filter(|e| e.time.is_some_and(|t| day_of(t) == replaced_day))
        .collect();
    assert!(!other_events.is_empty());
    let other = AmplitudeExport::from_events(other_events, 1, &mut rng);
    let other_zip = dir.path().join("other.zip");
    other.write_zip(&other_zip).expect("zip");
    let summary = import(&other_zip, &out, false).expect("second export");
    assert_eq!(summary.days, [replaced_day]);
    assert_eq!(summary.events_written, other.events.len() as u64);

    let after = lake_files(&out);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    let replaced = PathBuf::from(format!("event_date={replaced_day}/part-00000.parquet"));
    for (path, bytes) in &after {
        if *path == replaced {
            assert_ne!(bytes, &before[path], "{} replaced", path.display());
        } else {
            assert_eq!(bytes, &before[path], "{} untouched", path.display());
        }
    }
    // the day holds exactly the second export's events
    let direct = dir.path().join("direct");
    import(&other_zip, &direct, false).expect("import alone");
    assert_eq!(after[&replaced], lake_files(&direct)[&replaced]);
}

#[test]
fn a_directory_gives_the_same_lake_as_the_zip() {
    let export = AmplitudeExport::generate(&ExportSpec::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("export.zip");
    export.write_zip(&zip).expect("zip");
    let extracted = dir.path().join("extracted");
    export.write_dir(&extracted).expect("dir");
    let from_zip = dir.path().join("from_zip");
    let from_dir = dir.path().join("from_dir");
    let from_project_dir = dir.path().join("from_project_dir");
    let zip_summary = import(&zip, &from_zip, false).expect("zip");
    let dir_summary = import(&extracted, &from_dir, false).expect("dir");
    import(&extracted.join("187520"), &from_project_dir, false).expect("project dir");
    assert_eq!(zip_summary, dir_summary);
    let lake = lake_files(&from_zip);
    assert!(!lake.is_empty());
    assert_eq!(lake_files(&from_dir), lake);
    assert_eq!(lake_files(&from_project_dir), lake);
}

/// A small export: two good hour files and one with bad lines at lines 2, 4 and 5.
fn export_with_bad_lines(dir: &Path) -> PathBuf {
    let good = |id: i64, time: &str| {
        format!(
            r#"{{"event_time":"{time}","user_id":"u1","session_id":1704103200000,"event_type":"click","event_id":{id}}}"#
        )
    };
    let hour_files = vec![
        (
            "7/7_2024-01-01_10#0.json.gz".to_string(),
            gzip_lines(
                &[
                    good(1, "2024-01-01 10:00:00"),
                    good(2, "2024-01-01 10:05:00"),
                ],
                1,
            ),
        ),
        (
            "7/7_2024-01-01_11#0.json.gz".to_string(),
            gzip_lines(
                &[
                    good(3, "2024-01-01 11:00:00"),
                    r#"{"event_time":"2024-01-01 11:01:00","user_id":"#.to_string(),
                    good(4, "2024-01-01 11:02:00"),
                    r#"{"user_id":"u1","event_type":"click"}"#.to_string(),
                    r#"{"event_time":"2024-01-01T11:03","user_id":"u1"}"#.to_string(),
                    good(5, "2024-01-02 00:10:00"),
                ],
                1,
            ),
        ),
    ];
    let zip = dir.join("export.zip");
    write_zip(&zip, &hour_files).expect("zip");
    zip
}

#[test]
fn a_bad_line_names_its_file_and_line_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = export_with_bad_lines(dir.path());
    let out = dir.path().join("lake");
    // an earlier import of a good export is in the lake
    let earlier = AmplitudeExport::generate(&ExportSpec {
        max_events: 200,
        ..ExportSpec::default()
    });
    let earlier_zip = dir.path().join("earlier.zip");
    earlier.write_zip(&earlier_zip).expect("zip");
    import(&earlier_zip, &out, false).expect("earlier import");
    let before = lake_files(&out);

    let err = import(&zip, &out, false).expect_err("bad line");
    assert_eq!(err.kind(), ErrorKind::BadData);
    let prefix = format!(
        "{}!/7/7_2024-01-01_11#0.json.gz:2: malformed JSON: ",
        zip.display()
    );
    assert!(err.message().starts_with(&prefix), "{err}");
    assert_eq!(
        lake_files(&out),
        before,
        "the lake is unchanged, staging removed"
    );

    let fresh = dir.path().join("fresh");
    let err = import(&zip, &fresh, false).expect_err("bad line");
    assert_eq!(err.kind(), ErrorKind::BadData);
    assert!(
        !fresh.exists(),
        "a failed import into a new lake leaves no directory"
    );

    let summary = import(&zip, &fresh, true).expect("skipping bad lines");
    assert_eq!(summary.files, 2);
    assert_eq!(summary.lines, 8);
    assert_eq!(summary.bad_lines_skipped, 3);
    assert_eq!(summary.events_written, 5);
    let days: Vec<String> = summary.days.iter().map(|d| d.to_string()).collect();
    assert_eq!(days, ["2024-01-01", "2024-01-02"]);
    assert_eq!(
        summary.to_string(),
        "imported 2 files, 8 lines: 5 events written, 3 bad lines skipped, 2 days written \
         (2024-01-01 to 2024-01-02)"
    );
}

#[test]
fn the_other_bad_lines_name_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let export = dir.path().join("export");
    fs::create_dir(&export).expect("dir");
    let file = export.join("7_2024-01-01_11#0.json.gz");
    let out = dir.path().join("lake");
    for (line, message) in [
        (
            r#"{"user_id":"u1"}"#,
            "no event_time (every Amplitude event has one)",
        ),
        (
            r#"{"event_time":"2024-01-01T11:03","user_id":"u1"}"#,
            "event_time: expected a time YYYY-MM-DD HH:MM:SS[.ffffff], found \"2024-01-01T11:03\"",
        ),
        (
            r#"{"event_time":"2024-01-01 11:03:00","session_id":"x"}"#,
            "session_id: expected an integer, found \"x\"",
        ),
    ] {
        fs::write(
            &file,
            gzip_lines(
                &[
                    r#"{"event_time":"2024-01-01 11:00:00"}"#.to_string(),
                    line.to_string(),
                ],
                1,
            ),
        )
        .expect("write");
        let err = import(&export, &out, false).expect_err(line);
        assert_eq!(err.message(), format!("{}:2: {message}", file.display()));
    }
}

#[test]
fn corrupt_files_and_bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("lake");

    let missing = dir.path().join("missing.zip");
    let err = import(&missing, &out, false).expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::Input);
    assert!(
        err.message()
            .starts_with(&format!("cannot read the input {}: ", missing.display())),
        "{err}"
    );

    let text = dir.path().join("notes.txt");
    fs::write(&text, "not an export").expect("write");
    let err = import(&text, &out, false).expect_err("not a zip");
    assert_eq!(err.kind(), ErrorKind::Input);
    assert!(
        err.message().starts_with(&format!(
            "{} is neither a zip file nor a directory",
            text.display()
        )),
        "{err}"
    );

    let broken_zip = dir.path().join("broken.zip");
    fs::write(&broken_zip, b"PK\x03\x04 and then nothing of a zip").expect("write");
    let err = import(&broken_zip, &out, false).expect_err("corrupt zip");
    assert_eq!(err.kind(), ErrorKind::BadData);
    assert!(
        err.message()
            .starts_with(&format!("{}: corrupt zip file: ", broken_zip.display())),
        "{err}"
    );

    let empty_dir = dir.path().join("empty");
    fs::create_dir(&empty_dir).expect("dir");
    let err = import(&empty_dir, &out, false).expect_err("no files");
    assert_eq!(err.kind(), ErrorKind::Input);
    assert!(err.message().contains("holds no .json.gz files"), "{err}");

    // a second gzip member with a damaged header, and a member cut short
    let lines: Vec<String> = (0..200)
        .map(|i| format!(r#"{{"event_time":"2024-01-01 10:00:00","event_id":{i}}}"#))
        .collect();
    let first_member = gzip_lines(&lines[..100], 1);
    let mut second_member = gzip_lines(&lines[100..], 1);
    second_member[0] ^= 0xff;
    let bad_header = [first_member.clone(), second_member].concat();
    let full = gzip_lines(&lines, 1);
    let cut_short = full[..full.len() - 20].to_vec();
    for (gzip, after_line) in [(bad_header, 100), (cut_short, 0)] {
        let corrupt = vec![("7/7_2024-01-01_10#0.json.gz".to_string(), gzip)];
        let zip = dir.path().join("corrupt.zip");
        write_zip(&zip, &corrupt).expect("zip");
        for skip in [false, true] {
            let err = import(&zip, &out, skip).expect_err("corrupt gzip");
            assert_eq!(err.kind(), ErrorKind::BadData);
            let prefix = format!(
                "{}!/7/7_2024-01-01_10#0.json.gz: corrupt gzip data after line ",
                zip.display()
            );
            assert!(err.message().starts_with(&prefix), "{err}");
            if after_line > 0 {
                assert!(
                    err.message()
                        .starts_with(&format!("{prefix}{after_line}: ")),
                    "{err}"
                );
            }
        }
    }
    assert!(!out.exists(), "no failed import left a lake behind");
}

#[test]
fn progress_reaches_every_file() {
    let export = AmplitudeExport::generate(&ExportSpec {
        max_events: 300,
        ..ExportSpec::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("export.zip");
    export.write_zip(&zip).expect("zip");
    let mut reports = Vec::new();
    let summary = import_amplitude(
        &zip,
        &dir.path().join("lake"),
        ImportOptions::default(),
        &mut |p| reports.push(p),
    )
    .expect("import");
    let last = reports.last().expect("reports");
    assert_eq!(reports.len(), export.files.len() + 1);
    assert_eq!(reports[0].files_done, 0);
    assert_eq!(last.files_done, export.files.len());
    assert_eq!(last.files_total, export.files.len());
    assert_eq!(last.bytes_done, last.bytes_total);
    assert_eq!(last.lines, summary.lines);
}
