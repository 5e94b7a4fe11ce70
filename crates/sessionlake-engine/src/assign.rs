//! Finding sessions: the second of the operator's three steps (after buffering in
//! [`crate::exec`], before building columns in [`crate::output`]).
//!
//! An event is sessionized from a compact [`Entry`]: a dense user id, its time, its row in the
//! buffered rows and, in the instrumented modes, its session id. Nothing else moves. Entries
//! are kept in [`PIECES`] pieces by user id as they arrive, so each piece holds every event of
//! its users and is small enough to sort in cache: a counting sort by user, then each user's
//! short run by (session id, time, row). Ties on one instant are broken by the rest of the row,
//! so neither file order nor partitioning changes the result; then each user's run is split
//! into sessions by the rules.

use std::borrow::Cow;
use std::ops::Range;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, Scalar, StringArray,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::compute::kernels::cmp;
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{Result, exec_err};
use sessionlake_functions::session_split::{
    session_length, split_by_event_gaps, split_by_gap, within_max_length,
};
use sessionlake_functions::time_unit::{nanos_to_ticks, span_array_to_ticks, ticks_to_epoch_ms};

use crate::columns::BoundColumns;
use crate::intern::Interner;
use crate::options::{SessionMode, SessionOptions};
use crate::rows::{Position, RowStore};

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

/// The session id an entry carries: `()` in the gap mode, which has none (so an entry is 16
/// bytes), the id itself in the instrumented modes.
pub trait SessionId: Copy + Ord + Default + Send + Sync + std::fmt::Debug + 'static {
    /// The id of `row`, from the session id column of its batch (absent in the gap mode).
    fn read(ids: Option<&[i64]>, row: usize) -> Self;
    /// The id as the column holds it (0 in the gap mode).
    fn value(self) -> i64;
}

impl SessionId for () {
    fn read(_ids: Option<&[i64]>, _row: usize) -> Self {}

    fn value(self) -> i64 {
        0
    }
}

impl SessionId for i64 {
    fn read(ids: Option<&[i64]>, row: usize) -> Self {
        ids.map_or(0, |ids| ids[row])
    }

    fn value(self) -> i64 {
        self
    }
}

/// One active event while sessionizing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Entry<S> {
    pub time: i64,
    /// Dense user id, unique within the partition.
    pub user: u32,
    /// Row number in the buffered rows.
    pub row: u32,
    pub session: S,
}

impl<S: SessionId> Entry<S> {
    fn order(&self) -> (S, i64, u32) {
        (self.session, self.time, self.row)
    }

    fn same_instant(&self, other: &Self) -> bool {
        self.session == other.session && self.time == other.time
    }
}

/// Pieces a partition's entries are kept in, by user id (a power of two).
pub const PIECES: usize = 256;
/// Entries of the first chunk of a piece; chunks grow with the piece up to [`MAX_CHUNK`].
const MIN_CHUNK: usize = 256;
/// Entries of the largest chunk: the most a piece holds allocated but unused.
const MAX_CHUNK: usize = 8192;

/// The piece of a user id.
pub fn piece_of(user: u32) -> usize {
    user as usize & (PIECES - 1)
}

/// Entries kept by piece, each piece in chunks, so that no piece ever reallocates (and holds
/// twice its size for a moment) as it grows.
#[derive(Debug)]
pub struct Pieces<S> {
    pieces: Vec<Vec<Vec<Entry<S>>>>,
    len: usize,
    allocated: usize,
    /// Reused per [`Self::push_all`]: the entries given, then the same grouped by piece.
    incoming: Vec<Entry<S>>,
    grouped: Vec<Entry<S>>,
}

impl<S: SessionId> Default for Pieces<S> {
    fn default() -> Self {
        Self {
            pieces: (0..PIECES).map(|_| Vec::new()).collect(),
            len: 0,
            allocated: 0,
            incoming: Vec::new(),
            grouped: Vec::new(),
        }
    }
}

impl<S: SessionId> Pieces<S> {
    /// Adds one entry to the piece of its user. A batch's entries go faster through
    /// [`Self::push_all`].
    pub fn push(&mut self, entry: Entry<S>) {
        self.extend_piece(piece_of(entry.user), std::slice::from_ref(&entry));
    }

