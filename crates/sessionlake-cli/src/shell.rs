//! The state every way of running SQL shares (the REPL, `-c`, `-f`, the rc file): the context,
//! the print settings that backslash commands change, and where results go.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DataFusionError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::parser::ParserError;
use sessionlake_engine::memory::MemoryBudget;
use tempfile::NamedTempFile;

use crate::args::{MaxRows, OutputFormat};
use crate::command;
use crate::print;
use crate::progress::Progress;
use crate::script::{self, Item};
use sessionlake_engine::memory::release_free_memory;

/// How results are printed; `\pset` and `\quiet` change it.
#[derive(Debug, Clone, Copy)]
pub struct PrintOptions {
    pub format: OutputFormat,
    pub max_rows: MaxRows,
    /// No `N rows in X s` line and no progress line.
    pub quiet: bool,
}

/// What to do after an item ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `\q`: stop reading input.
    Quit,
}

/// Why an item failed.
#[derive(Debug)]
pub enum Failure {
    /// Stdout was closed by its reader (as by `| head`): not an error, but nothing more to do.
    BrokenPipe,
    /// A statement or command failed; the message is ready to print after `Error: `.
    Error(String),
}

impl From<DataFusionError> for Failure {
    fn from(e: DataFusionError) -> Self {
        if is_broken_pipe(&e) {
            Failure::BrokenPipe
        } else {
            Failure::Error(error_message(&e))
        }
    }
}

/// The message the shell prints for `e`: a SQL syntax error as a sentence naming the line and
/// column ("SQL syntax error at line 1, column 21: expected end of statement, found sessions"),
/// any other error as DataFusion words it.
pub fn error_message(e: &DataFusionError) -> String {
    let DataFusionError::SQL(parser_error, _) = e.find_root() else {
        return e.strip_backtrace();
    };
    let text = match parser_error.as_ref() {
        ParserError::TokenizerError(text) | ParserError::ParserError(text) => text.as_str(),
        ParserError::RecursionLimitExceeded => "the statement nests too deeply",
    };
    // the parser's words: "Expected: X, found: Y at Line: L, Column: C"
    let (what, place) = match text.rsplit_once(" at Line: ") {
        Some((what, place)) => match place.split_once(", Column: ") {
            Some((line, column)) => (what, Some((line, column))),
            None => (text, None),
        },
        None => (text, None),
    };
    let what = match what
        .strip_prefix("Expected: ")
        .and_then(|rest| rest.split_once(", found: "))
    {
        Some((expected, "EOF")) => format!("expected {expected}, found the end of the statement"),
        Some((expected, found)) => format!("expected {expected}, found {found}"),
        None => {
            let mut chars = what.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_lowercase().chain(chars).collect()
            })
        }
    };
    match place {
        Some((line, column)) => {
            format!("SQL syntax error at line {line}, column {column}: {what}")
        }
        None => format!("SQL syntax error: {what}"),
    }
}

fn is_broken_pipe(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::IoError(io) => io.kind() == std::io::ErrorKind::BrokenPipe,
        DataFusionError::ArrowError(arrow, _) => {
            matches!(arrow.as_ref(), datafusion::arrow::error::ArrowError::IoError(_, io)
                if io.kind() == std::io::ErrorKind::BrokenPipe)
        }
        DataFusionError::Context(_, inner) => is_broken_pipe(inner),
        _ => false,
    }
}

/// Where a script came from, to name it in errors.
#[derive(Debug, Clone)]
pub enum Source {
    /// A `-c` argument.
    Command,
    /// A file (`-f`, `-r`, `\i`).
    File(PathBuf),
    /// Stdin (`-f -`, or piped input).
    Stdin,
    /// A line typed at the REPL.
    Repl,
}

impl Source {
    /// The prefix of an error message for an item on `line`.
    fn locate(&self, line: usize) -> Option<String> {
        match self {
            Source::Command | Source::Repl => None,
            Source::File(path) => Some(format!("{}:{line}", path.display())),
            Source::Stdin => Some(format!("<stdin>:{line}")),
        }
    }
}

