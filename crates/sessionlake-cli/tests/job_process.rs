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
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

/// Accepts one HTTP request on 127.0.0.1 and returns its body.
fn one_request_listener() -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/alerts", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).unwrap();
            request.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .unwrap();
                    assert!(text.starts_with("POST /hooks/alerts "), "{text}");
                    return String::from_utf8_lossy(&request[end + 4..end + 4 + length])
                        .into_owned();
                }
            }
            if n == 0 {
                panic!("connection closed early");
            }
        }
    });
    (url, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_alert_exits_3_prints_and_posts_json_and_logs_can_be_json() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    generate_lake(&lake, 4, 2_000, 80);
    let (url, listener) = one_request_listener();
    let body = job_toml(
        lake.to_str().unwrap(),
        "out",
        &format!("\n[alerting]\nwebhook = \"{url}\"\n"),
    )
    .replace("below = 150.0", "below = 100000.0");
    let (job_file, _) = write_job(dir.path(), "job.toml", &body);
    let output = Command::new(BINARY)
        .arg("run")
        .arg(&job_file)
        .args(["--log-format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("ALERT 2024-03-01 short: avg_length_s = "),
        "{stderr}"
    );
    let summary_line = stderr.lines().last().unwrap();
    assert!(
        summary_line.starts_with("job test_job: committed (full, version 1)"),
        "{summary_line}"
    );
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        logs.iter().any(|l| l["fields"]["message"] == "committed"),
        "{stderr}"
    );

    let posted: serde_json::Value = serde_json::from_str(&listener.join().unwrap()).unwrap();
    assert_eq!(posted["job"], "test_job");
    let alerts = posted["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["alert"] == "short" && a["day"] == "2024-03-01"),
        "{posted}"
    );

    // the summary JSON next to the outputs names the same alerts
    let sink = dir.path().join("out");
    let run_dir = run_dirs(&sink).pop().unwrap();
    let summary: serde_json::Value = serde_json::from_slice(
        &fs::read(sink.join("runs").join(run_dir).join("_summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["alerts"].as_array().unwrap().len(), alerts.len());
    assert_eq!(summary["status"], "committed");
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
    fs::write(
        &job_file,
        "[source]\nlake = \"x\"\n[sink]\npath = \"y\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let output = Command::new(BINARY)
        .arg("run")
        .arg(&job_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("bad.toml") && stderr.contains("colour"),
        "{stderr}"
    );
}
