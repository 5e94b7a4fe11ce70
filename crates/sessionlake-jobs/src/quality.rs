//! Session quality classes (`[outputs.sessions.quality]`): ordered classes such as `good` /
//! `medium` / `poor`, each a name and conditions on a session's length and on its number of
//! interactions (events of listed types). A session takes the first class whose conditions all
//! hold, and no class when none does.

use serde::Deserialize;

use crate::sql::quote;

/// A validated quality rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityRule {
    /// The event types that count as interactions; empty: no interaction condition is allowed.
    pub interactions: Vec<String>,
    /// The classes, tried in order.
    pub classes: Vec<QualityClass>,
}

/// One class: its name and the conditions a session must meet, all of them (none: every
/// session that reaches it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityClass {
    pub name: String,
    /// The session's length is at least this many milliseconds.
    pub duration_at_least_ms: Option<i64>,
    /// The session's length is less than this many milliseconds.
    pub duration_below_ms: Option<i64>,
    /// The session has at least this many interactions.
    pub interactions_at_least: Option<u64>,
    /// The session has fewer than this many interactions.
    pub interactions_below: Option<u64>,
}

/// `[outputs.sessions.quality]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QualityFile {
    #[serde(default)]
    interactions: Vec<String>,
    #[serde(default)]
    classes: Vec<QualityClassFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QualityClassFile {
    name: String,
    duration_at_least: Option<String>,
    duration_below: Option<String>,
    interactions_at_least: Option<u64>,
    interactions_below: Option<u64>,
}

/// The prefix of a class's count column in the daily metrics table: `sessions_<class>`.
pub const CLASS_COUNT_PREFIX: &str = "sessions_";

