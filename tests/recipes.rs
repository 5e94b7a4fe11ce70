//! Runs every metric recipe of `sql/` on the sample lake (`data/sample_lake`), or on the test
//! kit's app lake for the recipes that need reported lengths, and compares its result with a
//! naive reference computed in plain Rust from the lake's rows: the test kit's reference
//! sessionizer, then loops and maps. A recipe without a reference here fails the test, so every
//! file of `sql/` stays covered.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::DateTime;
use chrono_tz::America::New_York;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use sessionlake_testkit::app_lake::write_app_lake;
use sessionlake_testkit::lake::LakeSpec;
use sessionlake_testkit::reference::{self, Event, Mode, Rules};

/// The default options of `docs/semantics.md`: a 30-minute gap, sessions of at most a day.
const GAP_MS: i64 = 30 * 60_000;
const MAX_LENGTH_MS: i64 = 24 * 60 * 60_000;
/// Relative tolerance for floats: the engine and the reference may sum in different orders.
const FLOAT_TOLERANCE: f64 = 1e-9;
/// The upper edge of HIST's open-ended last bin.
const OPEN_END: f64 = f64::INFINITY;
/// The bin edges of `length_distribution.sql`, in seconds: Amplitude's default session-length
/// bins (`HIST(length)`), the last of them HIST's open-ended `[1 day, +inf)`.
const LENGTH_EDGES_S: [f64; 11] = [
    0.0, 3.0, 10.0, 30.0, 60.0, 180.0, 600.0, 1800.0, 3600.0, 86400.0, OPEN_END,
];
/// The event-count bin edges of `events_per_session_distribution.sql`, the last bin open-ended.
const EVENT_COUNT_EDGES: [f64; 11] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 11.0, 21.0, 51.0, 101.0, OPEN_END,
];

/// One value of a result row.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl Cell {
    fn rank(&self) -> u8 {
        match self {
            Cell::Null => 0,
            Cell::Int(_) | Cell::Float(_) => 1,
            Cell::Text(_) => 2,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(v) => Some(*v as f64),
            Cell::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// Integers exactly, floats within [`FLOAT_TOLERANCE`] relative.
    fn matches(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Null, Cell::Null) => true,
            (Cell::Int(a), Cell::Int(b)) => a == b,
            (Cell::Text(a), Cell::Text(b)) => a == b,
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => {
                    a == b || (a - b).abs() <= FLOAT_TOLERANCE * a.abs().max(b.abs())
                }
                _ => false,
            },
        }
    }

    /// A total order for sorting rows; the key columns come first in every recipe.
    fn order(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Text(a), Cell::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => a.total_cmp(&b),
                _ => a.rank().cmp(&b.rank()),
            },
        }
    }
}

fn text(value: &str) -> Cell {
    Cell::Text(value.to_string())
}

fn int(value: usize) -> Cell {
    Cell::Int(value as i64)
}

/// One row of the lake.
#[derive(Debug, Clone)]
struct LakeRow {
    user_id: Option<String>,
    device_id: Option<String>,
    time_ms: i64,
    event_type: String,
    session_id: Option<i64>,
    page: Option<String>,
    country: Option<String>,
    platform: Option<String>,
    plan: Option<String>,
    revenue: Option<f64>,
    is_active: Option<bool>,
    /// The app lake's columns (`sessionlake_testkit::app_lake`); `None` in the sample lake.
    duration_ms: Option<i64>,
    timeout_ms: Option<i64>,
    event_date: Option<String>,
}

