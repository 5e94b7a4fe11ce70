//! sessionlake's options: DataFusion config keys under `sessionlake.`, settable with `SET`,
//! from the embedding API, or per call as `'key=value'` arguments of the table functions, and
//! validated into typed [`SessionOptions`] before a plan is built.

use std::any::Any;
use std::fmt;

use datafusion::common::config::{ConfigEntry, ConfigOptions, ExtensionOptions};
use datafusion::common::{Result, plan_err};
use datafusion::config::ConfigExtension;
use sessionlake_functions::time_unit::parse_span_nanos;

/// The `sessionlake.*` configuration keys, as text: each `SET` is validated at once (so a bad
/// value fails where it is written), and [`SessionOptions::resolve`] turns them into typed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLakeConfig {
    /// Inactivity timeout: an interval without months, strictly positive.
    pub gap: String,
    /// `gap`, `instrumented` or `instrumented_gap`.
    pub mode: String,
    /// Longest kept session (longer ones are excluded); `none` disables the rule.
    pub max_length: String,
    /// The column naming who an event belongs to.
    pub user_column: String,
    /// The timestamp column.
    pub time_column: String,
    /// The client SDK's session id column (instrumented modes).
    pub session_id_column: String,
    /// A boolean column; `false` rows take no part. Absent column: every event is active.
    pub active_column: String,
    /// Comma-separated event types that never take part in a session.
    pub inactive_event_types: String,
    /// Comma-separated columns whose first and last non-NULL value per session `sessions`
    /// returns (as `first_<column>` and `last_<column>`).
    pub properties: String,
}

impl Default for SessionLakeConfig {
    fn default() -> Self {
        Self {
            gap: "30 minutes".to_string(),
            mode: "gap".to_string(),
            max_length: "1 day".to_string(),
            user_column: "user_id".to_string(),
            time_column: "event_time".to_string(),
            session_id_column: "session_id".to_string(),
            active_column: "is_active".to_string(),
            inactive_event_types: String::new(),
            properties: String::new(),
        }
    }
}

/// Every key (without the `sessionlake.` prefix) with its description, in display order.
const CONFIG_KEYS: [(&str, &str); 9] = [
    (
        "gap",
        "Inactivity timeout: an interval without months, strictly positive.",
    ),
    (
        "mode",
        "How sessions are formed: gap, instrumented or instrumented_gap.",
    ),
    (
        "max_length",
        "Longest kept session (longer ones are excluded); none disables the rule.",
    ),
    ("user_column", "The column naming who an event belongs to."),
    ("time_column", "The timestamp column."),
    (
        "session_id_column",
        "The client SDK's session id column (instrumented modes).",
    ),
    (
        "active_column",
        "A boolean column whose false rows take no part; absent: all are active.",
    ),
    (
        "inactive_event_types",
        "Comma-separated event types that never take part in a session.",
    ),
    (
        "properties",
        "Comma-separated columns whose first and last non-NULL value per session sessions() \
         returns as first_<column> and last_<column>.",
    ),
];

impl SessionLakeConfig {
    fn field_mut(&mut self, key: &str) -> Option<&mut String> {
        Some(match key {
            "gap" => &mut self.gap,
            "mode" => &mut self.mode,
            "max_length" => &mut self.max_length,
            "user_column" => &mut self.user_column,
            "time_column" => &mut self.time_column,
            "session_id_column" => &mut self.session_id_column,
            "active_column" => &mut self.active_column,
            "inactive_event_types" => &mut self.inactive_event_types,
            "properties" => &mut self.properties,
            _ => return None,
        })
    }

    fn field(&self, key: &str) -> &str {
        match key {
            "gap" => &self.gap,
            "mode" => &self.mode,
            "max_length" => &self.max_length,
            "user_column" => &self.user_column,
            "time_column" => &self.time_column,
            "session_id_column" => &self.session_id_column,
            "active_column" => &self.active_column,
            "properties" => &self.properties,
            _ => &self.inactive_event_types,
        }
    }

    /// Sets one key (with or without the `sessionlake.` prefix), unvalidated.
    fn assign(&mut self, key: &str, value: &str) -> Result<()> {
        let key = key.trim();
        let key = key.strip_prefix("sessionlake.").unwrap_or(key);
        match self.field_mut(key) {
            Some(field) => {
                *field = value.trim().to_string();
                Ok(())
            }
            None => {
                let keys: Vec<&str> = CONFIG_KEYS.iter().map(|(k, _)| *k).collect();
                plan_err!(
                    "sessionlake: unknown option '{key}', expected one of {}",
                    keys.join(", ")
                )
            }
        }
    }
}

impl ExtensionOptions for SessionLakeConfig {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let mut updated = self.clone();
        updated.assign(key, value)?;
        SessionOptions::validate(&updated)?;
        *self = updated;
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        CONFIG_KEYS
            .iter()
            .map(|(key, description)| ConfigEntry {
                key: format!("{}.{key}", Self::PREFIX),
                value: Some(self.field(key).to_string()),
                description,
            })
            .collect()
    }
}

impl ConfigExtension for SessionLakeConfig {
    const PREFIX: &'static str = "sessionlake";
}

/// How sessions are formed. See `docs/semantics.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionMode {
    /// A new session after an inactivity gap.
    Gap,
    /// One session per client session id.
    Instrumented,
    /// Client session ids, split again at inactivity gaps.
    InstrumentedGap,
}

impl SessionMode {
    fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "gap" => Ok(Self::Gap),
            "instrumented" => Ok(Self::Instrumented),
            "instrumented_gap" => Ok(Self::InstrumentedGap),
            other => plan_err!(
                "sessionlake.mode: unknown mode '{other}', expected gap, instrumented or \
                 instrumented_gap"
            ),
        }
    }

    /// Whether sessions come from the session id column.
    pub fn is_instrumented(self) -> bool {
        matches!(self, Self::Instrumented | Self::InstrumentedGap)
    }
}

