//! Building the operator's output: the last of its three steps (after buffering in
//! [`crate::exec`] and finding sessions in [`crate::assign`]).
//!
//! `sessionize` returns every input row with five session columns ([`EventSessions`] records
//! each row's session as pieces are sessionized, then builds the columns one output batch at a
//! time); `sessions` returns one row per session ([`SessionRows`] collects each session's
//! values and the rows to take its event type and properties from, and builds a batch once
//! enough sessions are collected).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array, make_array, new_null_array,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::compute::unary;
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::common::Result;
use sessionlake_functions::time_unit::ticks_to_ms;

use crate::assign::{Entry, SessionId, SessionSpan, event_type_flags};
use crate::columns::{BoundColumns, count_column};
use crate::rows::{Position, RowStore};

/// The names of the columns `sessionize` appends, in order.
pub const SESSION_COLUMNS: [&str; 5] = [
    "session_key",
    "session_start",
    "session_end",
    "session_index",
    "event_index",
];

/// The column of `sessions` with the largest reported duration (`sessionlake.reported_duration`).
pub const REPORTED_DURATION: &str = "reported_duration_ms";

/// The input's columns followed by the five session columns.
pub fn events_schema(input: &Schema, columns: &BoundColumns) -> SchemaRef {
    let time_type = session_time_type(columns.unit);
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(SESSION_COLUMNS[0], DataType::Int64, true));
    fields.push(Field::new(SESSION_COLUMNS[1], time_type.clone(), true));
    fields.push(Field::new(SESSION_COLUMNS[2], time_type, true));
    fields.push(Field::new(SESSION_COLUMNS[3], DataType::Int64, true));
    fields.push(Field::new(SESSION_COLUMNS[4], DataType::Int64, true));
    Arc::new(Schema::new(fields))
}

