//! The REPL driven in a real terminal: `sessionlake` runs in a detached tmux session and the
//! test types into it and reads the screen: the start banner, a statement over two lines under
//! the continuation prompt, coloured, Tab completion (a function, a table in quotes, a column,
//! a backslash command, an option after SET), `\d`, a SQL error as a sentence, Ctrl-C during a
//! long query (the query stops, the REPL stays), another query, `\q`, a second shell under
//! `NO_COLOR` (no colours) left with Ctrl-D; then the history file holds what was typed. And
//! Ctrl-C while sessions are being found returns the prompt at once. Needs tmux (`.ci/run`
//! installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sessionlake_testkit::lake::{LakeSpec, write_lake};

/// A tmux server of its own (`-L`), killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached session `repl` running `program`, whose pane stays after it exits.
    fn start(program: &str) -> Self {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let tmux = Tmux {
            socket: format!(
                "sessionlake-test-{}-{}",
                std::process::id(),
                STARTED.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let started = tmux.command(&[
            "new-session",
            "-d",
            "-s",
            "repl",
            "-x",
            "160",
            "-y",
            "50",
            program,
        ]);
        assert!(started.status.success(), "{started:?}");
        // keep the pane after the program exits, to read its last screen
        tmux.command(&["set-option", "-t", "repl", "remain-on-exit", "on"]);
        tmux
    }

    fn command(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (install it: apt-get install tmux)")
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "repl"];
        args.extend_from_slice(keys);
        let output = self.command(&args);
        assert!(output.status.success(), "{output:?}");
    }

    /// Types `text` literally, then Enter.
    fn type_line(&self, text: &str) {
        // tmux reads an argument ending in `;` as a command separator; `\;` is a literal one
        match text.strip_suffix(';') {
            Some(body) => self.send(&["-l", &format!("{body}\\;")]),
            None => self.send(&["-l", text]),
        }
        self.send(&["Enter"]);
    }

    fn screen(&self) -> String {
        let output = self.command(&["capture-pane", "-p", "-t", "repl", "-S", "-2000"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The screen with its colour escapes (`capture-pane -e`).
    fn coloured_screen(&self) -> String {
        let output = self.command(&["capture-pane", "-p", "-e", "-t", "repl", "-S", "-2000"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types `text` literally, without Enter.
    fn type_text(&self, text: &str) {
        self.send(&["-l", text]);
    }

    /// Waits until `done(screen)` holds; fails with the screen after `timeout`.
    /// Waits for the shell's `<label><status>` line after the REPL exits; the status must be 0.
    fn assert_exit_status_0(&self, label: &str) {
        let screen = self.wait_for(label, STEP, |s| s.contains(label));
        assert!(
            screen.contains(&format!("{label}0")),
            "the REPL's exit status:\n{screen}"
        );
    }

    fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < timeout,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&["kill-server"]);
    }
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The answer the engine gives without the REPL, to compare with what the REPL shows.
fn expected_sessions() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sessionlake"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--lake", "events=data/sample_lake", "-q", "--format", "csv"])
        .args(["-c", "SELECT count(*) AS sessions FROM sessions('events')"])
        .output()
        .expect("sessionlake runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().nth(1).expect("a value line").to_string()
}

const STEP: Duration = Duration::from_secs(60);

#[test]
fn repl_in_a_terminal() {
    let tmux_found = Command::new("tmux").arg("-V").output().is_ok();
    assert!(tmux_found, "this test needs tmux: apt-get install tmux");
    let sessions = expected_sessions();
    let home = tempfile::tempdir().expect("temp dir");
    let data_home = home.path().join("data");
    // the shell prints the REPL's exit status when it ends (tmux's #{pane_dead_status} is not
    // always filled in)
    // (twice: the first session ends with \q, the second with Ctrl-D)
    let repl = format!(
        "env HOME='{}' XDG_DATA_HOME='{}' '{}' --lake events='{}'",
        home.path().display(),
        data_home.display(),
        env!("CARGO_BIN_EXE_sessionlake"),
        repo_path("data/sample_lake").display(),
    );
    // the second shell runs with NO_COLOR
    let tmux = Tmux::start(&format!(
        "{repl}; echo \"sessionlake exited with $?\"; NO_COLOR=1 {repl}; \
         echo \"again: exited with $?\""
    ));

    tmux.wait_for("the prompt", STEP, |s| {
        s.contains("\\? for help") && s.contains("sessionlake>")
    });

    // a statement over two lines: the first Enter only starts a new line, under `...>`
    tmux.type_line("SELECT count(*) AS sessions");
    tmux.wait_for("the continuation prompt", STEP, |s| {
        s.lines().any(|line| line.trim_end() == "        ...>")
    });
    assert!(!tmux.screen().contains("| sessions"), "{}", tmux.screen());
    tmux.type_line("FROM sessions('events');");
    let screen = tmux.wait_for("the session count", STEP, |s| {
        s.contains("| sessions |")
            && s.contains(&format!("| {sessions} "))
            && s.contains("1 row in")
    });
    assert!(
        screen.contains(
            "sessionlake> SELECT count(*) AS sessions\n        ...> FROM sessions('events');"
        ),
        "{screen}"
    );
    // on a terminal the statement is coloured: the keywords and the string
    let coloured = tmux.coloured_screen();
    let line = coloured
        .lines()
        .find(|line| line.contains("sessions(") && line.contains("...>"))
        .expect("the statement's second line");
    assert!(line.contains("\x1b["), "no colour escapes in {line:?}");
    assert!(
        !line.contains("...> FROM"),
        "FROM is not coloured: {line:?}"
    );

    // Tab completes a function, a table name in quotes, a column of the function's output
    tmux.type_text("SELECT coun");
    tmux.send(&["Tab"]);
    tmux.type_text("(*) AS long_sessions FROM sessions('ev");
    tmux.send(&["Tab"]);
    tmux.type_text("') WHERE durat");
    tmux.send(&["Tab"]);
    tmux.type_line(" > 600000;");
    let screen = tmux.wait_for("the completed statement's answer", STEP, |s| {
        s.contains("| long_sessions |")
    });
    assert!(
        screen.contains(
            "SELECT count(*) AS long_sessions FROM sessions('events') WHERE duration_ms > 600000;"
        ),
        "{screen}"
    );
    // ... a backslash command, and a sessionlake option after SET
    tmux.type_text("\\pse");
    tmux.send(&["Tab"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("the print settings", STEP, |s| s.contains("maxrows 40"));
    tmux.type_text("SET sessionlake.max_l");
    tmux.send(&["Tab"]);
    tmux.type_line(" = '2 hours';");
    tmux.type_line("SHOW sessionlake.max_length;");
    tmux.wait_for("the option set through completion", STEP, |s| {
        s.contains("SET sessionlake.max_length = '2 hours';") && s.contains("| 2 hours |")
    });

    tmux.type_line("\\d");
    tmux.wait_for("the table list", STEP, |s| {
        s.contains("| name   | type  |") && s.contains("| events | table |")
    });

    // a bad statement is explained in a sentence and the REPL goes on
    tmux.type_line("SELECT count(*) AS n 2 FROM events;");
    tmux.wait_for("the SQL error", STEP, |s| {
        s.contains(
            "Error: SQL syntax error at line 1, column 22: expected end of statement, found 2",
        )
    });

    // a query that runs for minutes, cancelled by Ctrl-C once it is under way
    tmux.type_line("SELECT sum(value % 7) AS s FROM generate_series(1, 1000000000000);");
    tmux.wait_for("the progress line", STEP, |s| s.contains("rows scanned"));
    tmux.send(&["C-c"]);
    tmux.wait_for("the cancellation", STEP, |s| s.contains("query cancelled"));

    tmux.type_line("SELECT 40 + 2 AS answer;");
    tmux.wait_for("the next answer", STEP, |s| s.contains("| 42     |"));

    tmux.type_line("\\q");
    tmux.assert_exit_status_0("sessionlake exited with ");

    // Ctrl-D on an empty line leaves a new shell with exit status 0
    tmux.wait_for("the second prompt", STEP, |s| {
        s.split("sessionlake exited with 0")
            .nth(1)
            .is_some_and(|rest| rest.contains("sessionlake>"))
    });
    // with NO_COLOR the input stays plain
    tmux.type_line("SELECT 'plain' AS p;");
    tmux.wait_for("the plain answer", STEP, |s| s.contains("| plain |"));
    let coloured = tmux.coloured_screen();
    let line = coloured
        .lines()
        .rfind(|line| line.contains("SELECT 'plain'"))
        .expect("the plain statement");
    assert!(
        !line.contains("\x1b["),
        "colour escapes under NO_COLOR: {line:?}"
    );
    tmux.send(&["C-d"]);
    tmux.assert_exit_status_0("again: exited with ");

    let history = std::fs::read_to_string(data_home.join("sessionlake").join("history"))
        .expect("the history file was written");
    assert!(history.contains("FROM sessions('events');"), "{history}");
    assert!(history.contains("SELECT 40 + 2 AS answer;"), "{history}");
}

/// Ctrl-C while `SessionizeExec` finds sessions (every event scanned, no session out yet)
/// returns the prompt at once: the operator yields between its pieces, so the cancelled query
/// stops at the next one instead of finishing the partition.
#[test]
fn ctrl_c_while_sessions_are_found() {
    let tmux_found = Command::new("tmux").arg("-V").output().is_ok();
    assert!(tmux_found, "this test needs tmux: apt-get install tmux");
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = dir.path().join("lake");
    let spec = LakeSpec {
        events: 3_000_000,
        days: 3,
        users: 30_000,
        ..LakeSpec::default()
    };
    write_lake(&spec, &lake).expect("lake");
    let tmux = Tmux::start(&format!(
        "env HOME='{}' '{}' --lake events='{}'",
        dir.path().display(),
        env!("CARGO_BIN_EXE_sessionlake"),
        lake.display(),
    ));
    tmux.wait_for("the prompt", STEP, |s| s.contains("sessionlake>"));

    tmux.type_line("SELECT count(*) AS sessions FROM sessions('events');");
    let scanned = tmux.wait_for("every event scanned", STEP, |s| {
        s.contains("3,000,000 rows scanned") || s.contains("1 row in")
    });
    assert!(
        !scanned.contains("1 row in"),
        "the query ended before it could be cancelled (make the lake larger):\n{scanned}"
    );
    let sent = Instant::now();
    tmux.send(&["C-c"]);
    let screen = tmux.wait_for("the cancellation", STEP, |s| s.contains("query cancelled"));
    let latency = sent.elapsed();
    assert!(!screen.contains("1 row in"), "{screen}");
    // generous for a loaded machine: a debug build finishing the partition takes far longer
    assert!(
        latency < Duration::from_secs(2),
        "the prompt came back {latency:?} after Ctrl-C:\n{screen}"
    );

    tmux.type_line("SELECT 40 + 2 AS answer;");
    tmux.wait_for("the next answer", STEP, |s| s.contains("| 42     |"));
    tmux.type_line("\\q");
}