impl fmt::Display for SessionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gap => "gap",
            Self::Instrumented => "instrumented",
            Self::InstrumentedGap => "instrumented_gap",
        })
    }
}

/// Validated session options, independent of any table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionOptions {
    pub mode: SessionMode,
    /// The gap in nanoseconds, positive.
    pub gap_nanos: i128,
    /// The maximum length in nanoseconds; `None` disables the rule.
    pub max_length_nanos: Option<i128>,
    pub user_column: String,
    pub time_column: String,
    pub session_id_column: String,
    pub active_column: String,
    pub inactive_event_types: Vec<String>,
    /// Columns whose first and last non-NULL value per session `sessions` returns, in the
    /// order given, without repeats.
    pub properties: Vec<String>,
}

/// The non-empty items of a comma-separated list, trimmed.
fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl SessionOptions {
    /// Validates `config` with the per-call `overrides` (`key=value`, the key with or without
    /// the `sessionlake.` prefix) applied on top.
    pub fn resolve(config: &SessionLakeConfig, overrides: &[String]) -> Result<Self> {
        let mut config = config.clone();
        for item in overrides {
            let Some((key, value)) = item.split_once('=') else {
                return plan_err!(
                    "sessionlake: option argument '{item}' must look like 'key=value', for \
                     example 'gap=5 minutes'"
                );
            };
            config.assign(key, value)?;
        }
        Self::validate(&config)
    }

    fn validate(config: &SessionLakeConfig) -> Result<Self> {
        let gap_nanos = parse_span_nanos("sessionlake.gap", &config.gap)?;
        if gap_nanos <= 0 {
            return plan_err!("sessionlake.gap: must be positive, found '{}'", config.gap);
        }
        let max_length_nanos = match config.max_length.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "null" => None,
            _ => {
                let nanos = parse_span_nanos("sessionlake.max_length", &config.max_length)?;
                if nanos < 0 {
                    return plan_err!(
                        "sessionlake.max_length: must not be negative, found '{}'",
                        config.max_length
                    );
                }
                Some(nanos)
            }
        };
        for (key, value) in [
            ("user_column", &config.user_column),
            ("time_column", &config.time_column),
        ] {
            if value.trim().is_empty() {
                return plan_err!("sessionlake.{key}: must name a column");
            }
        }
        let properties = comma_list(&config.properties);
        for (i, name) in properties.iter().enumerate() {
            if properties[..i].contains(name) {
                return plan_err!("sessionlake.properties: column '{name}' is listed twice");
            }
        }
        Ok(Self {
            mode: SessionMode::parse(&config.mode)?,
            gap_nanos,
            max_length_nanos,
            user_column: config.user_column.trim().to_string(),
            time_column: config.time_column.trim().to_string(),
            session_id_column: config.session_id_column.trim().to_string(),
            active_column: config.active_column.trim().to_string(),
            inactive_event_types: comma_list(&config.inactive_event_types),
            properties,
        })
    }

    /// The options in force in a session's configuration (defaults if sessionlake's keys were
    /// never registered there).
    pub fn from_config_options(options: &ConfigOptions, overrides: &[String]) -> Result<Self> {
        match options.extensions.get::<SessionLakeConfig>() {
            Some(config) => Self::resolve(config, overrides),
            None => Self::resolve(&SessionLakeConfig::default(), overrides),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let options = SessionOptions::resolve(&SessionLakeConfig::default(), &[]).unwrap();
        assert_eq!(options.mode, SessionMode::Gap);
        assert_eq!(options.gap_nanos, 30 * 60 * 1_000_000_000);
        assert_eq!(options.max_length_nanos, Some(86_400 * 1_000_000_000));
        assert!(options.inactive_event_types.is_empty());
    }

    #[test]
    fn overrides_apply_with_or_without_prefix() {
        let options = SessionOptions::resolve(
            &SessionLakeConfig::default(),
            &[
                "gap=5 minutes".into(),
                "sessionlake.mode=instrumented".into(),
                "max_length=none".into(),
                "inactive_event_types= sync, app_background".into(),
            ],
        )
        .unwrap();
        assert_eq!(options.gap_nanos, 5 * 60 * 1_000_000_000);
        assert_eq!(options.mode, SessionMode::Instrumented);
        assert_eq!(options.max_length_nanos, None);
        assert_eq!(options.inactive_event_types, vec!["sync", "app_background"]);
        let options = SessionOptions::resolve(
            &SessionLakeConfig::default(),
            &["properties= page,,country ".into()],
        )
        .unwrap();
        assert_eq!(options.properties, vec!["page", "country"]);
    }

    #[test]
    fn bad_values_are_named() {
        let config = SessionLakeConfig::default();
        let err = |o: &str| {
            SessionOptions::resolve(&config, &[o.to_string()])
                .unwrap_err()
                .to_string()
        };
        assert!(err("gap=0 minutes").contains("sessionlake.gap: must be positive"));
        assert!(err("gap=-5 minutes").contains("sessionlake.gap: must be positive"));
        assert!(err("gap=banana").contains("sessionlake.gap: 'banana' is not an interval"));
        assert!(err("mode=sometimes").contains("unknown mode 'sometimes'"));
        assert!(err("colour=blue").contains("unknown option 'colour'"));
        assert!(err("gap").contains("must look like 'key=value'"));
        assert!(
            err("properties=page, country,page")
                .contains("sessionlake.properties: column 'page' is listed twice")
        );
    }
}