/// The contract's order of a user's events (`docs/semantics.md`): time, `event_type`, then the
/// other columns in schema order, NULLs first, strings bytewise, floats by total order.
fn event_order(a: &LakeRow, b: &LakeRow) -> Ordering {
    fn bytes(s: &Option<String>) -> Option<&[u8]> {
        s.as_deref().map(str::as_bytes)
    }
    a.time_ms
        .cmp(&b.time_ms)
        .then_with(|| a.event_type.as_bytes().cmp(b.event_type.as_bytes()))
        .then_with(|| bytes(&a.user_id).cmp(&bytes(&b.user_id)))
        .then_with(|| bytes(&a.device_id).cmp(&bytes(&b.device_id)))
        .then_with(|| a.session_id.cmp(&b.session_id))
        .then_with(|| bytes(&a.page).cmp(&bytes(&b.page)))
        .then_with(|| bytes(&a.country).cmp(&bytes(&b.country)))
        .then_with(|| bytes(&a.platform).cmp(&bytes(&b.platform)))
        .then_with(|| bytes(&a.plan).cmp(&bytes(&b.plan)))
        .then_with(|| match (a.revenue, b.revenue) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        })
        .then_with(|| a.is_active.cmp(&b.is_active))
        .then_with(|| a.duration_ms.cmp(&b.duration_ms))
        .then_with(|| a.timeout_ms.cmp(&b.timeout_ms))
        .then_with(|| bytes(&a.event_date).cmp(&bytes(&b.event_date)))
}

/// One valid session, its rows in the contract's order.
struct Session<'a> {
    user: String,
    rows: Vec<&'a LakeRow>,
}

impl Session<'_> {
    fn start_ms(&self) -> i64 {
        self.rows.first().map(|r| r.time_ms).unwrap_or_default()
    }

    fn length_ms(&self) -> i64 {
        self.rows.last().map(|r| r.time_ms).unwrap_or_default() - self.start_ms()
    }

    /// The session's day: the calendar day of its start in America/New_York.
    fn day(&self) -> String {
        new_york_day(self.start_ms())
    }

    fn first<'r>(&'r self, field: impl Fn(&'r LakeRow) -> Option<&'r String>) -> Option<String> {
        self.rows.iter().find_map(|r| field(r)).cloned()
    }

    fn last<'r>(&'r self, field: impl Fn(&'r LakeRow) -> Option<&'r String>) -> Option<String> {
        self.rows.iter().rev().find_map(|r| field(r)).cloned()
    }

    fn country(&self) -> Option<String> {
        self.first(|r| r.country.as_ref())
    }

    fn platform(&self) -> Option<String> {
        self.first(|r| r.platform.as_ref())
    }

    /// The length the app reported: the largest `duration_ms` of the session's `session_end`
    /// events (`sessionlake.reported_duration = session_end.duration_ms`).
    fn reported_ms(&self) -> Option<i64> {
        self.rows
            .iter()
            .filter(|r| r.event_type == "session_end")
            .filter_map(|r| r.duration_ms)
            .max()
    }

    fn count(&self, event_types: &[&str]) -> usize {
        self.rows
            .iter()
            .filter(|r| event_types.contains(&r.event_type.as_str()))
            .count()
    }
}

fn new_york_day(epoch_ms: i64) -> String {
    let instant = DateTime::from_timestamp_millis(epoch_ms).expect("time in range");
    instant
        .with_timezone(&New_York)
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn group_cell(group: &Option<String>) -> Cell {
    group.as_deref().map_or(Cell::Null, text)
}

/// Sessions by (day, group), with the group a session property.
fn by_day_and<'s, 'a>(
    sessions: &'s [Session<'a>],
    group: impl Fn(&Session<'a>) -> Option<String>,
) -> BTreeMap<(String, Option<String>), Vec<&'s Session<'a>>> {
    let mut groups: BTreeMap<(String, Option<String>), Vec<&Session>> = BTreeMap::new();
    for session in sessions {
        groups
            .entry((session.day(), group(session)))
            .or_default()
            .push(session);
    }
    groups
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn total_length_s(sessions: &[&Session]) -> f64 {
    seconds(sessions.iter().map(|s| s.length_ms()).sum())
}

/// The users with an active event (an event of a valid session) on the event's day, by (day,
/// group), the group being that session's first non-NULL country.
fn active_users<'a>(
    sessions: &'a [Session],
) -> BTreeMap<(String, Option<String>), BTreeSet<&'a str>> {
    let mut active: BTreeMap<(String, Option<String>), BTreeSet<&str>> = BTreeMap::new();
    for session in sessions {
        for row in &session.rows {
            active
                .entry((new_york_day(row.time_ms), session.country()))
                .or_default()
                .insert(&session.user);
        }
    }
    active
}

