//! Small seeded random event sets for differential tests, and their conversion to Arrow
//! record batches in every physical encoding the engine must accept.
//!
//! The sets are built to hit edge cases often: times on a coarse grid (so ties and differences
//! of exactly the gap are common), NULL users and times, inactive events, session ids that are
//! NULL, `-1` or reused long after, and a few event types of which some may be listed inactive.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, Int64Array, RecordBatch, StringArray, StringViewArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use datafusion::common::{Result, exec_err};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use crate::reference::Event;

/// The first event time of a set: 2023-11-14T22:13:20Z, a whole second.
pub const BASE_TIME_MS: i64 = 1_700_000_000_000;

const MINUTE_MS: i64 = 60_000;

/// The event types drawn from; `sync` and `app_background` are the ones tests list as inactive.
/// `Zoom` sorts before `app_background` bytewise.
pub const EVENT_TYPES: [&str; 6] = [
    "page_view",
    "click",
    "purchase",
    "app_background",
    "sync",
    "Zoom",
];

/// The pages drawn from (besides NULL); `/é` checks bytewise ordering beyond ASCII.
const PAGES: [&str; 4] = ["/home", "/cart", "/é", "/Home"];

/// What a random set looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSetShape {
    /// At most this many events (at least zero).
    pub max_events: usize,
    /// At most this many distinct non-NULL users (at least one).
    pub max_users: usize,
    /// Whether two events of one user may share a time.
    pub allow_ties: bool,
}

impl Default for EventSetShape {
    fn default() -> Self {
        Self {
            max_events: 60,
            max_users: 6,
            allow_ties: true,
        }
    }
}

/// A random event set of `shape`. `row_id`s are a shuffled, gappy sequence, and the events come
/// in random order, so neither input order nor `row_id` follows time.
pub fn random_events(rng: &mut impl Rng, shape: &EventSetShape) -> Vec<Event> {
    let event_count = rng.random_range(0..=shape.max_events);
    let user_count = rng.random_range(1..=shape.max_users.max(1));
    // each user walks forward in time from a start of their own
    let mut clocks: Vec<i64> = (0..user_count)
        .map(|_| BASE_TIME_MS + rng.random_range(0..24) * 5 * MINUTE_MS)
        .collect();
    let mut current_ids: Vec<i64> = (0..user_count).map(|u| u as i64 * 10 + 1).collect();
    let mut used_ids: Vec<Vec<i64>> = current_ids.iter().map(|&id| vec![id]).collect();

    let mut events = Vec::with_capacity(event_count);
    for _ in 0..event_count {
        let user_number = rng.random_range(0..user_count);
        let user = if rng.random_bool(0.05) {
            None
        } else {
            Some(format!("u{}", user_number + 1))
        };

        let step = time_step(rng, shape.allow_ties);
        clocks[user_number] += step;
        let time = if rng.random_bool(0.05) {
            None
        } else {
            Some(clocks[user_number])
        };

        let session_id = match rng.random_range(0..100) {
            0..70 => Some(current_ids[user_number]),
            70..82 => {
                let fresh = current_ids[user_number] + 1;
                current_ids[user_number] = fresh;
                used_ids[user_number].push(fresh);
                Some(fresh)
            }
            // a stale id, reused after others
            82..88 => used_ids[user_number].choose(rng).copied(),
            // another user's id: ids are per user, so this must not join their sessions
            88..92 => Some(rng.random_range(1..=user_count as i64) * 10 + 1),
            92..96 => Some(-1),
            _ => None,
        };

        let is_active = match rng.random_range(0..10) {
            0 => Some(false),
            1 => None,
            _ => Some(true),
        };
        let event_type = EVENT_TYPES
            .choose(rng)
            .copied()
            .unwrap_or("page_view")
            .to_string();
        let page = if rng.random_bool(0.2) {
            None
        } else {
            PAGES.choose(rng).map(|p| p.to_string())
        };
        events.push(Event {
            row_id: 0,
            user,
            time,
            event_type,
            session_id,
            page,
            is_active,
        });
    }
    events.shuffle(rng);
    let mut row_ids: Vec<i64> = (0..events.len() as i64).map(|i| i * 7 + 3).collect();
    row_ids.shuffle(rng);
    for (event, row_id) in events.iter_mut().zip(row_ids) {
        event.row_id = row_id;
    }
    if !shape.allow_ties {
        remove_ties(&mut events);
    }
    events
}

