//! What the line editor knows about SQL: Tab completion and syntax colours.
//!
//! Completion offers, for the word before the cursor: backslash commands at the start of an
//! input; `sessionlake.*` options after `SET`; table names inside quotes (as in
//! `sessions('ev`); otherwise SQL keywords, the session's functions, its table names and the
//! columns of the tables the statement names (after `FROM` / `JOIN`, or as the first argument of
//! a table function such as `sessions('events')`, whose output columns are offered). A keyword
//! or function is inserted in the case the word was typed in.
//!
//! Highlighting colours keywords, string literals and comments; it is used only when colour is
//! on ([`ColorChoice`]).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use datafusion::common::ScalarValue;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use rustyline::Context;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Helper, Result};
use sessionlake_engine::SessionLakeConfig;

use crate::args::ColorChoice;
use crate::command::{Command, visible_tables};

/// The keywords completed and coloured: the words of the statements an analyst writes, not
/// every word the parser reserves (so that a column such as `user` stays plain).
const KEYWORDS: [&str; 75] = [
    "ALL",
    "AND",
    "AS",
    "ASC",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "COPY",
    "CREATE",
    "CROSS",
    "CURRENT_DATE",
    "DATE",
    "DAY",
    "DESC",
    "DESCRIBE",
    "DISTINCT",
    "DROP",
    "ELSE",
    "END",
    "EXCEPT",
    "EXISTS",
    "EXPLAIN",
    "EXTERNAL",
    "FALSE",
    "FILTER",
    "FIRST",
    "FOLLOWING",
    "FROM",
    "FULL",
    "GROUP",
    "HAVING",
    "HOUR",
    "IN",
    "INNER",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "JOIN",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LOCATION",
    "MINUTE",
    "MONTH",
    "NOT",
    "NULL",
    "NULLS",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "PARTITION",
    "PRECEDING",
    "RANGE",
    "RIGHT",
    "ROWS",
    "SELECT",
    "SET",
    "SHOW",
    "STORED",
    "TABLE",
    "THEN",
    "TIMESTAMP",
    "TRUE",
    "UNBOUNDED",
    "UNION",
    "USING",
    "VIEW",
    "WHEN",
    "WHERE",
];

/// Whether `word` is one of [`KEYWORDS`], in any case.
fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// A piece of SQL text, for colouring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Keyword,
    String,
    Comment,
    Other,
}

/// The byte ranges of `text`'s keywords, string literals and comments, in order; a string or
/// comment left open runs to the end.
fn tokens(text: &str) -> Vec<(usize, usize, TokenKind)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let kind = match bytes[i] {
            b'\'' => {
                i += 1;
                while i < bytes.len() {
                    // '' is a quote inside the string
                    if bytes[i] == b'\'' {
                        if bytes.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                TokenKind::String
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                TokenKind::Comment
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| i + 2 + end + 2);
                TokenKind::Comment
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += 1;
                }
                i = (i + 1).min(bytes.len());
                TokenKind::Other
            }
            b if is_word_byte(b) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                if is_keyword(&text[start..i]) {
                    TokenKind::Keyword
                } else {
                    TokenKind::Other
                }
            }
            _ => {
                // one character, however many bytes it takes
                i += text[i..].chars().next().map_or(1, char::len_utf8);
                TokenKind::Other
            }
        };
        if kind != TokenKind::Other {
            out.push((start, i, kind));
        }
    }
    out
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