    /// Adds entries (a batch's), each to the piece of its user, in their order. They are
    /// grouped by piece first (a counting sort in cache) and each piece is appended one run at
    /// a time: pushed one by one, they would scatter stores over every piece's last chunk,
    /// each store a cache miss.
    pub fn push_all(&mut self, entries: impl IntoIterator<Item = Entry<S>>) {
        let mut incoming = std::mem::take(&mut self.incoming);
        incoming.clear();
        incoming.extend(entries);
        let mut starts = [0_usize; PIECES + 1];
        for entry in &incoming {
            starts[piece_of(entry.user) + 1] += 1;
        }
        for piece in 0..PIECES {
            starts[piece + 1] += starts[piece];
        }
        let mut grouped = std::mem::take(&mut self.grouped);
        // every slot is written below: no need to clear, so only a longer batch's tail is
        // filled with defaults first
        grouped.resize(incoming.len(), Entry::default());
        let mut next = starts;
        for entry in &incoming {
            let at = &mut next[piece_of(entry.user)];
            grouped[*at] = *entry;
            *at += 1;
        }
        for piece in 0..PIECES {
            let run = &grouped[starts[piece]..starts[piece + 1]];
            if !run.is_empty() {
                self.extend_piece(piece, run);
            }
        }
        self.incoming = incoming;
        self.grouped = grouped;
    }

    /// Frees what [`Self::push_all`] reuses, once every entry is in.
    pub fn release_scratch(&mut self) {
        self.incoming = Vec::new();
        self.grouped = Vec::new();
    }

    fn extend_piece(&mut self, piece: usize, mut run: &[Entry<S>]) {
        self.len += run.len();
        let chunks = &mut self.pieces[piece];
        while !run.is_empty() {
            match chunks.last_mut() {
                Some(chunk) if chunk.len() < chunk.capacity() => {
                    let (now, rest) = run.split_at((chunk.capacity() - chunk.len()).min(run.len()));
                    chunk.extend_from_slice(now);
                    run = rest;
                }
                _ => {
                    let held: usize = chunks.iter().map(Vec::len).sum();
                    let chunk = Vec::with_capacity(held.clamp(MIN_CHUNK, MAX_CHUNK));
                    self.allocated += chunk.capacity() * size_of::<Entry<S>>();
                    chunks.push(chunk);
                }
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        self.allocated
            + self.pieces.capacity() * size_of::<Vec<Vec<Entry<S>>>>()
            + (self.incoming.capacity() + self.grouped.capacity()) * size_of::<Entry<S>>()
    }

    /// Takes the entries of `piece` out, in the order they were pushed.
    pub fn take(&mut self, piece: usize) -> Vec<Vec<Entry<S>>> {
        let chunks = std::mem::take(&mut self.pieces[piece]);
        for chunk in &chunks {
            self.len -= chunk.len();
            self.allocated -= chunk.capacity() * size_of::<Entry<S>>();
        }
        chunks
    }
}

/// Dense ids for the users of a partition, in order of first appearance ([`Interner`]).
pub struct UserIds {
    values: Option<Interner>,
    ids: Vec<usize>,
}

impl std::fmt::Debug for UserIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserIds")
            .field("users", &self.len())
            .finish()
    }
}

impl UserIds {
    pub fn new() -> Self {
        Self {
            values: None,
            ids: Vec::new(),
        }
    }

    /// The id of each row's user (a NULL user gets an id too).
    pub fn intern(&mut self, users: &ArrayRef) -> Result<&[usize]> {
        let values = match &mut self.values {
            Some(values) => values,
            None => self
                .values
                .insert(Interner::new("sessionize: user column", users.data_type())?),
        };
        values.intern(users, &mut self.ids)?;
        Ok(&self.ids)
    }

