//! Whole runs of the `sessionlake` binary: output formats, `-c` / `-f` / stdin, `--lake`,
//! errors on stderr and the documented exit codes.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{command_in, repo_root, run, stderr, stdout};

fn sessionlake(args: &[&str]) -> Output {
    run(command_in(repo_root(), args))
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

/// The chart's counts against plain SQL over the same sessions: the line under the bars tells
/// the sessions below and at or above the bins, and shares are of all sessions.
#[test]
fn histogram_chart_counts_the_values_outside_its_bins() {
    let lake = ["--lake", "events=data/sample_lake", "-q"];
    let counts = sessionlake(
        &[
            &lake[..],
            &[
                "--format",
                "csv",
                "-c",
                "SELECT count(*) FILTER (WHERE duration_ms < 60000), \
                 count(*) FILTER (WHERE duration_ms >= 60000 AND duration_ms < 120000), \
                 count(*) FILTER (WHERE duration_ms >= 600000), count(duration_ms) \
                 FROM sessions('events')",
            ],
        ]
        .concat(),
    );
    let counts = stdout(&counts);
    let numbers: Vec<i64> = counts
        .lines()
        .nth(1)
        .expect("a row of counts")
        .split(',')
        .map(|n| n.parse().expect("a count"))
        .collect();
    let &[below, first_bin, above, total] = numbers.as_slice() else {
        panic!("{counts}");
    };
    assert!(
        below > 0 && above > 0,
        "the bins leave values out: {counts}"
    );
    let percent = |n: i64| 100.0 * n as f64 / total as f64;

    let chart = sessionlake(
        &[
            &lake[..],
            &[
                "-c",
                "SELECT HIST(duration_ms, 60000, 600000, 60000) AS length FROM sessions('events')",
            ],
        ]
        .concat(),
    );
    let chart = stdout(&chart);
    assert!(
        chart.contains(&format!(
            "9 bins + 2 open-ended, {total} values (chart below)"
        )),
        "{chart}"
    );
    let first_line = chart
        .lines()
        .find(|line| line.trim_start().starts_with("[60000, 120000)"))
        .expect("a bar for [60000, 120000)");
    assert!(
        first_line.ends_with(&format!(" {first_bin} {:5.1}%", percent(first_bin))),
        "{first_line}"
    );
    let outside = format!(
        "  {below} values ({:.1}%) below 60000; {above} values ({:.1}%) at or above 600000\n",
        percent(below),
        percent(above)
    );
    assert!(chart.ends_with(&outside), "{chart}");
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
        stderr(&output).contains("sessions: table 'missing' not found"),
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

/// A scheduler's timeout sends SIGTERM: the run stops with 143 (128 + 15), says so, and leaves
/// neither the spill files of its query nor a half-written `-o` file behind.
#[test]
fn sigterm_stops_a_script_and_removes_its_spill_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spill_root = dir.path().join("tmp");
    std::fs::create_dir(&spill_root).expect("spill root");
    let out = dir.path().join("out.csv");
    let child = Command::new(env!("CARGO_BIN_EXE_sessionlake"))
        .env("TMPDIR", &spill_root)
        .args(["-q", "--format", "csv", "-m", "32m", "-o"])
        .arg(&out)
        .args([
            "-c",
            "SELECT v FROM generate_series(1, 100000000) AS t(v) ORDER BY random()",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // the sort spills under the 32 MiB cap: wait for its first spill file
    let started = std::time::Instant::now();
    while files_below(&spill_root) == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no spill file in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("sessionlake: stopped by SIGTERM"),
        "{}",
        stderr(&output)
    );
    let left: Vec<_> = std::fs::read_dir(&spill_root)
        .expect("spill root")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let outputs: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(outputs, ["tmp"], "no output file, finished or not");
}

/// How many files are in `dir` and its subdirectories.
fn files_below(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => files_below(&e.path()),
                    _ => 1,
                })
                .sum()
        })
        .unwrap_or(0)
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

