//! The session-splitting kernels: one user's time-ordered active events in, session ranges out.
//!
//! Both the `sessionize` window function and the engine's `SessionizeExec` call these on
//! contiguous slices of sorted times, so the hot loop is a branch per event over an `i64` slice.

use std::ops::Range;

/// Splits one user's ascending `times` into sessions under a constant `gap` (ticks, positive).
///
/// A session ends where the next event comes **strictly** more than `gap` after the previous
/// one; a gap of exactly `gap` stays in the session. `emit` receives each session's range of
/// positions, in order.
pub fn split_by_gap(times: &[i64], gap: i64, mut emit: impl FnMut(Range<usize>)) {
    if times.is_empty() {
        return;
    }
    let gap = gap as u64;
    let mut start = 0;
    for i in 1..times.len() {
        // times are ascending, so the wrapping difference read as unsigned is exact
        if times[i].wrapping_sub(times[i - 1]) as u64 > gap {
            emit(start..i);
            start = i;
        }
    }
    emit(start..times.len());
}

/// Splits ascending `times` into sessions where each event carries its own gap (`gaps[i]`, in
/// ticks, positive): a session stays open until the previous event's time plus that event's gap,
/// and an event strictly after that moment starts a new session.
pub fn split_by_event_gaps(times: &[i64], gaps: &[i64], mut emit: impl FnMut(Range<usize>)) {
    debug_assert_eq!(times.len(), gaps.len());
    if times.is_empty() {
        return;
    }
    let mut start = 0;
    for i in 1..times.len() {
        if times[i].wrapping_sub(times[i - 1]) as u64 > gaps[i - 1] as u64 {
            emit(start..i);
            start = i;
        }
    }
    emit(start..times.len());
}

/// The length of a session whose first and last event times are given, in ticks.
pub fn session_length(first: i64, last: i64) -> u64 {
    last.wrapping_sub(first) as u64
}

/// Whether a session of `length` ticks is kept under an optional maximum length (kept when
/// the length is at most the maximum).
pub fn within_max_length(length: u64, max_length: Option<i64>) -> bool {
    match max_length {
        Some(max) => length <= max as u64,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions_by_gap(times: &[i64], gap: i64) -> Vec<Range<usize>> {
        let mut out = vec![];
        split_by_gap(times, gap, |r| out.push(r));
        out
    }

    #[test]
    fn gap_exactly_equal_stays_in_session() {
        assert_eq!(sessions_by_gap(&[0, 30, 60], 30), vec![0..3]);
    }

    #[test]
    fn gap_one_tick_over_splits() {
        assert_eq!(
            sessions_by_gap(&[0, 31, 31, 100], 30),
            vec![0..1, 1..3, 3..4]
        );
    }

    #[test]
    fn empty_and_single() {
        assert!(sessions_by_gap(&[], 30).is_empty());
        assert_eq!(sessions_by_gap(&[7], 30), vec![0..1]);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        assert_eq!(sessions_by_gap(&[i64::MIN, i64::MAX], 30), vec![0..1, 1..2]);
    }

    #[test]
    fn per_event_gap_uses_the_previous_events_gap() {
        let mut out = vec![];
        // event 0 keeps the session open 10 ticks, event 1 only 2
        split_by_event_gaps(&[0, 10, 13], &[10, 2, 2], |r| out.push(r));
        assert_eq!(out, vec![0..2, 2..3]);
    }

    #[test]
    fn max_length_is_inclusive() {
        assert!(within_max_length(session_length(0, 100), Some(100)));
        assert!(!within_max_length(session_length(0, 101), Some(100)));
        assert!(within_max_length(session_length(0, 101), None));
    }
}
