//! Backslash commands, as in datafusion-cli and psql: `\q`, `\?`, `\d [NAME]`, `\i FILE`,
//! `\pset [format X | maxrows N]`, `\quiet [on|off]`, `\functions [NAME]`, `\memory`.
//!
//! Listings (`\d`, `\functions`) are results like any query's, printed in the current format;
//! settings changes are confirmed on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use clap::ValueEnum;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::TableType;
use datafusion::logical_expr::Documentation;
use datafusion::prelude::SessionContext;
use sessionlake_engine::memory::Bytes;
use sessionlake_engine::{SessionOutput, SessionizeTableFunction};

use crate::args::{MaxRows, OutputFormat, parse_max_rows};
use crate::shell::{Failure, Flow, Shell, write_stdout};

/// One backslash command, parsed from its line by [`FromStr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    Help,
    ListTables,
    DescribeTable(String),
    Include(PathBuf),
    ShowPrintSettings,
    SetFormat(OutputFormat),
    SetMaxRows(MaxRows),
    /// `None` toggles.
    Quiet(Option<bool>),
    ListFunctions,
    DescribeFunction(String),
    Memory,
}

impl Command {
    /// One example of every form, in the order `\?` lists them.
    pub fn forms() -> [Command; 12] {
        [
            Self::Quit,
            Self::Help,
            Self::ListTables,
            Self::DescribeTable(String::new()),
            Self::Include(PathBuf::new()),
            Self::ShowPrintSettings,
            Self::SetFormat(OutputFormat::Table),
            Self::SetMaxRows(MaxRows::Unlimited),
            Self::Quiet(None),
            Self::ListFunctions,
            Self::DescribeFunction(String::new()),
            Self::Memory,
        ]
    }

    /// How the command is written (placeholders in capitals) and what it does.
    pub fn usage(&self) -> (&'static str, &'static str) {
        match self {
            Self::Quit => ("\\q", "quit (Ctrl-D too)"),
            Self::Help => ("\\?", "this help"),
            Self::ListTables => ("\\d", "list tables"),
            Self::DescribeTable(_) => ("\\d NAME", "describe table NAME: its columns and types"),
            Self::Include(_) => ("\\i FILE", "run the statements and commands of FILE"),
            Self::ShowPrintSettings => ("\\pset", "show the print settings"),
            Self::SetFormat(_) => (
                "\\pset format X",
                "print results as table, csv, tsv, json, nd-json (parquet only with -o)",
            ),
            Self::SetMaxRows(_) => ("\\pset maxrows N|inf", "rows shown in table format"),
            Self::Quiet(_) => (
                "\\quiet [on|off]",
                "no `N rows in X s` and no progress lines (no argument: toggle)",
            ),
            Self::ListFunctions => ("\\functions", "list sessionlake's functions"),
            Self::DescribeFunction(_) => ("\\functions NAME", "the documentation of one function"),
            Self::Memory => (
                "\\memory",
                "the memory limit of queries (-m) and what they hold now",
            ),
        }
    }

    /// The command names (`\d`, `\pset`, ...), each once, in the order `\?` lists them.
    pub fn names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for form in Self::forms() {
            let name = form.usage().0.split(' ').next().unwrap_or_default();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The text `\?` prints.
    pub fn help() -> String {
        let forms = Self::forms();
        let width = forms.iter().map(|f| f.usage().0.len()).max().unwrap_or(0);
        let mut text = String::from("Backslash commands:\n");
        for form in forms {
            let (usage, description) = form.usage();
            text.push_str(&format!("  {usage:<width$}  {description}\n"));
        }
        text.push_str(
            "SQL statements end with `;` and may span lines. Ctrl-C cancels a running query.\n",
        );
        text
    }
}

impl FromStr for Command {
    type Err = String;

