//! Splits the text of a script (a `-c` argument, a `-f` file, the REPL's input) into SQL
//! statements and backslash commands.
//!
//! A statement ends at a `;` outside quotes and comments; the text after the last `;` is a final
//! statement of its own (so `-c "SELECT 1"` needs no `;`). A backslash command is a line whose
//! first non-blank character is `\` where no statement has begun; it ends at the end of the line.
//! Each item keeps the line it starts on, so errors can name it.

/// One thing to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A SQL statement without its terminating `;`.
    Sql(String),
    /// A backslash command line, with the backslash.
    Command(String),
}

/// An [`Item`] and the 1-based line of the script it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub item: Item,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    SingleQuote,
    DoubleQuote,
    LineComment,
    BlockComment,
}

/// The lexical scan shared by [`split`] and [`is_complete`].
struct Scan {
    items: Vec<Located>,
    /// The statement being read, if one has begun (holds only text, not leading blanks).
    current: String,
    current_line: usize,
    /// Whether `current` holds anything but blanks and comments.
    has_content: bool,
    state: State,
}

impl Scan {
    fn run(text: &str) -> Self {
        let mut scan = Scan {
            items: Vec::new(),
            current: String::new(),
            current_line: 1,
            has_content: false,
            state: State::Normal,
        };
        let mut line = 1;
        let mut chars = text.char_indices().peekable();
        let mut at_line_start = true;
        while let Some((offset, c)) = chars.next() {
            if at_line_start && scan.state == State::Normal && !scan.has_content {
                if c == ' ' || c == '\t' || c == '\r' {
                    continue;
                }
                if c == '\\' {
                    let rest = &text[offset..];
                    let end = rest.find('\n').unwrap_or(rest.len());
                    scan.items.push(Located {
                        item: Item::Command(rest[..end].trim_end().to_string()),
                        line,
                    });
                    // skip the command's characters; the newline (if any) is handled below
                    while chars.peek().is_some_and(|&(o, _)| o < offset + end) {
                        chars.next();
                    }
                    continue;
                }
            }
            at_line_start = false;
            if !scan.has_content && scan.current.trim().is_empty() && !c.is_whitespace() {
                scan.current_line = line;
            }
            match scan.state {
                State::Normal => match c {
                    ';' => {
                        scan.finish();
                        continue;
                    }
                    '\'' => scan.state = State::SingleQuote,
                    '"' => scan.state = State::DoubleQuote,
                    '-' if chars.peek().is_some_and(|&(_, n)| n == '-') => {
                        scan.state = State::LineComment
                    }
                    '/' if chars.peek().is_some_and(|&(_, n)| n == '*') => {
                        scan.current.push(c);
                        chars.next();
                        scan.current.push('*');
                        scan.state = State::BlockComment;
                        continue;
                    }
                    _ => {}
                },
                State::SingleQuote if c == '\'' => scan.state = State::Normal,
                State::DoubleQuote if c == '"' => scan.state = State::Normal,
                State::LineComment if c == '\n' => scan.state = State::Normal,
                State::BlockComment if c == '*' && chars.peek().is_some_and(|&(_, n)| n == '/') => {
                    scan.current.push(c);
                    chars.next();
                    scan.current.push('/');
                    scan.state = State::Normal;
                    continue;
                }
                _ => {}
            }
            let in_comment = matches!(scan.state, State::LineComment | State::BlockComment);
            if !in_comment && !c.is_whitespace() {
                scan.has_content = true;
            }
            scan.current.push(c);
            if c == '\n' {
                line += 1;
                at_line_start = true;
            }
        }
        scan
    }

    /// Ends the current statement (at a `;` or at the end of the text).
    fn finish(&mut self) {
        if self.has_content {
            self.items.push(Located {
                item: Item::Sql(self.current.trim().to_string()),
                line: self.current_line,
            });
        }
        self.current.clear();
        self.has_content = false;
    }
}

/// Splits `text` into statements and backslash commands, in order.
pub fn split(text: &str) -> Vec<Located> {
    let mut scan = Scan::run(text);
    scan.finish();
    scan.items
}

/// Whether the REPL has a whole input: every statement ended by `;` (or only backslash
/// commands, blanks and comments), and no quote or block comment left open.
pub fn is_complete(text: &str) -> bool {
    let scan = Scan::run(text);
    !scan.has_content && matches!(scan.state, State::Normal | State::LineComment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str, line: usize) -> Located {
        Located {
            item: Item::Sql(text.to_string()),
            line,
        }
    }

    fn command(text: &str, line: usize) -> Located {
        Located {
            item: Item::Command(text.to_string()),
            line,
        }
    }

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        let text = "SELECT 'a;b', \"c;d\" -- e;f\nFROM t; /* g; h */ SELECT 2;\n\nSELECT 3";
        assert_eq!(
            split(text),
            vec![
                sql("SELECT 'a;b', \"c;d\" -- e;f\nFROM t", 1),
                sql("/* g; h */ SELECT 2", 2),
                sql("SELECT 3", 4),
            ]
        );
    }

    #[test]
    fn backslash_commands_take_a_line_where_no_statement_has_begun() {
        let text = "\\d\n  \\pset format csv\nSELECT 1\n\\q;\n;\n\\quiet";
        // the `\q;` line continues the statement begun on line 3
        assert_eq!(
            split(text),
            vec![
                command("\\d", 1),
                command("\\pset format csv", 2),
                sql("SELECT 1\n\\q", 3),
                command("\\quiet", 6),
            ]
        );
    }

    #[test]
    fn empty_statements_and_comment_only_text_are_dropped() {
        assert_eq!(split(";;  ;\n-- only a comment\n"), vec![]);
        assert_eq!(split(""), vec![]);
        assert_eq!(split("-- c\nSELECT 1;"), vec![sql("-- c\nSELECT 1", 1)]);
    }

    #[test]
    fn quotes_with_doubled_quote_escapes() {
        assert_eq!(
            split("SELECT 'it''s;'; SELECT 2"),
            vec![sql("SELECT 'it''s;'", 1), sql("SELECT 2", 1)]
        );
    }

    #[test]
    fn completeness_for_the_repl() {
        assert!(is_complete(""));
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(is_complete("\\d"));
        assert!(is_complete("\\d events\n"));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT 1\nFROM t"));
        assert!(!is_complete("SELECT 'a;"));
        assert!(!is_complete("SELECT 1; /* open"));
        assert!(!is_complete("SELECT 1; SELECT 2"));
    }
}
