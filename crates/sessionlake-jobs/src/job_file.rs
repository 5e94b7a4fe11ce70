//! The job file: TOML read with serde (unknown keys rejected), then validated into a typed
//! [`Job`] before anything runs. Every error names the file and the key.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;
use sessionlake_engine::location::{Location, S3Settings};
use sessionlake_engine::{SessionLakeConfig, SessionOptions};
use sessionlake_functions::time_unit::parse_span;

use crate::alerting::{Alerting, AlertingFile};
use crate::error::JobError;
use crate::quality::{QualityFile, QualityRule};

/// A validated job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name (default: the file name without `.toml`).
    pub name: String,
    /// The job file it came from.
    pub file: PathBuf,
    /// The event lake: a hive-partitioned Parquet directory (`<partition_column>=YYYY-MM-DD/`).
    pub source: Location,
    /// The hive partition column of the source lake.
    pub partition_column: String,
    /// Where the outputs go.
    pub sink: Location,
    /// How the sink's tables are written.
    pub sink_format: SinkFormat,
    /// How to reach S3, for `s3://` locations (`[storage]`).
    pub storage: S3Settings,
    /// The session rules.
    pub session: SessionSettings,
    /// The sessions table's property columns.
    pub sessions: SessionsOutput,
    /// The sessions table's quality classes (`[outputs.sessions.quality]`).
    pub quality: Option<QualityRule>,
    /// The session-level dimensions the daily metrics are also broken down by.
    pub segments: Segments,
    /// How the daily metrics count a bounce.
    pub bounce: Bounce,
    /// Which length of a session the daily length metrics use.
    pub length: LengthRule,
    /// Alert rules on daily metrics.
    pub alerts: Vec<AlertRule>,
    /// Where tripped alerts are delivered (`[alerting]`).
    pub alerting: Alerting,
    /// Cohort exports.
    pub exports: Vec<ExportRule>,
    /// Whether the users table is kept (`[outputs.users]`).
    pub users: bool,
    /// Bot filtering; `None`: no session is flagged (over-long sessions are still excluded).
    pub bots: Option<BotFilter>,
}

/// How a job's tables are written under the sink (`sink.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SinkFormat {
    /// Parquet files found through the job's manifest (`_manifests/`), the default: every
    /// reader sees one committed state of all tables at once.
    #[default]
    Parquet,
    /// Delta tables (`sessions/`, `daily_metrics/`, `alerts/`, each with its `_delta_log/`),
    /// committed through the Delta protocol after the manifest, for engines that read Delta.
    Delta,
}

impl SinkFormat {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "parquet" => Ok(Self::Parquet),
            "delta" if cfg!(feature = "delta") => Ok(Self::Delta),
            "delta" => Err(
                "'delta' needs a build with Delta support (the `delta` feature), \
                            which this one was built without"
                    .into(),
            ),
            other => Err(format!(
                "'{other}' is not a sink format: use parquet or delta"
            )),
        }
    }

    /// The name in job files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Delta => "delta",
        }
    }
}

/// Validated session rules: the engine's options plus the time zone that defines a day.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The engine's options, validated by the engine itself.
    pub options: SessionOptions,
    /// The engine options as `key=value` arguments for `sessions('events', ...)`, without
    /// `max_length` and `anonymous_column` (the job applies those rules itself, see
    /// `docs/jobs.md`).
    pub engine_args: Vec<String>,
    /// The zone whose calendar days partition the outputs.
    pub time_zone: Tz,
    /// `session.max_gap`: the largest timeout an event's `gap_column` value may give (checked
    /// on every event a run reads for the first time); set exactly when `gap_column` is.
    pub max_gap: Option<MaxGap>,
}

/// `session.max_gap`, as written and in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxGap {
    pub text: String,
    pub nanos: i128,
}

impl SessionSettings {
    /// The largest timeout any event can have, in nanoseconds: the gap, or `max_gap` when it
    /// is larger (the `g` of the incremental rule in `docs/jobs.md`).
    pub fn largest_gap_nanos(&self) -> i128 {
        self.max_gap
            .as_ref()
            .map_or(self.options.gap_nanos, |max_gap| {
                max_gap.nanos.max(self.options.gap_nanos)
            })
    }
}