    /// Parses a command line, with or without its backslash.
    fn from_str(line: &str) -> Result<Self, String> {
        let body = line.trim();
        let body = body.strip_prefix('\\').unwrap_or(body);
        let mut words = body.split_whitespace();
        let name = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        Ok(match (name, args.as_slice()) {
            ("q" | "quit", []) => Self::Quit,
            ("?" | "h" | "help", []) => Self::Help,
            ("d", []) => Self::ListTables,
            ("d", [table]) => Self::DescribeTable(table.to_string()),
            ("i", [path]) => Self::Include(PathBuf::from(path)),
            ("pset", []) => Self::ShowPrintSettings,
            ("pset", ["format", format]) => {
                Self::SetFormat(OutputFormat::from_str(format, true).map_err(|_| {
                    format!(
                        "\\pset format: '{format}' is not one of table, csv, tsv, json, \
                         nd-json, parquet"
                    )
                })?)
            }
            ("pset", ["maxrows", rows]) => {
                Self::SetMaxRows(parse_max_rows(rows).map_err(|e| format!("\\pset maxrows: {e}"))?)
            }
            ("quiet", []) => Self::Quiet(None),
            ("quiet", ["on"]) => Self::Quiet(Some(true)),
            ("quiet", ["off"]) => Self::Quiet(Some(false)),
            ("functions", []) => Self::ListFunctions,
            ("functions", [function]) => Self::DescribeFunction(function.to_string()),
            ("memory", []) => Self::Memory,
            _ => {
                return Err(format!(
                    "unknown command or arguments: {} (\\? lists the commands)",
                    line.trim()
                ));
            }
        })
    }
}

/// What `\memory` prints: the budget, how much of the pool operators hold now, and the
/// heap's page size.
fn memory_report(shell: &Shell) -> String {
    let limit = match &shell.memory {
        Some(budget) => budget.describe(),
        None => "set by the cluster's executors".to_string(),
    };
    let reserved = shell.ctx.runtime_env().memory_pool.reserved();
    format!(
        "limit {limit}\nin use {}\nheap {}\n",
        Bytes(reserved as u64),
        crate::huge_pages::describe()
    )
}

/// Runs one backslash command line (with its backslash).
pub async fn run(shell: &mut Shell, line: &str) -> Result<Flow, Failure> {
    match line.parse::<Command>().map_err(Failure::Error)? {
        Command::Quit => return Ok(Flow::Quit),
        Command::Help => write_stdout(Command::help().as_bytes())?,
        Command::ListTables => list_tables(shell).await?,
        Command::DescribeTable(table) => describe_table(shell, &table).await?,
        Command::Include(path) => shell.include(&path).await?,
        Command::ShowPrintSettings => {
            let options = &shell.options;
            let max_rows = match options.max_rows {
                MaxRows::Limited(n) => n.to_string(),
                MaxRows::Unlimited => "inf".to_string(),
            };
            write_stdout(
                format!("format {}\nmaxrows {max_rows}\n", options.format.name()).as_bytes(),
            )?;
        }
        Command::SetFormat(format) => {
            shell.options.format = format;
            note(&format!("output format is {}", format.name()));
        }
        Command::SetMaxRows(rows) => {
            shell.options.max_rows = rows;
            note(&match rows {
                MaxRows::Limited(n) => format!("maxrows is {n}"),
                MaxRows::Unlimited => "maxrows is inf".to_string(),
            });
        }
        Command::Quiet(quiet) => set_quiet(shell, quiet.unwrap_or(!shell.options.quiet)),
        Command::ListFunctions => list_functions(shell)?,
        Command::DescribeFunction(function) => describe_function(&function)?,
        Command::Memory => write_stdout(memory_report(shell).as_bytes())?,
    }
    Ok(Flow::Continue)
}

fn set_quiet(shell: &mut Shell, quiet: bool) {
    shell.options.quiet = quiet;
    note(if quiet {
        "quiet mode on"
    } else {
        "quiet mode off"
    });
}

/// A confirmation on stderr, so that stdout holds only results.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Prints a result of string columns.
fn print_strings(
    shell: &mut Shell,
    names: &[&str],
    columns: Vec<Vec<String>>,
) -> Result<(), Failure> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|values| Arc::new(StringArray::from(values)) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)
        .map_err(|e| Failure::Error(e.to_string()))?;
    shell.print(&schema, &[batch])
}

/// A table or view a query can name: the schema holding it, its name there, and the name a
/// query uses (qualified outside the default catalog and schema).
pub struct VisibleTable {
    pub schema: Arc<dyn SchemaProvider>,
    pub table: String,
    pub name: String,
}

/// Every table and view outside `information_schema`, by catalog, schema and table name.
pub fn visible_tables(ctx: &SessionContext) -> Vec<VisibleTable> {
    let (default_catalog, default_schema) = {
        let state = ctx.state();
        let catalog = &state.config_options().catalog;
        (
            catalog.default_catalog.clone(),
            catalog.default_schema.clone(),
        )
    };
    let mut tables = Vec::new();
    let mut catalogs = ctx.catalog_names();
    catalogs.sort();
    for catalog_name in catalogs {
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            continue;
        };
        let mut schemas = catalog.schema_names();
        schemas.sort();
        for schema_name in schemas {
            if schema_name == "information_schema" {
                continue;
            }
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let mut names = schema.table_names();
            names.sort();
            for table in names {
                let name = if catalog_name == default_catalog && schema_name == default_schema {
                    table.clone()
                } else {
                    format!("{catalog_name}.{schema_name}.{table}")
                };
                tables.push(VisibleTable {
                    schema: Arc::clone(&schema),
                    table,
                    name,
                });
            }
        }
    }
    tables
}

