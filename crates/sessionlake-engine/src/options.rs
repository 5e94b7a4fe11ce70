//! sessionlake's options: DataFusion config keys under `sessionlake.`, settable with `SET`,
//! from the embedding API, or per call as `'key=value'` arguments of the table functions, and
//! validated into typed [`SessionOptions`] before a plan is built.
//!
//! The keys are declared once, in `session_lake_config!`'s invocation below: the struct, its
//! defaults, the key list shown by `SHOW ALL` and in errors, and the lookups by key all come
//! from it, so an unknown key cannot fall through to some other field.

use std::any::Any;
use std::fmt;

use datafusion::common::config::{ConfigEntry, ConfigOptions, ExtensionOptions};
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::config::ConfigExtension;
use sessionlake_functions::time_unit::parse_span_nanos;

/// Declares [`SessionLakeConfig`]: for each key its doc comment (also its description in
/// `SHOW ALL`), its field and its default value.
macro_rules! session_lake_config {
    ($($(#[doc = $doc:literal])+ $key:ident: $default:expr,)+) => {
        /// The `sessionlake.*` configuration keys, as text: each `SET` is validated at once (so
        /// a bad value fails where it is written), and [`SessionOptions::resolve`] turns them
        /// into typed values.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct SessionLakeConfig {
            $($(#[doc = $doc])+ pub $key: String,)+
        }

        impl Default for SessionLakeConfig {
            fn default() -> Self {
                Self { $($key: $default.to_string(),)+ }
            }
        }

        impl SessionLakeConfig {
            /// Every key (without the `sessionlake.` prefix) with its description, in
            /// declaration order.
            pub const KEYS: &[(&str, &str)] = &[$((stringify!($key), concat!($($doc),+)),)+];

            fn field_mut(&mut self, key: &str) -> Option<&mut String> {
                match key {
                    $(stringify!($key) => Some(&mut self.$key),)+
                    _ => None,
                }
            }

            fn field(&self, key: &str) -> Option<&str> {
                match key {
                    $(stringify!($key) => Some(&self.$key),)+
                    _ => None,
                }
            }
        }
    };
}

session_lake_config! {
    /// Inactivity timeout: an interval without months, strictly positive.
    gap: "30 minutes",
    /// A column whose value is the timeout after each event (an interval or duration, or an
    /// integer number of milliseconds; NULL falls back to gap); empty: gap for every event.
    gap_column: "",
    /// How sessions are formed: gap, instrumented or instrumented_gap.
    mode: "gap",
    /// Longest kept session (longer ones are excluded); none disables the rule.
    max_length: "1 day",
    /// The column naming who an event belongs to.
    user_column: "user_id",
    /// A column of anonymous ids (e.g. device_id): an event with a NULL user takes the user
    /// its device is identified as, or anonymous:ID if never identified; empty: off.
    anonymous_column: "",
    /// The timestamp column.
    time_column: "event_time",
    /// The client SDK's session id column (instrumented modes).
    session_id_column: "session_id",
    /// A boolean column whose false rows take no part; absent: all are active.
    active_column: "is_active",
    /// Comma-separated event types that never take part in a session.
    inactive_event_types: "",
    /// Comma-separated columns whose first and last non-NULL value per session sessions()
    /// returns as first_COLUMN and last_COLUMN.
    properties: "",
    /// EVENT_TYPE.COLUMN (e.g. session_end.duration_ms): sessions() returns
    /// reported_duration_ms, the largest value of COLUMN on events of that type in the session.
    reported_duration: "",
    /// Comma-separated event types whose events sessions() counts per session, as
    /// count_EVENT_TYPE (e.g. page_view: count_page_view, for bounce rates).
    count_event_types: "",
}

impl SessionLakeConfig {
    /// The keys, comma-separated, for messages and documentation.
    pub fn key_list() -> String {
        let keys: Vec<&str> = Self::KEYS.iter().map(|(key, _)| *key).collect();
        keys.join(", ")
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
            None => plan_err!(
                "unknown option '{key}', expected one of {}",
                Self::key_list()
            ),
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
        updated
            .assign(key, value)
            .map_err(|e| called_from(Self::PREFIX, e))?;
        SessionOptions::validate(&updated)?;
        *self = updated;
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        Self::KEYS
            .iter()
            .map(|(key, description)| ConfigEntry {
                key: format!("{}.{key}", Self::PREFIX),
                value: self.field(key).map(str::to_string),
                description: description.trim(),
            })
            .collect()
    }
}

impl ConfigExtension for SessionLakeConfig {
    const PREFIX: &'static str = "sessionlake";
}

/// `error` with `caller: ` before its message: a planning error names what the user called.
pub fn called_from(caller: &str, error: DataFusionError) -> DataFusionError {
    match error {
        DataFusionError::Plan(message) => DataFusionError::Plan(format!("{caller}: {message}")),
        other => other,
    }
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
    /// The column of anonymous ids whose events are stitched to users, if any.
    pub anonymous_column: Option<String>,
    pub time_column: String,
    pub session_id_column: String,
    /// The column of per-event timeouts, if any.
    pub gap_column: Option<String>,
    pub active_column: String,
    pub inactive_event_types: Vec<String>,
    /// Columns whose first and last non-NULL value per session `sessions` returns, in the
    /// order given, without repeats.
    pub properties: Vec<String>,
    /// The event type and the column of the duration an app reports (`reported_duration`).
    pub reported_duration: Option<ReportedDuration>,
    /// Event types whose events `sessions` counts per session (`count_event_types`), in the
    /// order given, without repeats.
    pub count_event_types: Vec<String>,
}

/// `sessionlake.reported_duration`: the events of `event_type` carry in `column` the length of
/// their session as the app measured it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportedDuration {
    pub event_type: String,
    pub column: String,
}

impl ReportedDuration {
    /// `EVENT_TYPE.COLUMN`, split at the last dot (an event type may contain dots).
    fn parse(text: &str) -> Result<Option<Self>> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        match text.rsplit_once('.') {
            Some((event_type, column)) if !event_type.is_empty() && !column.is_empty() => {
                Ok(Some(Self {
                    event_type: event_type.to_string(),
                    column: column.to_string(),
                }))
            }
            _ => plan_err!(
                "sessionlake.reported_duration: '{text}' must look like EVENT_TYPE.COLUMN, for \
                 example session_end.duration_ms"
            ),
        }
    }
}

/// The non-empty items of a comma-separated list, trimmed.
fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// [`comma_list`] of the option `key`, whose items (`what`s) may not repeat.
fn distinct_list(key: &str, what: &str, text: &str) -> Result<Vec<String>> {
    let items = comma_list(text);
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return plan_err!("sessionlake.{key}: {what} '{item}' is listed twice");
        }
    }
    Ok(items)
}