    /// Users interned so far.
    pub fn len(&self) -> usize {
        self.values.as_ref().map_or(0, Interner::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        self.values.as_ref().map_or(0, Interner::size) + self.ids.capacity() * size_of::<usize>()
    }

    /// Every user by id (the value type of a dictionary column), or `None` before any row.
    pub fn into_values(self) -> Result<Option<ArrayRef>> {
        self.values.map(Interner::into_values).transpose()
    }
}

impl Default for UserIds {
    fn default() -> Self {
        Self::new()
    }
}

/// Which rows take part in a session (see `docs/semantics.md`): user and time not NULL, the
/// activity flag not false, the event type not listed as inactive, and in the instrumented
/// modes a session id that is neither NULL nor -1.
pub fn active_mask(
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
    if let Some(event_type) = columns.event_type {
        for inactive in &rules.inactive_event_types {
            let hit = event_type_flags(batch.column(event_type), inactive)?;
            mask = &mask & &!&hit;
        }
    }
    if let (Some(session_id), true) = (columns.session_id, rules.mode.is_instrumented())
        && let Some(valid) = session_id_values(batch.column(session_id))?.nulls()
    {
        mask = &mask & valid.inner();
    }
    Ok(mask)
}

/// Where `types` (an event type column: a string column or a dictionary of strings) is
/// exactly `event_type`; false where it is not or is NULL. A dictionary's values are compared
/// once per batch, not once per row, and no column is converted to compare it.
pub fn event_type_flags(types: &ArrayRef, event_type: &str) -> Result<BooleanBuffer> {
    let hits = match types.as_any_dictionary_opt() {
        Some(dictionary) => {
            let hits = event_type_flags(dictionary.values(), event_type)?;
            let hits = BooleanArray::new(hits, None);
            take(&hits, dictionary.keys(), None)?.as_boolean().clone()
        }
        None => {
            let wanted = cast(&StringArray::from(vec![event_type]), types.data_type())?;
            cmp::eq(types, &Scalar::new(wanted))?
        }
    };
    Ok(true_and_valid(&hits))
}

fn true_and_valid(array: &BooleanArray) -> BooleanBuffer {
    match array.nulls() {
        Some(nulls) => array.values() & nulls.inner(),
        None => array.values().clone(),
    }
}

/// A session id column as the 64-bit ids sessions are formed by, NULL where the id is not
/// valid (see `docs/semantics.md`): an integer id as it is, NULL and -1 invalid; a string id
/// as [`string_session_key`] of its bytes, NULL, `''`, `'none'` and `'-1'` invalid.
pub fn session_id_values(array: &ArrayRef) -> Result<Int64Array> {
    if array.data_type().is_integer() {
        let ids = cast(array, &DataType::Int64)?;
        let ids = ids.as_primitive::<Int64Type>();
        let valid = cmp::neq(ids, &Scalar::new(Int64Array::from(vec![-1_i64])))?;
        return Ok(Int64Array::new(
            ids.values().clone(),
            Some(NullBuffer::new(true_and_valid(&valid))),
        ));
    }
    let strings = match array.data_type() {
        DataType::Utf8View => Cow::Borrowed(array),
        _ => Cow::Owned(cast(array, &DataType::Utf8View)?),
    };
    let strings = strings.as_string_view();
    Ok(strings
        .iter()
        .map(|id| match id {
            None | Some("" | "none" | "-1") => None,
            Some(id) => Some(string_session_key(id.as_bytes())),
        })
        .collect())
}

/// The session id of a string id: its 64-bit FNV-1a hash (offset basis 0xcbf29ce484222325,
/// prime 0x100000001b3) read as a signed integer. Stable across runs, versions and machines;
/// two different ids of one user with the same hash (about n² / 2⁶⁵ for n ids) would be one
/// session.
pub fn string_session_key(bytes: &[u8]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// One valid session of a piece: its events are `entries[events]` of the sorted piece.
#[derive(Debug, Clone)]
pub struct SessionSpan {
    pub events: Range<usize>,
    pub user: u32,
    pub key: i64,
    /// First and last active event time, in ticks.
    pub start: i64,
    pub end: i64,
    /// 1 for the user's first valid session.
    pub index: i64,
}

/// Working memory reused from piece to piece.
#[derive(Debug, Default)]
pub struct Scratch<S> {
    /// The piece's entries in session order.
    pub entries: Vec<Entry<S>>,
    /// The valid sessions found in them.
    pub sessions: Vec<SessionSpan>,
    counts: Vec<usize>,
    users: Vec<Range<usize>>,
    times: Vec<i64>,
}

impl<S: SessionId> Scratch<S> {
    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        self.entries.capacity() * size_of::<Entry<S>>()
            + self.sessions.capacity() * size_of::<SessionSpan>()
            + self.counts.capacity() * size_of::<usize>()
            + self.users.capacity() * size_of::<Range<usize>>()
            + self.times.capacity() * size_of::<i64>()
    }
}

/// How events tied on one instant are ordered: by these columns of the buffered rows, in
/// order (ascending, NULLs first), then by row number.
#[derive(Debug, Clone)]
pub struct TieBreak<'a> {
    pub rows: &'a RowStore,
    pub columns: &'a [usize],
}