/// The `heap` line of `\memory` with `GLIBC_TUNABLES` as given (`None`: unset).
fn heap_line(tunables: Option<&str>) -> String {
    let mut command = command_in(repo_root(), &["-c", "\\memory"]);
    match tunables {
        Some(tunables) => command.env("GLIBC_TUNABLES", tunables),
        None => command.env_remove("GLIBC_TUNABLES"),
    };
    let output = run(command);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    text.lines()
        .find_map(|line| line.strip_prefix("heap "))
        .unwrap_or_else(|| panic!("no heap line: {text}"))
        .to_string()
}

#[test]
fn the_heap_gets_huge_pages_where_the_kernel_gives_them_on_request() {
    let policy =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let by_default = heap_line(None);
    let other_tunable = heap_line(Some("glibc.malloc.arena_max=4"));
    let refused = heap_line(Some("glibc.malloc.hugetlb=0"));
    if cfg!(all(target_os = "linux", target_env = "gnu")) && policy.contains("[madvise]") {
        // the binary started itself again with the tunable added to what was set
        let asked = "transparent huge pages (glibc.malloc.hugetlb=1)";
        assert_eq!(by_default, asked);
        assert_eq!(other_tunable, asked);
        assert_eq!(refused, "4 KiB pages (glibc.malloc.hugetlb=0)");
    } else if policy.contains("[always]") {
        assert_eq!(
            by_default,
            "transparent huge pages (the kernel's policy is always)"
        );
        assert_eq!(refused, by_default);
    } else {
        assert!(by_default.starts_with("4 KiB pages"), "{by_default}");
        assert_eq!(refused, by_default);
    }
}

#[test]
fn memory_is_bounded_by_default_and_memory_shows_the_limit() {
    // no -m: a spilling pool of three quarters of the memory this process may use
    let default = sessionlake(&["-c", "\\memory"]);
    assert_eq!(default.status.code(), Some(0), "{}", stderr(&default));
    let text = stdout(&default);
    let limit = text.lines().next().unwrap_or_default();
    assert!(limit.starts_with("limit "), "{text}");
    assert!(limit.contains("(75% of "), "{text}");
    assert!(limit.ends_with("; -m SIZE or -m none to change)"), "{text}");
    assert_eq!(text.lines().nth(1), Some("in use 0 B"), "{text}");
    assert!(
        text.lines().nth(2).is_some_and(|l| l.starts_with("heap ")),
        "{text}"
    );

    let asked = sessionlake(&["-m", "2g", "-c", "\\memory"]);
    assert_eq!(stdout(&asked).lines().next(), Some("limit 2.0 GiB (-m)"));
    let none = sessionlake(&["-m", "none", "-c", "\\memory"]);
    assert!(
        stdout(&none).starts_with("limit unbounded (-m none"),
        "{}",
        stdout(&none)
    );
    // queries run the same under each
    for memory in ["default", "none"] {
        let out = sessionlake(&[
            "-q",
            "--format",
            "csv",
            "-m",
            memory,
            "-c",
            EVENTS,
            "-c",
            "SELECT user_id, duration_ms FROM sessions('events') ORDER BY user_id",
        ]);
        assert_eq!(
            stdout(&out),
            "user_id,duration_ms\na,1200000\nb,0\n",
            "{memory}"
        );
    }
    let help = sessionlake(&["--help"]);
    assert!(
        stdout(&help).contains("Default: 75% of the machine's memory"),
        "{}",
        stdout(&help)
    );
}

/// Runs the binary in `dir` (relative output paths land there), with `dir` as its home.
fn sessionlake_in(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut command = command_in(dir, args);
    command.env("HOME", dir);
    run(command)
}

/// The names in `dir`, sorted.
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn output_file_gets_the_results_and_stdout_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = sessionlake_in(
        dir.path(),
        &[
            "-q",
            "--format",
            "csv",
            "-o",
            "out.csv",
            "-c",
            EVENTS,
            "-c",
            "SELECT user_id, event_count FROM sessions('events') ORDER BY 1",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.csv")).expect("out.csv"),
        "user_id,event_count\na,2\nb,1\n"
    );
    assert_eq!(listing(dir.path()), ["out.csv"]);
}