/// One row per (day, group) and bin `[lo, hi)` of `value(session)`, empty bins included. The
/// recipes leave out HIST's bin below the first edge: no session's value is there.
fn histogram_rows(
    sessions: &[Session],
    edges: &[f64],
    value: impl Fn(&Session) -> f64,
) -> Vec<Vec<Cell>> {
    assert!(
        sessions.iter().all(|s| value(s) >= edges[0]),
        "a session below the first edge {}, which the recipe leaves out",
        edges[0]
    );
    let mut rows = Vec::new();
    for ((day, country), group) in by_day_and(sessions, Session::country) {
        for bin in edges.windows(2) {
            let (lo, hi) = (bin[0], bin[1]);
            let count = group
                .iter()
                .filter(|s| (lo..hi).contains(&value(s)))
                .count();
            rows.push(vec![
                text(&day),
                group_cell(&country),
                Cell::Float(lo),
                Cell::Float(hi),
                int(count),
            ]);
        }
    }
    rows
}

/// Rows of the four bounce recipes: (day, first platform) -> sessions, bounces, rate; a session
/// whose bounce is `None` is left out of the rate (PostHog).
fn bounce_rows(
    sessions: &[Session],
    is_bounce: impl Fn(&Session) -> Option<bool>,
    with_rated: bool,
) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for ((day, platform), group) in by_day_and(sessions, Session::platform) {
        let rated: Vec<bool> = group.iter().filter_map(|s| is_bounce(s)).collect();
        let bounces = rated.iter().filter(|b| **b).count();
        let rate = if rated.is_empty() {
            Cell::Null
        } else {
            Cell::Float(bounces as f64 / rated.len() as f64)
        };
        let mut row = vec![text(&day), group_cell(&platform), int(group.len())];
        if with_rated {
            row.push(int(rated.len()));
        }
        row.extend([int(bounces), rate]);
        rows.push(row);
    }
    rows
}

/// Rows of the entry and exit rates: (day, page) -> sessions with that page, all the day's
/// sessions, their ratio.
fn page_rate_rows(
    sessions: &[Session],
    page: impl Fn(&Session) -> Option<String>,
) -> Vec<Vec<Cell>> {
    let mut daily: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_page: BTreeMap<(String, String), usize> = BTreeMap::new();
    for session in sessions {
        *daily.entry(session.day()).or_default() += 1;
        if let Some(page) = page(session) {
            *by_page.entry((session.day(), page)).or_default() += 1;
        }
    }
    by_page
        .into_iter()
        .map(|((day, page), count)| {
            let total = daily[&day];
            vec![
                text(&day),
                text(&page),
                int(count),
                int(total),
                Cell::Float(count as f64 / total as f64),
            ]
        })
        .collect()
}

