//! What the tests that run the `sessionlake` binary share.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The repository root, where the tests run the binary unless they need a directory of their own.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `sessionlake` binary with `args`, run in `dir` with stdin closed.
pub fn command_in(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessionlake"));
    command.args(args).current_dir(dir).stdin(Stdio::null());
    command
}

/// Runs `command` to its end.
pub fn run(mut command: Command) -> Output {
    command.output().expect("the sessionlake binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