const KEYWORD_STYLE: &str = "\x1b[1;34m";
const STRING_STYLE: &str = "\x1b[32m";
const COMMENT_STYLE: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// `line` with its keywords, strings and comments coloured, read as the continuation of
/// `before` (the earlier lines of the statement, so that a string opened there stays one).
fn colour(before: &str, line: &str) -> String {
    let text = format!("{before}{line}");
    let offset = before.len();
    let mut out = String::with_capacity(line.len() * 2);
    let mut at = offset;
    for (start, end, kind) in tokens(&text) {
        if end <= offset {
            continue;
        }
        let style = match kind {
            TokenKind::Keyword => KEYWORD_STYLE,
            TokenKind::String => STRING_STYLE,
            TokenKind::Comment => COMMENT_STYLE,
            TokenKind::Other => continue,
        };
        let start = start.max(offset);
        out.push_str(&text[at..start]);
        out.push_str(style);
        out.push_str(&text[start..end]);
        out.push_str(RESET);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// The line editor's helper: completion from the session's catalog and functions, colours.
pub struct SqlHelper {
    ctx: SessionContext,
    colour: bool,
    /// The lines of the statement typed so far, before the line being edited.
    pending: Arc<Mutex<String>>,
}

impl SqlHelper {
    pub fn new(ctx: SessionContext, colour: bool) -> Self {
        Self {
            ctx,
            colour,
            pending: Arc::default(),
        }
    }

    /// Where the REPL keeps the earlier lines of a statement that spans lines.
    pub fn pending(&self) -> Arc<Mutex<String>> {
        Arc::clone(&self.pending)
    }

    fn earlier_lines(&self) -> String {
        self.pending.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The candidates for the word ending at `pos` in `line`: its start and the completions.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let earlier = self.earlier_lines();
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        // a backslash command: the first word of an input
        if earlier.trim().is_empty()
            && start > 0
            && before[..start].trim() == "\\"
            && before[..start - 1].trim().is_empty()
        {
            let names = Command::names()
                .into_iter()
                .filter_map(|name| name.strip_prefix('\\'))
                .filter(|name| name.starts_with(word))
                .map(str::to_string)
                .collect();
            return (start, names);
        }
        let statement = format!("{earlier}{before}");
        let words_before: Vec<&str> = statement[..statement.len() - word.len()]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        let after_set = words_before
            .last()
            .is_some_and(|w| w.eq_ignore_ascii_case("set"));
        if after_set || word.to_ascii_lowercase().starts_with("sessionlake.") {
            let options = SessionLakeConfig::KEYS
                .iter()
                .map(|(key, _)| format!("sessionlake.{key}"))
                .filter(|option| option.starts_with(&word.to_ascii_lowercase()))
                .collect();
            return (start, options);
        }
        if inside_string(&statement[..statement.len() - word.len()]) {
            return (start, matching(word, self.table_names(), false));
        }
        let mut names: BTreeSet<String> = BTreeSet::new();
        names.extend(self.table_names());
        names.extend(self.columns_of_named_tables(&format!("{earlier}{line}")));
        let mut out = matching(word, names, false);
        let lower = word.chars().all(|c| !c.is_ascii_uppercase());
        let mut words: BTreeSet<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
        words.extend(self.function_names());
        for candidate in matching(word, words, true) {
            let candidate = if lower && !word.is_empty() {
                candidate.to_ascii_lowercase()
            } else {
                candidate
            };
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
        (start, out)
    }

    /// Every table and view, by the name a query uses.
    fn table_names(&self) -> Vec<String> {
        visible_tables(&self.ctx)
            .into_iter()
            .map(|visible| visible.name)
            .collect()
    }

    /// The names of every function of the session: scalar, aggregate, window and table.
    fn function_names(&self) -> Vec<String> {
        let state = self.ctx.state();
        let mut names: Vec<String> = state.scalar_functions().keys().cloned().collect();
        names.extend(state.aggregate_functions().keys().cloned());
        names.extend(state.window_functions().keys().cloned());
        names.extend(state.table_functions().keys().cloned());
        names
    }

    /// The columns of the tables `statement` names: after `FROM` or `JOIN`, or as the quoted
    /// first argument of a table function (then the function's output columns).
    fn columns_of_named_tables(&self, statement: &str) -> Vec<String> {
        let state = self.ctx.state();
        let mut columns = Vec::new();
        let words: Vec<&str> = statement
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            let (keyword, name) = (pair[0], pair[1]);
            if keyword.eq_ignore_ascii_case("from") || keyword.eq_ignore_ascii_case("join") {
                let name = name.trim_end_matches(')');
                if let Ok(table) = futures::executor::block_on(self.ctx.table_provider(name)) {
                    columns.extend(table.schema().fields().iter().map(|f| f.name().clone()));
                }
            }
        }
        for (function_name, function) in state.table_functions() {
            for call in statement.split(&format!("{function_name}('")).skip(1) {
                let Some((table, _)) = call.split_once('\'') else {
                    continue;
                };
                let args = [Expr::Literal(
                    ScalarValue::Utf8(Some(table.to_string())),
                    None,
                )];
                let provider = function.create_table_provider_with_args(
                    datafusion::catalog::TableFunctionArgs::new(&args, &state),
                );
                if let Ok(provider) = provider {
                    columns.extend(provider.schema().fields().iter().map(|f| f.name().clone()));
                }
            }
        }
        columns
    }
}

/// Whether `text` ends inside a string literal (an odd number of quotes outside comments).
fn inside_string(text: &str) -> bool {
    tokens(text).last().is_some_and(|&(start, end, kind)| {
        kind == TokenKind::String
            && end == text.len()
            && (end - start < 2 || !text[start + 1..end].ends_with('\''))
    })
}

/// The `names` that start with `word` (in any case when `any_case`), sorted, each once.
fn matching(word: &str, names: impl IntoIterator<Item = String>, any_case: bool) -> Vec<String> {
    let lower = word.to_ascii_lowercase();
    let set: BTreeSet<String> = names
        .into_iter()
        .filter(|name| {
            if any_case {
                name.to_ascii_lowercase().starts_with(&lower)
            } else {
                name.starts_with(word)
            }
        })
        .collect();
    set.into_iter().collect()
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Result<(usize, Vec<Pair>)> {
        let (start, candidates) = self.candidates(line, pos);
        let pairs = candidates
            .into_iter()
            .map(|candidate| Pair {
                display: candidate.clone(),
                replacement: candidate,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Highlighter for SqlHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.colour || line.trim_start().starts_with('\\') {
            return Cow::Borrowed(line);
        }
        Cow::Owned(colour(&self.earlier_lines(), line))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        self.colour && kind != CmdKind::MoveCursor
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Validator for SqlHelper {}

impl Helper for SqlHelper {}

/// Whether to colour the shell's input: `--color always|never`, or with `auto` only on a
/// terminal whose user has not set `NO_COLOR` and whose `TERM` is not `dumb`.
pub fn colour_enabled(
    choice: ColorChoice,
    is_terminal: bool,
    env: impl Fn(&str) -> Option<String>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal
                && env("NO_COLOR").is_none_or(|v| v.is_empty())
                && env("TERM").is_none_or(|t| t != "dumb")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampMillisecondArray;
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn helper() -> SqlHelper {
        let mut ctx = SessionContext::new();
        sessionlake_engine::register_all(&mut ctx).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Utf8, true),
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new("event_type", DataType::Utf8, true),
            Field::new("amount_usd", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(TimestampMillisecondArray::from(vec![0])),
                Arc::new(StringArray::from(vec!["view"])),
                Arc::new(Int64Array::from(vec![1])),
            ],
        )
        .unwrap();
        ctx.register_batch("events", batch).unwrap();
        SqlHelper::new(ctx, true)
    }

    fn complete(helper: &SqlHelper, line: &str) -> (usize, Vec<String>) {
        helper.candidates(line, line.len())
    }

    #[test]
    fn completes_backslash_commands_at_the_start_only() {
        let helper = helper();
        assert_eq!(complete(&helper, "\\ps"), (1, vec!["pset".to_string()]));
        assert_eq!(
            complete(&helper, "\\").1,
            ["q", "?", "d", "i", "pset", "quiet", "functions", "memory"]
        );
        assert_eq!(complete(&helper, "\\q").1, ["q", "quiet"]);
        // not a command when a statement is under way
        *helper.pending.lock().unwrap() = "SELECT 1\n".into();
        assert!(!complete(&helper, "\\ps").1.contains(&"pset".to_string()));
    }

    #[test]
    fn completes_options_after_set() {
        let helper = helper();
        let (start, options) = complete(&helper, "SET sessionlake.mo");
        assert_eq!((start, options), (4, vec!["sessionlake.mode".to_string()]));
        assert_eq!(
            complete(&helper, "SET sessionlake.ga").1,
            ["sessionlake.gap", "sessionlake.gap_column"]
        );
        let (_, options) = complete(&helper, "set ");
        assert_eq!(options.len(), SessionLakeConfig::KEYS.len());
        assert!(options.contains(&"sessionlake.inactive_event_types".to_string()));
    }

    #[test]
    fn completes_keywords_functions_tables_and_columns() {
        let helper = helper();
        assert_eq!(complete(&helper, "SEL"), (0, vec!["SELECT".to_string()]));
        assert_eq!(complete(&helper, "sel").1, ["select"]);
        assert!(complete(&helper, "SELECT sessiontot").1 == ["sessiontotals"]);
        assert!(
            complete(&helper, "SELECT * FROM ev")
                .1
                .contains(&"events".to_string())
        );
        // columns of a table the statement names, wherever the cursor is
        let line = "SELECT amo FROM events";
        assert_eq!(
            helper.candidates(line, 10),
            (7, vec!["amount_usd".to_string()])
        );
        // the output columns of a table function over a named table
        let line = "SELECT dur FROM sessions('events')";
        assert_eq!(
            helper.candidates(line, 10),
            (7, vec!["duration_ms".to_string()])
        );
        // the statement's earlier lines count
        *helper.pending.lock().unwrap() = "SELECT *\nFROM events\n".into();
        assert_eq!(complete(&helper, "WHERE event_ty").1, ["event_type"]);
        // inside quotes: table names
        helper.pending.lock().unwrap().clear();
        assert_eq!(
            complete(&helper, "SELECT * FROM sessions('ev").1,
            ["events"]
        );
    }

    #[test]
    fn colours_keywords_strings_and_comments() {
        let coloured = colour("", "select 'it''s' AS x -- done");
        assert_eq!(
            coloured,
            format!(
                "{KEYWORD_STYLE}select{RESET} {STRING_STYLE}'it''s'{RESET} \
                 {KEYWORD_STYLE}AS{RESET} x {COMMENT_STYLE}-- done{RESET}"
            )
        );
        // a string opened on an earlier line continues
        assert_eq!(
            colour("SELECT 'a\n", "b' FROM t"),
            format!("{STRING_STYLE}b'{RESET} {KEYWORD_STYLE}FROM{RESET} t")
        );
        // identifiers that contain keywords stay plain
        assert_eq!(
            colour("", "user_id fromage \"select\""),
            "user_id fromage \"select\""
        );
    }

    #[test]
    fn colour_follows_the_flag_the_terminal_and_no_color() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                vars.iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(colour_enabled(
            ColorChoice::Auto,
            true,
            env(&[("TERM", "xterm")])
        ));
        assert!(!colour_enabled(ColorChoice::Auto, false, env(&[])));
        assert!(!colour_enabled(
            ColorChoice::Auto,
            true,
            env(&[("NO_COLOR", "1")])
        ));
        assert!(!colour_enabled(
            ColorChoice::Auto,
            true,
            env(&[("TERM", "dumb")])
        ));
        assert!(colour_enabled(
            ColorChoice::Always,
            false,
            env(&[("NO_COLOR", "1")])
        ));
        assert!(!colour_enabled(ColorChoice::Never, true, env(&[])));
    }
}