/// The reference result of the recipe named `name`, or `None` if there is none.
fn reference_rows(name: &str, sessions: &[Session]) -> Option<Vec<Vec<Cell>>> {
    let per_country = || by_day_and(sessions, Session::country);
    let key = |day: &String, country: &Option<String>| vec![text(day), group_cell(country)];
    let rows = match name {
        "total_sessions" => per_country()
            .iter()
            .map(|((day, country), group)| [key(day, country), vec![int(group.len())]].concat())
            .collect(),
        "time_spent" => per_country()
            .iter()
            .map(|((day, country), group)| {
                let total = Cell::Float(total_length_s(group));
                [key(day, country), vec![int(group.len()), total]].concat()
            })
            .collect(),
        "time_spent_per_user" => {
            // divided by the active users of the day, not by the users who started a session
            let started = per_country();
            active_users(sessions)
                .iter()
                .map(|((day, country), users)| {
                    let total = started
                        .get(&(day.clone(), country.clone()))
                        .map_or(0.0, |group| total_length_s(group));
                    let per_user = Cell::Float(total / users.len() as f64);
                    let values = vec![int(users.len()), Cell::Float(total), per_user];
                    [key(day, country), values].concat()
                })
                .collect()
        }
        "avg_length" | "per_feature_timeouts" => per_country()
            .iter()
            .map(|((day, country), group)| {
                let average = Cell::Float(total_length_s(group) / group.len() as f64);
                [key(day, country), vec![int(group.len()), average]].concat()
            })
            .collect(),
        "length_distribution" => {
            histogram_rows(sessions, &LENGTH_EDGES_S, |s| seconds(s.length_ms()))
        }
        "avg_per_user" => {
            let started = per_country();
            active_users(sessions)
                .iter()
                .map(|((day, country), users)| {
                    let count = started
                        .get(&(day.clone(), country.clone()))
                        .map_or(0, Vec::len);
                    let ratio = Cell::Float(count as f64 / users.len() as f64);
                    [key(day, country), vec![int(count), int(users.len()), ratio]].concat()
                })
                .collect()
        }
        "avg_length_reported" => per_country()
            .iter()
            .map(|((day, country), group)| {
                let measured = Cell::Float(total_length_s(group) / group.len() as f64);
                let reported: Vec<i64> = group.iter().filter_map(|s| s.reported_ms()).collect();
                let average = match reported.len() {
                    0 => Cell::Null,
                    n => Cell::Float(seconds(reported.iter().sum()) / n as f64),
                };
                let values = vec![int(group.len()), measured, int(reported.len()), average];
                [key(day, country), values].concat()
            })
            .collect(),
        "avg_events_per_session" => per_country()
            .iter()
            .map(|((day, country), group)| {
                let events: usize = group.iter().map(|s| s.rows.len()).sum();
                let ratio = Cell::Float(events as f64 / group.len() as f64);
                [
                    key(day, country),
                    vec![int(group.len()), int(events), ratio],
                ]
                .concat()
            })
            .collect(),
        "total_events_across_sessions" => per_country()
            .iter()
            .map(|((day, country), group)| {
                let events: usize = group.iter().map(|s| s.rows.len()).sum();
                [key(day, country), vec![int(events)]].concat()
            })
            .collect(),
        "events_per_session_distribution" => {
            histogram_rows(sessions, &EVENT_COUNT_EDGES, |s| s.rows.len() as f64)
        }
        "bounce_rate" => bounce_rows(sessions, |s| Some(s.count(&["page_view"]) == 1), false),
        "bounce_rate_ga4" => bounce_rows(
            sessions,
            |s| {
                Some(
                    s.length_ms() <= 10_000
                        && s.count(&["purchase"]) == 0
                        && s.count(&["page_view"]) < 2,
                )
            },
            false,
        ),
        "bounce_rate_posthog" => bounce_rows(
            sessions,
            |s| match s.count(&["page_view", "click"]) {
                0 => None,
                n => Some(n <= 1 && s.length_ms() < 10_000),
            },
            true,
        ),
        "bounce_rate_plausible" => bounce_rows(
            sessions,
            |s| Some(s.count(&["page_view"]) == 1 && s.rows.len() == 1),
            false,
        ),
        "session_quality" => {
            let mut rows = Vec::new();
            for ((day, _), group) in by_day_and(sessions, |_| None) {
                let class = |s: &Session| {
                    let length = s.length_ms();
                    if length >= 300_000 && s.count(&["click", "search", "add_to_cart"]) >= 3 {
                        "good"
                    } else if length >= 60_000 {
                        "medium"
                    } else {
                        "poor"
                    }
                };
                for quality in ["good", "medium", "poor"] {
                    let n = group.iter().filter(|s| class(s) == quality).count();
                    if n > 0 {
                        rows.push(vec![
                            text(&day),
                            text(quality),
                            int(n),
                            Cell::Float(n as f64 / group.len() as f64),
                        ]);
                    }
                }
            }
            rows
        }
        "entry_rate_by_page" => page_rate_rows(sessions, |s| s.first(|r| r.page.as_ref())),
        "exit_rate_by_page" => page_rate_rows(sessions, |s| s.last(|r| r.page.as_ref())),
        _ => return None,
    };
    Some(rows)
}

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn recipe_files() -> Vec<PathBuf> {
    let dir = repo_dir().join("sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sql/ is readable")
        .map(|entry| entry.expect("sql/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

fn column_as_utf8(column: &ArrayRef) -> Vec<Option<String>> {
    let strings = cast(column, &DataType::Utf8).expect("castable to Utf8");
    strings
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn column_as_i64(column: &ArrayRef) -> Vec<Option<i64>> {
    let values = cast(column, &DataType::Int64).expect("castable to Int64");
    values.as_primitive::<Int64Type>().iter().collect()
}

fn column_as_f64(column: &ArrayRef) -> Vec<Option<f64>> {
    let values = cast(column, &DataType::Float64).expect("castable to Float64");
    values.as_primitive::<Float64Type>().iter().collect()
}

/// Every row of the lake, read through DataFusion (only the reading; no SQL logic).
async fn read_lake(ctx: &SessionContext) -> Vec<LakeRow> {
    let table = ctx.table("events").await.expect("events is registered");
    let app_column = |name: &str| match table.schema().has_column_with_unqualified_name(name) {
        true => name.to_string(),
        false => format!("CAST(NULL AS BIGINT) AS {name}"),
    };
    let batches = ctx
        .sql(&format!(
            "SELECT user_id, device_id, CAST(event_time AS BIGINT) AS time_ms, event_type, \
             session_id, page, country, platform, plan, revenue, is_active, {}, {}, event_date \
             FROM events",
            app_column("duration_ms"),
            app_column("timeout_ms"),
        ))
        .await
        .expect("lake query plans")
        .collect()
        .await
        .expect("lake query runs");
    let mut rows = Vec::new();
    for batch in &batches {
        let column = |name: &str| batch.column_by_name(name).expect("column").clone();
        let user_id = column_as_utf8(&column("user_id"));
        let device_id = column_as_utf8(&column("device_id"));
        let time_ms = column_as_i64(&column("time_ms"));
        let event_type = column_as_utf8(&column("event_type"));
        let session_id = column_as_i64(&column("session_id"));
        let page = column_as_utf8(&column("page"));
        let country = column_as_utf8(&column("country"));
        let platform = column_as_utf8(&column("platform"));
        let plan = column_as_utf8(&column("plan"));
        let revenue = column_as_f64(&column("revenue"));
        let is_active = column("is_active").as_boolean().iter().collect::<Vec<_>>();
        let duration_ms = column_as_i64(&column("duration_ms"));
        let timeout_ms = column_as_i64(&column("timeout_ms"));
        let event_date = column_as_utf8(&column("event_date"));
        for i in 0..batch.num_rows() {
            rows.push(LakeRow {
                user_id: user_id[i].clone(),
                device_id: device_id[i].clone(),
                time_ms: time_ms[i].expect("event_time is never NULL in the lake"),
                event_type: event_type[i].clone().unwrap_or_default(),
                session_id: session_id[i],
                page: page[i].clone(),
                country: country[i].clone(),
                platform: platform[i].clone(),
                plan: plan[i].clone(),
                revenue: revenue[i],
                is_active: is_active[i],
                duration_ms: duration_ms[i],
                timeout_ms: timeout_ms[i],
                event_date: event_date[i].clone(),
            });
        }
    }
    rows
}

/// The valid sessions of the lake under the default options (gap 30 minutes, max length one
/// day), assigned by the test kit's naive reference, each with its rows in the contract's order.
/// The sessions of `rows` under the recipes' rules, each event's timeout being `timeout(row)`
/// in milliseconds (`None`: the 30-minute gap).
fn reference_sessions(
    rows: &[LakeRow],
    timeout: impl Fn(&LakeRow) -> Option<i64>,
) -> Vec<Session<'_>> {
    let events: Vec<Event> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| Event {
            row_id: i as i64,
            user: row.user_id.clone(),
            time: Some(row.time_ms),
            event_type: row.event_type.clone(),
            session_id: row.session_id,
            page: row.page.clone(),
            is_active: row.is_active,
        })
        .collect();
    let rules = Rules {
        mode: Mode::Gap,
        gap_ms: GAP_MS,
        max_length_ms: Some(MAX_LENGTH_MS),
        inactive_event_types: vec![],
        event_gaps_ms: rows
            .iter()
            .enumerate()
            .filter_map(|(i, row)| timeout(row).map(|ms| (i as i64, ms)))
            .collect(),
        reported: None,
        counted: Vec::new(),
    };
    let mut by_key: HashMap<(String, i64), Vec<&LakeRow>> = HashMap::new();
    for (row_id, assigned) in reference::sessionize(&events, &rules) {
        if let Some(key) = assigned.session_key {
            let row = &rows[row_id as usize];
            let user = row.user_id.clone().expect("a session's user is not NULL");
            by_key.entry((user, key)).or_default().push(row);
        }
    }
    by_key
        .into_iter()
        .map(|((user, _), mut rows)| {
            rows.sort_by(|a, b| event_order(a, b));
            Session { user, rows }
        })
        .collect()
}

/// The result rows of a query, each value as a [`Cell`].
fn result_rows(batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<Vec<Cell>> = batch
            .columns()
            .iter()
            .map(|column| match column.data_type() {
                DataType::Null => vec![Cell::Null; column.len()],
                t if t.is_integer() => column_as_i64(column)
                    .into_iter()
                    .map(|v| v.map_or(Cell::Null, Cell::Int))
                    .collect(),
                t if t.is_floating() => column_as_f64(column)
                    .into_iter()
                    .map(|v| v.map_or(Cell::Null, Cell::Float))
                    .collect(),
                _ => column_as_utf8(column)
                    .into_iter()
                    .map(|v| v.map_or(Cell::Null, Cell::Text))
                    .collect(),
            })
            .collect();
        for i in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[i].clone()).collect());
        }
    }
    rows
}

