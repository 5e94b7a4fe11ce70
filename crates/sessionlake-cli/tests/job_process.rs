//! The `sessionlake job run` process: SIGKILL at every step of a run and after varying delays
//! leaves the last committed state readable and a rerun completes it; two runs at once, one
//! wins and the other exits 75; the same for the Delta sink, whose tables Delta readers see
//! whole at every moment; alerts exit 3 and reach a webhook; exit codes and JSON logs.

// helpers of tests, outside `#[test]` functions: a panic there is a failing test
#![allow(clippy::unwrap_used)]

mod job_binary;
#[path = "../../sessionlake-jobs/tests/jobs_support/mod.rs"]
mod jobs_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use job_binary::receivers::{HttpReceiver, SmtpReceiver};
use job_binary::*;
use jobs_support::*;
use sessionlake_jobs::{Dates, Job};

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A lake of 7 days, a sink that committed the first 5, and the outputs expected once all 7
/// are processed.
struct Setup {
    dir: tempfile::TempDir,
    /// The sink's format is Delta (`sink.format = "delta"`).
    delta: bool,
    lake: PathBuf,
    /// The committed state after 5 days, to copy for each scenario.
    pristine_sink: PathBuf,
    before: BTreeMap<String, Vec<String>>,
    after: BTreeMap<String, Vec<String>>,
}

/// The job file body over `lake` into `sink` in the setup's format.
fn body(delta: bool, lake: &Path, sink: &str) -> String {
    let body = job_toml(lake.to_str().unwrap(), sink, "");
    if delta { with_delta_sink(&body) } else { body }
}

async fn setup(delta: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let full_lake = dir.path().join("full_lake");
    generate_lake(&full_lake, 7, 6_000, 150);
    let lake = dir.path().join("lake");
    fs::create_dir_all(&lake).unwrap();
    let partitions = partition_dirs(&full_lake);
    for partition in &partitions[..5] {
        copy_partition(partition, &lake);
    }
    let (_, job) = write_job(dir.path(), "pristine.toml", &body(delta, &lake, "pristine"));
    run(&job, Dates::Pending).await;
    let before = snapshot(&job).await;
    for partition in &partitions[5..] {
        copy_partition(partition, &lake);
    }
    let (_, expected_job) = write_job(dir.path(), "expected.toml", &body(delta, &lake, "expected"));
    run(&expected_job, Dates::Pending).await;
    let after = snapshot(&expected_job).await;
    assert_ne!(before, after);
    Setup {
        pristine_sink: dir.path().join("pristine"),
        dir,
        delta,
        lake,
        before,
        after,
    }
}

impl Setup {
    /// A job whose sink starts as a copy of the committed 5-day state.
    fn scenario(&self, name: &str) -> (PathBuf, Job) {
        copy_dir(&self.pristine_sink, &self.dir.path().join(name));
        let body = body(self.delta, &self.lake, name);
        write_job(self.dir.path(), &format!("{name}.toml"), &body)
    }

    /// The steps a run of this setup's sink passes.
    fn steps(&self) -> Vec<&'static str> {
        let mut steps = sessionlake_jobs::checkpoint::STEPS.to_vec();
        if self.delta {
            let at = steps.iter().position(|s| *s == "after_current").unwrap();
            steps.splice(at..at, sessionlake_jobs::checkpoint::DELTA_STEPS);
        }
        steps
    }

    /// Checks what a Delta reader sees under a Delta sink: every table whole, in the state
    /// before or after the run (`settled`: after); nothing for a Parquet sink.
    async fn check_delta_tables(&self, job: &Job, settled: bool) {
        #[cfg(feature = "delta")]
        if self.delta {
            let seen = delta_snapshot(job).await;
            let before = delta_tables_of(&self.before);
            let after = delta_tables_of(&self.after);
            if settled {
                assert_same(&seen, &after);
                return;
            }
            assert_eq!(
                seen.keys().collect::<Vec<_>>(),
                after.keys().collect::<Vec<_>>()
            );
            for (table, rows) in &seen {
                assert!(
                    rows == &before[table] || rows == &after[table],
                    "Delta table {table}: a state that was never committed"
                );
            }
        }
        #[cfg(not(feature = "delta"))]
        let _ = (job, settled);
    }
}

