//! The incremental rule: which output days new events can change, and which events must be read
//! to recompute those days exactly as a full recompute would. The argument is in `docs/jobs.md`.
//!
//! All instants are epoch milliseconds; spans are widened outward to whole milliseconds, which
//! keeps every bound on the safe side (reading more, or rewriting more days, never changes a
//! result).

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

const HOUR_MS: i64 = 3_600_000;

/// The two spans of the gap-mode rule, in milliseconds rounded up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spans {
    /// `g`: the largest timeout any event can have (the gap, or `session.max_gap` with a
    /// `gap_column`).
    pub gap_ms: i64,
    /// The maximum session length `L`.
    pub max_length_ms: i64,
}

impl Spans {
    /// From the engine's nanosecond spans.
    pub fn from_nanos(gap_nanos: i128, max_length_nanos: i128) -> Self {
        let ceil_ms =
            |n: i128| i64::try_from((n + 999_999).div_euclid(1_000_000)).unwrap_or(i64::MAX / 4);
        Self {
            gap_ms: ceil_ms(gap_nanos),
            max_length_ms: ceil_ms(max_length_nanos),
        }
    }
}

/// The calendar day of `instant_ms` in `zone`.
pub fn local_day(instant_ms: i64, zone: Tz) -> NaiveDate {
    let utc = DateTime::<Utc>::from_timestamp_millis(instant_ms).unwrap_or_default();
    utc.with_timezone(&zone).date_naive()
}

/// The first instant of `day` in `zone` (where midnight falls in a DST gap, the first instant
/// that exists that day).
pub fn day_start_ms(day: NaiveDate, zone: Tz) -> i64 {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for hour in 0..4 {
        let local = midnight + chrono::Duration::hours(hour);
        if let Some(instant) = zone.from_local_datetime(&local).earliest() {
            return instant.timestamp_millis();
        }
    }
    Utc.from_utc_datetime(&midnight).timestamp_millis()
}

/// Every day from `first` to `last`, inclusive.
pub fn days_between(first: NaiveDate, last: NaiveDate) -> Vec<NaiveDate> {
    first.iter_days().take_while(|d| *d <= last).collect()
}

/// The output days whose rows an event at any instant of the UTC hour starting at `hour_ms`
/// can change: those overlapping `[hour - L - g, hour + 1 h + g + L]`. The sessions that
/// change start in `[t - L - g, t + g]`; their events, which decide who is active on which
/// day, reach `L` further.
pub fn affected_days(hour_ms: i64, spans: Spans, zone: Tz) -> Vec<NaiveDate> {
    let first = local_day(hour_ms - spans.max_length_ms - spans.gap_ms, zone);
    let last = local_day(hour_ms + HOUR_MS + spans.gap_ms + spans.max_length_ms, zone);
    days_between(first, last)
}

/// The output days affected by events in the given UTC hours.
pub fn affected_days_of_hours(hours: &[i64], spans: Spans, zone: Tz) -> BTreeSet<NaiveDate> {
    hours
        .iter()
        .flat_map(|hour| affected_days(*hour, spans, zone))
        .collect()
}

/// Splits sorted days into runs of consecutive days.
pub fn consecutive_runs(days: &BTreeSet<NaiveDate>) -> Vec<(NaiveDate, NaiveDate)> {
    let mut runs: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for day in days {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add_days(Days::new(1)) == Some(*day) => *last = *day,
            _ => runs.push((*day, *day)),
        }
    }
    runs
}

/// The events to read to recompute the days `first..=last` (the sessions starting on them, and
/// the sessions with an event on them, which start up to `L` earlier): those with a time in
/// `[start(first) - L - g, start(last + 1) + L + g]` (inclusive, epoch ms).
pub fn read_window(first: NaiveDate, last: NaiveDate, spans: Spans, zone: Tz) -> (i64, i64) {
    let start = day_start_ms(first, zone) - spans.max_length_ms - spans.gap_ms;
    let after_last = last.checked_add_days(Days::new(1)).unwrap_or(last);
    let end = day_start_ms(after_last, zone) + spans.max_length_ms + spans.gap_ms;
    (start, end)
}

