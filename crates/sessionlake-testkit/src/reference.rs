//! A naive, independent reference implementation of the session semantics of
//! `docs/semantics.md`: plain structs, sorts and loops, written for obviousness rather than
//! speed, so that the engine can be tested against it on random data.
//!
//! Every time here is in epoch milliseconds. The events have the fixed schema of
//! [`crate::random_events`]: `(user_id, event_time, event_type, session_id, page, is_active,
//! row_id)`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One event of the fixed test schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// Unique per event set: how the engine's rows are matched with the reference's.
    pub row_id: i64,
    pub user: Option<String>,
    /// Epoch milliseconds.
    pub time: Option<i64>,
    pub event_type: String,
    pub session_id: Option<i64>,
    pub page: Option<String>,
    pub is_active: Option<bool>,
}

/// How sessions are formed (`sessionlake.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Gap,
    Instrumented,
    InstrumentedGap,
}

impl Mode {
    /// Every mode, for picking one at random.
    pub const ALL: [Mode; 3] = [Mode::Gap, Mode::Instrumented, Mode::InstrumentedGap];

    /// The option value naming the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Gap => "gap",
            Mode::Instrumented => "instrumented",
            Mode::InstrumentedGap => "instrumented_gap",
        }
    }

    fn is_instrumented(self) -> bool {
        self != Mode::Gap
    }
}

/// The session rules, with spans in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rules {
    pub mode: Mode,
    /// Inactivity timeout, positive.
    pub gap_ms: i64,
    /// Longest kept session; `None` keeps every session.
    pub max_length_ms: Option<i64>,
    pub inactive_event_types: Vec<String>,
    /// Per-event timeouts (`sessionlake.gap_column`) by `row_id`, in milliseconds; an event not
    /// listed (NULL in the column) has `gap_ms`.
    pub event_gaps_ms: BTreeMap<i64, i64>,
    /// `sessionlake.reported_duration`: the event type carrying a reported duration, and the
    /// non-NULL durations in milliseconds by `row_id`.
    pub reported: Option<(String, BTreeMap<i64, i64>)>,
    /// `sessionlake.count_event_types`: the event types counted per session.
    pub counted: Vec<String>,
}

/// The five session columns `sessionize` appends to one event; all `None` for an event in no
/// valid session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventSession {
    pub session_key: Option<i64>,
    pub session_start: Option<i64>,
    pub session_end: Option<i64>,
    pub session_index: Option<i64>,
    pub event_index: Option<i64>,
}

/// One row of `sessions(...)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionRow {
    pub user: String,
    pub session_key: i64,
    pub session_start: i64,
    pub session_end: i64,
    pub duration_ms: i64,
    pub event_count: i64,
    pub first_event_type: String,
    pub last_event_type: String,
    /// With `sessionlake.reported_duration`: the largest reported duration, if any.
    pub reported_duration_ms: Option<i64>,
    /// With `sessionlake.count_event_types`: the session's events of each counted type.
    pub counts: Vec<i64>,
}

/// A session while it is being built: its events in session order.
struct Session<'a> {
    /// The session id the session came from (instrumented modes); orders sessions that tie on
    /// start and key.
    session_id: Option<i64>,
    key: i64,
    events: Vec<&'a Event>,
}

impl Session<'_> {
    fn start(&self) -> i64 {
        self.events.first().and_then(|e| e.time).unwrap_or_default()
    }

    fn end(&self) -> i64 {
        self.events.last().and_then(|e| e.time).unwrap_or_default()
    }
}

/// Whether `event` takes part in a session under `rules`.
pub fn is_active(event: &Event, rules: &Rules) -> bool {
    if event.user.is_none() || event.time.is_none() {
        return false;
    }
    if event.is_active == Some(false) {
        return false;
    }
    if rules.inactive_event_types.contains(&event.event_type) {
        return false;
    }
    if rules.mode.is_instrumented() && matches!(event.session_id, None | Some(-1)) {
        return false;
    }
    true
}

/// The order of one user's active events: time, then `event_type`, then the other columns in
/// schema order (`session_id`, `page`, `is_active`, `row_id`), ascending, NULLs first.
///
/// In the instrumented modes the events compared always share a session id, so comparing it is
/// harmless there too.
pub fn event_order(a: &Event, b: &Event) -> Ordering {
    a.time
        .cmp(&b.time)
        .then_with(|| a.event_type.as_bytes().cmp(b.event_type.as_bytes()))
        .then_with(|| a.session_id.cmp(&b.session_id))
        .then_with(|| {
            let a_page = a.page.as_deref().map(str::as_bytes);
            let b_page = b.page.as_deref().map(str::as_bytes);
            a_page.cmp(&b_page)
        })
        .then_with(|| a.is_active.cmp(&b.is_active))
        .then_with(|| a.row_id.cmp(&b.row_id))
}