/// `\d`: every table and view outside `information_schema`.
async fn list_tables(shell: &mut Shell) -> Result<(), Failure> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for visible in visible_tables(&shell.ctx) {
        let kind = match visible.schema.table(&visible.table).await? {
            Some(provider) => match provider.table_type() {
                TableType::Base => "table",
                TableType::View => "view",
                TableType::Temporary => "temporary",
            },
            None => continue,
        };
        rows.push((visible.name, kind.to_string()));
    }
    let (names, kinds) = rows.into_iter().unzip();
    print_strings(shell, &["name", "type"], vec![names, kinds])
}

/// `\d NAME`: the columns of one table.
async fn describe_table(shell: &mut Shell, table: &str) -> Result<(), Failure> {
    let provider =
        shell.ctx.table_provider(table).await.map_err(|_| {
            Failure::Error(format!("\\d: table '{table}' not found (\\d lists them)"))
        })?;
    let schema = provider.schema();
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut nullable = Vec::new();
    for field in schema.fields() {
        names.push(field.name().clone());
        types.push(field.data_type().to_string());
        nullable.push(if field.is_nullable() { "YES" } else { "NO" }.to_string());
    }
    print_strings(
        shell,
        &["column_name", "data_type", "is_nullable"],
        vec![names, types, nullable],
    )
}

/// One of sessionlake's functions, for `\functions`.
struct FunctionDoc {
    name: String,
    kind: &'static str,
    doc: Documentation,
}

/// Every function sessionlake adds, in name order.
fn sessionlake_functions() -> Vec<FunctionDoc> {
    let mut functions = Vec::new();
    for output in [SessionOutput::Sessions, SessionOutput::Events] {
        let function = SessionizeTableFunction::new(output);
        functions.push(FunctionDoc {
            name: function.name().to_string(),
            kind: "table",
            doc: function.documentation().clone(),
        });
    }
    for udwf in sessionlake_functions::all_default_window_functions() {
        if let Some(doc) = udwf.documentation() {
            functions.push(FunctionDoc {
                name: udwf.name().to_string(),
                kind: "window",
                doc: doc.clone(),
            });
        }
    }
    for udaf in sessionlake_functions::all_default_aggregate_functions() {
        if let Some(doc) = udaf.documentation() {
            functions.push(FunctionDoc {
                name: udaf.name().to_string(),
                kind: "aggregate",
                doc: doc.clone(),
            });
        }
    }
    functions.sort_by_key(|f| f.name.to_lowercase());
    functions
}

/// The longest summary `\functions` shows, in characters.
const SUMMARY_WIDTH: usize = 90;

/// The first sentence (or clause before a colon) of a description, on one line, cut at a word
/// boundary to at most [`SUMMARY_WIDTH`] characters.
fn summary(description: &str) -> String {
    let flat = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let sentence = match flat.find(". ").or_else(|| flat.find(": ")) {
        Some(end) => flat[..=end].trim_end_matches(':').to_string(),
        None => flat,
    };
    if sentence.chars().count() <= SUMMARY_WIDTH {
        return sentence;
    }
    let mut cut = String::new();
    for word in sentence.split(' ') {
        if cut.chars().count() + word.chars().count() + 1 > SUMMARY_WIDTH - 1 {
            break;
        }
        if !cut.is_empty() {
            cut.push(' ');
        }
        cut.push_str(word);
    }
    cut.push('…');
    cut
}

/// `\functions`: name, kind and a one-line summary of each.
fn list_functions(shell: &mut Shell) -> Result<(), Failure> {
    let functions = sessionlake_functions();
    let names = functions.iter().map(|f| f.name.clone()).collect();
    let kinds = functions.iter().map(|f| f.kind.to_string()).collect();
    let summaries = functions
        .iter()
        .map(|f| summary(&f.doc.description))
        .collect();
    print_strings(
        shell,
        &["function", "kind", "summary"],
        vec![names, kinds, summaries],
    )
}

/// `\functions NAME`: the whole documentation of the functions of that name (`sessionize` is
/// a table function and a window function), as text.
fn describe_function(name: &str) -> Result<(), Failure> {
    let pages: Vec<String> = sessionlake_functions()
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| render_documentation(&f.name, f.kind, &f.doc))
        .collect();
    if pages.is_empty() {
        return Err(Failure::Error(format!(
            "\\functions: sessionlake has no function named '{name}' (\\functions lists them)"
        )));
    }
    write_stdout(pages.join("\n").as_bytes())
}