/// Reruns the job to completion and checks the outputs are the full 7-day state.
async fn rerun_completes(setup: &Setup, job_file: &Path, job: &Job) {
    let (code, stderr) = finish(spawn(job_file, &[]));
    assert!(code == 0 || code == 3, "rerun exited {code}: {stderr}");
    assert_same(&snapshot(job).await, &setup.after);
    setup.check_delta_tables(job, true).await;
    assert_no_garbage(job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_every_step_leaves_the_committed_state_and_a_rerun_completes_it() {
    kill_at_every_step(false).await;
}

#[cfg(feature = "delta")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sink_sigkill_at_every_step_leaves_whole_tables_and_a_rerun_completes_them() {
    kill_at_every_step(true).await;
}

async fn kill_at_every_step(delta: bool) {
    let setup = setup(delta).await;
    for step in setup.steps() {
        let (job_file, job) = setup.scenario(&format!("kill_{step}"));
        let barrier = setup.dir.path().join(format!("barrier_{step}"));
        let mut child = spawn(
            &job_file,
            &[(
                "SESSIONLAKE_JOB_WAIT_AT",
                format!("{step}:{}", barrier.display()),
            )],
        );
        wait_reached(&barrier, 1);
        child.kill().unwrap(); // SIGKILL
        let (code, _) = finish(child);
        assert_eq!(code, -1, "{step}: killed by a signal");
        let seen = snapshot(&job).await;
        let committed = ["after_commit", "delta_commit", "after_current"].contains(&step);
        if committed {
            assert_same(&seen, &setup.after);
        } else {
            assert_same(&seen, &setup.before);
        }
        setup.check_delta_tables(&job, false).await;
        rerun_completes(&setup, &job_file, &job).await;
    }

    // the abort hook, mid-way through the writes
    let (job_file, job) = setup.scenario("abort_write");
    let (code, _) = finish(spawn(
        &job_file,
        &[("SESSIONLAKE_JOB_KILL_AT", "write".into())],
    ));
    assert_ne!(code, 0);
    assert_same(&snapshot(&job).await, &setup.before);
    setup.check_delta_tables(&job, false).await;
    rerun_completes(&setup, &job_file, &job).await;

    // kills after varying delays: the output is one of the two committed states
    for delay_ms in [30, 120, 250, 400, 600, 900, 1400] {
        let (job_file, job) = setup.scenario(&format!("delay_{delay_ms}"));
        let mut child = spawn(&job_file, &[]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = finish(child);
        let seen = snapshot(&job).await;
        assert!(
            seen == setup.before || seen == setup.after,
            "killed after {delay_ms} ms: a state that was never committed"
        );
        setup.check_delta_tables(&job, false).await;
        rerun_completes(&setup, &job_file, &job).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_one_wins_the_other_exits_75() {
    two_runs_at_once(false).await;
}

#[cfg(feature = "delta")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sink_two_runs_at_once_one_wins_the_other_exits_75() {
    two_runs_at_once(true).await;
}

async fn two_runs_at_once(delta: bool) {
    let setup = setup(delta).await;
    let (job_file, job) = setup.scenario("race");
    let barrier = setup.dir.path().join("race_barrier");
    let env = [(
        "SESSIONLAKE_JOB_WAIT_AT",
        format!("before_commit:{}", barrier.display()),
    )];
    let first = spawn(&job_file, &env);
    let second = spawn(&job_file, &env);
    wait_reached(&barrier, 2);
    fs::write(&barrier, "go").unwrap();
    let mut results = [finish(first), finish(second)];
    results.sort_by_key(|(code, _)| *code);
    let [(winner, winner_err), (loser, loser_err)] = results;
    assert!(winner == 0 || winner == 3, "{winner}: {winner_err}");
    assert_eq!(loser, 75, "{loser_err}");
    assert!(
        loser_err.contains("another run of job 'test_job' committed version 2 first"),
        "{loser_err}"
    );
    assert_same(&snapshot(&job).await, &setup.after);
    setup.check_delta_tables(&job, true).await;
    assert_no_garbage(&job).await;
}

/// A job over a 4-day lake (in `dir/lake`, its sink `dir/out`) whose alert `short` trips on
/// every day, with `alerting` (TOML) appended.
fn alerting_job(dir: &Path, alerting: &str) -> (PathBuf, Job) {
    let lake = dir.join("lake");
    generate_lake(&lake, 4, 2_000, 80);
    let body = job_toml(lake.to_str().unwrap(), "out", alerting)
        .replace("below = 150.0", "below = 100000.0");
    write_job(dir, "job.toml", &body)
}

/// Runs the binary on `job_file` with JSON logs: the exit code, stderr and the log lines.
fn run_with_json_logs(job_file: &Path) -> (i32, String, Vec<serde_json::Value>) {
    let output = Command::new(BINARY)
        .arg("run")
        .arg(job_file)
        .args(["--log-format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let logs = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (output.status.code().unwrap_or(-1), stderr, logs)
}

/// The `_summary.json` of the last run committed into `sink`.
fn committed_summary(sink: &Path) -> serde_json::Value {
    let run_dir = run_dirs(sink).pop().unwrap();
    serde_json::from_slice(
        &fs::read(sink.join("runs").join(run_dir).join("_summary.json")).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_alert_exits_3_prints_and_posts_json_and_logs_can_be_json() {
    let dir = tempfile::tempdir().unwrap();
    let webhook = HttpReceiver::start("200 OK");
    let (job_file, _) = alerting_job(
        dir.path(),
        &format!("\n[alerting]\nwebhook = \"{}\"\n", webhook.url),
    );
    let (code, stderr, logs) = run_with_json_logs(&job_file);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("ALERT 2024-03-01 short: avg_length_s = "),
        "{stderr}"
    );
    let summary_line = stderr.lines().last().unwrap();
    assert!(
        summary_line.starts_with("job test_job: committed (full, version 1)"),
        "{summary_line}"
    );
    assert!(
        logs.iter().any(|l| l["fields"]["message"] == "committed"),
        "{stderr}"
    );

    let requests = webhook.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].request_line.starts_with("POST /hooks/alerts "),
        "{requests:?}"
    );
    let posted: serde_json::Value = serde_json::from_str(&requests[0].body).unwrap();
    assert_eq!(posted["job"], "test_job");
    let alerts = posted["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["alert"] == "short" && a["day"] == "2024-03-01"),
        "{posted}"
    );

    // the summary JSON next to the outputs names the same alerts
    let summary = committed_summary(&dir.path().join("out"));
    assert_eq!(summary["alerts"].as_array().unwrap().len(), alerts.len());
    assert_eq!(summary["status"], "committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_slack_webhook_and_an_email_with_every_alert() {
    let dir = tempfile::tempdir().unwrap();
    let slack = HttpReceiver::start("200 OK");
    let smtp = SmtpReceiver::start();
    let (job_file, _) = alerting_job(
        dir.path(),
        &format!(
            r#"
[alerting]
webhook = "{}"
webhook_format = "slack"

[alerting.email]
host = "127.0.0.1"
port = {}
security = "none"
from = "sessionlake <jobs@example.com>"
to = ["ops@example.com", "Data Team <data@example.com>"]
"#,
            slack.url, smtp.port
        ),
    );
    let (code, stderr) = finish(spawn(&job_file, &[]));
    assert_eq!(code, 3, "{stderr}");
    assert!(!stderr.contains("warning:"), "{stderr}");
    let summary = committed_summary(&dir.path().join("out"));
    let alerts = summary["alerts"].as_array().unwrap();
    assert!(alerts.len() >= 4, "{summary}");
    let field = |alert: &serde_json::Value, key: &str| alert[key].as_str().unwrap().to_string();

    // Slack: one line of text per alert after the summary, and a section per alert
    let requests = slack.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let message: serde_json::Value = serde_json::from_str(&requests[0].body).unwrap();
    let text: Vec<&str> = message["text"].as_str().unwrap().lines().collect();
    assert_eq!(
        text[0],
        format!("sessionlake job test_job: {} alerts", alerts.len())
    );
    let blocks = message["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), alerts.len() + 1, "{message}");
    assert_eq!(blocks[0]["type"], "header");
    for (i, alert) in alerts.iter().enumerate() {
        let (day, name) = (field(alert, "day"), field(alert, "alert"));
        let said = field(alert, "message");
        assert_eq!(text[i + 1], format!("• {day} {name}: {said}"));
        let block = &blocks[i + 1];
        assert_eq!(block["type"], "section");
        assert_eq!(block["text"]["type"], "mrkdwn");
        assert_eq!(
            block["text"]["text"],
            format!("*{day}*  *{name}* (avg_length_s)\n{said}")
        );
    }

    // e-mail: to both recipients, the subject with the days, every alert in the body
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.from, "<jobs@example.com>");
    assert_eq!(mail.to, ["<ops@example.com>", "<data@example.com>"]);
    assert_eq!(
        mail.header("from").as_deref(),
        Some("sessionlake <jobs@example.com>")
    );
    let first_day = field(&alerts[0], "day");
    let last_day = field(&alerts[alerts.len() - 1], "day");
    assert_eq!(
        mail.header("subject"),
        Some(format!(
            "[sessionlake] test_job: {} alerts ({first_day} to {last_day})",
            alerts.len()
        ))
    );
    let body = mail.body();
    for alert in alerts {
        let expected = format!(
            "\n{} {}\n  metric:    {}\n  value:     {}\n  threshold: {}\n  message:   {}\n",
            field(alert, "day"),
            field(alert, "alert"),
            field(alert, "metric"),
            alert["value"].as_f64().unwrap(),
            alert["threshold"].as_f64().unwrap(),
            field(alert, "message"),
        );
        assert!(body.contains(&expected), "{expected} not in:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_then_warnings_and_the_run_stays_committed_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let failing = HttpReceiver::start("500 Internal Server Error");
    // a port nothing listens on any more
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (job_file, job) = alerting_job(
        dir.path(),
        &format!(
            r#"
[alerting]
webhook = "{}"
attempts = 3
retry_delay = "10 milliseconds"

[alerting.email]
host = "127.0.0.1"
port = {closed_port}
security = "none"
from = "jobs@example.com"
to = ["ops@example.com"]
"#,
            failing.url
        ),
    );
    let (code, stderr, logs) = run_with_json_logs(&job_file);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(failing.requests().len(), 3, "{stderr}");
    // the URL's path is left out (a Slack webhook's path is its secret)
    let webhook_warning = format!(
        "sessionlake job run: warning: alert webhook {}…: the server answered 500 Internal \
         Server Error (3 attempts)",
        failing.url.trim_end_matches("hooks/alerts")
    );
    assert!(stderr.contains(&webhook_warning), "{stderr}");
    let email_warning =
        format!("sessionlake job run: warning: alert e-mail via 127.0.0.1:{closed_port}: ");
    let email_line = stderr.lines().find(|l| l.starts_with(&email_warning));
    assert!(
        email_line.is_some_and(|l| l.ends_with("(3 attempts)")),
        "{stderr}"
    );
    let summary_line = stderr.lines().last().unwrap();
    assert!(
        summary_line.starts_with("job test_job: committed (full, version 1)")
            && summary_line.ends_with("; 2 warnings"),
        "{summary_line}"
    );
    let warned: Vec<&serde_json::Value> = logs
        .iter()
        .filter(|l| l["fields"]["message"] == "alert delivery failed")
        .collect();
    assert_eq!(warned.len(), 2, "{stderr}");
    assert!(warned.iter().all(|l| l["level"] == "WARN"), "{stderr}");
    let finished = logs
        .iter()
        .find(|l| l["fields"]["message"] == "run finished")
        .unwrap();
    assert_eq!(finished["fields"]["warnings"], 2, "{finished}");

    // the outputs are those of the same job without deliveries
    let committed = snapshot(&job).await;
    let (_, quiet_job) = write_job(
        dir.path(),
        "quiet.toml",
        &job_toml(dir.path().join("lake").to_str().unwrap(), "quiet", "")
            .replace("below = 150.0", "below = 100000.0"),
    );
    run(&quiet_job, Dates::Pending).await;
    assert!(!committed["sessions"].is_empty());
    assert_same(&committed, &snapshot(&quiet_job).await);

    // a rerun has nothing to do and no alert: nothing is delivered
    let (code, stderr) = finish(spawn(&job_file, &[]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(failing.requests().len(), 3);
}

#[test]
fn usage_and_job_file_errors_exit_2_and_78() {
    let output = Command::new(BINARY)
        .args(["run", "job.toml", "--from", "2024-01-01"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let job_file = dir.path().join("bad.toml");
    let head = "[source]\nlake = \"x\"\n[sink]\npath = \"y\"\n";
    for (rest, expected) in [
        ("colour = \"blue\"\n", "colour"),
        // the delivery keys are checked before anything runs
        (
            "[alerting]\nwebhook = \"https://h.example/x\"\nwebhook_format = \"teams\"\n",
            "bad.toml: alerting.webhook_format: 'teams' is not a webhook format",
        ),
    ] {
        fs::write(&job_file, format!("{head}{rest}")).unwrap();
        let output = Command::new(BINARY)
            .arg("run")
            .arg(&job_file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{stderr}");
        assert!(
            stderr.contains("bad.toml") && stderr.contains(expected),
            "{stderr}"
        );
    }
}