/// The valid sessions of every user, each user's in `session_index` order.
fn valid_sessions<'a>(events: &'a [Event], rules: &Rules) -> BTreeMap<String, Vec<Session<'a>>> {
    // user -> stream of events that may form sessions together (one stream per session id in
    // the instrumented modes, one per user in gap mode)
    let mut streams: BTreeMap<(String, Option<i64>), Vec<&Event>> = BTreeMap::new();
    for event in events.iter().filter(|e| is_active(e, rules)) {
        let user = event.user.clone().unwrap_or_default();
        let stream = if rules.mode.is_instrumented() {
            event.session_id
        } else {
            None
        };
        streams.entry((user, stream)).or_default().push(event);
    }

    let mut by_user: BTreeMap<String, Vec<Session<'a>>> = BTreeMap::new();
    for ((user, session_id), mut stream) in streams {
        stream.sort_by(|a, b| event_order(a, b));
        let mut parts: Vec<Vec<&Event>> = Vec::new();
        // the previous event's time and the timeout after it
        let mut previous: Option<(i64, i64)> = None;
        for event in stream {
            let time = event.time.unwrap_or_default();
            let split = match previous {
                None => true,
                Some((previous_time, timeout)) => {
                    rules.mode != Mode::Instrumented && time - previous_time > timeout
                }
            };
            if split {
                parts.push(Vec::new());
            }
            if let Some(part) = parts.last_mut() {
                part.push(event);
            }
            let timeout = rules
                .event_gaps_ms
                .get(&event.row_id)
                .copied()
                .unwrap_or(rules.gap_ms);
            previous = Some((time, timeout));
        }
        let sessions = by_user.entry(user).or_default();
        for part in parts {
            let mut session = Session {
                session_id,
                key: 0,
                events: part,
            };
            session.key = match rules.mode {
                Mode::Instrumented => session_id.unwrap_or_default(),
                Mode::Gap | Mode::InstrumentedGap => session.start(),
            };
            let duration = session.end() - session.start();
            if rules.max_length_ms.is_none_or(|max| duration <= max) {
                sessions.push(session);
            }
        }
    }
    for sessions in by_user.values_mut() {
        // The contract orders by start then key. Two instrumented_gap sessions of one user can
        // share both (different session ids, same start); end, then session id, settle those.
        sessions.sort_by(|a, b| {
            (a.start(), a.key, a.end(), a.session_id).cmp(&(
                b.start(),
                b.key,
                b.end(),
                b.session_id,
            ))
        });
    }
    by_user
}

/// The session columns of every event, by `row_id`.
pub fn sessionize(events: &[Event], rules: &Rules) -> BTreeMap<i64, EventSession> {
    let mut result: BTreeMap<i64, EventSession> = events
        .iter()
        .map(|e| (e.row_id, EventSession::default()))
        .collect();
    for sessions in valid_sessions(events, rules).values() {
        for (session_number, session) in sessions.iter().enumerate() {
            for (event_number, event) in session.events.iter().enumerate() {
                result.insert(
                    event.row_id,
                    EventSession {
                        session_key: Some(session.key),
                        session_start: Some(session.start()),
                        session_end: Some(session.end()),
                        session_index: Some(session_number as i64 + 1),
                        event_index: Some(event_number as i64 + 1),
                    },
                );
            }
        }
    }
    result
}

/// The rows of `sessions(...)`, sorted.
pub fn sessions(events: &[Event], rules: &Rules) -> Vec<SessionRow> {
    let mut rows = Vec::new();
    for (user, sessions) in valid_sessions(events, rules) {
        for session in sessions {
            let first_event_type = session
                .events
                .first()
                .map(|e| e.event_type.clone())
                .unwrap_or_default();
            let last_event_type = session
                .events
                .last()
                .map(|e| e.event_type.clone())
                .unwrap_or_default();
            rows.push(SessionRow {
                user: user.clone(),
                session_key: session.key,
                session_start: session.start(),
                session_end: session.end(),
                duration_ms: session.end() - session.start(),
                event_count: session.events.len() as i64,
                first_event_type,
                last_event_type,
                reported_duration_ms: rules.reported.as_ref().and_then(|(event_type, values)| {
                    session
                        .events
                        .iter()
                        .filter(|e| &e.event_type == event_type)
                        .filter_map(|e| values.get(&e.row_id).copied())
                        .max()
                }),
                counts: rules
                    .counted
                    .iter()
                    .map(|t| session.events.iter().filter(|e| &e.event_type == t).count() as i64)
                    .collect(),
            });
        }
    }
    rows.sort();
    rows
}