/// Which property columns the sessions table carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionsOutput {
    /// `entry_<c>`: the value of `c` on the session's first event.
    pub entry: Vec<String>,
    /// `exit_<c>`: the value of `c` on the session's last event.
    pub exit: Vec<String>,
    /// `first_<c>`: the first non-NULL value of `c` in event order.
    pub first: Vec<String>,
    /// `last_<c>`: the last non-NULL value of `c` in event order.
    pub last: Vec<String>,
}

/// `outputs.metrics.segment_by`: daily metrics rows per value of session-level dimensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segments {
    /// The columns; a session's value is the first non-NULL value of the column in the session.
    pub columns: Vec<String>,
    /// Per day and column, the values with the most sessions that keep their own row; the rest
    /// are counted together as [`OTHER_SEGMENT_VALUE`] (`outputs.metrics.segment_limit`).
    pub limit: u32,
}

/// The `segment_value` of the values past `outputs.metrics.segment_limit` on a day.
pub const OTHER_SEGMENT_VALUE: &str = "(other)";

/// The default `outputs.metrics.segment_limit`.
const DEFAULT_SEGMENT_LIMIT: u32 = 20;

/// What makes a session a bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bounce {
    /// A session of one event.
    SingleEvent,
    /// A session with exactly one event of this type (Amplitude: `page_view`).
    OneEventOfType(String),
}

/// Which length of a session the daily length metrics (`avg_length_s`, `time_per_user_s`,
/// `length_distribution`) use (`outputs.metrics.length`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LengthRule {
    /// `duration_ms`: the last active event's time minus the first.
    #[default]
    Measured,
    /// `reported_duration_ms` (`session.reported_duration`); a session without one takes no
    /// part in the length metrics.
    Reported,
    /// The larger of the two where the session has a reported duration, else the measured one.
    Greatest,
}

impl LengthRule {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "measured" => Some(Self::Measured),
            "reported" => Some(Self::Reported),
            "greatest" => Some(Self::Greatest),
            _ => None,
        }
    }

    /// The name in job files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Measured => "measured",
            Self::Reported => "reported",
            Self::Greatest => "greatest",
        }
    }
}

/// A numeric daily metric an alert can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Sessions,
    Users,
    ActiveUsers,
    AvgLengthSeconds,
    TimePerUserSeconds,
    BounceRate,
    BotSessions,
    LongSessionsExcluded,
}

impl Metric {
    /// Every metric with its column name in the daily metrics table.
    pub const ALL: [(Metric, &'static str); 8] = [
        (Metric::Sessions, "sessions"),
        (Metric::Users, "users"),
        (Metric::ActiveUsers, "active_users"),
        (Metric::AvgLengthSeconds, "avg_length_s"),
        (Metric::TimePerUserSeconds, "time_per_user_s"),
        (Metric::BounceRate, "bounce_rate"),
        (Metric::BotSessions, "bot_sessions"),
        (Metric::LongSessionsExcluded, "long_sessions_excluded"),
    ];

    /// The column name in the daily metrics table.
    pub fn column(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("sessions", |(_, name)| name)
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(m, _)| *m)
    }
}

/// When an alert trips.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertCondition {
    /// The metric is strictly below the value.
    Below(f64),
    /// The metric is strictly above the value.
    Above(f64),
    /// The metric is more than `percent` % below the mean of the previous `trailing_days`
    /// calendar days that have a value (at least one).
    DropPercent { percent: f64, trailing_days: u32 },
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub name: String,
    pub metric: Metric,
    pub condition: AlertCondition,
    /// Evaluate on each value of this segment column (one of `segment_by`) instead of on the
    /// all-sessions row.
    pub segment: Option<String>,
}

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

/// Which users an export selects, over its last `days` days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cohort {
    /// Users whose median session length is strictly below this many milliseconds.
    MedianLengthBelow { millis: i64 },
    /// Users with at least `count` sessions strictly longer than `millis`.
    SessionsLongerThan { count: u64, millis: i64 },
}

/// One cohort export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRule {
    pub name: String,
    pub format: ExportFormat,
    pub selection: Selection,
}

/// Where an export's users come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The users of the sessions table's last `days` days (ending at its latest day) that match
    /// `cohort`.
    RecentSessions { days: u32, cohort: Cohort },
    /// The rows of the users table (`[outputs.users]`) where the SQL condition holds.
    Users { condition: String },
}

