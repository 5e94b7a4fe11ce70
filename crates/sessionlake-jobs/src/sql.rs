//! What the job's SQL statements share: quoting names and text into SQL, and the names of the
//! columns one statement makes and another reads ([`crate::compute`] the sessions,
//! [`crate::metrics`] the daily metrics, the exports, the users table and the report).

/// The Date32 day of the sessions and metrics tables' partition column.
pub const DAY_COLUMN: &str = "session_date";
/// The days of a session's events in the window's sessions (not written).
pub(crate) const ACTIVE_DAYS: &str = "active_days";

/// Quotes an identifier for SQL.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(ident("user id"), "\"user id\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote("it's"), "'it''s'");
    }
}
