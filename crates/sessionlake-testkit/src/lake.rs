//! The seeded, Amplitude-like event lake: Parquet files hive-partitioned by day
//! (`event_date=YYYY-MM-DD/part-N.parquet`) holding the messy data sessionization must survive.
//!
//! [`write_lake`] generates one day at a time (a background thread generates day `d + 1` while
//! day `d` is encoded), so memory stays bounded by about two days of rows whatever the total.
//! The same [`LakeSpec`] always gives byte-identical files.
//!
//! What the data holds, on purpose:
//! - heavy-tailed users: each user's activity weight is Pareto(α = 1.3), capped at 1000× the
//!   least active, so most users have a handful of events and a few have hundreds a day;
//! - many single-event sessions, sessions that cross midnight (UTC), and a few bots (web
//!   crawlers) that hit a page every 1 to 5 minutes in client sessions of 25 to 40 hours;
//! - gaps of exactly 30 minutes (the default timeout) and of 30 minutes + 1 ms between
//!   consecutive events of a user, and same-millisecond ties;
//! - background events (`app_background`, `sync`) with `is_active = false`; `sync` is out of
//!   session (`session_id = -1`);
//! - stale client session ids: a session that reuses the user's previous id after a long gap;
//! - rows in arrival order (event time plus a network delay, files split by device), so files
//!   are sorted neither by user nor by time; a few rows arrive hours late and land in a later
//!   day's partition than their `event_time`; a few rows lost their `user_id` (NULL).

use std::collections::VecDeque;
use std::fmt;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use chrono::{Datelike, Days, NaiveDate, NaiveTime, Weekday};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, Float64Builder, Int32Array, Int64Array, StringArray,
    StringBuilder, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// The default inactivity timeout of `docs/semantics.md`; the lake plants gaps of exactly this.
pub const SESSION_TIMEOUT_MS: i64 = 30 * MINUTE_MS;
/// Name of the hive partition column, which lives in directory names, not in the files.
pub const PARTITION_COLUMN: &str = "event_date";
/// Default number of rows per Parquet row group.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 128 * 1024;

/// The event types, in the order of the `event_type` dictionary.
pub const EVENT_TYPES: [&str; 9] = [
    "page_view",
    "click",
    "search",
    "add_to_cart",
    "purchase",
    "share",
    "app_open",
    "app_background",
    "sync",
];
/// Event types written with `is_active = false`.
pub const BACKGROUND_EVENT_TYPES: [&str; 2] = ["app_background", "sync"];

const PAGE_VIEW: u8 = 0;
const PURCHASE: u8 = 4;
const APP_OPEN: u8 = 6;
const APP_BACKGROUND: u8 = 7;
const SYNC: u8 = 8;
/// Weights of the event types that follow a session's first event, indexed like `EVENT_TYPES`.
const MIDDLE_EVENT_WEIGHTS: [u32; 6] = [42, 28, 12, 10, 3, 5];

const STATIC_PAGES: [&str; 12] = [
    "/",
    "/home",
    "/search",
    "/pricing",
    "/signup",
    "/login",
    "/cart",
    "/checkout",
    "/account",
    "/settings",
    "/help",
    "/blog",
];
const PRODUCT_PAGES: u16 = 2000;
const NO_PAGE: u16 = u16::MAX;

const COUNTRIES: [&str; 14] = [
    "US", "IN", "BR", "DE", "GB", "FR", "JP", "CA", "MX", "ID", "NG", "ES", "AU", "KR",
];
const COUNTRY_WEIGHTS: [u32; 14] = [30, 14, 9, 7, 7, 5, 5, 4, 4, 4, 3, 3, 3, 2];
const PLANS: [&str; 4] = ["free", "pro", "team", "enterprise"];
const PLAN_WEIGHTS: [u32; 4] = [78, 16, 5, 1];
const PLATFORMS: [&str; 3] = ["web", "ios", "android"];
const PLATFORM_WEIGHTS: [u32; 3] = [50, 25, 25];
const WEB: u8 = 0;

// Users: Pareto activity weights; 15% of users own a second device.
const PARETO_ALPHA: f64 = 1.3;
const PARETO_CAP: f64 = 1000.0;
const P_SECOND_DEVICE_USER: u32 = 15;
const P_SECOND_DEVICE_SESSION: f64 = 0.2;

// Bots: about one per 5000 users, taking at most 5% of a day's events.
const USERS_PER_BOT: u64 = 5000;
const BOT_SHARE: f64 = 0.05;
const BOT_STEP_MS: (i64, i64) = (MINUTE_MS, 5 * MINUTE_MS);
const BOT_EVENTS_PER_DAY: f64 = (DAY_MS / (3 * MINUTE_MS)) as f64;
const BOT_SESSION_MS: (i64, i64) = (25 * HOUR_MS, 40 * HOUR_MS);
const BOT_IDLE_MS: (i64, i64) = (HOUR_MS, 6 * HOUR_MS);

// Gaps between consecutive events of one session.
const P_TIE: f64 = 0.01;
const P_INTRA_EXACT_TIMEOUT: f64 = 0.002;
const P_INTRA_TIMEOUT_PLUS_ONE: f64 = 0.001;
const INTRA_GAP_MEAN_MS: (f64, f64) = (500.0, 45_000.0);
const INTRA_GAP_MAX_MS: f64 = 25.0 * MINUTE_MS as f64;
/// A user's events of a day spread over about this much in-session time (heavy users click fast).
const ACTIVE_TIME_PER_DAY_MS: f64 = 6.0 * HOUR_MS as f64;

// Gaps between sessions of one user.
const P_SESSION_EXACT_TIMEOUT: f64 = 0.04;
const P_SESSION_TIMEOUT_PLUS_ONE: f64 = 0.01;
const SESSION_GAP_SPREAD_MS: i64 = 10 * HOUR_MS;
const MAX_SESSIONS_PER_DAY: u32 = 24;

// Client SDK quirks.
const P_STALE_SESSION_ID: f64 = 0.03;
const P_SYNC: f64 = 0.3;
const P_APP_BACKGROUND: f64 = 0.4;
const P_NULL_USER: f64 = 0.0005;

// Arrival: most rows arrive within 2 s, some within 15 min, a few hours late.
const P_DELAYED: f64 = 0.002;
const P_SLOW: f64 = 0.03;
const DELAYED_MS: (i64, i64) = (HOUR_MS, 36 * HOUR_MS);
const SLOW_MS: (i64, i64) = (2_000, 15 * MINUTE_MS);
const FAST_MS: i64 = 2_000;

const FLAG_NULL_USER: u8 = 1;
const FLAG_BOT: u8 = 2;
const NONE_MS: i64 = i64::MIN;
/// Rows per record batch handed to the Parquet writer (bounds the Arrow arrays built at once).
const BATCH_ROWS: usize = 64 * 1024;
/// Limit on one day's events, so that a day's rows fit comfortably in memory.
const MAX_EVENTS_PER_DAY: u64 = 200_000_000;

