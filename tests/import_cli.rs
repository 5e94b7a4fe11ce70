//! `sessionlake import amplitude` as a whole run of the binary: the summary line, the lake it
//! writes being queryable with `--lake`, and the exit codes 0, 1 and 2.

mod common;

use std::path::Path;

use common::{command_in, repo_root, run, stderr, stdout};
use sessionlake_testkit::amplitude_export::{AmplitudeExport, ExportSpec, gzip_lines, write_zip};

fn sessionlake(dir: &Path, args: &[&str]) -> std::process::Output {
    run(command_in(dir, args))
}

/// `sessionlake import amplitude INPUT --out lake` in `dir`, with `more` flags.
fn import_into_lake(dir: &Path, input: &str, more: &[&str]) -> std::process::Output {
    let mut args = vec!["import", "amplitude", input, "--out", "lake"];
    args.extend_from_slice(more);
    sessionlake(dir, &args)
}

/// Checks that `output` exited with `code` and its stderr starts with `prefix`.
fn assert_failed(output: &std::process::Output, code: i32, prefix: &str) {
    assert_eq!(output.status.code(), Some(code));
    let message = stderr(output);
    assert!(message.starts_with(prefix), "{message}");
}

#[test]
fn imports_an_export_prints_one_summary_line_and_the_lake_answers_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let export = AmplitudeExport::generate(&ExportSpec {
        max_events: 400,
        ..ExportSpec::default()
    });
    export
        .write_zip(&dir.path().join("export.zip"))
        .expect("zip");
    let output = import_into_lake(dir.path(), "export.zip", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    let summary = stderr(&output);
    let events = export.events.len();
    let expected_start = format!(
        "imported {} files, {events} lines: {events} events written, 0 bad lines skipped, ",
        export.files.len()
    );
    assert!(summary.starts_with(&expected_start), "{summary}");
    assert_eq!(summary.lines().count(), 1, "{summary}");

    let query = sessionlake(
        dir.path(),
        &[
            "-q",
            "--format",
            "csv",
            "--lake",
            "events=lake",
            "-c",
            "SELECT count(*) AS events FROM events",
        ],
    );
    assert_eq!(query.status.code(), Some(0), "{}", stderr(&query));
    assert_eq!(stdout(&query), format!("events\n{events}\n"));
    let sessions = sessionlake(
        dir.path(),
        &[
            "-q",
            "--lake",
            "events=lake",
            "-c",
            "SELECT count(*) FROM sessions('events')",
        ],
    );
    assert_eq!(sessions.status.code(), Some(0), "{}", stderr(&sessions));
}

#[test]
fn bad_lines_exit_1_unless_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = vec![
        r#"{"event_time":"2024-01-01 10:00:00","user_id":"u1"}"#.to_string(),
        "not json".to_string(),
    ];
    write_zip(
        &dir.path().join("export.zip"),
        &[(
            "9/9_2024-01-01_10#0.json.gz".to_string(),
            gzip_lines(&lines, 1),
        )],
    )
    .expect("zip");
    let failed = import_into_lake(dir.path(), "export.zip", &[]);
    assert_failed(
        &failed,
        1,
        "sessionlake import amplitude: export.zip!/9/9_2024-01-01_10#0.json.gz:2: malformed JSON: ",
    );
    assert!(!dir.path().join("lake").exists());

    let skipped = import_into_lake(dir.path(), "export.zip", &["--skip-bad-lines"]);
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    assert_eq!(
        stderr(&skipped),
        "imported 1 files, 2 lines: 1 events written, 1 bad lines skipped, 1 days written \
         (2024-01-01 to 2024-01-01)\n"
    );
    assert!(
        dir.path()
            .join("lake/event_date=2024-01-01/part-00000.parquet")
            .is_file()
    );
}

#[test]
fn a_missing_input_exits_2_and_a_missing_out_flag_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = import_into_lake(dir.path(), "nowhere.zip", &[]);
    assert_failed(
        &missing,
        2,
        "sessionlake import amplitude: cannot read the input nowhere.zip: ",
    );
    assert!(!dir.path().join("lake").exists());

    // clap refuses this before anything runs, so the repository root is a safe place
    let no_out = sessionlake(repo_root(), &["import", "amplitude", "nowhere.zip"]);
    assert_eq!(no_out.status.code(), Some(2));
    assert!(
        stderr(&no_out).contains("--out <LAKE>"),
        "{}",
        stderr(&no_out)
    );
}