/// The earliest source partition (arrival day, UTC) that can hold an event at `instant_ms`,
/// under the assumption that an event never arrives before its time's UTC day.
pub fn first_partition(instant_ms: i64) -> NaiveDate {
    local_day(instant_ms, Tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn spans() -> Spans {
        Spans::from_nanos(30 * 60 * 1_000_000_000, 86_400 * 1_000_000_000)
    }

    #[test]
    fn an_hour_reaches_back_and_forward_a_length_and_a_gap() {
        let hour = day_start_ms(date("2024-01-10"), Tz::UTC);
        // [01-08 23:30, 01-11 01:30]
        assert_eq!(
            affected_days(hour, spans(), Tz::UTC),
            vec![
                date("2024-01-08"),
                date("2024-01-09"),
                date("2024-01-10"),
                date("2024-01-11")
            ]
        );
        let late_hour = hour + 23 * HOUR_MS;
        // [01-09 22:30, 01-12 00:30]
        assert_eq!(
            affected_days(late_hour, spans(), Tz::UTC),
            vec![
                date("2024-01-09"),
                date("2024-01-10"),
                date("2024-01-11"),
                date("2024-01-12")
            ]
        );
    }

    #[test]
    fn window_covers_length_plus_gap_on_both_sides() {
        let (start, end) = read_window(date("2024-01-10"), date("2024-01-11"), spans(), Tz::UTC);
        assert_eq!(
            start,
            day_start_ms(date("2024-01-10"), Tz::UTC) - 86_400_000 - 30 * 60_000
        );
        assert_eq!(
            end,
            day_start_ms(date("2024-01-12"), Tz::UTC) + 86_400_000 + 30 * 60_000
        );
        assert_eq!(first_partition(start), date("2024-01-08"));
    }

    #[test]
    fn a_larger_max_gap_widens_both_bounds() {
        // gap 30 minutes, max_gap 2 hours: g is 2 hours
        let wide = Spans::from_nanos(2 * 3_600 * 1_000_000_000, 86_400 * 1_000_000_000);
        let hour = day_start_ms(date("2024-01-10"), Tz::UTC) + 22 * HOUR_MS;
        // [01-08 20:00, 01-12 01:00]: the 2-hour g reaches 01-12, the 30-minute one does not
        assert_eq!(
            affected_days(hour, wide, Tz::UTC).last(),
            Some(&date("2024-01-12"))
        );
        assert_eq!(
            affected_days(hour, spans(), Tz::UTC).last(),
            Some(&date("2024-01-11"))
        );
    }

    #[test]
    fn zones_move_day_boundaries() {
        let zone: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            day_start_ms(date("2024-01-10"), zone),
            day_start_ms(date("2024-01-10"), Tz::UTC) + 5 * HOUR_MS
        );
        // 03:00 UTC is still the previous day in New York
        let instant = day_start_ms(date("2024-01-10"), Tz::UTC) + 3 * HOUR_MS;
        assert_eq!(local_day(instant, zone), date("2024-01-09"));
    }

    #[test]
    fn runs_split_at_holes() {
        let days: BTreeSet<_> = ["2024-01-01", "2024-01-02", "2024-01-04"]
            .iter()
            .map(|d| date(d))
            .collect();
        assert_eq!(
            consecutive_runs(&days),
            vec![
                (date("2024-01-01"), date("2024-01-02")),
                (date("2024-01-04"), date("2024-01-04"))
            ]
        );
    }

    #[test]
    fn spans_round_up_to_the_millisecond() {
        let s = Spans::from_nanos(1_500_000, 1);
        assert_eq!(
            s,
            Spans {
                gap_ms: 2,
                max_length_ms: 1
            }
        );
    }
}