/// What to generate. Build one with struct update syntax over [`LakeSpec::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeSpec {
    /// Seed of the ChaCha8 generator; the same spec always writes the same bytes.
    pub seed: u64,
    /// Exact number of rows written, over all days.
    pub events: u64,
    /// Number of day partitions, starting at `start_date`.
    pub days: u32,
    /// Size of the user population (`u0..`); users with no event are simply absent.
    pub users: u64,
    /// First day (UTC) of the lake.
    pub start_date: NaiveDate,
    /// Parquet files per day partition (rows are split by device, like a partitioned queue).
    pub files_per_day: usize,
    /// Maximum rows per Parquet row group.
    pub row_group_rows: usize,
}

impl Default for LakeSpec {
    /// The spec of the committed sample lake, `data/sample_lake`.
    fn default() -> Self {
        Self {
            seed: 42,
            events: 100_000,
            days: 7,
            users: 2_000,
            start_date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(NaiveDate::MIN),
            files_per_day: 2,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
        }
    }
}

impl LakeSpec {
    /// Checks that the spec can be generated, naming the offending field.
    pub fn validate(&self) -> Result<(), LakeError> {
        let invalid = |msg: String| Err(LakeError::InvalidSpec(msg));
        if self.events == 0 {
            return invalid("events must be at least 1".into());
        }
        if self.days == 0 || self.days > 36_500 {
            return invalid(format!("days must be in 1..=36500, got {}", self.days));
        }
        if self.users == 0 || self.users > u64::from(u32::MAX - 1) {
            return invalid(format!(
                "users must be in 1..={}, got {}",
                u32::MAX - 1,
                self.users
            ));
        }
        if self.files_per_day == 0 || self.files_per_day > 1024 {
            return invalid(format!(
                "files_per_day must be in 1..=1024, got {}",
                self.files_per_day
            ));
        }
        if self.row_group_rows == 0 {
            return invalid("row_group_rows must be at least 1".into());
        }
        if self.events.div_ceil(u64::from(self.days)) > MAX_EVENTS_PER_DAY {
            return invalid(format!(
                "{} events over {} days is more than {MAX_EVENTS_PER_DAY} events a day; \
                 use more days",
                self.events, self.days
            ));
        }
        let last = self
            .start_date
            .checked_add_days(Days::new(u64::from(self.days)));
        if self.start_date.year() < 1970 || last.is_none_or(|d| d.year() > 9999) {
            return invalid(format!(
                "start_date {} with {} days must stay within 1970-01-01..=9999-12-31",
                self.start_date, self.days
            ));
        }
        Ok(())
    }

    /// Number of bot users the spec gets: about one per 5000 users, limited so that bots take
    /// at most 5% of a day's events (so small lakes may have none).
    pub fn bots(&self) -> u64 {
        let per_day = self.events as f64 / f64::from(self.days.max(1));
        let by_budget = (per_day * BOT_SHARE / BOT_EVENTS_PER_DAY) as u64;
        by_budget
            .min(self.users.div_ceil(USERS_PER_BOT))
            .min(self.users.saturating_sub(1))
    }

    fn day_date(&self, day: u32) -> NaiveDate {
        self.start_date
            .checked_add_days(Days::new(u64::from(day)))
            .unwrap_or(NaiveDate::MAX)
    }
}

/// The directory name of one day's partition: `event_date=YYYY-MM-DD`.
pub fn partition_dir_name(date: NaiveDate) -> String {
    format!("{PARTITION_COLUMN}={}", date.format("%Y-%m-%d"))
}

/// The schema of the files (the partition column `event_date` is not in them).
pub fn lake_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new("device_id", DataType::Utf8, false),
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(
            "event_type",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("session_id", DataType::Int64, false),
        Field::new("page", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, false),
        Field::new("platform", DataType::Utf8, false),
        Field::new("plan", DataType::Utf8, false),
        Field::new("revenue", DataType::Float64, true),
        Field::new("is_active", DataType::Boolean, false),
    ]))
}

/// What [`write_lake`] wrote. The behaviour counts are of what the generator planted; the row,
/// late-row and NULL-user counts are exact counts of the files' rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LakeSummary {
    /// Rows written (always `spec.events`).
    pub rows: u64,
    /// Day partitions written.
    pub days: u32,
    /// Parquet files written.
    pub files: usize,
    /// Total size of the files in bytes.
    pub bytes: u64,
    /// Distinct users with at least one row (including bots).
    pub users_with_events: u64,
    /// Bot users.
    pub bots: u64,
    /// Client sessions (events sharing a user and a `session_id` other than -1, per visit).
    pub sessions: u64,
    /// Client sessions with a single event.
    pub single_event_sessions: u64,
    /// Client sessions whose first and last event fall on different UTC days.
    pub midnight_sessions: u64,
    /// Bot sessions whose events span more than 24 hours.
    pub bot_long_sessions: u64,
    /// Sessions that reused the user's previous `session_id` after a gap over 30 minutes.
    pub stale_session_ids: u64,
    /// Consecutive events of one user at the same millisecond.
    pub same_ms_ties: u64,
    /// Consecutive active events of one user exactly 30 minutes apart.
    pub exact_timeout_gaps: u64,
    /// Rows whose partition day is later than the UTC day of their `event_time`.
    pub late_rows: u64,
    /// Rows whose `user_id` is NULL.
    pub null_user_rows: u64,
    /// Rows with `is_active = false`.
    pub inactive_rows: u64,
}

impl fmt::Display for LakeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows, {} days, {} files, {:.1} MiB; {} users ({} bots), {} sessions \
             ({} single-event, {} across midnight, {} bot sessions > 24h, {} stale ids); \
             {} same-ms ties, {} exact 30-min gaps, {} late rows, {} NULL user_id, {} inactive",
            self.rows,
            self.days,
            self.files,
            self.bytes as f64 / (1024.0 * 1024.0),
            self.users_with_events,
            self.bots,
            self.sessions,
            self.single_event_sessions,
            self.midnight_sessions,
            self.bot_long_sessions,
            self.stale_session_ids,
            self.same_ms_ties,
            self.exact_timeout_gaps,
            self.late_rows,
            self.null_user_rows,
            self.inactive_rows,
        )
    }
}

/// Why a lake could not be written.
#[derive(Debug)]
pub enum LakeError {
    /// The spec is out of range; the message names the field.
    InvalidSpec(String),
    /// The output directory exists and is not empty.
    NotEmpty(PathBuf),
    /// A file system operation failed on `path`.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The Parquet writer failed on `path`.
    Parquet {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: ParquetError,
    },
    /// Building a record batch failed (a bug of the generator).
    Arrow(ArrowError),
    /// A bug of the generator.
    Internal(String),
}

impl fmt::Display for LakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSpec(msg) => write!(f, "invalid lake spec: {msg}"),
            Self::NotEmpty(path) => write!(
                f,
                "output directory {} is not empty (refusing to write a lake into it)",
                path.display()
            ),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Parquet { path, source } => {
                write!(f, "writing Parquet file {}: {source}", path.display())
            }
            Self::Arrow(e) => write!(f, "building a record batch: {e}"),
            Self::Internal(msg) => write!(f, "internal error: {msg}"),
        }
    }
}