/// The window function `sessionize(time, gap) OVER (PARTITION BY user ORDER BY time)`, by
/// `row_id`: every row takes part (no activity or length rule), NULL users form one partition,
/// rows with a NULL time get `None`. `gap_ms` gives each row's own gap: a session stays open
/// until the previous row's time plus the previous row's gap.
///
/// Rows tied on time are taken in `row_id` order; callers must make tied rows share a gap, for
/// the SQL order among them is arbitrary.
pub fn window_sessionize(
    events: &[Event],
    gap_ms: impl Fn(&Event) -> i64,
) -> BTreeMap<i64, Option<i64>> {
    let mut result: BTreeMap<i64, Option<i64>> = events.iter().map(|e| (e.row_id, None)).collect();
    let mut partitions: BTreeMap<Option<String>, Vec<&Event>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.time.is_some()) {
        partitions
            .entry(event.user.clone())
            .or_default()
            .push(event);
    }
    for mut rows in partitions.into_values() {
        rows.sort_by_key(|e| (e.time, e.row_id));
        let mut key = 0;
        let mut open_until: Option<i64> = None;
        for event in rows {
            let time = event.time.unwrap_or_default();
            if open_until.is_none_or(|until| time > until) {
                key = time;
            }
            open_until = Some(time + gap_ms(event));
            result.insert(event.row_id, Some(key));
        }
    }
    result
}

/// The session id a string session id stands for (`docs/semantics.md`): none for NULL, `''`,
/// `'none'` and `'-1'`; otherwise the 64-bit FNV-1a hash of the id's bytes, as a signed integer.
pub fn string_session_id(id: Option<&str>) -> Option<i64> {
    let id = id.filter(|id| !matches!(*id, "" | "none" | "-1"))?;
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    Some(i64::from_ne_bytes(hash.to_ne_bytes()))
}