/// Sessions flagged as bots are kept in the sessions table with a `bot_reason` and left out of
/// the daily metrics and exports.
#[derive(Debug, Clone)]
pub struct BotFilter {
    /// Flag sessions with more than this many events per minute (the rate is
    /// `event_count / max(duration in minutes, 1)`).
    pub max_events_per_minute: Option<f64>,
    /// Flag sessions whose first non-NULL user agent matches `user_agent_pattern`; the check is
    /// skipped when the lake has no such column.
    pub user_agent_column: String,
    /// The user agent regular expression (Rust `regex` syntax).
    pub user_agent_pattern: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The file as written

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: Option<String>,
    source: SourceFile,
    sink: SinkFile,
    storage: Option<StorageFile>,
    #[serde(default)]
    session: SessionFile,
    #[serde(default)]
    outputs: OutputsFile,
    #[serde(default)]
    alerts: Vec<AlertFile>,
    alerting: Option<AlertingFile>,
    #[serde(default)]
    exports: Vec<ExportFile>,
    bots: Option<BotsFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    lake: String,
    partition_column: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkFile {
    path: String,
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageFile {
    endpoint: Option<String>,
    region: Option<String>,
    #[serde(default)]
    allow_http: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionFile {
    gap: Option<String>,
    mode: Option<String>,
    max_length: Option<String>,
    time_zone: Option<String>,
    user_column: Option<String>,
    anonymous_column: Option<String>,
    time_column: Option<String>,
    session_id_column: Option<String>,
    active_column: Option<String>,
    inactive_event_types: Option<Vec<String>>,
    gap_column: Option<String>,
    max_gap: Option<String>,
    reported_duration: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputsFile {
    #[serde(default)]
    sessions: SessionsFile,
    #[serde(default)]
    metrics: MetricsFile,
    users: Option<UsersFile>,
}

/// `[outputs.users]`: no keys yet; the table's presence turns the users table on.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionsFile {
    #[serde(default)]
    entry: Vec<String>,
    #[serde(default)]
    exit: Vec<String>,
    #[serde(default)]
    first: Vec<String>,
    #[serde(default)]
    last: Vec<String>,
    quality: Option<QualityFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    bounce_event_type: Option<String>,
    length: Option<String>,
    #[serde(default)]
    segment_by: Vec<String>,
    segment_limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertFile {
    name: String,
    metric: String,
    below: Option<f64>,
    above: Option<f64>,
    drop_percent: Option<f64>,
    trailing_days: Option<u32>,
    segment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportFile {
    name: String,
    format: Option<String>,
    from: Option<String>,
    #[serde(rename = "where")]
    condition: Option<String>,
    days: Option<u32>,
    median_length_below: Option<String>,
    min_sessions: Option<u64>,
    session_longer_than: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BotsFile {
    max_events_per_minute: Option<f64>,
    user_agent_column: Option<String>,
    user_agent_pattern: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Loading and validation

impl Job {
    /// Reads and validates the job file at `path`. Relative local paths in it are relative to
    /// the file's directory.
    pub fn load(path: &Path) -> Result<Self, JobError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| JobError::config(format!("job file {}: {e}", path.display())))?;
        Self::parse(&text, path)
    }

    /// Validates job file `text`, read from `path` (used in messages and to resolve relative
    /// paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self, JobError> {
        let shown = path.display();
        let file: JobFile = toml::from_str(text).map_err(|e| {
            let message = e.message();
            let at = e
                .span()
                .map(|span| {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            JobError::config(format!("job file {shown}{at}: {message}"))
        })?;
        let bad = |key: &str, message: String| {
            JobError::config(format!("job file {shown}: {key}: {message}"))
        };
        let base = path.parent().unwrap_or(Path::new(""));

        let name = match file.name {
            Some(name) => name,
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "job".to_string()),
        };
        if name.trim().is_empty() {
            return Err(bad("name", "must not be empty".into()));
        }
        let location = |text: &str| Location::parse(text).and_then(|l| l.relative_to(base));
        let source = location(&file.source.lake).map_err(|m| bad("source.lake", m))?;
        let sink = location(&file.sink.path).map_err(|m| bad("sink.path", m))?;
        if source == sink {
            return Err(bad("sink.path", "must differ from source.lake".into()));
        }
        let sink_format = match &file.sink.format {
            Some(text) => SinkFormat::parse(text).map_err(|m| bad("sink.format", m))?,
            None => SinkFormat::default(),
        };
        let partition_column = file
            .source
            .partition_column
            .unwrap_or_else(|| "event_date".to_string());
        check_identifier(&partition_column).map_err(|m| bad("source.partition_column", m))?;

        let storage = match file.storage {
            Some(s) => S3Settings {
                endpoint: s.endpoint,
                region: s.region,
                allow_http: s.allow_http,
            },
            None => S3Settings::default(),
        };

        let session = validate_session(file.session).map_err(|(key, m)| bad(key, m))?;
        let user = session.options.user_column.clone();
        let time = session.options.time_column.clone();

        let sessions_file = file.outputs.sessions;
        let mut seen = std::collections::BTreeSet::new();
        for (list, key) in [
            (&sessions_file.entry, "outputs.sessions.entry"),
            (&sessions_file.exit, "outputs.sessions.exit"),
            (&sessions_file.first, "outputs.sessions.first"),
            (&sessions_file.last, "outputs.sessions.last"),
        ] {
            for column in list {
                check_identifier(column).map_err(|m| bad(key, m))?;
                if *column == user || *column == time {
                    return Err(bad(
                        key,
                        format!("'{column}' is the user or time column, which every session has"),
                    ));
                }
                if !seen.insert((key, column.clone())) {
                    return Err(bad(key, format!("'{column}' is listed twice")));
                }
            }
        }
        let quality = sessions_file
            .quality
            .map(|q| QualityRule::validate(q, span_millis))
            .transpose()
            .map_err(|(key, m)| bad(&key, m))?;
        let sessions = SessionsOutput {
            entry: sessions_file.entry,
            exit: sessions_file.exit,
            first: sessions_file.first,
            last: sessions_file.last,
        };
        let segments = validate_segments(
            file.outputs.metrics.segment_by,
            file.outputs.metrics.segment_limit,
            &user,
        )
        .map_err(|(key, m)| bad(key, m))?;
        let bounce = match file.outputs.metrics.bounce_event_type {
            Some(t) if t.trim().is_empty() => {
                return Err(bad(
                    "outputs.metrics.bounce_event_type",
                    "must not be empty".into(),
                ));
            }
            Some(t) => Bounce::OneEventOfType(t),
            None => Bounce::SingleEvent,
        };
        let length = match file.outputs.metrics.length.as_deref() {
            None => LengthRule::default(),
            Some(text) => LengthRule::parse(text).ok_or_else(|| {
                bad(
                    "outputs.metrics.length",
                    format!("'{text}' is not a length: use measured, reported or greatest"),
                )
            })?,
        };
        if length != LengthRule::Measured && session.options.reported_duration.is_none() {
            return Err(bad(
                "outputs.metrics.length",
                format!(
                    "'{}' needs session.reported_duration (the event type and column that \
                     carry the length the app reported, such as \"session_end.duration_ms\")",
                    length.name()
                ),
            ));
        }

        let mut alerts = Vec::with_capacity(file.alerts.len());
        for (i, alert) in file.alerts.into_iter().enumerate() {
            let key = format!("alerts[{i}]");
            let rule = validate_alert(alert, &segments.columns)
                .map_err(|(k, m)| bad(&format!("{key}.{k}"), m))?;
            if alerts.iter().any(|a: &AlertRule| a.name == rule.name) {
                return Err(bad(
                    &format!("{key}.name"),
                    format!("'{}' is used twice", rule.name),
                ));
            }
            alerts.push(rule);
        }
        let alerting = Alerting::validate(file.alerting).map_err(|(k, m)| bad(&k, m))?;

        let users = file.outputs.users.is_some();
        let mut exports = Vec::with_capacity(file.exports.len());
        for (i, export) in file.exports.into_iter().enumerate() {
            let key = format!("exports[{i}]");
            let rule =
                validate_export(export, users).map_err(|(k, m)| bad(&format!("{key}.{k}"), m))?;
            if exports.iter().any(|e: &ExportRule| e.name == rule.name) {
                return Err(bad(
                    &format!("{key}.name"),
                    format!("'{}' is used twice", rule.name),
                ));
            }
            exports.push(rule);
        }

        let bots = match file.bots {
            None => None,
            Some(b) => {
                if let Some(rate) = b.max_events_per_minute
                    && !(rate.is_finite() && rate > 0.0)
                {
                    return Err(bad(
                        "bots.max_events_per_minute",
                        format!("must be a positive number, found {rate}"),
                    ));
                }
                if let Some(pattern) = &b.user_agent_pattern {
                    regex::Regex::new(pattern).map_err(|e| {
                        bad(
                            "bots.user_agent_pattern",
                            format!("'{pattern}' is not a regular expression: {e}"),
                        )
                    })?;
                }
                let user_agent_column = b
                    .user_agent_column
                    .unwrap_or_else(|| "user_agent".to_string());
                check_identifier(&user_agent_column)
                    .map_err(|m| bad("bots.user_agent_column", m))?;
                Some(BotFilter {
                    max_events_per_minute: b.max_events_per_minute,
                    user_agent_column,
                    user_agent_pattern: b.user_agent_pattern,
                })
            }
        };

        Ok(Job {
            name,
            file: path.to_path_buf(),
            source,
            partition_column,
            sink,
            sink_format,
            storage,
            session,
            sessions,
            quality,
            segments,
            bounce,
            length,
            alerts,
            alerting,
            exports,
            users,
            bots,
        })
    }

    /// A text that changes whenever a setting that shapes the outputs changes; a run whose
    /// settings differ from the committed output's recomputes everything.
    pub fn fingerprint(&self) -> String {
        format!(
            "source={};partition={};session={:?};tz={};sessions={:?};bounce={:?};bots={:?}{}{}{}{}{};{METRICS_DEFINITION}",
            self.source,
            self.partition_column,
            self.session.options,
            self.session.time_zone,
            self.sessions,
            self.bounce,
            self.bots.as_ref().map(|b| (
                b.max_events_per_minute,
                &b.user_agent_column,
                &b.user_agent_pattern
            )),
            // only a non-default format is named, so that the default's fingerprints stay
            // those of the versions before `sink.format` existed; the same for max_gap and
            // the length rule
            match self.sink_format {
                SinkFormat::Parquet => String::new(),
                other => format!(";format={}", other.name()),
            },
            match &self.session.max_gap {
                Some(max_gap) => format!(";max_gap_ns={}", max_gap.nanos),
                None => String::new(),
            },
            match self.length {
                LengthRule::Measured => String::new(),
                other => format!(";length={}", other.name()),
            },
            match &self.quality {
                Some(quality) => format!(";quality={quality:?}"),
                None => String::new(),
            },
            if self.segments.columns.is_empty() {
                String::new()
            } else {
                format!(";segments={:?}", self.segments)
            },
        )
    }
}

/// Names what the daily metrics mean beyond the job's settings, in every fingerprint: when a
/// new version defines a metric differently, outputs committed by the old one are recomputed
/// whole by the first run, instead of mixing both definitions across days.
/// `active_users`: `time_per_user_s` divides by the users with an active event that day.
const METRICS_DEFINITION: &str = "metrics=active_users";

/// Column names are quoted in SQL; they only need to be non-empty and free of quotes.
fn check_identifier(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must name a column".into());
    }
    if name.contains('"') || name.contains('\'') || name.contains('\n') {
        return Err(format!("'{name}' must not contain quotes or line breaks"));
    }
    Ok(())
}

fn validate_session(file: SessionFile) -> Result<SessionSettings, (&'static str, String)> {
    let defaults = SessionLakeConfig::default();
    let gap_text = file.gap.clone().unwrap_or_else(|| defaults.gap.clone());
    let mut args = Vec::new();
    let mut push =
        |key: &'static str, value: Option<String>| -> Result<(), (&'static str, String)> {
            if let Some(value) = value {
                if value.contains('\'') {
                    return Err((key, format!("'{value}' must not contain a quote")));
                }
                args.push((
                    key,
                    format!("{}={value}", key.trim_start_matches("session.")),
                ));
            }
            Ok(())
        };
    push("session.gap", file.gap)?;
    push("session.mode", file.mode)?;
    push("session.user_column", file.user_column)?;
    push("session.anonymous_column", file.anonymous_column)?;
    push("session.time_column", file.time_column)?;
    push("session.session_id_column", file.session_id_column)?;
    push("session.active_column", file.active_column)?;
    push(
        "session.inactive_event_types",
        file.inactive_event_types.map(|types| types.join(",")),
    )?;
    push("session.gap_column", file.gap_column)?;
    push("session.reported_duration", file.reported_duration)?;
    push("session.max_length", file.max_length)?;
    // validate key by key so the error names the key, then all together
    for (key, arg) in &args {
        SessionOptions::resolve(&defaults, std::slice::from_ref(arg)).map_err(|e| {
            (
                *key,
                e.strip_backtrace().replace("Error during planning: ", ""),
            )
        })?;
    }
    let all: Vec<String> = args.iter().map(|(_, a)| a.clone()).collect();
    let options = SessionOptions::resolve(&defaults, &all).map_err(|e| {
        (
            "session",
            e.strip_backtrace().replace("Error during planning: ", ""),
        )
    })?;
    let max_gap = validate_max_gap(&options, file.max_gap, &gap_text)?;
    // the job applies the length rule itself, and stitches users over the whole lake, not
    // over the window it reads (see `identities`)
    let engine_args = args
        .into_iter()
        .filter(|(key, _)| !matches!(*key, "session.max_length" | "session.anonymous_column"))
        .map(|(_, a)| a)
        .collect();
    let time_zone = match file.time_zone {
        None => Tz::UTC,
        Some(zone) => zone.parse::<Tz>().map_err(|_| {
            (
                "session.time_zone",
                format!("'{zone}' is not an IANA time zone such as UTC or America/New_York"),
            )
        })?,
    };
    Ok(SessionSettings {
        options,
        engine_args,
        time_zone,
        max_gap,
    })
}

/// `session.max_gap`: required with `gap_column` (it bounds every event's timeout, and so an
/// incremental run's read window), at least `session.gap`, and nothing without `gap_column`.
fn validate_max_gap(
    options: &SessionOptions,
    max_gap: Option<String>,
    gap_text: &str,
) -> Result<Option<MaxGap>, (&'static str, String)> {
    let key = "session.max_gap";
    match (&options.gap_column, max_gap) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err((key, "only applies with session.gap_column".into())),
        (Some(column), None) => Err((
            key,
            format!(
                "required when session.gap_column is set (here \"{column}\"): the largest \
                 timeout an event's value may give, such as \"2 hours\", which bounds what an \
                 incremental run reads"
            ),
        )),
        (Some(_), Some(text)) => {
            let nanos = parse_span(&text).map_err(|m| (key, m))?;
            if nanos < options.gap_nanos {
                return Err((
                    key,
                    format!("'{text}' must be at least session.gap ('{gap_text}')"),
                ));
            }
            Ok(Some(MaxGap { text, nanos }))
        }
    }
}

/// `outputs.metrics.segment_by` and `segment_limit`.
fn validate_segments(
    columns: Vec<String>,
    limit: Option<u32>,
    user: &str,
) -> Result<Segments, (&'static str, String)> {
    let key = "outputs.metrics.segment_by";
    for (i, column) in columns.iter().enumerate() {
        check_identifier(column).map_err(|m| (key, m))?;
        if column == user {
            return Err((
                key,
                format!(
                    "'{column}' is the user column: a segment is a session-level dimension \
                     such as platform or country"
                ),
            ));
        }
        if columns[..i].contains(column) {
            return Err((key, format!("'{column}' is listed twice")));
        }
    }
    let limit = limit.unwrap_or(DEFAULT_SEGMENT_LIMIT);
    if limit == 0 {
        return Err(("outputs.metrics.segment_limit", "must be at least 1".into()));
    }
    Ok(Segments { columns, limit })
}

fn validate_alert(
    file: AlertFile,
    segment_columns: &[String],
) -> Result<AlertRule, (&'static str, String)> {
    if let Some(segment) = &file.segment
        && !segment_columns.contains(segment)
    {
        return Err((
            "segment",
            format!(
                "'{segment}' is not one of outputs.metrics.segment_by ({})",
                if segment_columns.is_empty() {
                    "none set".to_string()
                } else {
                    segment_columns.join(", ")
                }
            ),
        ));
    }
    if file.name.trim().is_empty() {
        return Err(("name", "must not be empty".into()));
    }
    let metric = Metric::parse(&file.metric).ok_or_else(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|(_, n)| *n).collect();
        (
            "metric",
            format!(
                "unknown metric '{}', expected one of {}",
                file.metric,
                names.join(", ")
            ),
        )
    })?;
    let finite = |key: &'static str, v: f64| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err((key, format!("must be a finite number, found {v}")))
        }
    };
    let condition = match (file.below, file.above, file.drop_percent) {
        (Some(v), None, None) => AlertCondition::Below(finite("below", v)?),
        (None, Some(v), None) => AlertCondition::Above(finite("above", v)?),
        (None, None, Some(p)) => {
            if !(p.is_finite() && p > 0.0 && p < 100.0) {
                return Err((
                    "drop_percent",
                    format!("must be a percentage between 0 and 100, found {p}"),
                ));
            }
            let trailing_days = file.trailing_days.unwrap_or(7);
            if trailing_days == 0 {
                return Err(("trailing_days", "must be at least 1".into()));
            }
            AlertCondition::DropPercent {
                percent: p,
                trailing_days,
            }
        }
        _ => {
            return Err((
                "below",
                "give exactly one of below, above or drop_percent".into(),
            ));
        }
    };
    if file.trailing_days.is_some() && !matches!(condition, AlertCondition::DropPercent { .. }) {
        return Err(("trailing_days", "only applies with drop_percent".into()));
    }
    Ok(AlertRule {
        name: file.name,
        metric,
        condition,
        segment: file.segment,
    })
}