impl std::error::Error for LakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Parquet { source, .. } => Some(source),
            Self::Arrow(e) => Some(e),
            Self::InvalidSpec(_) | Self::NotEmpty(_) | Self::Internal(_) => None,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the lake described by `spec` into `dir`, which is created if missing and must be
/// empty otherwise. Returns what was written.
pub fn write_lake(spec: &LakeSpec, dir: &Path) -> Result<LakeSummary, LakeError> {
    spec.validate()?;
    prepare_dir(dir)?;
    let mut generator = Generator::new(spec);
    let mut writer = DayWriter::new(spec, dir)?;
    let gen_stats = std::thread::scope(|scope| {
        // Capacity 1: the generator runs at most one day ahead of the writer.
        let (sender, receiver) = mpsc::sync_channel::<(u32, Vec<Row>)>(1);
        let producer = scope.spawn(move || {
            for day in 0..spec.days {
                let rows = generator.generate_day(day);
                if sender.send((day, rows)).is_err() {
                    break; // the writer failed; it reports why
                }
            }
            generator.finish()
        });
        let mut written = Ok(());
        for (day, rows) in receiver {
            if let Err(e) = writer.write_day(day, &rows) {
                written = Err(e);
                break;
            }
        }
        let stats = producer
            .join()
            .map_err(|_| LakeError::Internal("the generator thread panicked".into()))?;
        written.map(|()| stats)
    })?;
    let mut summary = writer.summary;
    summary.days = spec.days;
    summary.bots = gen_stats.bots;
    summary.sessions = gen_stats.sessions;
    summary.single_event_sessions = gen_stats.single_event_sessions;
    summary.midnight_sessions = gen_stats.midnight_sessions;
    summary.bot_long_sessions = gen_stats.bot_long_sessions;
    summary.stale_session_ids = gen_stats.stale_session_ids;
    summary.same_ms_ties = gen_stats.same_ms_ties;
    summary.exact_timeout_gaps = gen_stats.exact_timeout_gaps;
    summary.users_with_events = writer.seen_users.iter().filter(|&&seen| seen).count() as u64;
    if summary.rows != spec.events {
        return Err(LakeError::Internal(format!(
            "wrote {} rows instead of {}",
            summary.rows, spec.events
        )));
    }
    Ok(summary)
}

fn prepare_dir(dir: &Path) -> Result<(), LakeError> {
    if dir.exists() {
        let mut entries = fs::read_dir(dir).map_err(io_error(dir))?;
        if entries.next().is_some() {
            return Err(LakeError::NotEmpty(dir.to_path_buf()));
        }
    }
    fs::create_dir_all(dir).map_err(io_error(dir))
}

/// One generated event, before it becomes a Parquet row. Strings are derived at write time.
#[derive(Debug, Clone, Copy)]
struct Row {
    event_time: i64,
    /// When the row reached the lake: picks its partition and its place in the file.
    arrival: i64,
    session_id: i64,
    revenue_cents: u32,
    user: u32,
    page: u16,
    device_no: u8,
    event_type: u8,
    flags: u8,
}

/// A user's fixed attributes, derived from a hash of the user so that no table is kept.
#[derive(Debug, Clone, Copy)]
struct Profile {
    country: u8,
    plan: u8,
    platforms: [u8; 2],
    devices: u8,
}

pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn pick_weighted(weights: &[u32], value: u64) -> u8 {
    let total: u32 = weights.iter().sum();
    let mut point = (value % u64::from(total)) as u32;
    for (i, &w) in weights.iter().enumerate() {
        if point < w {
            return i as u8;
        }
        point -= w;
    }
    0
}

fn profile(salt: u64, user: u32) -> Profile {
    // Disjoint bit fields of one hash, so the attributes are independent of each other.
    let h = splitmix64(salt ^ u64::from(user));
    let bits = |shift: u32, width: u32| (h >> shift) & ((1 << width) - 1);
    let primary = pick_weighted(&PLATFORM_WEIGHTS, bits(40, 12));
    Profile {
        country: pick_weighted(&COUNTRY_WEIGHTS, bits(0, 20)),
        plan: pick_weighted(&PLAN_WEIGHTS, bits(20, 20)),
        platforms: [primary, (primary + 1 + bits(52, 1) as u8) % 3],
        devices: if bits(53, 11) % 100 < u64::from(P_SECOND_DEVICE_USER) {
            2
        } else {
            1
        },
    }
}

