//! Whole runs of the `sessionlake` binary: output formats, `-c` / `-f` / stdin, `--lake`,
//! errors on stderr and the documented exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn sessionlake(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessionlake"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("the sessionlake binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const EVENTS: &str = "CREATE TABLE events (user_id VARCHAR, event_time TIMESTAMP) AS VALUES \
    ('a', '2024-01-01T10:00:00'), ('a', '2024-01-01T10:20:00'), ('b', '2024-01-01T10:00:00')";

#[test]
fn sessions_as_csv_with_commands_in_order() {
    let output = sessionlake(&[
        "-q",
        "--format",
        "csv",
        "-c",
        EVENTS,
        "-c",
        "SELECT user_id, duration_ms, event_count FROM sessions('events') ORDER BY user_id",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "user_id,duration_ms,event_count\na,1200000,2\nb,0,1\n"
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn json_and_nd_json_keep_nulls() {
    let json = sessionlake(&["-q", "--format", "json", "-c", "SELECT 1 AS x, NULL AS y"]);
    assert_eq!(stdout(&json), "[{\"x\":1,\"y\":null}]\n");
    let nd = sessionlake(&[
        "-q",
        "--format",
        "nd-json",
        "-c",
        "SELECT * FROM (VALUES (1), (2)) AS t(x) ORDER BY x",
    ]);
    assert_eq!(stdout(&nd), "{\"x\":1}\n{\"x\":2}\n");
}

#[test]
fn table_format_and_timing_line() {
    let output = sessionlake(&["-c", "SELECT 42 AS answer"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output),
        "+--------+\n| answer |\n+--------+\n| 42     |\n+--------+\n"
    );
    let err = stderr(&output);
    assert!(
        err.starts_with("1 row in ") && err.ends_with(" s\n"),
        "{err}"
    );
}

#[test]
fn maxrows_limits_the_table() {
    let output = sessionlake(&[
        "-q",
        "--maxrows",
        "2",
        "-c",
        "SELECT * FROM generate_series(1, 5) AS t(v)",
    ]);
    let text = stdout(&output);
    assert!(text.contains("| 2 |") && !text.contains("| 3 |"), "{text}");
    assert!(text.contains("(2 of 5 rows shown"), "{text}");
}

#[test]
fn file_with_several_statements() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("q.sql");
    std::fs::write(
        &path,
        format!("{EVENTS};\n-- a comment; with a semicolon\nSELECT count(*) AS n FROM sessions('events');\n"),
    )
    .expect("write");
    let output = sessionlake(&["-q", "--format", "csv", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "n\n2\n");
}

#[test]
fn sql_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionlake"))
        .args(["-q", "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"SELECT 7 AS seven;")
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(stdout(&output), "seven\n7\n");
}

#[test]
fn the_sample_lake_opens_with_lake_and_with_create_external_table() {
    let by_flag = sessionlake(&[
        "-q",
        "--format",
        "csv",
        "--lake",
        "events=data/sample_lake",
        "-c",
        "SELECT count(*) AS sessions FROM sessions('events')",
    ]);
    assert_eq!(by_flag.status.code(), Some(0), "{}", stderr(&by_flag));
    let by_sql = sessionlake(&[
        "-q",
        "--format",
        "csv",
        "-c",
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION 'data/sample_lake/'",
        "-c",
        "SELECT count(*) AS sessions FROM sessions('events')",
    ]);
    assert_eq!(by_sql.status.code(), Some(0), "{}", stderr(&by_sql));
    assert_eq!(stdout(&by_flag), stdout(&by_sql));
    let sessions: u64 = stdout(&by_flag)
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("a count");
    assert!(sessions > 1000, "{sessions}");
}

#[test]
fn a_failing_statement_exits_1_with_the_error_on_stderr() {
    let output = sessionlake(&["-c", "SELECT * FROM sessions('missing')"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("sessionize: table 'missing' not found"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn statements_after_a_failure_do_not_run() {
    let output = sessionlake(&["-q", "-c", "SELECT nope", "-c", "SELECT 1 AS never"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!stdout(&output).contains("never"));
}

#[test]
fn usage_errors_exit_2() {
    let bad_format = sessionlake(&["--format", "xml", "-c", "SELECT 1"]);
    assert_eq!(bad_format.status.code(), Some(2));
    assert!(stderr(&bad_format).contains("invalid value 'xml'"));

    let bad_lake = sessionlake(&["--lake", "events", "-c", "SELECT 1"]);
    assert_eq!(bad_lake.status.code(), Some(2));
    assert!(stderr(&bad_lake).contains("expected NAME=PATH"));

    let missing_dir = sessionlake(&["--lake", "events=no/such/dir", "-c", "SELECT 1"]);
    assert_eq!(missing_dir.status.code(), Some(2));
    assert!(stderr(&missing_dir).contains("directory 'no/such/dir' not found"));

    let missing_file = sessionlake(&["-f", "no/such/file.sql"]);
    assert_eq!(missing_file.status.code(), Some(2));
    assert!(stderr(&missing_file).contains("cannot read -f no/such/file.sql"));
}

#[test]
fn a_closed_stdout_is_success() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionlake"))
        .args([
            "-q",
            "--format",
            "csv",
            "-c",
            "SELECT * FROM generate_series(1, 2000000)",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // read one line, then close the pipe as `| head -1` would
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0_u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("first bytes");
    drop(stdout);
    let output = child.wait_with_output().expect("wait");
    assert_eq!(&first, b"value\n");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn memory_limit_bounds_execution() {
    let bad = sessionlake(&["-m", "2x", "-c", "SELECT 1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("'2x' is not a size"),
        "{}",
        stderr(&bad)
    );

    let zero = sessionlake(&["--memory-limit", "0", "-c", "SELECT 1"]);
    assert_eq!(zero.status.code(), Some(2));

    let limited = sessionlake(&[
        "-q",
        "--format",
        "csv",
        "--memory-limit",
        "256m",
        "-c",
        EVENTS,
        "-c",
        "SELECT user_id, duration_ms, event_count FROM sessions('events') ORDER BY user_id",
    ]);
    assert_eq!(limited.status.code(), Some(0), "{}", stderr(&limited));
    assert_eq!(
        stdout(&limited),
        "user_id,duration_ms,event_count\na,1200000,2\nb,0,1\n"
    );

    // far too little memory: the query fails with DataFusion's error, not a crash
    let starved = sessionlake(&[
        "-q",
        "-m",
        "1k",
        "-c",
        "SELECT value % 1000 AS k, count(*) FROM generate_series(1, 1000000) GROUP BY 1 ORDER BY 1",
    ]);
    assert_eq!(starved.status.code(), Some(1), "{}", stderr(&starved));
    assert!(
        stderr(&starved).contains("Resources exhausted"),
        "{}",
        stderr(&starved)
    );
}