/// Parses a span such as `5 minutes` with the engine's interval parser, in milliseconds.
fn span_millis(key: &'static str, text: &str) -> Result<i64, (&'static str, String)> {
    let nanos = parse_span(text).map_err(|m| (key, m))?;
    if nanos < 0 {
        return Err((key, format!("must not be negative, found '{text}'")));
    }
    i64::try_from(nanos / 1_000_000).map_err(|_| (key, format!("'{text}' is too long")))
}

fn validate_export(file: ExportFile, users: bool) -> Result<ExportRule, (&'static str, String)> {
    let valid_name = !file.name.is_empty()
        && file
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err((
            "name",
            format!(
                "'{}' must be letters, digits, '_' and '-' (it names the file)",
                file.name
            ),
        ));
    }
    let format = match file.format.as_deref().unwrap_or("csv") {
        "csv" => ExportFormat::Csv,
        "parquet" => ExportFormat::Parquet,
        other => {
            return Err((
                "format",
                format!("unknown format '{other}', expected csv or parquet"),
            ));
        }
    };
    match file.from.as_deref().unwrap_or("sessions") {
        "sessions" => {}
        "users" => {
            if !users {
                return Err((
                    "from",
                    "'users' needs the users table: add [outputs.users]".into(),
                ));
            }
            let cohort_keys = file.days.is_some()
                || file.median_length_below.is_some()
                || file.min_sessions.is_some()
                || file.session_longer_than.is_some();
            if cohort_keys {
                return Err((
                    "from",
                    "an export from users takes a `where` condition on the users table's \
                     columns, not days or a session rule"
                        .into(),
                ));
            }
            let condition = file.condition.unwrap_or_default();
            if condition.trim().is_empty() {
                return Err((
                    "where",
                    "give a condition on the users table, such as \
                     \"median_length_s < 60 AND lifetime_sessions >= 3\""
                        .into(),
                ));
            }
            if condition.contains(';') {
                return Err(("where", "must be one condition, without ';'".into()));
            }
            return Ok(ExportRule {
                name: file.name,
                format,
                selection: Selection::Users { condition },
            });
        }
        other => {
            return Err((
                "from",
                format!("'{other}' is not a source: use sessions or users"),
            ));
        }
    }
    if file.condition.is_some() {
        return Err(("where", "only applies with from = \"users\"".into()));
    }
    let Some(days) = file.days else {
        return Err((
            "days",
            "required: the number of recent days the export looks at".into(),
        ));
    };
    if days == 0 {
        return Err(("days", "must be at least 1".into()));
    }
    let cohort = match (
        file.median_length_below,
        file.min_sessions,
        file.session_longer_than,
    ) {
        (Some(text), None, None) => Cohort::MedianLengthBelow {
            millis: span_millis("median_length_below", &text)?,
        },
        (None, Some(count), Some(text)) => {
            if count == 0 {
                return Err(("min_sessions", "must be at least 1".into()));
            }
            Cohort::SessionsLongerThan {
                count,
                millis: span_millis("session_longer_than", &text)?,
            }
        }
        _ => {
            return Err((
                "median_length_below",
                "give either median_length_below, or min_sessions with session_longer_than".into(),
            ));
        }
    };
    Ok(ExportRule {
        name: file.name,
        format,
        selection: Selection::RecentSessions { days, cohort },
    })
}