fn sort_rows(rows: &mut [Vec<Cell>]) {
    rows.sort_by(|a, b| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.order(y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
}

/// The first row (after the first) that comes before the row above it in the recipes' order:
/// every recipe orders by its leading columns, ascending, NULLs last (SQL's default).
fn out_of_order(rows: &[Vec<Cell>]) -> Option<usize> {
    let nulls_last = |a: &Cell, b: &Cell| match (a, b) {
        (Cell::Null, Cell::Null) => Ordering::Equal,
        (Cell::Null, _) => Ordering::Greater,
        (_, Cell::Null) => Ordering::Less,
        (a, b) => a.order(b),
    };
    (1..rows.len()).find(|&i| {
        let order = rows[i - 1]
            .iter()
            .zip(&rows[i])
            .map(|(a, b)| nulls_last(a, b))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal);
        order.is_gt()
    })
}

/// The first difference between the recipe's rows and the reference's, if any.
fn compare(mut actual: Vec<Vec<Cell>>, mut expected: Vec<Vec<Cell>>) -> Result<(), String> {
    sort_rows(&mut actual);
    sort_rows(&mut expected);
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        let same = a.len() == e.len() && a.iter().zip(e).all(|(x, y)| x.matches(y));
        if !same {
            return Err(format!("row {i}: recipe gave {a:?}, reference {e:?}"));
        }
    }
    if actual.len() != expected.len() {
        return Err(format!(
            "recipe gave {} rows, reference {}",
            actual.len(),
            expected.len()
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipe_matches_the_naive_reference() {
    let lake = repo_dir().join("data/sample_lake");
    assert!(
        lake.is_dir(),
        "{} is missing: generate it with sessionlake-gen (see data/README.md)",
        lake.display()
    );
    let ctx = lake_context(&lake).await;
    let rows = read_lake(&ctx).await;
    assert!(!rows.is_empty(), "the sample lake has no rows");
    let sessions = reference_sessions(&rows, |_| None);
    // the recipes on reported lengths read the test kit's app lake (the sample lake's kind of
    // events, with session_end events carrying duration_ms)
    let app_dir = tempfile::tempdir().expect("temp dir");
    let app_spec = LakeSpec {
        events: 20_000,
        users: 500,
        ..LakeSpec::default()
    };
    write_app_lake(&app_spec, app_dir.path()).expect("app lake");
    let app_ctx = lake_context(app_dir.path()).await;
    let app_rows = read_lake(&app_ctx).await;
    let app_sessions = reference_sessions(&app_rows, |_| None);
    assert!(
        app_sessions
            .iter()
            .filter(|s| s.reported_ms().is_some())
            .count()
            > 100,
        "the app lake has too few reported lengths"
    );
    // per_feature_timeouts.sql: 30 minutes after a web event, 5 after any other
    let platform_sessions = reference_sessions(&rows, |row| {
        Some(match row.platform.as_deref() {
            Some("web") => 30 * 60_000,
            _ => 5 * 60_000,
        })
    });

    let files = recipe_files();
    assert!(!files.is_empty(), "sql/ has no recipe");
    let mut failures = Vec::new();
    for path in &files {
        let name = recipe_name(path);
        let (recipe_ctx, recipe_sessions) = match name.as_str() {
            "per_feature_timeouts" => (&ctx, &platform_sessions),
            "avg_length_reported" => (&app_ctx, &app_sessions),
            _ => (&ctx, &sessions),
        };
        let Some(expected) = reference_rows(&name, recipe_sessions) else {
            failures.push(format!(
                "sql/{name}.sql has no reference in tests/recipes.rs: add one"
            ));
            continue;
        };
        let sql = std::fs::read_to_string(path).expect("recipe is readable");
        let batches = run_recipe(recipe_ctx, &sql).await;
        match batches {
            Ok(batches) => {
                let actual = result_rows(&batches);
                if actual.is_empty() {
                    failures.push(format!("sql/{name}.sql: no rows"));
                } else if let Some(row) = out_of_order(&actual) {
                    failures.push(format!(
                        "sql/{name}.sql: row {row} comes after a row its ORDER BY puts later: \
                         {:?} then {:?}",
                        actual[row - 1],
                        actual[row]
                    ));
                } else if let Err(difference) = compare(actual, expected) {
                    failures.push(format!("sql/{name}.sql: {difference}"));
                }
            }
            Err(e) => failures.push(format!("sql/{name}.sql failed: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A context with the lake at `dir` registered as `events`.
async fn lake_context(dir: &Path) -> SessionContext {
    let ctx = sessionlake_engine::new_context().expect("context");
    let location = format!("{}/", dir.display());
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{location}'"
    ))
    .await
    .expect("lake registers")
    .collect()
    .await
    .expect("lake registers");
    ctx
}

/// Runs a recipe's statements in order (a recipe may first create the view it reads) and
/// returns the last one's result.
async fn run_recipe(
    ctx: &SessionContext,
    sql: &str,
) -> datafusion::common::Result<Vec<RecordBatch>> {
    let mut result = Vec::new();
    for statement in DFParser::parse_sql(sql)? {
        let plan = ctx.state().statement_to_plan(statement).await?;
        result = ctx.execute_logical_plan(plan).await?.collect().await?;
    }
    Ok(result)
}

fn recipe_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