/// Identity stitching (`sessionlake.anonymous_column`): `events` with each event's user as the
/// stitching rule gives it, from the device of each event (`devices`, by `row_id`; an event not
/// listed has a NULL device).
///
/// A device is identified as the user of its earliest event (by time; events with a NULL time
/// do not count) that has a user, the smallest user id winning a tie on one instant. An event
/// with a NULL user takes its device's user, or `anonymous:<device>` when the device is never
/// identified; without a device it keeps its NULL user.
pub fn stitch_users(events: &[Event], devices: &BTreeMap<i64, String>) -> Vec<Event> {
    let mut identified: BTreeMap<&str, (i64, &str)> = BTreeMap::new();
    for event in events {
        let (Some(user), Some(time), Some(device)) =
            (&event.user, event.time, devices.get(&event.row_id))
        else {
            continue;
        };
        let candidate = (time, user.as_str());
        identified
            .entry(device.as_str())
            .and_modify(|best| *best = (*best).min(candidate))
            .or_insert(candidate);
    }
    events
        .iter()
        .map(|event| {
            let mut event = event.clone();
            if event.user.is_none()
                && let Some(device) = devices.get(&event.row_id)
            {
                event.user = Some(match identified.get(device.as_str()) {
                    Some((_, user)) => user.to_string(),
                    None => format!("anonymous:{device}"),
                });
            }
            event
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn event(row_id: i64, user: &str, minute: i64, event_type: &str) -> Event {
        Event {
            row_id,
            user: Some(user.to_string()),
            time: Some(minute * MINUTE),
            event_type: event_type.to_string(),
            session_id: Some(1),
            page: None,
            is_active: None,
        }
    }

    fn gap_rules(max_length_ms: Option<i64>) -> Rules {
        Rules {
            mode: Mode::Gap,
            gap_ms: 30 * MINUTE,
            max_length_ms,
            inactive_event_types: vec![],
            event_gaps_ms: BTreeMap::new(),
            reported: None,
            counted: Vec::new(),
        }
    }

    #[test]
    fn exact_gap_stays_and_longer_gap_splits() {
        let events = vec![
            event(0, "a", 0, "x"),
            event(1, "a", 30, "x"),
            event(2, "a", 61, "x"),
        ];
        let result = sessionize(&events, &gap_rules(None));
        assert_eq!(result[&0].session_key, Some(0));
        assert_eq!(result[&1].session_key, Some(0));
        assert_eq!(result[&1].event_index, Some(2));
        assert_eq!(result[&2].session_key, Some(61 * MINUTE));
        assert_eq!(result[&2].session_index, Some(2));
    }

    #[test]
    fn long_sessions_are_excluded_and_not_counted() {
        let events = vec![
            event(0, "a", 0, "x"),
            event(1, "a", 20, "x"),
            event(2, "a", 100, "x"),
        ];
        let result = sessionize(&events, &gap_rules(Some(10 * MINUTE)));
        assert_eq!(result[&0], EventSession::default());
        assert_eq!(result[&2].session_index, Some(1));
        assert_eq!(sessions(&events, &gap_rules(Some(20 * MINUTE))).len(), 2);
    }

    #[test]
    fn ties_order_by_event_type_then_row() {
        let events = vec![event(0, "a", 5, "zeta"), event(1, "a", 5, "alpha")];
        let result = sessionize(&events, &gap_rules(None));
        assert_eq!(result[&1].event_index, Some(1));
        assert_eq!(result[&0].event_index, Some(2));
        let rows = sessions(&events, &gap_rules(None));
        assert_eq!(rows[0].first_event_type, "alpha");
        assert_eq!(rows[0].last_event_type, "zeta");
    }

    #[test]
    fn instrumented_sessions_follow_session_ids() {
        let mut events = vec![
            event(0, "a", 0, "x"),
            event(1, "a", 100, "x"),
            event(2, "a", 50, "x"),
            event(3, "a", 60, "x"),
        ];
        events[2].session_id = Some(7);
        events[3].session_id = Some(-1);
        let rules = Rules {
            mode: Mode::Instrumented,
            ..gap_rules(None)
        };
        let result = sessionize(&events, &rules);
        assert_eq!(result[&0].session_key, Some(1));
        assert_eq!(result[&1].session_key, Some(1));
        assert_eq!(result[&0].session_index, Some(1));
        assert_eq!(result[&2].session_index, Some(2));
        assert_eq!(result[&3], EventSession::default());
        let split = sessionize(
            &events,
            &Rules {
                mode: Mode::InstrumentedGap,
                ..rules
            },
        );
        assert_eq!(split[&1].session_key, Some(100 * MINUTE));
        assert_eq!(split[&1].session_index, Some(3));
    }

    #[test]
    fn window_gap_is_the_previous_rows() {
        let events = vec![
            event(0, "a", 0, "long"),
            event(1, "a", 40, "short"),
            event(2, "a", 50, "long"),
        ];
        let gap = |e: &Event| {
            if e.event_type == "long" {
                45 * MINUTE
            } else {
                5 * MINUTE
            }
        };
        let keys = window_sessionize(&events, gap);
        assert_eq!(keys[&1], Some(0));
        assert_eq!(keys[&2], Some(50 * MINUTE));
    }

    #[test]
    fn string_session_ids_follow_the_fnv_1a_test_vectors() {
        // published FNV-1a 64-bit values
        let hash = |text: &str| string_session_id(Some(text)).map(|h| h as u64);
        assert_eq!(hash("a"), Some(0xaf63_dc4c_8601_ec8c));
        assert_eq!(hash("foobar"), Some(0x8594_4171_f739_67e8));
        for invalid in [None, Some(""), Some("none"), Some("-1")] {
            assert_eq!(string_session_id(invalid), None, "{invalid:?}");
        }
        assert!(string_session_id(Some("None")).is_some());
    }

    #[test]
    fn each_event_keeps_its_session_open_for_its_own_timeout() {
        // minutes 0, 10, 25, 60 under a 30-minute gap
        let events = vec![
            event(0, "a", 0, "x"),
            event(1, "a", 10, "x"),
            event(2, "a", 25, "x"),
            event(3, "a", 60, "x"),
        ];
        let mut rules = gap_rules(None);
        // 5 minutes after minute 0: minute 10 starts a session; 15 after minute 10: minute 25,
        // exactly at the end, stays; NULL after minute 25: the 30-minute gap, so 60 splits
        rules.event_gaps_ms = BTreeMap::from([(0, 5 * 60_000), (1, 15 * 60_000)]);
        let keys: Vec<Option<i64>> = (0..4)
            .map(|i| sessionize(&events, &rules)[&i].session_key)
            .collect();
        let minute = |m: i64| Some(m * 60_000);
        assert_eq!(keys, vec![minute(0), minute(10), minute(10), minute(60)]);
    }
}
