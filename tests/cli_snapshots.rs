//! Snapshots of whole `sessionlake` runs (exit code, stdout and stderr) with `insta-cmd`:
//! formats, `-c`, `-f`, backslash commands, errors and exit codes. Timing lines are filtered.
//! The snapshots live in `tests/snapshots/`; after an intended change of output, review the new
//! ones with `INSTA_UPDATE=always cargo test --test cli_snapshots` and `git diff`.

use std::process::Command;

use insta_cmd::assert_cmd_snapshot;

/// The binary run from the repository root, with a home directory that has no rc file.
fn cli() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessionlake"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HOME", "/nonexistent-home")
        .env("XDG_DATA_HOME", "/nonexistent-home/.local/share");
    command
}

/// `cli()` with the sample lake registered as `events`.
fn with_lake() -> Command {
    let mut command = cli();
    command.args(["--lake", "events=data/sample_lake"]);
    command
}

/// Runs `body` with the timing of `N rows in X s` lines replaced.
fn filtered(body: impl FnOnce()) {
    insta::with_settings!({filters => vec![
        (r"(\d+ rows?) in \d+\.\d+ s", "$1 in [TIME] s"),
    ]}, {
        body()
    });
}

const SESSIONS_PER_DAY: &str = "SELECT date_trunc('day', session_start) AS day, count(*) AS \
    sessions, count(DISTINCT user_id) AS users FROM sessions('events') GROUP BY 1 ORDER BY 1 \
    LIMIT 3";

#[test]
fn table_format_with_timing_line() {
    filtered(|| assert_cmd_snapshot!(with_lake().args(["-c", SESSIONS_PER_DAY])));
}

#[test]
fn csv_format() {
    assert_cmd_snapshot!(with_lake().args(["-q", "--format", "csv", "-c", SESSIONS_PER_DAY]));
}

#[test]
fn tsv_format() {
    assert_cmd_snapshot!(with_lake().args(["-q", "--format", "tsv", "-c", SESSIONS_PER_DAY]));
}

#[test]
fn json_format() {
    assert_cmd_snapshot!(with_lake().args(["-q", "--format", "json", "-c", SESSIONS_PER_DAY]));
}

#[test]
fn nd_json_format() {
    assert_cmd_snapshot!(with_lake().args(["-q", "--format", "nd-json", "-c", SESSIONS_PER_DAY]));
}

#[test]
fn repeated_commands_run_in_order() {
    filtered(|| {
        assert_cmd_snapshot!(cli().args([
            "-c",
            "CREATE TABLE e (user_id VARCHAR, event_time TIMESTAMP) AS VALUES \
             ('a', '2024-01-01T10:00:00'), ('a', '2024-01-01T10:20:00'), \
             ('a', '2024-01-01T11:00:00'), ('b', '2024-01-01T10:00:00')",
            "-c",
            "SELECT user_id, session_start, duration_ms, event_count FROM sessions('e') \
             ORDER BY 1, 2",
            "-c",
            "SELECT count(*) AS sessions FROM sessions('e', 'gap=1 hour')",
        ]))
    });
}

#[test]
fn a_recipe_file() {
    assert_cmd_snapshot!(with_lake().args(["-q", "-f", "sql/total_sessions.sql"]));
}

#[test]
fn statements_from_stdin() {
    assert_cmd_snapshot!(
        with_lake()
            .args(["-q", "--format", "csv", "-f", "-"])
            .pass_stdin("SELECT 1 AS one;\n-- a comment\nSELECT count(*) AS sessions\nFROM sessions('events');\n")
    );
}

#[test]
fn maxrows_cuts_the_table() {
    assert_cmd_snapshot!(cli().args([
        "-q",
        "--maxrows",
        "2",
        "-c",
        "SELECT * FROM (VALUES (1), (2), (3)) AS t(x) ORDER BY x",
    ]));
}

#[test]
fn histogram_prints_as_a_bar_chart() {
    assert_cmd_snapshot!(with_lake().args([
        "-q",
        "-c",
        "SELECT HIST(duration_ms) AS length FROM sessions('events')",
    ]));
}

#[test]
fn histograms_per_group_are_titled_by_the_group() {
    assert_cmd_snapshot!(with_lake().args([
        "-q",
        "-c",
        "SELECT platform, HIST(duration_ms / 60000.0, 0, 30, 10) AS minutes \
         FROM sessions('events') JOIN (SELECT DISTINCT user_id, platform FROM events) USING \
         (user_id) WHERE platform <> 'web' GROUP BY 1 ORDER BY 1",
    ]));
}

#[test]
fn histogram_tells_the_values_below_and_above_its_bins() {
    assert_cmd_snapshot!(with_lake().args([
        "-q",
        "-c",
        "SELECT HIST(duration_ms, 60000, 600000, 60000) AS length FROM sessions('events')",
    ]));
}