/// Documentation as plain text for the terminal.
pub fn render_documentation(name: &str, kind: &str, doc: &Documentation) -> String {
    let mut text = format!("{name} ({kind} function)\n\n");
    text.push_str(&format!("  {}\n\n", doc.syntax_example));
    for paragraph in doc.description.split("\n\n") {
        text.push_str(&wrap(paragraph, 96, "  "));
        text.push('\n');
    }
    if let Some(arguments) = &doc.arguments {
        text.push_str("Arguments:\n");
        for (argument, description) in arguments {
            text.push_str(&format!("  {argument}\n"));
            text.push_str(&wrap(description, 94, "    "));
        }
        text.push('\n');
    }
    if let Some(example) = &doc.sql_example {
        text.push_str("Example:\n");
        for line in example.lines().filter(|l| !l.starts_with("```")) {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

/// Words of `text` in lines of at most `width` characters, each after `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_a_summary_and_renders() {
        let functions = sessionlake_functions();
        let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
        for expected in ["sessions", "sessionize", "SESSIONTOTALS", "HIST", "UNIQUES"] {
            assert!(
                names.iter().any(|n| n.eq_ignore_ascii_case(expected)),
                "{expected} missing from {names:?}"
            );
        }
        for function in &functions {
            let summary = summary(&function.doc.description);
            assert!(
                !summary.is_empty() && summary.chars().count() <= SUMMARY_WIDTH,
                "{summary}"
            );
            let text = render_documentation(&function.name, function.kind, &function.doc);
            assert!(text.starts_with(&function.name), "{text}");
            assert!(text.contains(&function.doc.syntax_example), "{text}");
        }
    }

    #[test]
    fn summaries_take_the_first_sentence() {
        assert_eq!(summary("One thing. Then\n another."), "One thing.");
        assert_eq!(summary("No full stop"), "No full stop");
        let long = "word ".repeat(40);
        let cut = summary(&long);
        assert!(
            cut.ends_with("word…") && cut.chars().count() <= SUMMARY_WIDTH,
            "{cut}"
        );
    }

    #[test]
    fn every_form_in_the_help_parses_back_to_itself() {
        let help = Command::help();
        for form in Command::forms() {
            let (usage, description) = form.usage();
            assert!(help.contains(usage) && help.contains(description), "{help}");
            // the usage with its placeholders filled in is a line of that command
            let line = usage
                .replace("N|inf", "inf")
                .replace("[on|off]", "")
                .replace("NAME", "events")
                .replace("FILE", "setup.sql")
                .replace(" X", " csv");
            let parsed: Command = line.parse().unwrap();
            assert_eq!(
                std::mem::discriminant(&parsed),
                std::mem::discriminant(&form),
                "{line}"
            );
        }
        assert_eq!(
            Command::names(),
            [
                "\\q",
                "\\?",
                "\\d",
                "\\i",
                "\\pset",
                "\\quiet",
                "\\functions",
                "\\memory"
            ]
        );
    }

    #[test]
    fn commands_parse_with_their_arguments() {
        let parse = |line: &str| line.parse::<Command>();
        assert_eq!(parse("\\quit"), Ok(Command::Quit));
        assert_eq!(parse("  \\h "), Ok(Command::Help));
        assert_eq!(
            parse("\\d events"),
            Ok(Command::DescribeTable("events".into()))
        );
        assert_eq!(parse("\\quiet on"), Ok(Command::Quiet(Some(true))));
        assert_eq!(parse("\\quiet off"), Ok(Command::Quiet(Some(false))));
        assert_eq!(
            parse("\\pset maxrows 20"),
            Ok(Command::SetMaxRows(MaxRows::Limited(20)))
        );
        assert_eq!(
            parse("\\pset format JSON"),
            Ok(Command::SetFormat(OutputFormat::Json))
        );
        assert_eq!(
            parse("\\pset format xml"),
            Err(
                "\\pset format: 'xml' is not one of table, csv, tsv, json, nd-json, parquet".into()
            )
        );
        assert_eq!(
            parse("\\pset maxrows many"),
            Err("\\pset maxrows: 'many' is not a row count or 'inf'".into())
        );
        assert_eq!(
            parse("\\d a b"),
            Err("unknown command or arguments: \\d a b (\\? lists the commands)".into())
        );
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc", 5, "-"), "-aa bb\n-cc\n");
        assert_eq!(wrap("", 5, "-"), "");
    }
}