impl QualityRule {
    /// Validates the file's rule; errors name the key under `outputs.sessions.quality`.
    pub(crate) fn validate(
        file: QualityFile,
        span_millis: impl Fn(&'static str, &str) -> Result<i64, (&'static str, String)>,
    ) -> Result<Self, (String, String)> {
        let key = |k: &str| format!("outputs.sessions.quality.{k}");
        if file.classes.is_empty() {
            return Err((
                key("classes"),
                "give at least one class, such as { name = \"short\", duration_below = \"1 minute\" }"
                    .into(),
            ));
        }
        for t in &file.interactions {
            if t.trim().is_empty() {
                return Err((
                    key("interactions"),
                    "an event type must not be empty".into(),
                ));
            }
        }
        let mut classes: Vec<QualityClass> = Vec::with_capacity(file.classes.len());
        for (i, class) in file.classes.into_iter().enumerate() {
            let at = |k: &str| key(&format!("classes[{i}].{k}"));
            let valid_name = !class.name.is_empty()
                && class
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid_name {
                return Err((
                    at("name"),
                    format!(
                        "'{}' must be lower-case letters, digits and '_' (it names the column \
                         {CLASS_COUNT_PREFIX}<name>)",
                        class.name
                    ),
                ));
            }
            if classes.iter().any(|c| c.name == class.name) {
                return Err((at("name"), format!("'{}' is used twice", class.name)));
            }
            let span = |k: &'static str, text: &Option<String>| {
                text.as_deref()
                    .map(|t| span_millis(k, t).map_err(|(k, m)| (at(k), m)))
                    .transpose()
            };
            let duration_at_least_ms = span("duration_at_least", &class.duration_at_least)?;
            let duration_below_ms = span("duration_below", &class.duration_below)?;
            let counts_interactions =
                class.interactions_at_least.is_some() || class.interactions_below.is_some();
            if counts_interactions && file.interactions.is_empty() {
                return Err((
                    key("interactions"),
                    format!(
                        "class '{}' has a condition on interactions: list the event types that \
                         count, such as [\"click\", \"scroll\", \"form_submit\"]",
                        class.name
                    ),
                ));
            }
            classes.push(QualityClass {
                name: class.name,
                duration_at_least_ms,
                duration_below_ms,
                interactions_at_least: class.interactions_at_least,
                interactions_below: class.interactions_below,
            });
        }
        Ok(Self {
            interactions: file.interactions,
            classes,
        })
    }

    /// The SQL count of a session's interactions over `sessionize` rows (its event type column
    /// `event_type`); `None` when no event type counts.
    pub fn interactions_sql(&self) -> Option<String> {
        let types: Vec<String> = self.interactions.iter().map(|t| quote(t)).collect();
        (!types.is_empty()).then(|| {
            format!(
                "CAST(count(*) FILTER (WHERE event_type IN ({})) AS BIGINT)",
                types.join(", ")
            )
        })
    }

    /// The SQL class of a session with length `length` (ms; NULL fails every length condition)
    /// and interaction count `interactions`: the first class whose conditions hold, else NULL.
    pub fn class_sql(&self, length: &str, interactions: &str) -> String {
        let mut cases = String::from("CASE");
        for class in &self.classes {
            let mut conditions = Vec::new();
            if let Some(ms) = class.duration_at_least_ms {
                conditions.push(format!("({length}) >= {ms}"));
            }
            if let Some(ms) = class.duration_below_ms {
                conditions.push(format!("({length}) < {ms}"));
            }
            if let Some(n) = class.interactions_at_least {
                conditions.push(format!("{interactions} >= {n}"));
            }
            if let Some(n) = class.interactions_below {
                conditions.push(format!("{interactions} < {n}"));
            }
            let when = if conditions.is_empty() {
                "true".to_string()
            } else {
                conditions.join(" AND ")
            };
            cases.push_str(&format!(" WHEN {when} THEN {}", quote(&class.name)));
        }
        cases.push_str(" END");
        cases
    }

    /// The daily metrics' count column of each class, in class order.
    pub fn count_columns(&self) -> impl Iterator<Item = (String, &str)> {
        self.classes
            .iter()
            .map(|c| (format!("{CLASS_COUNT_PREFIX}{}", c.name), c.name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(key: &'static str, text: &str) -> Result<i64, (&'static str, String)> {
        match text {
            "1 minute" => Ok(60_000),
            "5 minutes" => Ok(300_000),
            other => Err((key, format!("'{other}' is not a span"))),
        }
    }

    fn parse(toml_text: &str) -> Result<QualityRule, (String, String)> {
        let file: QualityFile = toml::from_str(toml_text).expect("valid TOML");
        QualityRule::validate(file, millis)
    }

    #[test]
    fn classes_become_one_case_in_order() {
        let rule = parse(
            r#"
            interactions = ["click", "it's"]
            classes = [
              { name = "good", duration_at_least = "5 minutes", interactions_at_least = 3 },
              { name = "medium", duration_at_least = "1 minute" },
              { name = "poor" },
            ]"#,
        )
        .expect("valid rule");
        assert_eq!(
            rule.class_sql("len", "n"),
            "CASE WHEN (len) >= 300000 AND n >= 3 THEN 'good' \
             WHEN (len) >= 60000 THEN 'medium' WHEN true THEN 'poor' END"
        );
        assert_eq!(
            rule.interactions_sql().as_deref(),
            Some("CAST(count(*) FILTER (WHERE event_type IN ('click', 'it''s')) AS BIGINT)")
        );
        let columns: Vec<String> = rule.count_columns().map(|(c, _)| c).collect();
        assert_eq!(
            columns,
            ["sessions_good", "sessions_medium", "sessions_poor"]
        );
    }

    #[test]
    fn bad_rules_name_the_key() {
        let err = |text: &str| parse(text).expect_err("invalid rule");
        assert_eq!(err("").0, "outputs.sessions.quality.classes");
        let (key, message) = err(r#"classes = [{ name = "Good" }]"#);
        assert_eq!(key, "outputs.sessions.quality.classes[0].name");
        assert!(message.contains("lower-case"), "{message}");
        let (key, _) = err(r#"classes = [{ name = "a" }, { name = "a" }]"#);
        assert_eq!(key, "outputs.sessions.quality.classes[1].name");
        let (key, message) = err(r#"classes = [{ name = "a", interactions_below = 2 }]"#);
        assert_eq!(key, "outputs.sessions.quality.interactions");
        assert!(message.contains("class 'a'"), "{message}");
        let (key, message) = err(r#"classes = [{ name = "a", duration_below = "soon" }]"#);
        assert_eq!(key, "outputs.sessions.quality.classes[0].duration_below");
        assert!(message.contains("'soon'"), "{message}");
    }
}