#[test]
fn histogram_with_nothing_outside_its_bins() {
    assert_cmd_snapshot!(cli().args([
        "-q",
        "-c",
        "SELECT HIST(x, 0, 3, 1) AS h FROM (VALUES (0), (1), (1), (2)) AS t(x)",
    ]));
}

#[test]
fn histogram_in_json_writes_the_open_ends_as_null() {
    assert_cmd_snapshot!(cli().args([
        "-q",
        "--format",
        "json",
        "-c",
        "SELECT HIST(x, [0, 3]) AS h FROM (VALUES (-1), (0), (3), (7)) AS t(x)",
    ]));
}

#[test]
fn histogram_in_csv_stays_data() {
    assert_cmd_snapshot!(cli().args([
        "-q",
        "--format",
        "csv",
        "-c",
        "SELECT HIST(x, 0, 3, 1) AS h FROM (VALUES (0), (1), (1), (2)) AS t(x)",
    ]));
}

#[test]
fn backslash_list_and_describe_tables() {
    assert_cmd_snapshot!(with_lake().args([
        "-q",
        "-c",
        "CREATE VIEW recent AS SELECT * FROM events",
        "-c",
        "\\d",
        "-c",
        "\\d events",
    ]));
}

#[test]
fn backslash_functions() {
    assert_cmd_snapshot!(cli().args(["-c", "\\functions"]));
}

#[test]
fn backslash_functions_name() {
    assert_cmd_snapshot!(cli().args(["-c", "\\functions sessions", "-c", "\\functions hist"]));
}

#[test]
fn backslash_help() {
    assert_cmd_snapshot!(cli().args(["-c", "\\?"]));
}

#[test]
fn backslash_pset_and_quiet() {
    filtered(|| {
        assert_cmd_snapshot!(cli().args([
            "-c",
            "\\pset format csv\nSELECT 1 AS a;\n\\quiet on\nSELECT 2 AS b;\n\\pset",
        ]))
    });
}

#[test]
fn backslash_include_runs_a_file() {
    assert_cmd_snapshot!(with_lake().args(["-q", "-c", "\\i tests/fixtures/include.sql"]));
}

#[test]
fn backslash_quit_stops_the_script() {
    assert_cmd_snapshot!(cli().args(["-q", "-c", "SELECT 1 AS a;\n\\q\nSELECT 2 AS b;"]));
}

#[test]
fn error_unknown_backslash_command() {
    assert_cmd_snapshot!(cli().args(["-q", "-c", "\\nope"]));
}

#[test]
fn error_sql_stops_with_exit_code_1() {
    assert_cmd_snapshot!(cli().args(["-q", "-c", "SELECT 1 AS a; SELEC 2; SELECT 3 AS c"]));
}

#[test]
fn error_in_a_file_names_its_line() {
    assert_cmd_snapshot!(
        cli()
            .args(["-q", "-f", "-"])
            .pass_stdin("SELECT 1 AS a;\n\nSELECT *\nFROM missing_table;\n")
    );
}

#[test]
fn error_unknown_table_in_sessions() {
    assert_cmd_snapshot!(cli().args(["-q", "-c", "SELECT * FROM sessions('missing')"]));
}

#[test]
fn error_unknown_flag_is_usage() {
    assert_cmd_snapshot!(cli().args(["--no-such-flag"]));
}

#[test]
fn error_bad_format_is_usage() {
    assert_cmd_snapshot!(cli().args(["--format", "xml", "-c", "SELECT 1"]));
}

#[test]
fn error_parquet_needs_an_output_file() {
    assert_cmd_snapshot!(cli().args(["--format", "parquet", "-c", "SELECT 1"]));
}

#[test]
fn error_missing_lake_directory() {
    assert_cmd_snapshot!(cli().args(["--lake", "events=no/such/lake", "-c", "SELECT 1"]));
}

#[test]
fn error_missing_file() {
    assert_cmd_snapshot!(cli().args(["-f", "no/such/file.sql"]));
}

#[test]
fn error_missing_rc_file() {
    assert_cmd_snapshot!(cli().args(["-r", "no/such/rc", "-c", "SELECT 1"]));
}

#[test]
fn error_cluster_needs_the_cluster_build() {
    assert_cmd_snapshot!(cli().args(["--cluster", "df://127.0.0.1:50050", "-c", "SELECT 1"]));
}

#[test]
fn error_job_on_a_cluster_needs_the_cluster_build() {
    assert_cmd_snapshot!(cli().args([
        "job",
        "run",
        "data/sample_job.toml",
        "--cluster",
        "df://127.0.0.1:50050"
    ]));
}