/// How far a user's clock moves before their next event: often exactly 30 minutes, often zero
/// (a tie), sometimes one second either side of 30 minutes, sometimes hours.
fn time_step(rng: &mut impl Rng, allow_ties: bool) -> i64 {
    let step = match rng.random_range(0..20) {
        0..4 => 0,
        4..8 => 5 * MINUTE_MS,
        8..10 => 10 * MINUTE_MS,
        10..13 => 30 * MINUTE_MS,
        13 => 30 * MINUTE_MS - 1_000,
        14 => 30 * MINUTE_MS + 1_000,
        15 => 25 * MINUTE_MS,
        16 => 60 * MINUTE_MS,
        17 => 65 * MINUTE_MS,
        18 => 3 * 60 * MINUTE_MS,
        _ => rng.random_range(0..48) * 5 * MINUTE_MS,
    };
    if step == 0 && !allow_ties {
        5 * MINUTE_MS
    } else {
        step
    }
}

/// Moves events so that no two with the same user (NULL users included) share a time.
fn remove_ties(events: &mut [Event]) {
    let mut seen = std::collections::BTreeSet::new();
    for event in events.iter_mut() {
        if let Some(mut time) = event.time {
            while !seen.insert((event.user.clone(), time)) {
                time += 1_000;
            }
            event.time = Some(time);
        }
    }
}

/// The physical encoding of the string columns (`user_id` unless [`UserEncoding::Int64`],
/// `event_type`, `page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringEncoding {
    Utf8,
    Utf8View,
    /// `Dictionary(Int32, Utf8)`.
    Dictionary,
}

/// How users are identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserEncoding {
    /// As strings `u1`, `u2`, ... in the [`StringEncoding`].
    String,
    /// As `Int64`: `u7` becomes 7.
    Int64,
}

/// The physical encoding of a whole batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchEncoding {
    pub strings: StringEncoding,
    pub user: UserEncoding,
    pub time_unit: TimeUnit,
    pub time_zone: Option<Arc<str>>,
}

impl Default for BatchEncoding {
    /// Plain `Utf8` strings and `Timestamp(Millisecond, None)`.
    fn default() -> Self {
        Self {
            strings: StringEncoding::Utf8,
            user: UserEncoding::String,
            time_unit: TimeUnit::Millisecond,
            time_zone: None,
        }
    }
}

/// The integer user id of a `u<N>` user name.
pub fn user_number(user: &str) -> Option<i64> {
    user.strip_prefix('u').and_then(|n| n.parse().ok())
}

fn string_array(values: Vec<Option<&str>>, encoding: StringEncoding) -> ArrayRef {
    match encoding {
        StringEncoding::Utf8 => Arc::new(StringArray::from(values)),
        StringEncoding::Utf8View => Arc::new(StringViewArray::from(values)),
        StringEncoding::Dictionary => {
            Arc::new(values.into_iter().collect::<DictionaryArray<Int32Type>>())
        }
    }
}

fn string_type(encoding: StringEncoding) -> DataType {
    match encoding {
        StringEncoding::Utf8 => DataType::Utf8,
        StringEncoding::Utf8View => DataType::Utf8View,
        StringEncoding::Dictionary => {
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        }
    }
}

/// The schema of [`to_record_batch`]'s batches:
/// `(user_id, event_time, event_type, session_id, page, is_active, row_id)`.
pub fn event_schema(encoding: &BatchEncoding) -> SchemaRef {
    let user_type = match encoding.user {
        UserEncoding::String => string_type(encoding.strings),
        UserEncoding::Int64 => DataType::Int64,
    };
    Arc::new(Schema::new(vec![
        Field::new("user_id", user_type, true),
        Field::new(
            "event_time",
            DataType::Timestamp(encoding.time_unit, encoding.time_zone.clone()),
            true,
        ),
        Field::new("event_type", string_type(encoding.strings), false),
        Field::new("session_id", DataType::Int64, true),
        Field::new("page", string_type(encoding.strings), true),
        Field::new("is_active", DataType::Boolean, true),
        Field::new("row_id", DataType::Int64, false),
    ]))
}