/// The shared state.
pub struct Shell {
    pub ctx: SessionContext,
    pub options: PrintOptions,
    sink: Sink,
    /// `\i` depth, to stop a file that includes itself.
    include_depth: usize,
    /// The memory budget of this process's queries (`None` on a cluster), for `\memory`.
    pub memory: Option<MemoryBudget>,
}

/// `\i` files nested deeper than this are refused (a file including itself).
const MAX_INCLUDE_DEPTH: usize = 16;

impl Shell {
    pub fn new(ctx: SessionContext, options: PrintOptions, sink: Sink) -> Self {
        Self {
            ctx,
            options,
            sink,
            include_depth: 0,
            memory: None,
        }
    }

    /// Runs every item of `text` in order, stopping at the first failure or `\q`.
    pub async fn run_script(&mut self, text: &str, source: &Source) -> Result<Flow, Failure> {
        for located in script::split(text) {
            let result = match &located.item {
                Item::Sql(sql) => self.run_sql(sql).await.map(|()| Flow::Continue),
                Item::Command(line) => Box::pin(command::run(self, line)).await,
            };
            match result {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) => return Ok(Flow::Quit),
                Err(Failure::Error(message)) => {
                    return Err(Failure::Error(match source.locate(located.line) {
                        Some(location) => format!("{location}: {message}"),
                        None => message,
                    }));
                }
                Err(Failure::BrokenPipe) => return Err(Failure::BrokenPipe),
            }
        }
        Ok(Flow::Continue)
    }

    /// Runs the file at `path` (`\i`); its `\q` ends only the file.
    pub async fn include(&mut self, path: &Path) -> Result<(), Failure> {
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            return Err(Failure::Error(format!(
                "\\i {}: files nested more than {MAX_INCLUDE_DEPTH} deep (does a file include \
                 itself?)",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Error(format!("\\i: cannot read {}: {e}", path.display())))?;
        self.include_depth += 1;
        let result = Box::pin(self.run_script(&text, &Source::File(path.to_path_buf()))).await;
        self.include_depth -= 1;
        result.map(|_| ())
    }

    /// Plans, runs and prints one SQL text (normally one statement).
    pub async fn run_sql(&mut self, sql: &str) -> Result<(), Failure> {
        let statements = DFParser::parse_sql(sql)?;
        for statement in statements {
            let started = Instant::now();
            let state = self.ctx.state();
            let plan = state.statement_to_plan(statement).await?;
            let frame = self.ctx.execute_logical_plan(plan).await?;
            let schema = frame.schema().inner().clone();
            let physical = frame.create_physical_plan().await?;
            let batches = {
                let show = !self.options.quiet && std::io::stderr().is_terminal();
                let _progress = Progress::start(Arc::clone(&physical), show);
                let result = collect(physical, self.ctx.task_ctx()).await;
                // the operators' buffers are freed now: give them back to the system
                release_free_memory();
                result?
            };
            // statements such as CREATE and SET return no columns: nothing to print
            if schema.fields().is_empty() {
                continue;
            }
            self.print(&schema, &batches)?;
            if !self.options.quiet {
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                let _ = writeln!(
                    std::io::stderr(),
                    "{rows} row{} in {:.3} s",
                    if rows == 1 { "" } else { "s" },
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    }

    /// Prints a result (of a query or of a backslash command) to the sink.
    pub fn print(&mut self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(), Failure> {
        self.sink.write(schema, batches, &self.options)
    }

    /// Finishes the output file, if any: it appears at its path only now.
    pub fn finish(self) -> Result<(), Failure> {
        self.sink.finish(self.options.format)
    }
}

/// Writes `bytes` to stdout and flushes; a closed stdout is [`Failure::BrokenPipe`].
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::from(DataFusionError::IoError(e)))
}

/// Where results go: stdout, or a file that is renamed into place when everything succeeded.
pub struct Sink {
    target: Target,
}

enum Target {
    Stdout,
    File {
        path: PathBuf,
        temp: NamedTempFile,
        parquet: Option<Box<ArrowWriter<File>>>,
        text_written: bool,
    },
}

impl Sink {
    pub fn stdout() -> Self {
        Self {
            target: Target::Stdout,
        }
    }

    /// A sink writing to a hidden temporary file beside `path`.
    pub fn file(path: &Path) -> Result<Self, String> {
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if path.is_dir() {
            return Err(format!("-o {}: is a directory", path.display()));
        }
        let temp = tempfile::Builder::new()
            .prefix(".sessionlake-output-")
            .tempfile_in(directory)
            .map_err(|e| format!("-o {}: cannot write there: {e}", path.display()))?;
        Ok(Self {
            target: Target::File {
                path: path.to_path_buf(),
                temp,
                parquet: None,
                text_written: false,
            },
        })
    }

    fn write(
        &mut self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        options: &PrintOptions,
    ) -> Result<(), Failure> {
        match &mut self.target {
            Target::Stdout => {
                // formatted in memory first, so that a closed stdout shows as a plain I/O error
                let mut text = Vec::new();
                print::print_batches(&mut text, schema, batches, options.format, options.max_rows)?;
                write_stdout(&text)
            }
            Target::File {
                path,
                temp,
                parquet,
                text_written,
            } => {
                let io_error = |e: std::io::Error| {
                    Failure::Error(format!("-o {}: cannot write: {e}", path.display()))
                };
                if options.format == OutputFormat::Parquet {
                    if parquet.is_some() || *text_written {
                        return Err(Failure::Error(format!(
                            "-o {}: a Parquet file holds one result, and a second statement \
                             returned rows",
                            path.display()
                        )));
                    }
                    let file = temp.as_file().try_clone().map_err(io_error)?;
                    let mut writer = ArrowWriter::try_new(file, Arc::clone(schema), None)
                        .map_err(DataFusionError::from)?;
                    for batch in batches {
                        writer.write(batch).map_err(DataFusionError::from)?;
                    }
                    *parquet = Some(Box::new(writer));
                    return Ok(());
                }
                if parquet.is_some() {
                    return Err(Failure::Error(format!(
                        "-o {}: already holds a Parquet result; cannot add {} text",
                        path.display(),
                        options.format.name()
                    )));
                }
                let mut text = Vec::new();
                print::print_batches(&mut text, schema, batches, options.format, options.max_rows)?;
                temp.as_file_mut().write_all(&text).map_err(io_error)?;
                *text_written = true;
                Ok(())
            }
        }
    }

    fn finish(self, format: OutputFormat) -> Result<(), Failure> {
        let Target::File {
            path,
            temp,
            parquet,
            text_written,
        } = self.target
        else {
            return Ok(());
        };
        match parquet {
            Some(writer) => {
                writer.close().map_err(DataFusionError::from)?;
            }
            // an empty text file is a fine empty result; an empty Parquet file is not a file
            None if format == OutputFormat::Parquet && !text_written => {
                return Err(Failure::Error(format!(
                    "-o {}: no statement returned a result to write",
                    path.display()
                )));
            }
            None => {}
        }
        temp.persist(&path).map_err(|e| {
            Failure::Error(format!("-o {}: cannot write: {}", path.display(), e.error))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(sql: &str) -> String {
        error_message(&DFParser::parse_sql(sql).unwrap_err())
    }

    #[test]
    fn syntax_errors_read_as_sentences() {
        assert_eq!(
            parse_error("SELECT 1 2"),
            "SQL syntax error at line 1, column 10: expected end of statement, found 2"
        );
        assert_eq!(
            parse_error("SELECT *\nFROM events WHERE"),
            "SQL syntax error: expected an expression, found the end of the statement"
        );
        assert_eq!(
            parse_error("SELECT 'open"),
            "SQL syntax error at line 1, column 8: unterminated string literal"
        );
        // other errors keep DataFusion's words, and a context does not hide a syntax error
        let plan = DataFusionError::Plan("table 'x' not found".into());
        assert_eq!(error_message(&plan), plan.strip_backtrace());
        let wrapped = DFParser::parse_sql("SELECT 1 2")
            .unwrap_err()
            .context("running line 3");
        assert!(error_message(&wrapped).starts_with("SQL syntax error at line 1"));
    }
}