/// Walker's alias method: O(1) weighted sampling of users.
struct AliasTable {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut prob: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut small = Vec::new();
        let mut large = Vec::new();
        for (i, &p) in prob.iter().enumerate() {
            if p < 1.0 {
                small.push(i);
            } else {
                large.push(i);
            }
        }
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            alias[s] = l as u32;
            prob[l] += prob[s] - 1.0;
            if prob[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is 1 up to rounding.
        for i in small.into_iter().chain(large) {
            prob[i] = 1.0;
        }
        Self { prob, alias }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let i = rng.random_range(0..self.prob.len());
        if rng.random::<f64>() < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

/// What a human user's previous events left behind.
#[derive(Debug, Clone, Copy)]
struct UserState {
    /// Time of the user's last event, or `NONE_MS`.
    last_time: i64,
    last_session_id: i64,
    last_device: u8,
    last_active: bool,
}

#[derive(Debug, Clone, Copy)]
struct BotState {
    user: u32,
    session_id: i64,
    session_end: i64,
    /// Time of the bot's last event, or `NONE_MS`.
    last_time: i64,
    next_time: i64,
}

#[derive(Debug, Default)]
struct GenStats {
    bots: u64,
    sessions: u64,
    single_event_sessions: u64,
    midnight_sessions: u64,
    bot_long_sessions: u64,
    stale_session_ids: u64,
    same_ms_ties: u64,
    exact_timeout_gaps: u64,
}

/// One session laid out in the scratch buffer: rows `start..end`.
#[derive(Debug, Clone, Copy)]
struct SessionSpan {
    start: usize,
    end: usize,
    stale: bool,
}

struct Generator {
    rng: ChaCha8Rng,
    salt: u64,
    window_start: i64,
    window_end: i64,
    day_budgets: Vec<u64>,
    humans: Vec<u32>,
    alias: AliasTable,
    users: Vec<UserState>,
    bots: Vec<BotState>,
    /// Rows waiting for their arrival day; `pending[0]` is the day being generated.
    pending: VecDeque<Vec<Row>>,
    day: u32,
    counts: Vec<u32>,
    sizes: Vec<u32>,
    scratch: Vec<Row>,
    spans: Vec<SessionSpan>,
    stats: GenStats,
}

impl Generator {
    fn new(spec: &LakeSpec) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let salt = splitmix64(spec.seed ^ 0x5E55_1017_1A4E);
        let window_start = spec
            .start_date
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp_millis();
        let window_end = window_start + i64::from(spec.days) * DAY_MS;
        let users = spec.users as u32;

        let mut is_bot = vec![false; users as usize];
        let mut bots = Vec::new();
        let mut bot_count = spec.bots();
        while bot_count > 0 {
            let user = rng.random_range(0..users);
            if !is_bot[user as usize] {
                is_bot[user as usize] = true;
                bot_count -= 1;
                let start = window_start + rng.random_range(0..4 * HOUR_MS);
                bots.push(BotState {
                    user,
                    session_id: start,
                    session_end: start + rng.random_range(BOT_SESSION_MS.0..BOT_SESSION_MS.1),
                    last_time: NONE_MS,
                    next_time: start,
                });
            }
        }
        let humans: Vec<u32> = (0..users).filter(|&u| !is_bot[u as usize]).collect();
        let weights: Vec<f64> = humans
            .iter()
            .map(|_| {
                let uniform: f64 = rng.random();
                (1.0 - uniform).powf(-1.0 / PARETO_ALPHA).min(PARETO_CAP)
            })
            .collect();
        let alias = AliasTable::new(&weights);

        Self {
            rng,
            salt,
            window_start,
            window_end,
            day_budgets: day_budgets(spec),
            counts: vec![0; humans.len()],
            humans,
            alias,
            users: vec![
                UserState {
                    last_time: NONE_MS,
                    last_session_id: NONE_MS,
                    last_device: 0,
                    last_active: false,
                };
                users as usize
            ],
            stats: GenStats {
                bots: bots.len() as u64,
                ..GenStats::default()
            },
            bots,
            pending: VecDeque::new(),
            day: 0,
            sizes: Vec::new(),
            scratch: Vec::new(),
            spans: Vec::new(),
        }
    }

    /// Generates day `day` (days must come in order) and returns the rows that arrive on it.
    fn generate_day(&mut self, day: u32) -> Vec<Row> {
        self.day = day;
        let day_start = self.window_start + i64::from(day) * DAY_MS;
        let budget = self.day_budgets[day as usize];
        let bot_events = self.emit_bots(day_start + DAY_MS, budget);
        self.counts.fill(0);
        for _ in 0..budget - bot_events {
            let human = self.alias.sample(&mut self.rng);
            self.counts[human] += 1;
        }
        for human in 0..self.humans.len() {
            let count = self.counts[human];
            if count > 0 {
                self.emit_user_day(self.humans[human], count, day_start);
            }
        }
        self.pending.pop_front().unwrap_or_default()
    }

    /// Closes the bots' open sessions and returns the statistics.
    fn finish(mut self) -> GenStats {
        for i in 0..self.bots.len() {
            let bot = self.bots[i];
            self.close_bot_session(&bot);
        }
        self.stats
    }

    fn day_of(&self, time: i64) -> i64 {
        (time - self.window_start).div_euclid(DAY_MS)
    }

    fn close_bot_session(&mut self, bot: &BotState) {
        if bot.last_time >= bot.session_id {
            self.stats.sessions += 1;
            if bot.last_time - bot.session_id > DAY_MS {
                self.stats.bot_long_sessions += 1;
            }
            if self.day_of(bot.last_time) != self.day_of(bot.session_id) {
                self.stats.midnight_sessions += 1;
            }
        }
    }

    /// Emits the bots' events before `day_end`, at most `budget` of them; returns how many.
    fn emit_bots(&mut self, day_end: i64, budget: u64) -> u64 {
        let limit = day_end.min(self.window_end);
        let mut emitted = 0;
        for i in 0..self.bots.len() {
            let mut bot = self.bots[i];
            while bot.next_time < limit && emitted < budget {
                if bot.next_time > bot.session_end {
                    self.close_bot_session(&bot);
                    let start = bot.last_time + self.rng.random_range(BOT_IDLE_MS.0..BOT_IDLE_MS.1);
                    bot.session_id = start;
                    bot.session_end =
                        start + self.rng.random_range(BOT_SESSION_MS.0..BOT_SESSION_MS.1);
                    bot.next_time = start;
                    continue;
                }
                let row = Row {
                    event_time: bot.next_time,
                    arrival: 0,
                    session_id: bot.session_id,
                    revenue_cents: 0,
                    user: bot.user,
                    page: STATIC_PAGES.len() as u16 + self.rng.random_range(0..PRODUCT_PAGES),
                    device_no: 0,
                    event_type: PAGE_VIEW,
                    flags: FLAG_BOT,
                };
                self.push_arrived(row);
                emitted += 1;
                bot.last_time = bot.next_time;
                bot.next_time += self.rng.random_range(BOT_STEP_MS.0..=BOT_STEP_MS.1);
            }
            self.bots[i] = bot;
        }
        emitted
    }

    /// Gap before a user's next session: over the timeout, now and then exactly the timeout.
    fn session_gap(&mut self, sessions: u32) -> i64 {
        let r: f64 = self.rng.random();
        if r < P_SESSION_EXACT_TIMEOUT {
            SESSION_TIMEOUT_MS
        } else if r < P_SESSION_EXACT_TIMEOUT + P_SESSION_TIMEOUT_PLUS_ONE {
            SESSION_TIMEOUT_MS + 1
        } else {
            let spread = (SESSION_GAP_SPREAD_MS / i64::from(sessions)).max(15 * MINUTE_MS);
            SESSION_TIMEOUT_MS + 1 + self.rng.random_range(0..spread)
        }
    }

    /// Gap between consecutive events of a session: exponential around `mean_ms`, with ties and
    /// gaps of exactly the timeout (and one millisecond more) planted.
    fn intra_gap(&mut self, mean_ms: f64) -> i64 {
        let r: f64 = self.rng.random();
        if r < P_TIE {
            0
        } else if r < P_TIE + P_INTRA_EXACT_TIMEOUT {
            SESSION_TIMEOUT_MS
        } else if r < P_TIE + P_INTRA_EXACT_TIMEOUT + P_INTRA_TIMEOUT_PLUS_ONE {
            SESSION_TIMEOUT_MS + 1
        } else {
            let uniform: f64 = self.rng.random();
            let gap = -(1.0 - uniform).ln() * mean_ms;
            (gap.min(INTRA_GAP_MAX_MS) as i64).max(1)
        }
    }

    fn middle_event_type(&mut self) -> u8 {
        let total: u32 = MIDDLE_EVENT_WEIGHTS.iter().sum();
        pick_weighted(
            &MIDDLE_EVENT_WEIGHTS,
            u64::from(self.rng.random_range(0..total)),
        )
    }

    /// Lays out `count` events of human `user` starting on the day at `day_start`: a few
    /// sessions in a row, continuing after whatever the user did before.
    fn emit_user_day(&mut self, user: u32, count: u32, day_start: i64) {
        let profile = profile(self.salt, user);
        let mut state = self.users[user as usize];
        let sessions = if count == 1 {
            1
        } else {
            let target = (f64::from(count).sqrt() * self.rng.random_range(0.3..1.2)).round();
            (target as u32).clamp(1, count.min(MAX_SESSIONS_PER_DAY))
        };
        self.sizes.clear();
        self.sizes.resize(sessions as usize, 1);
        for _ in sessions..count {
            let session = self.rng.random_range(0..sessions as usize);
            self.sizes[session] += 1;
        }
        let mean_gap = (ACTIVE_TIME_PER_DAY_MS / f64::from(count))
            .clamp(INTRA_GAP_MEAN_MS.0, INTRA_GAP_MEAN_MS.1);

        // Most activity in the (UTC) afternoon and evening.
        let offset = if self.rng.random_bool(0.7) {
            self.rng.random_range(8 * HOUR_MS..22 * HOUR_MS)
        } else {
            self.rng.random_range(0..DAY_MS)
        };
        let mut time = day_start + offset;
        if state.last_time != NONE_MS {
            let gap = self.session_gap(sessions);
            if state.last_time + gap >= time {
                time = state.last_time + gap;
                if gap == SESSION_TIMEOUT_MS && state.last_active {
                    self.stats.exact_timeout_gaps += 1;
                }
            }
        }

        self.scratch.clear();
        self.spans.clear();
        for session in 0..sessions as usize {
            if session > 0 {
                let gap = self.session_gap(sessions);
                time += gap;
                if gap == SESSION_TIMEOUT_MS && state.last_active {
                    self.stats.exact_timeout_gaps += 1;
                }
            }
            let size = self.sizes[session];
            let mut device_no =
                if profile.devices == 2 && self.rng.random_bool(P_SECOND_DEVICE_SESSION) {
                    1
                } else {
                    0
                };
            let mobile = profile.platforms[device_no as usize] != WEB;
            if size == 1 && session > 0 && mobile && self.rng.random_bool(P_SYNC) {
                // A background sync between sessions: out of session, not active.
                let row = self.human_row(user, time, -1, device_no, SYNC);
                self.scratch.push(row);
                state.last_active = false;
                continue;
            }
            let stale =
                state.last_session_id != NONE_MS && self.rng.random_bool(P_STALE_SESSION_ID);
            let session_id = if stale {
                device_no = state.last_device;
                state.last_session_id
            } else {
                time
            };
            let mobile = profile.platforms[device_no as usize] != WEB;
            let start = self.scratch.len();
            for event in 0..size {
                if event > 0 {
                    let gap = self.intra_gap(mean_gap);
                    time += gap;
                    if gap == 0 {
                        self.stats.same_ms_ties += 1;
                    } else if gap == SESSION_TIMEOUT_MS && state.last_active {
                        self.stats.exact_timeout_gaps += 1;
                    }
                }
                let event_type = if event == 0 {
                    if mobile { APP_OPEN } else { PAGE_VIEW }
                } else if event == size - 1 && mobile && self.rng.random_bool(P_APP_BACKGROUND) {
                    APP_BACKGROUND
                } else {
                    self.middle_event_type()
                };
                state.last_active = event_type != APP_BACKGROUND;
                let row = self.human_row(user, time, session_id, device_no, event_type);
                self.scratch.push(row);
            }
            self.spans.push(SessionSpan {
                start,
                end: self.scratch.len(),
                stale,
            });
            state.last_session_id = session_id;
            state.last_device = device_no;
        }

        self.keep_inside_window();
        for span in &self.spans {
            let first = self.scratch[span.start].event_time;
            let last = self.scratch[span.end - 1].event_time;
            self.stats.sessions += 1;
            self.stats.stale_session_ids += u64::from(span.stale);
            self.stats.single_event_sessions += u64::from(span.end - span.start == 1);
            self.stats.midnight_sessions += u64::from(self.day_of(first) != self.day_of(last));
        }
        if let Some(last_span) = self.spans.last()
            && !last_span.stale
        {
            state.last_session_id = self.scratch[last_span.start].session_id;
        }
        state.last_time = self
            .scratch
            .last()
            .map_or(state.last_time, |r| r.event_time);
        self.users[user as usize] = state;
        let rows = std::mem::take(&mut self.scratch);
        for &row in &rows {
            self.push_arrived(row);
        }
        self.scratch = rows;
    }

    /// The lake ends at `window_end`: a timeline that would run past it is moved earlier (its
    /// own session ids with it), and squeezed against the window start if it is too long.
    fn keep_inside_window(&mut self) {
        let Some(last) = self.scratch.last().map(|r| r.event_time) else {
            return;
        };
        if last < self.window_end {
            return;
        }
        let shift = last - (self.window_end - 1) + self.rng.random_range(0..HOUR_MS);
        for row in &mut self.scratch {
            row.event_time = (row.event_time - shift).max(self.window_start);
        }
        for span in &self.spans {
            if !span.stale {
                let start_time = self.scratch[span.start].event_time;
                for row in &mut self.scratch[span.start..span.end] {
                    row.session_id = start_time;
                }
            }
        }
    }

    fn human_row(
        &mut self,
        user: u32,
        time: i64,
        session_id: i64,
        device_no: u8,
        event_type: u8,
    ) -> Row {
        let page = if event_type == PAGE_VIEW {
            if self.rng.random_bool(0.55) {
                self.rng.random_range(0..STATIC_PAGES.len() as u16)
            } else {
                STATIC_PAGES.len() as u16 + self.rng.random_range(0..PRODUCT_PAGES)
            }
        } else {
            NO_PAGE
        };
        let revenue_cents = if event_type == PURCHASE {
            self.rng.random_range(99..20_000)
        } else {
            0
        };
        let flags = if self.rng.random_bool(P_NULL_USER) {
            FLAG_NULL_USER
        } else {
            0
        };
        Row {
            event_time: time,
            arrival: 0,
            session_id,
            revenue_cents,
            user,
            page,
            device_no,
            event_type,
            flags,
        }
    }

    /// Gives `row` an arrival time and queues it for its arrival day.
    fn push_arrived(&mut self, mut row: Row) {
        let r: f64 = self.rng.random();
        let delay = if r < P_DELAYED {
            self.rng.random_range(DELAYED_MS.0..DELAYED_MS.1)
        } else if r < P_DELAYED + P_SLOW {
            self.rng.random_range(SLOW_MS.0..SLOW_MS.1)
        } else {
            self.rng.random_range(0..FAST_MS)
        };
        // Days already written are closed: a row moved before them arrives today.
        let today_start = self.window_start + i64::from(self.day) * DAY_MS;
        row.arrival = (row.event_time + delay).clamp(today_start, self.window_end - 1);
        let ahead = (self.day_of(row.arrival) - i64::from(self.day)) as usize;
        if self.pending.len() <= ahead {
            self.pending.resize_with(ahead + 1, Vec::new);
        }
        self.pending[ahead].push(row);
    }
}

/// Splits `spec.events` over the days, weekend days getting 80% of a weekday's share.
fn day_budgets(spec: &LakeSpec) -> Vec<u64> {
    let weights: Vec<u64> = (0..spec.days)
        .map(|day| match spec.day_date(day).weekday() {
            Weekday::Sat | Weekday::Sun => 4,
            _ => 5,
        })
        .collect();
    let total_weight: u64 = weights.iter().sum();
    let mut budgets: Vec<u64> = weights
        .iter()
        .map(|&w| (u128::from(spec.events) * u128::from(w) / u128::from(total_weight)) as u64)
        .collect();
    // Fewer than `days` rows are missing: hand them out from the first day on.
    let missing = spec.events - budgets.iter().sum::<u64>();
    for budget in budgets.iter_mut().take(missing as usize) {
        *budget += 1;
    }
    budgets
}

/// The rows of one file as (arrival, row index) pairs; sorted, they are the file's row order.
/// The keys are unique, so the unstable sort is deterministic.
type FileOrder = Vec<(i64, u32)>;

/// Turns a day's rows into `files_per_day` Parquet files and keeps the counts.
struct DayWriter<'a> {
    spec: &'a LakeSpec,
    dir: &'a Path,
    schema: SchemaRef,
    props: WriterProperties,
    salt: u64,
    user_width: usize,
    window_start: i64,
    event_types: ArrayRef,
    seen_users: Vec<bool>,
    summary: LakeSummary,
}