/// Where each event's own timeout is read (`sessionlake.gap_column`).
#[derive(Debug, Clone)]
pub struct EventGaps {
    /// The column among the buffered rows.
    pub column: usize,
    /// Its name, for errors.
    pub name: String,
}

impl EventGaps {
    /// The timeout after each of `entries`, in ticks: the column's value (an interval or
    /// duration, or an integer number of milliseconds), or the rules' gap where it is NULL.
    fn ticks<S: SessionId>(
        &self,
        entries: &[Entry<S>],
        rows: &RowStore,
        rules: &SessionRules,
    ) -> Result<Vec<i64>> {
        let positions: Vec<Position> = entries.iter().map(|e| Some(rows.locate(e.row))).collect();
        let values = rows.gather(self.column, &positions)?;
        let what = format!("sessionlake.gap_column \"{}\"", self.name);
        let gaps = if values.data_type().is_integer() {
            let millis = cast(&values, &DataType::Int64)?;
            millis
                .as_primitive::<Int64Type>()
                .iter()
                .map(|ms| ms.map(|ms| nanos_to_ticks(i128::from(ms) * 1_000_000, rules.unit)))
                .collect()
        } else {
            span_array_to_ticks(&what, &values, rules.unit)?
        };
        gaps.into_iter()
            .map(|gap| match gap {
                None => Ok(rules.gap),
                Some(gap) if gap > 0 => Ok(gap),
                Some(_) => exec_err!(
                    "{what}: a timeout must be positive (at least one tick of the time column), \
                     found one that is not"
                ),
            })
            .collect()
    }
}

/// Finds the valid sessions of one piece's entries (`chunks`, which hold every event of their
/// users): `scratch.entries` is left in session order and `scratch.sessions` lists them.
/// With `gaps`, each event's own timeout decides where its session may end.
pub fn find_sessions<S: SessionId>(
    chunks: &[Vec<Entry<S>>],
    rules: &SessionRules,
    ties: &TieBreak<'_>,
    gaps: Option<&EventGaps>,
    scratch: &mut Scratch<S>,
) -> Result<()> {
    sort_by_user(chunks, scratch);
    let Scratch {
        entries,
        sessions,
        users,
        times,
        ..
    } = scratch;
    for range in users.iter() {
        let run = &mut entries[range.clone()];
        if run.len() > 1 {
            run.sort_unstable_by_key(Entry::order);
        }
    }
    break_ties(entries, users, ties)?;
    let event_gaps = match gaps {
        Some(gaps) => Some(gaps.ticks(entries, ties.rows, rules)?),
        None => None,
    };
    sessions.clear();
    split_sessions(
        entries,
        users,
        rules,
        event_gaps.as_deref(),
        sessions,
        times,
    );
    Ok(())
}

