//! Session assignment for one partition: all of a user's events are in it (the plan
//! hash-partitions by user), so sessions are found here and nowhere else.
//!
//! Only what defines a session is sorted: a compact entry per active event (session id, time,
//! row number), bucketed by a dense user id with a counting sort, then each user's small run is
//! sorted in cache. The rows themselves never move: results are scattered back by row number,
//! so the output keeps the input's batches and appends the session columns.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, PrimitiveArray, RecordBatch, Scalar,
    StringArray, make_array,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::compute::kernels::cmp;
use datafusion::arrow::compute::{cast, interleave};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{Result, internal_err};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use sessionlake_functions::session_split::{session_length, split_by_gap, within_max_length};
use sessionlake_functions::time_unit::{nanos_to_ticks, ticks_to_epoch_ms, timestamp_ticks};

use crate::columns::BoundColumns;
use crate::options::{SessionMode, SessionOptions};

/// The session rules with every span in ticks of the time column's unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionRules {
    pub mode: SessionMode,
    pub gap: i64,
    pub max_length: Option<i64>,
    pub unit: TimeUnit,
    pub inactive_event_types: Vec<String>,
}

impl SessionRules {
    pub fn new(options: &SessionOptions, unit: TimeUnit) -> Self {
        Self {
            mode: options.mode,
            gap: nanos_to_ticks(options.gap_nanos, unit),
            max_length: options.max_length_nanos.map(|n| nanos_to_ticks(n, unit)),
            unit,
            inactive_event_types: options.inactive_event_types.clone(),
        }
    }
}

/// One active event while sorting; `session_id` is 0 outside the instrumented modes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    session_id: i64,
    time: i64,
    row: u32,
}

impl Entry {
    fn sort_key(&self) -> (i64, i64, u32) {
        (self.session_id, self.time, self.row)
    }

    fn same_instant(&self, other: &Entry) -> bool {
        self.session_id == other.session_id && self.time == other.time
    }
}

/// One valid session: its events are `order[events]`.
#[derive(Debug, Clone)]
pub struct SessionSpan {
    pub events: Range<usize>,
    pub key: i64,
    /// First and last active event time, in ticks.
    pub start: i64,
    pub end: i64,
    /// 1 for the user's first valid session.
    pub index: i64,
}

/// The sessions of one partition.
#[derive(Debug)]
pub struct Assignment {
    /// Global row numbers of the active events, each user's together, in session order.
    pub order: Vec<u32>,
    /// Valid sessions (excluded ones are left out).
    pub sessions: Vec<SessionSpan>,
    /// Global row number of each batch's first row, plus the total at the end.
    pub offsets: Vec<usize>,
}

impl Assignment {
    /// Total rows in the partition.
    pub fn num_rows(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// The batch and the row in it of a global row number.
    pub fn locate(&self, row: u32) -> (usize, usize) {
        let row = row as usize;
        let batch = self.offsets.partition_point(|&o| o <= row) - 1;
        (batch, row - self.offsets[batch])
    }

    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        self.order.capacity() * size_of::<u32>()
            + self.sessions.capacity() * size_of::<SessionSpan>()
            + self.offsets.capacity() * size_of::<usize>()
    }
}

/// Bytes of working memory [`assign_sessions`] needs beyond its input, per input row: the
/// dense user id, the entry, the row order and the five output columns.
pub const WORKING_BYTES_PER_ROW: usize =
    size_of::<u32>() + size_of::<Entry>() + size_of::<u32>() + 5 * size_of::<i64>();

/// Finds the sessions of `batches`, which hold every event of each of their users.
pub fn assign_sessions(
    batches: &[RecordBatch],
    columns: &BoundColumns,
    rules: &SessionRules,
) -> Result<Assignment> {
    let mut offsets = Vec::with_capacity(batches.len() + 1);
    offsets.push(0);
    for batch in batches {
        let end = offsets[offsets.len() - 1] + batch.num_rows();
        offsets.push(end);
    }
    let total_rows = offsets[batches.len()];
    if total_rows > u32::MAX as usize {
        return datafusion::common::exec_err!(
            "sessionize: a partition holds {total_rows} rows, over the {} a partition can \
             sessionize; raise datafusion.execution.target_partitions",
            u32::MAX
        );
    }

    let (mut entries, user_ranges) = bucket_active(batches, columns, rules)?;

    for range in &user_ranges {
        entries[range.clone()].sort_unstable_by_key(Entry::sort_key);
    }
    let assignment_offsets = offsets.clone();
    break_ties(
        batches,
        columns,
        rules,
        &offsets,
        &user_ranges,
        &mut entries,
    )?;

    let sessions = split_sessions(&entries, &user_ranges, rules);
    Ok(Assignment {
        order: entries.iter().map(|e| e.row).collect(),
        sessions,
        offsets: assignment_offsets,
    })
}