impl<'a> DayWriter<'a> {
    fn new(spec: &'a LakeSpec, dir: &'a Path) -> Result<Self, LakeError> {
        let level = ZstdLevel::try_new(3).map_err(|source| LakeError::Parquet {
            path: dir.to_path_buf(),
            source,
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(spec.row_group_rows))
            .build();
        let window_start = spec
            .start_date
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp_millis();
        Ok(Self {
            spec,
            dir,
            schema: lake_schema(),
            props,
            salt: splitmix64(spec.seed ^ 0x5E55_1017_1A4E),
            user_width: (spec.users - 1).to_string().len(),
            window_start,
            event_types: Arc::new(StringArray::from(EVENT_TYPES.to_vec())),
            seen_users: vec![false; spec.users as usize],
            summary: LakeSummary::default(),
        })
    }

    fn device_hash(&self, row: &Row) -> u64 {
        splitmix64(
            self.salt.rotate_left(17) ^ (u64::from(row.user) << 8 | u64::from(row.device_no)),
        )
    }

    fn write_day(&mut self, day: u32, rows: &[Row]) -> Result<(), LakeError> {
        let day_dir = self.dir.join(partition_dir_name(self.spec.day_date(day)));
        fs::create_dir_all(&day_dir).map_err(io_error(&day_dir))?;
        let files = self.spec.files_per_day;
        let mut buckets: Vec<FileOrder> = vec![Vec::new(); files];
        for (i, row) in rows.iter().enumerate() {
            let file = (self.device_hash(row) % files as u64) as usize;
            buckets[file].push((row.arrival, i as u32));
        }
        // Encoding dominates the run time, so the day's files are encoded in parallel; each file
        // is still written by one thread from one sorted bucket, so the bytes do not change.
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(files);
        let this = &*self;
        let buckets = &mut buckets;
        let written: Vec<Result<u64, LakeError>> = std::thread::scope(|scope| {
            let mut chunks: Vec<Vec<(usize, &mut FileOrder)>> =
                (0..threads).map(|_| Vec::new()).collect();
            for (file, bucket) in buckets.iter_mut().enumerate() {
                chunks[file % threads].push((file, bucket));
            }
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|jobs| {
                    let day_dir = &day_dir;
                    scope.spawn(move || {
                        let mut bytes = 0;
                        for (file, bucket) in jobs {
                            bucket.sort_unstable();
                            let path = day_dir.join(format!("part-{file}.parquet"));
                            bytes += this.write_file(&path, rows, bucket)?;
                        }
                        Ok(bytes)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(LakeError::Internal(
                            "a Parquet writer thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        for bytes in written {
            self.summary.bytes += bytes?;
        }
        self.summary.files += files;

        let day_start = self.window_start + i64::from(day) * DAY_MS;
        for row in rows {
            self.summary.rows += 1;
            self.summary.late_rows += u64::from(row.event_time < day_start);
            if row.flags & FLAG_NULL_USER != 0 {
                self.summary.null_user_rows += 1;
            } else {
                self.seen_users[row.user as usize] = true;
            }
            self.summary.inactive_rows += u64::from(!is_active(row.event_type));
        }
        Ok(())
    }

    /// Writes the rows of `order` into a new Parquet file; returns its size in bytes.
    fn write_file(
        &self,
        path: &Path,
        rows: &[Row],
        order: &[(i64, u32)],
    ) -> Result<u64, LakeError> {
        let parquet_error = |source| LakeError::Parquet {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io_error(path))?;
        let mut writer = ArrowWriter::try_new(file, self.schema.clone(), Some(self.props.clone()))
            .map_err(parquet_error)?;
        for chunk in order.chunks(BATCH_ROWS) {
            let batch = self.build_batch(rows, chunk)?;
            writer.write(&batch).map_err(parquet_error)?;
        }
        // Writes the footer and hands back the file (the writer buffers internally).
        let file = writer.into_inner().map_err(parquet_error)?;
        Ok(file.metadata().map_err(io_error(path))?.len())
    }

    fn build_batch(&self, rows: &[Row], chunk: &[(i64, u32)]) -> Result<RecordBatch, LakeError> {
        let n = chunk.len();
        let mut user_id = StringBuilder::with_capacity(n, n * (self.user_width + 1));
        let mut device_id = StringBuilder::with_capacity(n, n * 16);
        let mut event_time = Vec::with_capacity(n);
        let mut event_type = Vec::with_capacity(n);
        let mut session_id = Vec::with_capacity(n);
        let mut page = StringBuilder::with_capacity(n, n * 8);
        let mut country = StringBuilder::with_capacity(n, n * 2);
        let mut platform = StringBuilder::with_capacity(n, n * 4);
        let mut plan = StringBuilder::with_capacity(n, n * 4);
        let mut revenue = Float64Builder::with_capacity(n);
        let mut is_active_values = Vec::with_capacity(n);
        // Writing into a StringBuilder cannot fail, so the fmt::Results below are ignored.
        for &(_, i) in chunk {
            let row = &rows[i as usize];
            let bot = row.flags & FLAG_BOT != 0;
            let profile = profile(self.salt, row.user);
            if row.flags & FLAG_NULL_USER != 0 {
                user_id.append_null();
            } else {
                let _ = write!(user_id, "u{:0width$}", row.user, width = self.user_width);
                user_id.append_value("");
            }
            let _ = write!(device_id, "{:016x}", self.device_hash(row));
            device_id.append_value("");
            event_time.push(row.event_time);
            event_type.push(i32::from(row.event_type));
            session_id.push(row.session_id);
            match row.page {
                NO_PAGE => page.append_null(),
                p if (p as usize) < STATIC_PAGES.len() => {
                    page.append_value(STATIC_PAGES[p as usize])
                }
                p => {
                    let _ = write!(page, "/product/{}", p as usize - STATIC_PAGES.len());
                    page.append_value("");
                }
            }
            if bot {
                country.append_value("US");
                platform.append_value(PLATFORMS[WEB as usize]);
                plan.append_value(PLANS[0]);
            } else {
                country.append_value(COUNTRIES[profile.country as usize]);
                platform
                    .append_value(PLATFORMS[profile.platforms[row.device_no as usize] as usize]);
                plan.append_value(PLANS[profile.plan as usize]);
            }
            if row.event_type == PURCHASE {
                revenue.append_value(f64::from(row.revenue_cents) / 100.0);
            } else {
                revenue.append_null();
            }
            is_active_values.push(is_active(row.event_type));
        }
        let event_type = DictionaryArray::<Int32Type>::try_new(
            Int32Array::from(event_type),
            self.event_types.clone(),
        )
        .map_err(LakeError::Arrow)?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(user_id.finish()),
            Arc::new(device_id.finish()),
            Arc::new(TimestampMillisecondArray::from(event_time).with_timezone("UTC")),
            Arc::new(event_type),
            Arc::new(Int64Array::from(session_id)),
            Arc::new(page.finish()),
            Arc::new(country.finish()),
            Arc::new(platform.finish()),
            Arc::new(plan.finish()),
            Arc::new(revenue.finish()),
            Arc::new(BooleanArray::from(is_active_values)),
        ];
        RecordBatch::try_new(self.schema.clone(), columns).map_err(LakeError::Arrow)
    }
}

fn is_active(event_type: u8) -> bool {
    event_type != APP_BACKGROUND && event_type != SYNC
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    /// Small enough for a debug-build test, big enough for one bot and every planted quirk.
    fn small_spec() -> LakeSpec {
        LakeSpec {
            seed: 7,
            events: 30_000,
            days: 3,
            users: 500,
            start_date: NaiveDate::from_ymd_opt(2024, 3, 9).expect("valid date"),
            files_per_day: 2,
            row_group_rows: 4096,
        }
    }

    /// One row read back, with its partition.
    #[derive(Debug, Clone)]
    struct ReadRow {
        partition: NaiveDate,
        file: String,
        user_id: Option<String>,
        event_time: i64,
        event_type: String,
        session_id: i64,
        page: Option<String>,
        revenue: Option<f64>,
        is_active: bool,
    }

    fn files_of(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for day in fs::read_dir(dir).expect("lake dir") {
            let day = day.expect("entry").path();
            for file in fs::read_dir(&day).expect("day dir") {
                files.push(file.expect("entry").path());
            }
        }
        files.sort();
        files
    }

    fn read_lake(dir: &Path) -> Vec<ReadRow> {
        let mut out = Vec::new();
        for path in files_of(dir) {
            let partition_name = path
                .parent()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .expect("partition dir name");
            let date = partition_name
                .strip_prefix("event_date=")
                .expect("hive partition");
            let partition = NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("date");
            let file = File::open(&path).expect("open");
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .expect("parquet")
                .build()
                .expect("reader");
            for batch in reader {
                let batch = batch.expect("batch");
                let user = batch.column(0).as_string::<i32>();
                let time = batch.column(2).as_primitive::<TimestampMillisecondType>();
                let event_type = batch.column(3).as_dictionary::<Int32Type>();
                let type_values = event_type.values().as_string::<i32>();
                let session = batch.column(4).as_primitive::<Int64Type>();
                let page = batch.column(5).as_string::<i32>();
                let revenue = batch.column(9).as_primitive::<Float64Type>();
                let active = batch.column(10).as_boolean();
                for i in 0..batch.num_rows() {
                    out.push(ReadRow {
                        partition,
                        file: path.display().to_string(),
                        user_id: user.is_valid(i).then(|| user.value(i).to_string()),
                        event_time: time.value(i),
                        event_type: type_values
                            .value(event_type.keys().value(i) as usize)
                            .to_string(),
                        session_id: session.value(i),
                        page: page.is_valid(i).then(|| page.value(i).to_string()),
                        revenue: revenue.is_valid(i).then(|| revenue.value(i)),
                        is_active: active.value(i),
                    });
                }
            }
        }
        out
    }

    fn date_of(ms: i64) -> NaiveDate {
        chrono::DateTime::from_timestamp_millis(ms)
            .expect("timestamp in range")
            .date_naive()
    }

    /// Events of each (non-NULL) user, ordered by time.
    fn by_user(rows: &[ReadRow]) -> HashMap<&str, Vec<&ReadRow>> {
        let mut users: HashMap<&str, Vec<&ReadRow>> = HashMap::new();
        for row in rows {
            if let Some(user) = &row.user_id {
                users.entry(user).or_default().push(row);
            }
        }
        for events in users.values_mut() {
            events.sort_by_key(|r| r.event_time);
        }
        users
    }

    #[test]
    fn same_seed_writes_same_bytes_and_another_seed_does_not() {
        let spec = LakeSpec {
            events: 5_000,
            ..small_spec()
        };
        let dirs: Vec<_> = (0..3)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        write_lake(&spec, dirs[0].path()).expect("first");
        write_lake(&spec, dirs[1].path()).expect("second");
        let other = LakeSpec { seed: 8, ..spec };
        write_lake(&other, dirs[2].path()).expect("other seed");
        let contents = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
            files_of(dir)
                .into_iter()
                .map(|p| {
                    let bytes = fs::read(&p).expect("read");
                    (p.strip_prefix(dir).expect("inside").to_path_buf(), bytes)
                })
                .collect()
        };
        assert_eq!(contents(dirs[0].path()), contents(dirs[1].path()));
        assert_ne!(contents(dirs[0].path()), contents(dirs[2].path()));
    }

    #[test]
    fn writes_hive_partitions_of_part_files_and_exactly_the_events_asked_for() {
        let spec = small_spec();
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = write_lake(&spec, dir.path()).expect("write");
        let mut days: Vec<String> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        days.sort();
        assert_eq!(
            days,
            [
                "event_date=2024-03-09",
                "event_date=2024-03-10",
                "event_date=2024-03-11"
            ]
        );
        for day in &days {
            let mut files: Vec<String> = fs::read_dir(dir.path().join(day))
                .expect("day dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files, ["part-0.parquet", "part-1.parquet"]);
        }
        assert_eq!(summary.files, 6);
        assert_eq!(summary.days, 3);
        assert_eq!(summary.rows, spec.events);
        assert_eq!(read_lake(dir.path()).len() as u64, spec.events);
        let bytes: u64 = files_of(dir.path())
            .iter()
            .map(|p| fs::metadata(p).expect("meta").len())
            .sum();
        assert_eq!(summary.bytes, bytes);
    }

    #[test]
    fn files_have_the_lake_schema_without_the_partition_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_lake(&small_spec(), dir.path()).expect("write");
        for path in files_of(dir.path()) {
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open"))
                    .expect("parquet");
            let schema = builder.schema();
            assert_eq!(
                schema.fields(),
                lake_schema().fields(),
                "{}",
                path.display()
            );
            assert!(schema.field_with_name(PARTITION_COLUMN).is_err());
        }
    }

    #[test]
    fn rows_are_in_arrival_order_not_sorted_by_user_or_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_lake(&small_spec(), dir.path()).expect("write");
        let rows = read_lake(dir.path());
        let mut files: BTreeMap<&str, Vec<&ReadRow>> = BTreeMap::new();
        for row in &rows {
            files.entry(&row.file).or_default().push(row);
        }
        for (file, rows) in files {
            let time_sorted = rows.windows(2).all(|w| w[0].event_time <= w[1].event_time);
            let user_sorted = rows.windows(2).all(|w| w[0].user_id <= w[1].user_id);
            assert!(!time_sorted, "{file} is sorted by event_time");
            assert!(!user_sorted, "{file} is sorted by user_id");
        }
    }

    #[test]
    fn columns_follow_the_event_types() {
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = write_lake(&small_spec(), dir.path()).expect("write");
        let rows = read_lake(dir.path());
        for row in &rows {
            let background = BACKGROUND_EVENT_TYPES.contains(&row.event_type.as_str());
            assert_eq!(row.page.is_some(), row.event_type == "page_view", "{row:?}");
            assert_eq!(
                row.revenue.is_some(),
                row.event_type == "purchase",
                "{row:?}"
            );
            assert_eq!(row.is_active, !background, "{row:?}");
            assert_eq!(row.session_id == -1, row.event_type == "sync", "{row:?}");
        }
        let inactive = rows.iter().filter(|r| !r.is_active).count() as u64;
        assert_eq!(summary.inactive_rows, inactive);
        assert!(rows.iter().any(|r| r.event_type == "purchase"));
        assert!(rows.iter().any(|r| r.event_type == "sync"));
        assert!(rows.iter().any(|r| r.event_type == "app_background"));
    }

    #[test]
    fn planted_quirks_are_in_the_data() {
        let spec = small_spec();
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = write_lake(&spec, dir.path()).expect("write");
        let rows = read_lake(dir.path());
        let users = by_user(&rows);

        let null_users = rows.iter().filter(|r| r.user_id.is_none()).count() as u64;
        assert!(null_users > 0);
        assert_eq!(summary.null_user_rows, null_users);

        let late = rows
            .iter()
            .filter(|r| r.partition > date_of(r.event_time))
            .count() as u64;
        assert!(late > 0);
        assert_eq!(summary.late_rows, late);
        assert!(rows.iter().all(|r| r.partition >= date_of(r.event_time)));

        let mut ties = 0;
        let mut exact_gaps = 0;
        for events in users.values() {
            ties += events
                .windows(2)
                .filter(|w| w[0].event_time == w[1].event_time)
                .count();
            let active: Vec<_> = events.iter().filter(|r| r.is_active).collect();
            exact_gaps += active
                .windows(2)
                .filter(|w| w[1].event_time - w[0].event_time == SESSION_TIMEOUT_MS)
                .count();
        }
        assert!(ties > 0 && summary.same_ms_ties > 0);
        assert!(exact_gaps > 0 && summary.exact_timeout_gaps > 0);

        // Client sessions: (user, session_id) -> (first, last, events).
        let mut sessions: HashMap<(&str, i64), (i64, i64, u64)> = HashMap::new();
        for row in rows.iter().filter(|r| r.session_id != -1) {
            let Some(user) = row.user_id.as_deref() else {
                continue;
            };
            let entry = sessions.entry((user, row.session_id)).or_insert((
                row.event_time,
                row.event_time,
                0,
            ));
            entry.0 = entry.0.min(row.event_time);
            entry.1 = entry.1.max(row.event_time);
            entry.2 += 1;
        }
        let across_midnight = sessions
            .values()
            .filter(|(first, last, _)| date_of(*first) != date_of(*last))
            .count();
        let over_a_day = sessions
            .values()
            .filter(|(first, last, _)| last - first > DAY_MS)
            .count();
        let single = sessions.values().filter(|s| s.2 == 1).count();
        assert!(across_midnight > 0 && summary.midnight_sessions > 0);
        assert!(over_a_day > 0 && summary.bot_long_sessions > 0);
        assert!(single > 0 && summary.single_event_sessions > 0);
        assert_eq!(summary.bots, 1);
        assert!(summary.stale_session_ids > 0);

        // A bot: a client session with an event every few minutes for over a day.
        let bot_like = users.values().any(|events| {
            let mut by_session: HashMap<i64, Vec<i64>> = HashMap::new();
            for event in events {
                by_session
                    .entry(event.session_id)
                    .or_default()
                    .push(event.event_time);
            }
            by_session.values().any(|times| {
                times.last().expect("event") - times[0] > DAY_MS
                    && times.windows(2).all(|w| w[1] - w[0] <= 5 * MINUTE_MS)
            })
        });
        assert!(bot_like);
    }

    #[test]
    fn user_activity_is_heavy_tailed() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_lake(&small_spec(), dir.path()).expect("write");
        let rows = read_lake(dir.path());
        let mut counts: Vec<usize> = by_user(&rows).values().map(Vec::len).collect();
        counts.sort_unstable();
        let median = counts[counts.len() / 2];
        let top = counts[counts.len() - 1];
        assert!(top > 20 * median, "top user {top} events, median {median}");
    }

    #[test]
    fn refuses_a_non_empty_directory_and_bad_specs() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("notes.txt"), "keep me").expect("write");
        let err = write_lake(&small_spec(), dir.path()).expect_err("not empty");
        assert!(matches!(err, LakeError::NotEmpty(_)), "{err}");
        assert!(dir.path().join("notes.txt").exists());

        let empty = tempfile::tempdir().expect("tempdir");
        for (spec, field) in [
            (
                LakeSpec {
                    days: 0,
                    ..small_spec()
                },
                "days",
            ),
            (
                LakeSpec {
                    events: 0,
                    ..small_spec()
                },
                "events",
            ),
            (
                LakeSpec {
                    users: 0,
                    ..small_spec()
                },
                "users",
            ),
            (
                LakeSpec {
                    files_per_day: 0,
                    ..small_spec()
                },
                "files_per_day",
            ),
        ] {
            let err = write_lake(&spec, empty.path()).expect_err("invalid");
            assert!(
                matches!(&err, LakeError::InvalidSpec(msg) if msg.starts_with(field)),
                "{err}"
            );
        }
    }

    #[test]
    fn tiny_lakes_still_write_every_row() {
        for (events, days, users) in [(1, 1, 1), (5, 3, 2), (100, 1, 1), (1_000, 2, 3)] {
            let spec = LakeSpec {
                events,
                days,
                users,
                ..small_spec()
            };
            let dir = tempfile::tempdir().expect("tempdir");
            let summary = write_lake(&spec, dir.path()).expect("write");
            assert_eq!(summary.rows, events);
            assert_eq!(read_lake(dir.path()).len() as u64, events);
            assert_eq!(summary.files, days as usize * spec.files_per_day);
        }
    }
}
