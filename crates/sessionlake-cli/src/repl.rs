//! The interactive shell: a rustyline editor whose input ends at a `;` (or is one backslash
//! command), history kept in the user's data directory, Ctrl-C to cancel a running query or
//! clear the input, Ctrl-D (or `\q`) to leave.

use std::io::Write;
use std::path::PathBuf;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Editor, Helper};
use sessionlake_engine::memory::release_free_memory;

use crate::script;
use crate::shell::{Failure, Flow, Shell, Source};

const PROMPT: &str = "sessionlake> ";

/// Keeps editing (Enter inserts a new line) until the input is a whole statement.
struct StatementValidator;

impl Validator for StatementValidator {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if script::is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Completer for StatementValidator {
    type Candidate = String;
}

impl Hinter for StatementValidator {
    type Hint = String;
}

impl Highlighter for StatementValidator {}

impl Helper for StatementValidator {}

/// The history file: `<data dir>/sessionlake/history` (`$XDG_DATA_HOME` or `~/.local/share` on
/// Linux), or none when there is no data directory.
pub fn history_path() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| dir.join("sessionlake").join("history"))
}

/// Runs the REPL until `\q`, Ctrl-D or end of input; returns the exit code.
pub async fn run(shell: &mut Shell) -> u8 {
    let config = Config::builder().auto_add_history(false).build();
    let mut editor: Editor<StatementValidator, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("sessionlake: cannot start the line editor: {e}");
            return crate::EXIT_USAGE;
        }
    };
    editor.set_helper(Some(StatementValidator));
    let history = history_path();
    if let Some(path) = &history {
        // a missing history file is the first run, not an error
        let _ = editor.load_history(path);
    }
    println!(
        "sessionlake {}: \\? for help, \\q to quit",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match editor.readline(PROMPT) {
            Ok(input) => {
                if input.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(input.as_str());
                let flow = tokio::select! {
                    result = shell.run_script(&input, &Source::Repl) => result,
                    _ = tokio::signal::ctrl_c() => {
                        // the cancelled query's buffers are freed now
                        release_free_memory();
                        eprintln!("\nquery cancelled");
                        Ok(Flow::Continue)
                    }
                };
                match flow {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Quit) => break,
                    Err(Failure::Error(message)) => eprintln!("Error: {message}"),
                    // the REPL writes to a terminal; a closed pipe ends it quietly
                    Err(Failure::BrokenPipe) => break,
                }
            }
            // Ctrl-C at the prompt clears the input
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("sessionlake: cannot read input: {e}");
                break;
            }
        }
    }
    if let Some(path) = &history {
        let saved = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(ReadlineError::from)
            .and_then(|()| editor.save_history(path));
        if let Err(e) = saved {
            eprintln!(
                "sessionlake: cannot save history to {}: {e}",
                path.display()
            );
        }
    }
    let _ = std::io::stdout().flush();
    crate::EXIT_OK
}