/// The entries of every active event, bucketed by a dense user id (a counting sort, stable, so
/// each user's entries are in row order), and each user's range in them.
///
/// Two passes over the batches: the first finds the active rows and their users' dense ids,
/// the second writes each entry straight into its user's bucket, so no unsorted copy of the
/// entries is ever held.
fn bucket_active(
    batches: &[RecordBatch],
    columns: &BoundColumns,
    rules: &SessionRules,
) -> Result<(Vec<Entry>, Vec<Range<usize>>)> {
    let mut group_values: Option<Box<dyn GroupValues>> = None;
    let mut groups = Vec::new();
    let mut users: Vec<u32> = Vec::new();
    let mut masks = Vec::with_capacity(batches.len());
    for batch in batches {
        let mask = active_mask(batch, columns, rules)?;
        let user = user_key_array(batch.column(columns.user))?;
        let group_values = match &mut group_values {
            Some(g) => g,
            None => group_values.insert(new_group_values(
                Arc::new(Schema::new(vec![Field::new(
                    "user",
                    user.data_type().clone(),
                    true,
                )])),
                &GroupOrdering::None,
            )?),
        };
        groups.clear();
        group_values.intern(std::slice::from_ref(&user), &mut groups)?;
        users.extend(mask.set_indices().map(|row| groups[row] as u32));
        masks.push(mask);
    }
    // every user interned, with or without active events; the latter get no range
    let group_count = group_values.as_ref().map_or(0, |g| g.len());
    drop(group_values);

    let mut counts = vec![0_usize; group_count];
    for &user in &users {
        counts[user as usize] += 1;
    }
    let mut ranges = Vec::with_capacity(group_count);
    let mut next_slot = Vec::with_capacity(group_count);
    let mut start = 0;
    for count in counts {
        next_slot.push(start);
        if count > 0 {
            ranges.push(start..start + count);
        }
        start += count;
    }

    let mut entries = vec![
        Entry {
            session_id: 0,
            time: 0,
            row: 0
        };
        users.len()
    ];
    let mut users = users.into_iter();
    let mut row_base = 0_u32;
    for (batch, mask) in batches.iter().zip(&masks) {
        let times = timestamp_ticks("sessionize: time column", batch.column(columns.time))?;
        let session_ids = match columns.session_id {
            Some(i) if rules.mode.is_instrumented() => Some(session_id_array(batch.column(i))?),
            _ => None,
        };
        for (row, user) in mask.set_indices().zip(&mut users) {
            let slot = &mut next_slot[user as usize];
            entries[*slot] = Entry {
                session_id: session_ids.as_ref().map_or(0, |ids| ids.value(row)),
                time: times[row],
                row: row_base + row as u32,
            };
            *slot += 1;
        }
        row_base += batch.num_rows() as u32;
    }
    Ok((entries, ranges))
}

/// Which rows take part in a session (see `docs/semantics.md`): user and time not NULL, the
/// activity flag not false, the event type not listed as inactive, and in the instrumented
/// modes a session id that is neither NULL nor -1.
fn active_mask(
    batch: &RecordBatch,
    columns: &BoundColumns,
    rules: &SessionRules,
) -> Result<BooleanBuffer> {
    let mut mask = BooleanBuffer::new_set(batch.num_rows());
    for column in [columns.user, columns.time] {
        if let Some(nulls) = batch.column(column).logical_nulls() {
            mask = &mask & nulls.inner();
        }
    }
    if let Some(active) = columns.active {
        let active = batch.column(active).as_boolean();
        // NULL counts as active: only a valid `false` removes the event
        let not_false = match active.nulls() {
            Some(nulls) => active.values() | &!nulls.inner(),
            None => active.values().clone(),
        };
        mask = &mask & &not_false;
    }
    if let (Some(event_type), false) = (columns.event_type, rules.inactive_event_types.is_empty()) {
        let event_type = cast(batch.column(event_type), &DataType::Utf8)?;
        for inactive in &rules.inactive_event_types {
            let hit = cmp::eq(
                &event_type,
                &Scalar::new(StringArray::from(vec![inactive.as_str()])),
            )?;
            mask = &mask & &!&true_and_valid(&hit);
        }
    }
    if let (Some(session_id), true) = (columns.session_id, rules.mode.is_instrumented()) {
        let ids = session_id_array(batch.column(session_id))?;
        let valid = cmp::neq(&ids, &Scalar::new(Int64Array::from(vec![-1_i64])))?;
        mask = &mask & &true_and_valid(&valid);
    }
    Ok(mask)
}