/// One row per session: user, key, start, end, duration, event count, the first and last event
/// type when returned ([`BoundColumns::returns_event_types`]), the reported duration and the
/// count of each counted event type if asked for, and the first and last non-NULL value of
/// each property.
pub fn sessions_schema(input: &Schema, columns: &BoundColumns) -> SchemaRef {
    let time_type = session_time_type(columns.unit);
    let user = input.field(columns.user);
    let mut fields = vec![
        Field::new(user.name(), user.data_type().clone(), false),
        Field::new("session_key", DataType::Int64, false),
        Field::new("session_start", time_type.clone(), false),
        Field::new("session_end", time_type, false),
        Field::new("duration_ms", DataType::Int64, false),
        Field::new("event_count", DataType::Int64, false),
    ];
    if let (true, Some(event_type)) = (columns.returns_event_types, columns.event_type) {
        let data_type = input.field(event_type).data_type().clone();
        fields.push(Field::new("first_event_type", data_type.clone(), true));
        fields.push(Field::new("last_event_type", data_type, true));
    }
    if columns.reported.is_some() {
        fields.push(Field::new(REPORTED_DURATION, DataType::Int64, true));
    }
    for event_type in &columns.counted {
        fields.push(Field::new(count_column(event_type), DataType::Int64, false));
    }
    for &property in &columns.properties {
        let field = input.field(property);
        for edge in ["first", "last"] {
            fields.push(Field::new(
                format!("{edge}_{}", field.name()),
                field.data_type().clone(),
                true,
            ));
        }
    }
    Arc::new(Schema::new(fields))
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

/// Marks a row in no session.
const NO_SESSION: u32 = u32::MAX;

/// A session as `sessionize` reports it on each of its rows.
#[derive(Debug, Clone, Copy)]
struct SessionValues {
    key: i64,
    start: i64,
    end: i64,
    index: i64,
}

/// The session of every buffered row, for `sessionize`: 8 bytes a row plus 32 a session.
#[derive(Debug)]
pub struct EventSessions {
    /// Per row: its session in `sessions`, or [`NO_SESSION`].
    session: Vec<u32>,
    /// Per row: its 1-based position in its session.
    event_index: Vec<u32>,
    sessions: Vec<SessionValues>,
}

impl EventSessions {
    /// Every one of `rows` rows in no session yet.
    pub fn new(rows: usize) -> Self {
        Self {
            session: vec![NO_SESSION; rows],
            event_index: vec![0; rows],
            sessions: Vec::new(),
        }
    }

    /// Bytes needed for `rows` rows and `sessions` sessions, for memory accounting.
    pub fn size_for(rows: usize, sessions: usize) -> usize {
        rows * 2 * size_of::<u32>() + sessions * size_of::<SessionValues>()
    }

    pub fn size(&self) -> usize {
        Self::size_for(self.session.capacity(), self.sessions.capacity())
    }

    /// Records the sessions of one piece (`entries` in session order).
    pub fn record<S: SessionId>(&mut self, entries: &[Entry<S>], sessions: &[SessionSpan]) {
        for span in sessions {
            let id = self.sessions.len() as u32;
            self.sessions.push(SessionValues {
                key: span.key,
                start: span.start,
                end: span.end,
                index: span.index,
            });
            for (i, entry) in entries[span.events.clone()].iter().enumerate() {
                let row = entry.row as usize;
                self.session[row] = id;
                self.event_index[row] = i as u32 + 1;
            }
        }
    }

    /// The five session columns of `rows`, in order: `session_key`, `session_start`,
    /// `session_end`, `session_index`, `event_index`.
    pub fn columns(&self, rows: std::ops::Range<usize>, unit: TimeUnit) -> Result<[ArrayRef; 5]> {
        let ids = &self.session[rows.clone()];
        let nulls = NullBuffer::new(BooleanBuffer::collect_bool(ids.len(), |i| {
            ids[i] != NO_SESSION
        }));
        let field = |f: fn(&SessionValues) -> i64| -> Int64Array {
            let values: Vec<i64> = ids
                .iter()
                .map(|&id| self.sessions.get(id as usize).map_or(0, f))
                .collect();
            Int64Array::new(values.into(), Some(nulls.clone()))
        };
        let event_index: Vec<i64> = self.event_index[rows]
            .iter()
            .map(|&i| i64::from(i))
            .collect();
        Ok([
            Arc::new(field(|s| s.key)),
            timestamp_array(field(|s| s.start), unit)?,
            timestamp_array(field(|s| s.end), unit)?,
            Arc::new(field(|s| s.index)),
            Arc::new(Int64Array::new(event_index.into(), Some(nulls.clone()))),
        ])
    }
}

/// Where `sessions` takes its columns from.
#[derive(Debug, Clone)]
pub struct SessionsLayout {
    pub schema: SchemaRef,
    pub unit: TimeUnit,
    /// The event type column of the buffered rows, when something reads it.
    pub event_type: Option<usize>,
    /// Whether `first_event_type` and `last_event_type` are returned (then `event_type` is
    /// set).
    pub returns_event_types: bool,
    /// The property columns of the buffered rows, in output order.
    pub properties: Vec<usize>,
    /// The reported-duration column of the buffered rows and the event type carrying it.
    pub reported: Option<(usize, String)>,
    /// Per event type counted per session (`sessionlake.count_event_types`), in order: the
    /// buffered rows' boolean column telling whether an event is of that type.
    pub counted: Vec<usize>,
}

/// Sessions collected for `sessions`, until a batch is built from them.
#[derive(Debug, Default)]
pub struct SessionRows {
    user: Vec<u32>,
    key: Vec<i64>,
    start: Vec<i64>,
    end: Vec<i64>,
    count: Vec<i64>,
    /// When event types are returned: the rows of each session's first and last event.
    first: Vec<Position>,
    last: Vec<Position>,
    /// Per property: the rows of its first and last non-NULL value per session.
    properties: Vec<[Vec<Position>; 2]>,
    /// Per session: the largest reported duration, in milliseconds.
    reported: Vec<Option<i64>>,
    /// Per counted event type: its events in each session.
    counts: Vec<Vec<i64>>,
}

impl SessionRows {
    pub fn len(&self) -> usize {
        self.key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }

    /// Collects the sessions of one piece (`entries` in session order, rows in `rows`).
    pub fn push<S: SessionId>(
        &mut self,
        entries: &[Entry<S>],
        sessions: &[SessionSpan],
        rows: &RowStore,
        layout: &SessionsLayout,
    ) -> Result<()> {
        if layout.reported.is_some() || !layout.counted.is_empty() {
            // every event of the sessions, in order
            let positions: Vec<Position> = sessions
                .iter()
                .flat_map(|span| entries[span.events.clone()].iter())
                .map(|entry| Some(rows.locate(entry.row)))
                .collect();
            if let (Some((column, reported_type)), Some(event_type)) =
                (&layout.reported, layout.event_type)
            {
                let types = rows.gather(event_type, &positions)?;
                let values = rows.gather(*column, &positions)?;
                self.push_reported(sessions, &types, &values, reported_type)?;
            }
            self.counts.resize_with(layout.counted.len(), Vec::new);
            for (&counted, counts) in layout.counted.iter().zip(&mut self.counts) {
                // read in place: gathering booleans copies them one bit at a time
                let flags: Vec<&BooleanBuffer> = rows
                    .batches()
                    .iter()
                    .map(|b| b.column(counted).as_boolean().values())
                    .collect();
                let mut at = 0;
                for span in sessions {
                    let len = span.events.len();
                    let n = positions[at..at + len]
                        .iter()
                        .flatten()
                        .filter(|&&(batch, row)| flags[batch].value(row))
                        .count();
                    counts.push(n as i64);
                    at += len;
                }
            }
        }
        self.properties
            .resize_with(layout.properties.len(), Default::default);
        let nulls: Vec<Vec<Option<NullBuffer>>> = layout
            .properties
            .iter()
            .map(|&p| {
                rows.batches()
                    .iter()
                    .map(|b| b.column(p).logical_nulls())
                    .collect()
            })
            .collect();
        for span in sessions {
            let events = &entries[span.events.clone()];
            self.user.push(span.user);
            self.key.push(span.key);
            self.start.push(span.start);
            self.end.push(span.end);
            self.count.push(events.len() as i64);
            if layout.returns_event_types {
                self.first.push(Some(rows.locate(events[0].row)));
                self.last
                    .push(Some(rows.locate(events[events.len() - 1].row)));
            }
            for (nulls, [first, last]) in nulls.iter().zip(&mut self.properties) {
                let valid_at = |entry: &Entry<S>| {
                    let (batch, index) = rows.locate(entry.row);
                    match &nulls[batch] {
                        Some(nulls) if nulls.is_null(index) => None,
                        _ => Some((batch, index)),
                    }
                };
                first.push(events.iter().find_map(valid_at));
                last.push(events.iter().rev().find_map(valid_at));
            }
        }
        Ok(())
    }

    /// The largest of `values` on the events of `reported_type` of each session, in
    /// milliseconds (NULL when the session has none); `types` and `values` are those of the
    /// sessions' events, in order.
    fn push_reported(
        &mut self,
        sessions: &[SessionSpan],
        types: &ArrayRef,
        values: &ArrayRef,
        reported_type: &str,
    ) -> Result<()> {
        let is_reported = event_type_flags(types, reported_type)?;
        let millis = match values.data_type() {
            DataType::Duration(unit) => {
                let ticks = cast(values, &DataType::Int64)?;
                let unit = *unit;
                Arc::new(unary::<Int64Type, _, Int64Type>(
                    ticks.as_primitive(),
                    |t| ticks_to_ms(t, unit),
                )) as ArrayRef
            }
            _ => cast(values, &DataType::Int64)?,
        };
        let millis = millis.as_primitive::<Int64Type>();
        let mut at = 0;
        for span in sessions {
            let len = span.events.len();
            let largest = (at..at + len)
                .filter(|&i| is_reported.value(i) && millis.is_valid(i))
                .map(|i| millis.value(i))
                .max();
            self.reported.push(largest);
            at += len;
        }
        Ok(())
    }

    /// The collected sessions as one batch (`users` holds every user by id), and empties the
    /// collection.
    pub fn finish(
        &mut self,
        rows: &RowStore,
        users: &ArrayRef,
        layout: &SessionsLayout,
    ) -> Result<RecordBatch> {
        let taken = std::mem::take(self);
        let unit = layout.unit;
        let user_type = layout.schema.field(0).data_type();
        let mut user = take(users, &UInt32Array::from(taken.user), None)?;
        if user.data_type() != user_type {
            user = cast(&user, user_type)?;
        }
        let durations: Vec<i64> = taken
            .start
            .iter()
            .zip(&taken.end)
            .map(|(&start, &end)| ticks_to_ms(end.wrapping_sub(start), unit))
            .collect();
        let mut columns: Vec<ArrayRef> = vec![
            user,
            Arc::new(Int64Array::from(taken.key)),
            timestamp_array(Int64Array::from(taken.start), unit)?,
            timestamp_array(Int64Array::from(taken.end), unit)?,
            Arc::new(Int64Array::from(durations)),
            Arc::new(Int64Array::from(taken.count)),
        ];
        if let (true, Some(event_type)) = (layout.returns_event_types, layout.event_type) {
            columns.push(rows.gather(event_type, &taken.first)?);
            columns.push(rows.gather(event_type, &taken.last)?);
        }
        if layout.reported.is_some() {
            columns.push(Arc::new(Int64Array::from(taken.reported)));
        }
        let mut counts = taken.counts.into_iter();
        for _ in &layout.counted {
            let count = counts.next().unwrap_or_default();
            columns.push(Arc::new(Int64Array::from(count)));
        }
        for (&property, [first, last]) in layout.properties.iter().zip(&taken.properties) {
            columns.push(rows.gather(property, first)?);
            columns.push(rows.gather(property, last)?);
        }
        Ok(RecordBatch::try_new(Arc::clone(&layout.schema), columns)?)
    }
}

/// `batch` with five NULL session columns: rows in no session.
pub fn without_sessions(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut columns = batch.columns().to_vec();
    let width = schema.fields().len();
    for field in &schema.fields()[width - SESSION_COLUMNS.len()..] {
        columns.push(new_null_array(field.data_type(), batch.num_rows()));
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