#[test]
fn parquet_output_reads_back_equal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let query = "SELECT user_id, session_start, duration_ms FROM sessions('events') ORDER BY 1";
    let written = sessionlake_in(
        dir.path(),
        &[
            "-q",
            "--format",
            "parquet",
            "-o",
            "s.parquet",
            "-c",
            EVENTS,
            "-c",
            query,
        ],
    );
    assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    let direct = sessionlake_in(
        dir.path(),
        &["-q", "--format", "csv", "-c", EVENTS, "-c", query],
    );
    let read_back = sessionlake_in(
        dir.path(),
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            "CREATE EXTERNAL TABLE s STORED AS PARQUET LOCATION 's.parquet'",
            "-c",
            "SELECT * FROM s ORDER BY 1",
        ],
    );
    assert_eq!(read_back.status.code(), Some(0), "{}", stderr(&read_back));
    assert_eq!(stdout(&read_back), stdout(&direct));
    assert!(
        stdout(&direct).contains("a,2024-01-01T10:00:00Z,1200000"),
        "{}",
        stdout(&direct)
    );
}

#[test]
fn a_failed_run_leaves_no_output_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("keep.csv"), "old\n").expect("write");
    for (format, args) in [
        ("csv", vec!["-c", "SELECT 1 AS x", "-c", "SELEC 2"]),
        (
            "parquet",
            vec!["-c", "SELECT 1 AS x", "-c", "SELECT 2 AS y"],
        ),
        ("parquet", vec!["-c", "CREATE TABLE t (x INT)"]),
    ] {
        let mut all = vec!["-q", "--format", format, "-o", "keep.csv"];
        all.extend(args);
        let output = sessionlake_in(dir.path(), &all);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{format}: {}",
            stderr(&output)
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.csv")).expect("keep.csv"),
            "old\n",
            "{format}: the previous file is untouched"
        );
        assert_eq!(
            listing(dir.path()),
            ["keep.csv"],
            "{format}: no temporary file is left"
        );
    }
    let second = sessionlake_in(
        dir.path(),
        &[
            "--format",
            "parquet",
            "-o",
            "two.parquet",
            "-c",
            "SELECT 1 AS x; SELECT 2 AS y",
        ],
    );
    assert!(
        stderr(&second).contains("-o two.parquet: a Parquet file holds one result"),
        "{}",
        stderr(&second)
    );
}

#[test]
fn rc_file_runs_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("setup.sql"),
        "\\pset format csv\n\\quiet on\nSET sessionlake.gap = '1 hour';\n",
    )
    .expect("write");
    let query = "SELECT count(*) AS n FROM sessions('events')";
    let with_rc = sessionlake_in(dir.path(), &["-r", "setup.sql", "-c", EVENTS, "-c", query]);
    assert_eq!(with_rc.status.code(), Some(0), "{}", stderr(&with_rc));
    // a gap of one hour joins user a's two events, 20 minutes apart: 2 sessions, not 3
    assert_eq!(stdout(&with_rc), "n\n2\n");
    assert_eq!(stderr(&with_rc), "output format is csv\nquiet mode on\n");

    // the default rc file is ~/.sessionlakerc
    std::fs::write(dir.path().join(".sessionlakerc"), "\\pset format tsv\n").expect("write");
    let default_rc = sessionlake_in(dir.path(), &["-q", "-c", "SELECT 1 AS a, 2 AS b"]);
    assert_eq!(stdout(&default_rc), "a\tb\n1\t2\n");

    // an error in the rc file names the file and line, and nothing else runs
    std::fs::write(dir.path().join("bad.sql"), "SELECT 1;\nSELEC 2;\n").expect("write");
    let bad = sessionlake_in(dir.path(), &["-q", "-r", "bad.sql", "-c", "SELECT 'never'"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).starts_with("Error: bad.sql:2: "),
        "{}",
        stderr(&bad)
    );
    assert!(!stdout(&bad).contains("never"));
}