fn true_and_valid(array: &BooleanArray) -> BooleanBuffer {
    match array.nulls() {
        Some(nulls) => array.values() & nulls.inner(),
        None => array.values().clone(),
    }
}

/// The user column as the group-values table takes it: dictionaries unpacked.
fn user_key_array(array: &ArrayRef) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Dictionary(_, value) => Ok(cast(array, value)?),
        _ => Ok(Arc::clone(array)),
    }
}

fn session_id_array(array: &ArrayRef) -> Result<PrimitiveArray<Int64Type>> {
    Ok(cast(array, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

/// Orders events of one user at the same instant by the rest of the row (the event type
/// first, then the other columns in schema order, ascending, NULLs first), so that neither
/// file order nor partitioning changes `event_index`.
fn break_ties(
    batches: &[RecordBatch],
    columns: &BoundColumns,
    rules: &SessionRules,
    offsets: &[usize],
    user_ranges: &[Range<usize>],
    entries: &mut [Entry],
) -> Result<()> {
    let mut runs = Vec::new();
    for range in user_ranges {
        let mut start = range.start;
        for i in range.start + 1..=range.end {
            if i == range.end || !entries[i].same_instant(&entries[start]) {
                if i - start > 1 {
                    runs.push(start..i);
                }
                start = i;
            }
        }
    }
    let Some(first_batch) = batches.first() else {
        return Ok(());
    };
    if runs.is_empty() {
        return Ok(());
    }
    let session_id_is_key = rules.mode.is_instrumented();
    let mut tie_columns: Vec<usize> = columns.event_type.into_iter().collect();
    tie_columns.extend((0..first_batch.num_columns()).filter(|&c| {
        c != columns.user
            && c != columns.time
            && Some(c) != columns.event_type
            && !(session_id_is_key && Some(c) == columns.session_id)
    }));
    if tie_columns.is_empty() {
        return Ok(());
    }

    let locate = |row: u32| {
        let row = row as usize;
        let batch = offsets.partition_point(|&o| o <= row) - 1;
        (batch, row - offsets[batch])
    };
    let positions: Vec<(usize, usize)> = runs
        .iter()
        .flat_map(|run| entries[run.clone()].iter().map(|e| locate(e.row)))
        .collect();
    let mut gathered = Vec::with_capacity(tie_columns.len());
    let mut fields = Vec::with_capacity(tie_columns.len());
    for &column in &tie_columns {
        let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(column).as_ref()).collect();
        let array = interleave(&arrays, &positions)?;
        fields.push(SortField::new(array.data_type().clone()));
        gathered.push(array);
    }
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(&gathered)?;

    let mut scratch: Vec<(usize, Entry)> = Vec::new();
    let mut next = 0;
    for run in runs {
        scratch.clear();
        scratch.extend(
            entries[run.clone()]
                .iter()
                .enumerate()
                .map(|(i, e)| (next + i, *e)),
        );
        scratch
            .sort_by(|(a, ea), (b, eb)| rows.row(*a).cmp(&rows.row(*b)).then(ea.row.cmp(&eb.row)));
        next += run.len();
        for (slot, (_, entry)) in entries[run].iter_mut().zip(&scratch) {
            *slot = *entry;
        }
    }
    Ok(())
}

/// Splits each user's sorted entries into sessions and keeps the valid ones.
fn split_sessions(
    entries: &[Entry],
    user_ranges: &[Range<usize>],
    rules: &SessionRules,
) -> Vec<SessionSpan> {
    let mut sessions = Vec::new();
    let mut times = Vec::new();
    for range in user_ranges {
        let first_session = sessions.len();
        let mut push = |events: Range<usize>, key: Option<i64>| {
            let start = entries[events.start].time;
            let end = entries[events.end - 1].time;
            if within_max_length(session_length(start, end), rules.max_length) {
                sessions.push(SessionSpan {
                    events,
                    key: key.unwrap_or_else(|| ticks_to_epoch_ms(start, rules.unit)),
                    start,
                    end,
                    index: 0,
                });
            }
        };
        match rules.mode {
            SessionMode::Gap => {
                times.clear();
                times.extend(entries[range.clone()].iter().map(|e| e.time));
                split_by_gap(&times, rules.gap, |r| {
                    push(range.start + r.start..range.start + r.end, None)
                });
            }
            SessionMode::Instrumented | SessionMode::InstrumentedGap => {
                let mut start = range.start;
                for i in range.start + 1..=range.end {
                    if i < range.end && entries[i].session_id == entries[start].session_id {
                        continue;
                    }
                    if rules.mode == SessionMode::Instrumented {
                        push(start..i, Some(entries[start].session_id));
                    } else {
                        times.clear();
                        times.extend(entries[start..i].iter().map(|e| e.time));
                        split_by_gap(&times, rules.gap, |r| {
                            push(start + r.start..start + r.end, None)
                        });
                    }
                    start = i;
                }
            }
        }
        let user_sessions = &mut sessions[first_session..];
        if rules.mode.is_instrumented() {
            // parts of two instrumented sessions can share start and key: the session id
            // makes the order total, so session_index never depends on the input order
            user_sessions.sort_unstable_by_key(|s| {
                (s.start, s.key, s.end, entries[s.events.start].session_id)
            });
        }
        for (i, session) in user_sessions.iter_mut().enumerate() {
            session.index = i as i64 + 1;
        }
    }
    sessions
}

/// The five session columns for every row of the partition, in global row order:
/// `session_key`, `session_start`, `session_end`, `session_index`, `event_index`.
pub fn session_columns(assignment: &Assignment, unit: TimeUnit) -> Result<[ArrayRef; 5]> {
    let rows = assignment.num_rows();
    let mut key = vec![0_i64; rows];
    let mut start = vec![0_i64; rows];
    let mut end = vec![0_i64; rows];
    let mut session_index = vec![0_i64; rows];
    let mut event_index = vec![0_i64; rows];
    let mut valid = vec![false; rows];
    for session in &assignment.sessions {
        for (i, &row) in assignment.order[session.events.clone()].iter().enumerate() {
            let row = row as usize;
            key[row] = session.key;
            start[row] = session.start;
            end[row] = session.end;
            session_index[row] = session.index;
            event_index[row] = i as i64 + 1;
            valid[row] = true;
        }
    }
    let nulls = NullBuffer::from(valid);
    let int64 = |values: Vec<i64>| -> ArrayRef {
        Arc::new(Int64Array::new(values.into(), Some(nulls.clone())))
    };
    let timestamp = |values: Vec<i64>| -> Result<ArrayRef> {
        timestamp_array(Int64Array::new(values.into(), Some(nulls.clone())), unit)
    };
    Ok([
        int64(key),
        timestamp(start)?,
        timestamp(end)?,
        int64(session_index),
        int64(event_index),
    ])
}

/// The data type of `session_start` / `session_end` for a time column of `unit`.
pub fn session_time_type(unit: TimeUnit) -> DataType {
    DataType::Timestamp(unit, Some("UTC".into()))
}

/// Reinterprets an `Int64Array` of ticks as a UTC timestamp array of `unit`.
pub fn timestamp_array(ticks: Int64Array, unit: TimeUnit) -> Result<ArrayRef> {
    let data = ticks
        .into_data()
        .into_builder()
        .data_type(session_time_type(unit))
        .build()?;
    Ok(make_array(data))
}

/// Takes one value per index from a column spread over `batches`.
pub fn gather(
    batches: &[RecordBatch],
    column: usize,
    positions: &[(usize, usize)],
) -> Result<ArrayRef> {
    if batches.is_empty() {
        return internal_err!("sessionize: nothing to gather from");
    }
    let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(column).as_ref()).collect();
    Ok(interleave(&arrays, positions)?)
}
