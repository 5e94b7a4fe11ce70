//! Running the `sessionlake-job` binary in tests: spawned on a job file, killed or awaited, and
//! barriers (`SESSIONLAKE_JOB_WAIT_AT`) that hold runs at a step.

// each test binary uses a different subset
#![allow(dead_code)]
// helpers of tests, outside `#[test]` functions: a panic here is a failing test, as in one
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod receivers;

/// The job runner binary of this crate (`sessionlake-job run JOB.toml` is `sessionlake job run
/// JOB.toml`).
pub const BINARY: &str = env!("CARGO_BIN_EXE_sessionlake-job");

pub fn spawn(job_file: &Path, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(BINARY);
    command
        .arg("run")
        .arg(job_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

pub fn finish(child: Child) -> (i32, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits until `count` processes have reached the barrier `barrier`.
pub fn wait_reached(barrier: &Path, count: usize) {
    let dir = barrier.parent().unwrap();
    let prefix = format!(
        "{}.reached.",
        barrier.file_name().unwrap().to_str().unwrap()
    );
    let started = Instant::now();
    loop {
        let reached = fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
            .count();
        if reached >= count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "nobody reached {barrier:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
