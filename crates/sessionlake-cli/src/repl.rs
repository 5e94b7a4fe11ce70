//! The interactive shell: a rustyline editor read line by line until the input is a whole
//! statement ending at a `;` (or one backslash command), the second and later lines under the
//! continuation prompt `...>`; Tab completion and colours from [`crate::editor`]; history kept
//! in the user's data directory; Ctrl-C to cancel a running query or drop the input, Ctrl-D (or
//! `\q`) to leave.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};
use sessionlake_engine::memory::release_free_memory;

use crate::editor::SqlHelper;
use crate::script;
use crate::shell::{Failure, Flow, Shell, Source};

const PROMPT: &str = "sessionlake> ";
/// The prompt of a statement's second and later lines, as wide as [`PROMPT`].
const CONTINUATION_PROMPT: &str = "        ...> ";

fn set_pending(pending: &Mutex<String>, text: &str) {
    if let Ok(mut pending) = pending.lock() {
        pending.clear();
        pending.push_str(text);
    }
}

/// The history file: `<data dir>/sessionlake/history` (`$XDG_DATA_HOME` or `~/.local/share` on
/// Linux), or none when there is no data directory.
pub fn history_path() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| dir.join("sessionlake").join("history"))
}

/// Runs the REPL until `\q`, Ctrl-D or end of input; returns the exit code. `colour` turns on
/// the input's syntax colours.
pub async fn run(shell: &mut Shell, colour: bool) -> u8 {
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .build();
    let mut editor: Editor<SqlHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("sessionlake: cannot start the line editor: {e}");
            return crate::exit_code::USAGE;
        }
    };
    let helper = SqlHelper::new(shell.ctx.clone(), colour);
    // the lines of a statement typed so far, which completion and colours read too
    let pending = helper.pending();
    editor.set_helper(Some(helper));
    let history = history_path();
    if let Some(path) = &history {
        // a missing history file is the first run, not an error
        let _ = editor.load_history(path);
    }
    println!(
        "sessionlake {}: \\? for help, \\q to quit",
        env!("CARGO_PKG_VERSION")
    );
    let mut input = String::new();
    loop {
        let prompt = if input.is_empty() {
            PROMPT
        } else {
            CONTINUATION_PROMPT
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if input.is_empty() && line.trim().is_empty() {
                    continue;
                }
                input.push_str(&line);
                input.push('\n');
                if !script::is_complete(&input) {
                    set_pending(&pending, &input);
                    continue;
                }
                set_pending(&pending, "");
                let statement = std::mem::take(&mut input);
                let _ = editor.add_history_entry(statement.trim_end());
                let flow = tokio::select! {
                    result = shell.run_script(&statement, &Source::Repl) => result,
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
            // Ctrl-C at the prompt drops the statement being typed
            Err(ReadlineError::Interrupted) => {
                input.clear();
                set_pending(&pending, "");
            }
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
    crate::exit_code::OK
}