impl SessionOptions {
    /// Validates `config` with the per-call `overrides` (`key=value`, the key with or without
    /// the `sessionlake.` prefix) applied on top.
    pub fn resolve(config: &SessionLakeConfig, overrides: &[String]) -> Result<Self> {
        let mut config = config.clone();
        for item in overrides {
            let Some((key, value)) = item.split_once('=') else {
                return plan_err!(
                    "option argument '{item}' must look like 'key=value', for \
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
        let properties = distinct_list("properties", "column", &config.properties)?;
        let count_event_types =
            distinct_list("count_event_types", "event type", &config.count_event_types)?;
        Ok(Self {
            mode: SessionMode::parse(&config.mode)?,
            gap_nanos,
            max_length_nanos,
            user_column: config.user_column.trim().to_string(),
            anonymous_column: Some(config.anonymous_column.trim())
                .filter(|name| !name.is_empty())
                .map(str::to_string),
            time_column: config.time_column.trim().to_string(),
            session_id_column: config.session_id_column.trim().to_string(),
            gap_column: Some(config.gap_column.trim())
                .filter(|name| !name.is_empty())
                .map(str::to_string),
            active_column: config.active_column.trim().to_string(),
            inactive_event_types: comma_list(&config.inactive_event_types),
            properties,
            reported_duration: ReportedDuration::parse(&config.reported_duration)?,
            count_event_types,
        })
    }

    /// The options in force in a session's configuration (defaults if sessionlake's keys were
    /// never registered there) with a call's `overrides`; errors start with `caller`, the
    /// function the user called.
    pub fn from_config_options(
        caller: &str,
        options: &ConfigOptions,
        overrides: &[String],
    ) -> Result<Self> {
        let resolved = match options.extensions.get::<SessionLakeConfig>() {
            Some(config) => Self::resolve(config, overrides),
            None => Self::resolve(&SessionLakeConfig::default(), overrides),
        };
        resolved.map_err(|e| called_from(caller, e))
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
        let options = SessionOptions::resolve(
            &SessionLakeConfig::default(),
            &["count_event_types=page_view, Page Viewed ,".into()],
        )
        .unwrap();
        assert_eq!(options.count_event_types, vec!["page_view", "Page Viewed"]);
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
        assert!(
            err("count_event_types=click,click")
                .contains("sessionlake.count_event_types: event type 'click' is listed twice")
        );
    }

    #[test]
    fn every_key_sets_its_own_field_and_is_listed_once() {
        let defaults = SessionLakeConfig::default();
        for (key, description) in SessionLakeConfig::KEYS {
            assert!(!description.trim().is_empty(), "{key} has no description");
            let mut config = defaults.clone();
            config
                .assign(&format!("sessionlake.{key}"), " marker ")
                .unwrap();
            let entries = config.entries();
            assert_eq!(entries.len(), SessionLakeConfig::KEYS.len());
            for entry in entries {
                let name = entry.key.strip_prefix("sessionlake.").unwrap();
                let expected = if name == *key {
                    "marker".to_string()
                } else {
                    defaults.field(name).unwrap().to_string()
                };
                assert_eq!(entry.value.as_deref(), Some(expected.as_str()), "{name}");
            }
        }
    }

    #[test]
    fn errors_name_the_caller() {
        let mut config = SessionLakeConfig::default();
        let err = config.set("colour", "blue").unwrap_err().strip_backtrace();
        assert!(
            err.starts_with("Error during planning: sessionlake: unknown option 'colour'"),
            "{err}"
        );
        assert!(err.ends_with(&SessionLakeConfig::key_list()), "{err}");
        let err = config
            .set("gap", "0 minutes")
            .unwrap_err()
            .strip_backtrace();
        assert!(err.contains(": sessionlake.gap: must be positive"), "{err}");
        assert_eq!(
            config,
            SessionLakeConfig::default(),
            "a refused SET changes nothing"
        );

        let options = ConfigOptions::default();
        let err = |o: &str| {
            SessionOptions::from_config_options("sessions", &options, &[o.to_string()])
                .unwrap_err()
                .strip_backtrace()
        };
        assert!(err("colour=blue").contains(": sessions: unknown option 'colour'"));
        assert!(err("gap").contains(": sessions: option argument 'gap' must look like"));
        assert!(err("gap=0 minutes").contains(": sessions: sessionlake.gap: must be positive"));
    }
}