/// A stable counting sort of the chunks' entries by user into `scratch.entries`, with each
/// user's range in `scratch.users`. A piece's users are `piece + k * PIECES`, so `k` indexes
/// the counts.
fn sort_by_user<S: SessionId>(chunks: &[Vec<Entry<S>>], scratch: &mut Scratch<S>) {
    let local = |entry: &Entry<S>| entry.user as usize / PIECES;
    let counts = &mut scratch.counts;
    counts.clear();
    let mut total = 0;
    for entry in chunks.iter().flatten() {
        let user = local(entry);
        if user >= counts.len() {
            counts.resize(user + 1, 0);
        }
        counts[user] += 1;
        total += 1;
    }
    scratch.users.clear();
    let mut start = 0;
    for count in counts.iter_mut() {
        let n = *count;
        if n > 0 {
            scratch.users.push(start..start + n);
        }
        *count = start;
        start += n;
    }
    let entries = &mut scratch.entries;
    // every slot is written below: no need to clear, so only a larger piece's tail is filled
    // with defaults first
    entries.resize(total, Entry::default());
    for entry in chunks.iter().flatten() {
        let slot = &mut counts[local(entry)];
        entries[*slot] = *entry;
        *slot += 1;
    }
}

/// Orders events of one user at the same instant by the tie columns, so that neither file
/// order nor partitioning changes `event_index`.
fn break_ties<S: SessionId>(
    entries: &mut [Entry<S>],
    users: &[Range<usize>],
    ties: &TieBreak<'_>,
) -> Result<()> {
    if ties.columns.is_empty() {
        return Ok(());
    }
    let mut runs = Vec::new();
    for range in users {
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
    if runs.is_empty() {
        return Ok(());
    }
    let positions: Vec<Position> = runs
        .iter()
        .flat_map(|run| {
            entries[run.clone()]
                .iter()
                .map(|e| Some(ties.rows.locate(e.row)))
        })
        .collect();
    let mut gathered = Vec::with_capacity(ties.columns.len());
    let mut fields = Vec::with_capacity(ties.columns.len());
    for &column in ties.columns {
        let array = ties.rows.gather(column, &positions)?;
        fields.push(SortField::new(array.data_type().clone()));
        gathered.push(array);
    }
    let rows = RowConverter::new(fields)?.convert_columns(&gathered)?;

    let mut scratch: Vec<(usize, Entry<S>)> = Vec::new();
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
fn split_sessions<S: SessionId>(
    entries: &[Entry<S>],
    users: &[Range<usize>],
    rules: &SessionRules,
    event_gaps: Option<&[i64]>,
    sessions: &mut Vec<SessionSpan>,
    times: &mut Vec<i64>,
) {
    for range in users {
        let first_session = sessions.len();
        let user = entries[range.start].user;
        let mut push = |events: Range<usize>, key: Option<i64>| {
            let start = entries[events.start].time;
            let end = entries[events.end - 1].time;
            if within_max_length(session_length(start, end), rules.max_length) {
                sessions.push(SessionSpan {
                    events,
                    user,
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
                let emit = |r: Range<usize>| push(range.start + r.start..range.start + r.end, None);
                match event_gaps {
                    Some(gaps) => split_by_event_gaps(times, &gaps[range.clone()], emit),
                    None => split_by_gap(times, rules.gap, emit),
                }
            }
            SessionMode::Instrumented | SessionMode::InstrumentedGap => {
                let mut start = range.start;
                for i in range.start + 1..=range.end {
                    if i < range.end && entries[i].session == entries[start].session {
                        continue;
                    }
                    if rules.mode == SessionMode::Instrumented {
                        push(start..i, Some(entries[start].session.value()));
                    } else {
                        times.clear();
                        times.extend(entries[start..i].iter().map(|e| e.time));
                        let emit = |r: Range<usize>| push(start + r.start..start + r.end, None);
                        match event_gaps {
                            Some(gaps) => split_by_event_gaps(times, &gaps[start..i], emit),
                            None => split_by_gap(times, rules.gap, emit),
                        }
                    }
                    start = i;
                }
            }
        }
        let user_sessions = &mut sessions[first_session..];
        if rules.mode.is_instrumented() {
            // parts of two instrumented sessions can share start and key: the session id
            // makes the order total, so session_index never depends on the input order
            user_sessions
                .sort_unstable_by_key(|s| (s.start, s.key, s.end, entries[s.events.start].session));
        }
        for (i, session) in user_sessions.iter_mut().enumerate() {
            session.index = i as i64 + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn entry(user: u32, time: i64, row: u32) -> Entry<()> {
        Entry {
            time,
            user,
            row,
            session: (),
        }
    }

    #[test]
    fn event_type_flags_match_exactly_in_every_string_type_and_never_on_null() {
        use datafusion::arrow::array::{DictionaryArray, Int32Array, StringViewArray};
        use datafusion::arrow::datatypes::Int32Type;

        let types = [
            Some("click"),
            None,
            Some("Click"),
            Some("click "),
            Some("click"),
        ];
        let want = [true, false, false, false, true];
        let plain: ArrayRef = Arc::new(StringArray::from(types.to_vec()));
        let view: ArrayRef = Arc::new(StringViewArray::from(types.to_vec()));
        let large = cast(&plain, &DataType::LargeUtf8).expect("large");
        // a NULL key, and a NULL among the dictionary's values
        let values: ArrayRef =
            Arc::new(StringArray::from(vec![Some("click"), None, Some("Click")]));
        let keys = Int32Array::from(vec![Some(0), None, Some(2), Some(1), Some(0)]);
        let dictionary: ArrayRef =
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).expect("dictionary"));
        for array in [plain, view, large, dictionary] {
            let flags = event_type_flags(&array, "click").expect("flags");
            assert_eq!(
                flags.iter().collect::<Vec<_>>(),
                want,
                "{}",
                array.data_type()
            );
        }
    }

    #[test]
    fn pieces_keep_users_together_in_push_order_and_account_for_chunks() {
        let mut pieces = Pieces::<()>::default();
        let empty = pieces.size();
        // 3000 users, 10 events each, interleaved as a scan would deliver them; a batch at a
        // time and one at a time in turn, which must keep the same order
        for round in 0..10_u32 {
            let events =
                (0..3000_u32).map(|user| entry(user, i64::from(round), round * 3000 + user));
            if round % 2 == 0 {
                pieces.push_all(events);
            } else {
                events.for_each(|e| pieces.push(e));
            }
        }
        assert_eq!(pieces.len(), 30_000);
        assert!(pieces.size() >= empty + 30_000 * size_of::<Entry<()>>());
        let mut seen = 0;
        for piece in 0..PIECES {
            let entries: Vec<Entry<()>> = pieces.take(piece).into_iter().flatten().collect();
            assert!(entries.iter().all(|e| piece_of(e.user) == piece));
            // push order is row order
            assert!(entries.windows(2).all(|w| w[0].row < w[1].row));
            seen += entries.len();
        }
        assert_eq!(seen, 30_000);
        assert!(pieces.is_empty());
        pieces.release_scratch();
        assert_eq!(pieces.size(), empty);
    }

    #[test]
    fn a_piece_is_sorted_by_user_then_time_and_split_at_gaps() {
        let rules = SessionRules {
            mode: SessionMode::Gap,
            gap: 10,
            max_length: Some(25),
            unit: TimeUnit::Millisecond,
            inactive_event_types: vec![],
        };
        // users 0 and 256 share piece 0; times out of order; user 0's gap of exactly 10 stays
        // in one session, 11 starts another; user 256's 0..30 span is over the maximum length
        let chunks = vec![vec![
            entry(256, 30, 0),
            entry(0, 21, 1),
            entry(0, 0, 2),
            entry(256, 0, 3),
            entry(0, 10, 4),
            entry(256, 10, 5),
            entry(256, 20, 6),
        ]];
        let rows = RowStore::new();
        let ties = TieBreak {
            rows: &rows,
            columns: &[],
        };
        let mut scratch = Scratch::default();
        find_sessions(&chunks, &rules, &ties, None, &mut scratch).expect("sessions");
        let order: Vec<(u32, i64)> = scratch.entries.iter().map(|e| (e.user, e.time)).collect();
        assert_eq!(
            order,
            [
                (0, 0),
                (0, 10),
                (0, 21),
                (256, 0),
                (256, 10),
                (256, 20),
                (256, 30)
            ]
        );
        let sessions: Vec<(u32, i64, i64, i64, usize)> = scratch
            .sessions
            .iter()
            .map(|s| (s.user, s.start, s.end, s.index, s.events.len()))
            .collect();
        // user 256's one session (0..30) is longer than 25 and left out
        assert_eq!(sessions, [(0, 0, 10, 1, 2), (0, 21, 21, 2, 1)]);
    }
}