/// `events` as one record batch of [`event_schema`], in their order.
///
/// Fails if a time cannot be represented exactly in the encoding's unit, or a user is not of
/// the form `u<N>` under [`UserEncoding::Int64`].
pub fn to_record_batch(events: &[Event], encoding: &BatchEncoding) -> Result<RecordBatch> {
    let users: ArrayRef = match encoding.user {
        UserEncoding::String => string_array(
            events.iter().map(|e| e.user.as_deref()).collect(),
            encoding.strings,
        ),
        UserEncoding::Int64 => {
            let mut ids = Vec::with_capacity(events.len());
            for event in events {
                match event.user.as_deref().map(user_number) {
                    None => ids.push(None),
                    Some(Some(id)) => ids.push(Some(id)),
                    Some(None) => {
                        return exec_err!(
                            "to_record_batch: user {:?} has no integer id",
                            event.user
                        );
                    }
                }
            }
            Arc::new(Int64Array::from(ids))
        }
    };

    let mut ticks = Vec::with_capacity(events.len());
    for event in events {
        ticks.push(match event.time {
            None => None,
            Some(ms) => Some(ms_to_ticks(ms, encoding.time_unit)?),
        });
    }
    let time_zone = encoding.time_zone.clone();
    let times: ArrayRef = match encoding.time_unit {
        TimeUnit::Second => {
            Arc::new(TimestampSecondArray::from(ticks).with_timezone_opt(time_zone))
        }
        TimeUnit::Millisecond => {
            Arc::new(TimestampMillisecondArray::from(ticks).with_timezone_opt(time_zone))
        }
        TimeUnit::Microsecond => {
            Arc::new(TimestampMicrosecondArray::from(ticks).with_timezone_opt(time_zone))
        }
        TimeUnit::Nanosecond => {
            Arc::new(TimestampNanosecondArray::from(ticks).with_timezone_opt(time_zone))
        }
    };

    let columns: Vec<ArrayRef> = vec![
        users,
        times,
        string_array(
            events.iter().map(|e| Some(e.event_type.as_str())).collect(),
            encoding.strings,
        ),
        Arc::new(Int64Array::from(
            events.iter().map(|e| e.session_id).collect::<Vec<_>>(),
        )),
        string_array(
            events.iter().map(|e| e.page.as_deref()).collect(),
            encoding.strings,
        ),
        Arc::new(BooleanArray::from(
            events.iter().map(|e| e.is_active).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            events.iter().map(|e| e.row_id).collect::<Vec<_>>(),
        )),
    ];
    Ok(RecordBatch::try_new(event_schema(encoding), columns)?)
}

/// Epoch milliseconds as ticks of `unit`; an error if seconds would lose a fraction.
pub fn ms_to_ticks(ms: i64, unit: TimeUnit) -> Result<i64> {
    match unit {
        TimeUnit::Second if ms % 1_000 != 0 => {
            exec_err!("ms_to_ticks: {ms} ms is not a whole number of seconds")
        }
        TimeUnit::Second => Ok(ms / 1_000),
        TimeUnit::Millisecond => Ok(ms),
        TimeUnit::Microsecond => Ok(ms * 1_000),
        TimeUnit::Nanosecond => Ok(ms * 1_000_000),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn same_seed_same_events() {
        let shape = EventSetShape::default();
        let a = random_events(&mut ChaCha8Rng::seed_from_u64(7), &shape);
        let b = random_events(&mut ChaCha8Rng::seed_from_u64(7), &shape);
        assert_eq!(a, b);
    }

    #[test]
    fn row_ids_are_unique_and_tie_free_sets_have_no_ties() {
        let shape = EventSetShape {
            allow_ties: false,
            ..EventSetShape::default()
        };
        for seed in 0..50 {
            let events = random_events(&mut ChaCha8Rng::seed_from_u64(seed), &shape);
            let mut ids: Vec<i64> = events.iter().map(|e| e.row_id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), events.len());
            let mut instants: Vec<_> = events
                .iter()
                .filter_map(|e| e.time.map(|t| (e.user.clone(), t)))
                .collect();
            let timed = instants.len();
            instants.sort();
            instants.dedup();
            assert_eq!(instants.len(), timed, "seed {seed}");
        }
    }

    #[test]
    fn every_encoding_builds() {
        let events = random_events(&mut ChaCha8Rng::seed_from_u64(3), &EventSetShape::default());
        for strings in [
            StringEncoding::Utf8,
            StringEncoding::Utf8View,
            StringEncoding::Dictionary,
        ] {
            for user in [UserEncoding::String, UserEncoding::Int64] {
                for time_unit in [
                    TimeUnit::Second,
                    TimeUnit::Millisecond,
                    TimeUnit::Microsecond,
                    TimeUnit::Nanosecond,
                ] {
                    let encoding = BatchEncoding {
                        strings,
                        user,
                        time_unit,
                        time_zone: Some("UTC".into()),
                    };
                    let batch = to_record_batch(&events, &encoding).expect("batch");
                    assert_eq!(batch.num_rows(), events.len());
                    assert_eq!(batch.schema(), event_schema(&encoding));
                }
            }
        }
    }
}
