//! `SessionizeExec`: the physical operator behind `sessionize('<table>')` and
//! `sessions('<table>')`, and the first of its three steps: buffering (here), finding sessions
//! ([`crate::assign`]) and building output columns ([`crate::output`]).
//!
//! It asks the planner for its input hash-partitioned by user, so each partition holds every
//! event of its users and sessions can be found partition by partition, in parallel, with the
//! same result whatever the number of partitions.
//!
//! A partition buffers its input in compact form under a memory reservation: each active event
//! becomes an [`Entry`] (dense user id, time, row number; 16 bytes, 24 with a session id) kept
//! in one of [`PIECES`] pieces by user (a batch's entries are grouped by piece, then appended a
//! piece at a time), and of each row only the columns an output returns
//! (`sessions` keeps, of each active row, only what the columns a query selects need: the
//! event type, properties and tie-breaking columns when it returns first and last values, and a
//! flag per counted event type; never the user or time, which are in the entry; repeating
//! strings as ids into their distinct values, see [`crate::rows`]. `sessionize` keeps every
//! row, since it returns them). Then the pieces are
//! sessionized one at a time, yielding between pieces so that cancellation and progress stay
//! live, and `sessions` emits its rows as pieces finish.
//!
//! When the memory pool refuses to hold a partition, or the partition outgrows its even share
//! of a bounded pool (so that a partition that has spilled can always load a bucket back while
//! another is still buffering), the partition spills: its compact rows (repeating strings as
//! ids into the partition's distinct strings, which it keeps in memory like its user ids) are
//! written by user into [`SPILL_BUCKETS`] files (a grace hash partitioning on the dense
//! user id, so each bucket still holds every event of its users), each input batch sorted by
//! bucket once and staged, then written in large runs (some [`SPILL_RUN_ROWS`] rows per bucket),
//! and the buckets are read back and sessionized one at a time. Only a bucket, not the
//! partition, then has to fit in memory.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, RecordBatchOptions,
    UInt32Array,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch, take, take_arrays};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt32Type};
use datafusion::common::config::SpillCompression;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::utils::memory::get_record_batch_memory_size;
use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::execution::SpillFile;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit as PoolLimit, MemoryReservation,
};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, SpillMetrics,
};
use datafusion::physical_plan::spill::SpillManager;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties,
};
use futures::{Stream, StreamExt, TryStreamExt};
use sessionlake_functions::time_unit::timestamp_ticks;

use crate::assign::{
    Entry, EventGaps, PIECES, Pieces, Scratch, SessionId, SessionRules, TieBreak, UserIds,
    active_mask, event_type_flags, find_sessions, session_id_values,
};
use crate::columns::BoundColumns;
use crate::output::{
    EventSessions, SessionRows, SessionsLayout, events_schema, sessions_schema, without_sessions,
};
use crate::rows::{Position, RowStore, StringValues, Strings};

pub use crate::output::SESSION_COLUMNS;

/// What a [`SessionizeExec`] emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionOutput {
    /// Every input row with the five session columns appended.
    Events,
    /// One row per valid session.
    Sessions,
}

impl SessionOutput {
    /// The SQL name of the table function with this output.
    pub fn function_name(self) -> &'static str {
        match self {
            Self::Events => "sessionize",
            Self::Sessions => "sessions",
        }
    }
}

/// Finds sessions in an input that is hash-partitioned by user.
#[derive(Debug)]
pub struct SessionizeExec {
    input: Arc<dyn ExecutionPlan>,
    columns: BoundColumns,
    rules: SessionRules,
    output: SessionOutput,
    schema: SchemaRef,
    layout: Arc<Layout>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl SessionizeExec {
    /// `columns` must be bound to `input`'s schema.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        columns: BoundColumns,
        rules: SessionRules,
        output: SessionOutput,
    ) -> Result<Self> {
        let input_schema = input.schema();
        let schema = match output {
            SessionOutput::Events => events_schema(&input_schema, &columns),
            SessionOutput::Sessions => sessions_schema(&input_schema, &columns),
        };
        let layout = Arc::new(Layout::new(
            &input_schema,
            &columns,
            &rules,
            output,
            Arc::clone(&schema),
        )?);
        let partitioning = match output {
            // rows stay in their partition, so the input's hash partitioning still holds
            SessionOutput::Events => input.output_partitioning().clone(),
            SessionOutput::Sessions => {
                Partitioning::UnknownPartitioning(input.output_partitioning().partition_count())
            }
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            partitioning,
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Self {
            input,
            columns,
            rules,
            output,
            schema,
            layout,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The same operator with `metadata` on its output schema (the table function marks each
    /// call this way, see [`crate::table_function::CALL_METADATA_KEY`]).
    pub fn with_schema_metadata(self, metadata: HashMap<String, String>) -> Self {
        let schema = Arc::new(self.schema.as_ref().clone().with_metadata(metadata));
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            self.properties.partitioning.clone(),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        let mut layout = self.layout.as_ref().clone();
        if let Some(sessions) = &mut layout.sessions {
            sessions.schema = Arc::clone(&schema);
        }
        Self {
            schema,
            layout: Arc::new(layout),
            properties: Arc::new(properties),
            ..self
        }
    }

    pub fn output(&self) -> SessionOutput {
        self.output
    }

    pub fn rules(&self) -> &SessionRules {
        &self.rules
    }

    pub fn columns(&self) -> &BoundColumns {
        &self.columns
    }

    fn user_expr(&self) -> Arc<dyn PhysicalExpr> {
        let schema = self.input.schema();
        Arc::new(Column::new(
            schema.field(self.columns.user).name(),
            self.columns.user,
        ))
    }
}

impl DisplayAs for SessionizeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let schema = self.input.schema();
        write!(
            f,
            "SessionizeExec: output={}, mode={}, user={}, time={}, gap={}, max_length={}",
            match self.output {
                SessionOutput::Events => "events",
                SessionOutput::Sessions => "sessions",
            },
            self.rules.mode,
            schema.field(self.columns.user).name(),
            schema.field(self.columns.time).name(),
            self.rules.gap,
            match self.rules.max_length {
                Some(max) => max.to_string(),
                None => "none".to_string(),
            }
        )
    }
}

impl ExecutionPlan for SessionizeExec {
    fn name(&self) -> &'static str {
        "SessionizeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::KeyPartitioned(vec![self.user_expr()])]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![true]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("SessionizeExec takes one child, got {}", children.len());
        }
        let metadata = self.schema.metadata().clone();
        Ok(Arc::new(
            Self::try_new(
                children.swap_remove(0),
                self.columns.clone(),
                self.rules.clone(),
                self.output,
            )?
            .with_schema_metadata(metadata),
        ))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let reservation = MemoryConsumer::new(format!("SessionizeExec[{partition}]"))
            .with_can_spill(true)
            .register(context.memory_pool());
        let spill_metrics = SpillMetrics::new(&self.metrics, partition);
        let partitions = self.properties().output_partitioning().partition_count();
        let buffer_share = match context.memory_pool().memory_limit() {
            PoolLimit::Finite(limit) => limit / partitions.max(1),
            PoolLimit::Infinite | PoolLimit::Unknown => usize::MAX,
        };
        // spill files are compressed as the session's `datafusion.execution.spill_compression`
        // says, like DataFusion's own sorts and joins
        let compression = context.session_config().spill_compression();
        let task = Arc::new(PartitionTask {
            columns: self.columns.clone(),
            rules: self.rules.clone(),
            output: self.output,
            schema: Arc::clone(&self.schema),
            layout: Arc::clone(&self.layout),
            batch_size: context.session_config().batch_size().max(1),
            reservation,
            buffer_share,
            buckets: BucketFiles {
                env: context.runtime_env(),
                metrics: spill_metrics.clone(),
                compression,
            },
            passthrough: SpillManager::new(context.runtime_env(), spill_metrics, input.schema())
                .with_compression_type(compression),
            baseline: BaselineMetrics::new(&self.metrics, partition),
        });
        let batches = if self.rules.mode.is_instrumented() {
            run::<i64>(task, input)
        } else {
            run::<()>(task, input)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            batches,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// How many files a partition that does not fit in memory is split into, by user.
pub const SPILL_BUCKETS: usize = 64;

/// How many rows per bucket, on average, are staged before every bucket's file is appended
/// its rows at once: few large sequential writes, not one small write per input batch and
/// bucket. (Staged rows are written sooner when they outgrow the staging budget.)
pub const SPILL_RUN_ROWS: usize = 16 * 1024;

/// The most rows of one piece a partition that starts to spill gathers from its buffered rows
/// into one run. A gather costs a fixed amount per block of the buffer (a partition of 100M
/// rows has some 1500 blocks) besides its rows, so a piece is gathered in runs this large,
/// not a chunk at a time; a staged run this large is written at once, which bounds the memory
/// it takes beside the buffer.
const SPILL_GATHER_ROWS: usize = SPILL_RUN_ROWS * SPILL_BUCKETS;

/// The smallest staging budget of a spilling partition.
const MIN_STAGE_LIMIT: usize = 256 * 1024;

/// About how many times `sessions` builds output from a unit (see [`Emitter::start`]).
const FLUSHES_PER_UNIT: usize = 128;

/// Rows of the blocks `sessions` keeps its buffered rows in.
const BLOCK_ROWS: usize = 64 * 1024;

/// Where the operator finds what it needs in the rows it keeps.
#[derive(Debug, Clone)]
struct Layout {
    /// The input columns kept of each buffered row, ascending.
    kept: Vec<usize>,
    /// The fields of a buffered row: the kept columns, then for `sessions` one boolean column
    /// per counted event type, whether the row's event is of that type (see
    /// [`Self::kept_rows`]).
    kept_schema: SchemaRef,
    /// The input's event type column and the counted event types, in order.
    counted: Option<(usize, Vec<String>)>,
    /// Whether only active rows are kept (`sessions`) or every row (`sessionize`).
    active_only: bool,
    /// The columns ordering tied events, as indices into the kept columns: the event type,
    /// then the others in schema order but the user, the time and an instrumented session id;
    /// none when the output does not depend on their order.
    ties: Vec<usize>,
    /// For `sessions`: where its columns come from.
    sessions: Option<SessionsLayout>,
    /// Where each event's own timeout is, when `sessionlake.gap_column` is set.
    gaps: Option<EventGaps>,
    /// Whether entries carry a session id (the instrumented modes), and so spilled rows.
    instrumented: bool,
}

impl Layout {
    fn new(
        input: &Schema,
        columns: &BoundColumns,
        rules: &SessionRules,
        output: SessionOutput,
        schema: SchemaRef,
    ) -> Result<Self> {
        let instrumented = rules.mode.is_instrumented();
        let session_key = |c: usize| instrumented && Some(c) == columns.session_id;
        let active_only = output == SessionOutput::Sessions;
        // `sessions` depends on the order of tied events only through the first and last
        // values it returns and through per-event timeouts; without those it keeps no column
        // to order them by
        let returns_event_types = columns.returns_event_types && columns.event_type.is_some();
        let ordered = !active_only
            || returns_event_types
            || !columns.properties.is_empty()
            || columns.gap.is_some();
        // the counted event types are kept as flags, not as the event type
        let read_for_sessions = |c: usize| {
            Some(c) == columns.gap
                || columns.properties.contains(&c)
                || columns.reported.as_ref().is_some_and(|(r, _)| *r == c)
                || (Some(c) == columns.event_type && columns.reported.is_some())
        };
        let kept: Vec<usize> = (0..input.fields().len())
            .filter(|&c| {
                // `sessions` needs no user, time or session id of a row: they are in its
                // entry; but a per-event timeout is read from the row, whichever column it is
                !active_only
                    || read_for_sessions(c)
                    || (ordered && c != columns.user && c != columns.time && !session_key(c))
            })
            .collect();
        let kept_index = |c: usize| -> Result<usize> {
            match kept.binary_search(&c) {
                Ok(i) => Ok(i),
                Err(_) => internal_err!("sessionize: column {c} is not kept"),
            }
        };
        let mut ties = Vec::new();
        if ordered {
            if let Some(event_type) = columns.event_type {
                ties.push(kept_index(event_type)?);
            }
            for c in 0..input.fields().len() {
                if c != columns.user
                    && c != columns.time
                    && Some(c) != columns.event_type
                    && !session_key(c)
                {
                    ties.push(kept_index(c)?);
                }
            }
        }
        let sessions = match output {
            SessionOutput::Events => None,
            SessionOutput::Sessions => Some(SessionsLayout {
                schema,
                unit: columns.unit,
                event_type: columns
                    .event_type
                    .filter(|c| kept.binary_search(c).is_ok())
                    .map(kept_index)
                    .transpose()?,
                returns_event_types,
                properties: columns
                    .properties
                    .iter()
                    .map(|&p| kept_index(p))
                    .collect::<Result<_>>()?,
                reported: match &columns.reported {
                    Some((column, event_type)) => Some((kept_index(*column)?, event_type.clone())),
                    None => None,
                },
                counted: (kept.len()..kept.len() + columns.counted.len()).collect(),
            }),
        };
        let gaps = match columns.gap {
            Some(gap) => Some(EventGaps {
                column: kept_index(gap)?,
                name: input.field(gap).name().clone(),
            }),
            None => None,
        };
        let counted = match (columns.event_type, columns.counted.is_empty()) {
            (_, true) => None,
            (Some(event_type), false) => Some((event_type, columns.counted.clone())),
            (None, false) => {
                return internal_err!("sessions: event types counted without an event type");
            }
        };
        let mut kept_fields: Vec<Field> = kept.iter().map(|&c| input.field(c).clone()).collect();
        kept_fields.extend(
            (0..columns.counted.len())
                .map(|i| Field::new(format!("__sessionlake_count_{i}"), DataType::Boolean, false)),
        );
        Ok(Self {
            kept,
            kept_schema: Arc::new(Schema::new(kept_fields)),
            counted,
            active_only,
            ties,
            sessions,
            gaps,
            instrumented,
        })
    }

    /// What is buffered of the rows of an input `batch` ([`Self::kept_schema`]).
    fn kept_rows(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = self
            .kept
            .iter()
            .map(|&c| Arc::clone(batch.column(c)))
            .collect();
        if let Some((event_type, counted)) = &self.counted {
            for event_type_counted in counted {
                let flags = event_type_flags(batch.column(*event_type), event_type_counted)?;
                columns.push(Arc::new(BooleanArray::new(flags, None)));
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.kept_schema),
            columns,
            &options,
        )?)
    }

    /// How the partition's buffered rows keep their strings (see [`crate::rows`]): `sessions`
    /// interns those that repeat; `sessionize` keeps its rows as they are, since it returns
    /// them.
    fn strings(&self) -> Result<Strings> {
        if self.active_only {
            Strings::interning(&self.kept_schema)
        } else {
            Ok(Strings::none(&self.kept_schema))
        }
    }

    /// The columns of a spilled row before the kept ones.
    fn spill_keys(&self) -> usize {
        if self.instrumented { 3 } else { 2 }
    }

    /// The schema of spilled rows: dense user id, time, the session id in the instrumented
    /// modes, then the kept columns in `stored` form (see [`Strings::spilled`]).
    fn spill_schema(&self, stored: &Schema) -> SchemaRef {
        let mut fields = vec![
            Arc::new(Field::new("__sessionlake_user", DataType::UInt32, false)),
            Arc::new(Field::new("__sessionlake_time", DataType::Int64, false)),
        ];
        if self.instrumented {
            fields.push(Arc::new(Field::new(
                "__sessionlake_session",
                DataType::Int64,
                false,
            )));
        }
        fields.extend(stored.fields().iter().cloned());
        Arc::new(Schema::new(fields))
    }

    /// A run of spilled rows of `schema` ([`Self::spill_schema`]): their user ids, times,
    /// session ids (only in the instrumented modes) and stored kept columns (whose narrower
    /// ids are widened to the schema's).
    fn spill_run(
        schema: &SchemaRef,
        users: ArrayRef,
        times: ArrayRef,
        sessions: Option<ArrayRef>,
        kept: impl IntoIterator<Item = ArrayRef>,
    ) -> Result<RecordBatch> {
        let mut columns = vec![users, times];
        columns.extend(sessions);
        let keys = columns.len();
        for (column, field) in kept.into_iter().zip(&schema.fields()[keys..]) {
            columns.push(if column.data_type() == field.data_type() {
                column
            } else {
                cast(&column, field.data_type())?
            });
        }
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

/// Buffers a partition, then emits its output.
fn run<S: SessionId>(task: Arc<PartitionTask>, input: SendableRecordBatchStream) -> BatchStream {
    Box::pin(
        futures::stream::once(async move {
            let buffered = task.buffer::<S>(input).await?;
            let emitter = Emitter::new(task, buffered)?;
            Ok::<_, DataFusionError>(futures::stream::try_unfold(
                emitter,
                |mut emitter| async move {
                    Ok(emitter.next_batch().await?.map(|batch| (batch, emitter)))
                },
            ))
        })
        .try_flatten(),
    )
}

/// The work of one partition.
struct PartitionTask {
    columns: BoundColumns,
    rules: SessionRules,
    output: SessionOutput,
    /// The operator's output schema.
    schema: SchemaRef,
    layout: Arc<Layout>,
    batch_size: usize,
    reservation: MemoryReservation,
    /// The most the partition buffers before it spills: an even share of a bounded pool
    /// between the operator's partitions. With a first-come pool, a partition still buffering
    /// could otherwise take the whole budget, and one that has spilled could not load a
    /// bucket back.
    buffer_share: usize,
    /// Spill files of user buckets.
    buckets: BucketFiles,
    /// The spill file of `sessionize`'s rows in no session (the input's schema).
    passthrough: SpillManager,
    baseline: BaselineMetrics,
}

/// What spill files of user buckets are made with. Their schema ([`Layout::spill_schema`])
/// is known once the partition's first rows are stored, so their [`SpillManager`] is made by
/// the partition's [`SpillWriter`].
struct BucketFiles {
    env: Arc<RuntimeEnv>,
    metrics: SpillMetrics,
    compression: SpillCompression,
}

impl BucketFiles {
    fn manager(&self, schema: SchemaRef) -> SpillManager {
        SpillManager::new(Arc::clone(&self.env), self.metrics.clone(), schema)
            .with_compression_type(self.compression)
    }
}

/// What one input batch contributes: which rows are active, and their keys.
struct Keys<'a> {
    mask: BooleanBuffer,
    users: &'a [usize],
    times: &'a [i64],
    sessions: Option<Int64Array>,
}

/// A partition's input, once read.
struct Buffered<S> {
    units: VecDeque<Unit<S>>,
    users: UserIds,
    /// Every distinct string of the buffered rows.
    strings: StringValues,
    /// What reads the spilled buckets back, if the partition spilled.
    buckets: Option<SpillManager>,
}

/// A part of the partition sessionized on its own: every event of its users.
enum Unit<S> {
    Memory(Box<Buffer<S>>),
    Bucket(Arc<dyn SpillFile>),
    /// `sessionize`'s spilled rows in no session.
    Passthrough(Arc<dyn SpillFile>),
}

impl PartitionTask {
    /// Reads the whole input: in memory while the pool allows it, else into spill buckets.
    async fn buffer<S: SessionId>(
        &self,
        mut input: SendableRecordBatchStream,
    ) -> Result<Buffered<S>> {
        let mut users = UserIds::new();
        let mut strings = self.layout.strings()?;
        let mut buffer = Buffer::<S>::new(Arc::clone(&self.layout));
        let mut spill: Option<SpillWriter> = None;
        while let Some(batch) = input.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            // users seen before this batch: enough to judge the first block's columns by
            strings.set_users(users.len());
            let keys = self.keys(&batch, &mut users)?;
            if let Some(writer) = &mut spill {
                writer.spill_input(self, &batch, &keys, &mut strings)?;
                self.hold_while_spilling(&users, &strings, writer)?;
                continue;
            }
            buffer.add_input(&batch, &keys, &mut strings)?;
            let needed = buffer.size() + users.size() + strings.size() + self.working_size(&buffer);
            if needed <= self.buffer_share {
                match self.reservation.try_resize(needed) {
                    Ok(()) => continue,
                    Err(e) if !is_resources_exhausted(&e) => return Err(e),
                    Err(_) => {}
                }
            }
            // over the partition's share, or the pool is taken: spill from now on
            let mut writer = SpillWriter::new(self.output, self.reservation.size());
            writer.spill_buffer(
                self,
                std::mem::replace(&mut buffer, Buffer::new(Arc::clone(&self.layout))),
                &mut strings,
            )?;
            self.hold_while_spilling(&users, &strings, &mut writer)?;
            spill = Some(writer);
        }
        let mut units = VecDeque::new();
        let mut buckets = None;
        match spill {
            Some(writer) => {
                let files = writer.finish()?;
                units.extend(files.passthrough.map(Unit::Passthrough));
                units.extend(files.buckets.into_iter().map(Unit::Bucket));
                buckets = files.manager;
            }
            None => {
                buffer.finish(Some(&mut strings))?;
                if buffer.rows.num_rows() > 0 {
                    units.push_back(Unit::Memory(Box::new(buffer)));
                }
            }
        }
        Ok(Buffered {
            units,
            users,
            strings: strings.freeze()?,
            buckets,
        })
    }

    /// The active rows of `batch` and their keys (interning the users).
    fn keys<'a>(&self, batch: &'a RecordBatch, users: &'a mut UserIds) -> Result<Keys<'a>> {
        let mask = active_mask(batch, &self.columns, &self.rules)?;
        let times = timestamp_ticks("sessionize: time column", batch.column(self.columns.time))?;
        let sessions = match self.columns.session_id {
            Some(i) if self.rules.mode.is_instrumented() => {
                Some(session_id_values(batch.column(i))?)
            }
            _ => None,
        };
        let users = users.intern(batch.column(self.columns.user))?;
        Ok(Keys {
            mask,
            users,
            times,
            sessions,
        })
    }

    /// Working memory sessionizing `buffer` will need beyond it.
    fn working_size<S: SessionId>(&self, buffer: &Buffer<S>) -> usize {
        // one piece sorted at a time (pieces are even: users are dealt to them in turn)
        let piece = 2 * buffer.pieces.len() / PIECES * (size_of::<Entry<S>>() + 8);
        match self.output {
            // rows' sessions; sessions are far fewer than events, one per two at most is
            // assumed here and checked when they are recorded
            SessionOutput::Events => {
                piece + EventSessions::size_for(buffer.next_row(), buffer.pieces.len() / 2)
            }
            SessionOutput::Sessions => piece,
        }
    }

    /// Accounts `needed` bytes to the partition once it has spilled (it cannot spill more to
    /// free them): asked of the pool, or, when the pool refuses, taken all the same if they are
    /// within the partition's share ([`Self::buffer_share`]), for the pool can be over its
    /// limit through no fault of the partition's: the shuffle before the operator is never
    /// refused memory ([`crate::memory`]) and can hold far more than a share while the
    /// operator writes and reads its spill files. The pool's other consumers see the memory
    /// taken and spill. Past the share, the pool's refusal is returned.
    fn claim(&self, needed: usize) -> Result<()> {
        match self.reservation.try_resize(needed) {
            Err(e) if is_resources_exhausted(&e) && needed <= self.buffer_share => {
                self.reservation.resize(needed);
                Ok(())
            }
            other => other,
        }
    }

    /// Holds the memory the partition keeps while it spills: its user ids, its distinct
    /// strings and staged runs.
    fn hold_while_spilling(
        &self,
        users: &UserIds,
        strings: &Strings,
        writer: &mut SpillWriter,
    ) -> Result<()> {
        let held = users.size() + strings.size();
        if self
            .reservation
            .try_resize(held + writer.staged_size)
            .is_ok()
        {
            return Ok(());
        }
        writer.write_all()?;
        let needed = held + writer.staged_size;
        self.claim(needed).map_err(|e| {
            DataFusionError::ResourcesExhausted(format!(
                "sessionize: the user ids and distinct strings of a partition ({} users, \
                 {needed} bytes) do not fit in memory even when its events spill; raise the \
                 memory limit or datafusion.execution.target_partitions ({})",
                users.len(),
                e.strip_backtrace()
            ))
        })
    }

    /// Reads one spilled bucket back into memory.
    async fn load<S: SessionId>(
        &self,
        buckets: &SpillManager,
        file: Arc<dyn SpillFile>,
        held: usize,
    ) -> Result<Buffer<S>> {
        let mut stream = buckets.read_spill_as_stream(file, None)?;
        let mut buffer = Buffer::<S>::new(Arc::clone(&self.layout));
        while let Some(batch) = stream.next().await {
            buffer.add_spilled(&batch?)?;
            let needed = held + buffer.size() + self.working_size(&buffer);
            if let Err(e) = self.claim(needed) {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "sessionize: 1/{SPILL_BUCKETS} of a partition's users ({} rows so far, \
                     {needed} bytes to sessionize) does not fit in memory; raise the memory \
                     limit or datafusion.execution.target_partitions ({})",
                    buffer.next_row(),
                    e.strip_backtrace()
                )));
            }
        }
        buffer.finish(None)?;
        Ok(buffer)
    }
}

/// Rows and entries of a partition or a spilled bucket, in compact form.
struct Buffer<S> {
    layout: Arc<Layout>,
    rows: RowStore,
    /// `sessionize`: the active rows of each buffered batch.
    masks: Vec<BooleanBuffer>,
    pieces: Pieces<S>,
    /// `sessions`: rows not yet gathered into a block of [`BLOCK_ROWS`]: as kept of input
    /// batches, or in stored form when read back from a spill file.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pending_size: usize,
}

impl<S: SessionId> Buffer<S> {
    fn new(layout: Arc<Layout>) -> Self {
        Self {
            layout,
            rows: RowStore::new(),
            masks: Vec::new(),
            pieces: Pieces::default(),
            pending: Vec::new(),
            pending_rows: 0,
            pending_size: 0,
        }
    }

    /// The number the next buffered row gets.
    fn next_row(&self) -> usize {
        self.rows.num_rows() + self.pending_rows
    }

    /// Bytes held, for memory accounting.
    fn size(&self) -> usize {
        self.rows.size()
            + self.pending_size
            + self.pieces.size()
            + self.masks.iter().map(|m| m.len() / 8).sum::<usize>()
    }

    /// The first row number of `rows` more rows, if rows can still be numbered.
    fn first_row_of(&self, rows: usize) -> Result<u32> {
        let first = self.next_row();
        if first + rows > u32::MAX as usize {
            return datafusion::common::exec_err!(
                "sessionize: a partition holds more than {} rows, the most a partition can \
                 sessionize; raise datafusion.execution.target_partitions",
                u32::MAX
            );
        }
        Ok(first as u32)
    }

    /// Buffers an input batch, its strings stored by the partition's `strings`.
    fn add_input(
        &mut self,
        batch: &RecordBatch,
        keys: &Keys<'_>,
        strings: &mut Strings,
    ) -> Result<()> {
        let first = self.first_row_of(batch.num_rows())?;
        let sessions = keys.sessions.as_ref().map(|s| s.values().as_ref());
        let entry = |row: usize, number: u32| Entry {
            time: keys.times[row],
            user: keys.users[row] as u32,
            row: number,
            session: S::read(sessions, row),
        };
        if self.layout.active_only {
            let active = keys.mask.count_set_bits();
            let rows = keys.mask.set_indices().zip(first..);
            self.pieces
                .push_all(rows.map(|(row, number)| entry(row, number)));
            if active > 0 {
                let kept = self.layout.kept_rows(batch)?;
                let kept = if active == batch.num_rows() {
                    kept
                } else {
                    filter_record_batch(&kept, &BooleanArray::new(keys.mask.clone(), None))?
                };
                self.add_block_rows(kept, Some(strings))?;
            }
        } else {
            let rows = keys.mask.set_indices();
            self.pieces
                .push_all(rows.map(|row| entry(row, first + row as u32)));
            // copied out of the scanned pages, which several batches share and which would be
            // held (and counted) whole for the few strings each batch points at
            self.rows.push(batch)?;
            self.masks.push(keys.mask.clone());
        }
        Ok(())
    }

    /// Buffers a batch of spilled rows (all active, in stored form).
    fn add_spilled(&mut self, batch: &RecordBatch) -> Result<()> {
        let first = self.first_row_of(batch.num_rows())?;
        let users = batch.column(0).as_primitive::<UInt32Type>().values();
        let times = batch.column(1).as_primitive::<Int64Type>().values();
        let sessions = self.layout.instrumented.then(|| {
            batch
                .column(2)
                .as_primitive::<Int64Type>()
                .values()
                .as_ref()
        });
        self.pieces.push_all((0..batch.num_rows()).map(|row| Entry {
            time: times[row],
            user: users[row],
            row: first + row as u32,
            session: S::read(sessions, row),
        }));
        let keys = self.layout.spill_keys();
        let kept = batch.project(&(keys..batch.num_columns()).collect::<Vec<_>>())?;
        if self.layout.active_only {
            self.add_block_rows(kept, None)
        } else {
            self.masks.push(BooleanBuffer::new_set(kept.num_rows()));
            self.rows.push(&kept)
        }
    }

    /// `sessions`: gathers kept rows into blocks, whose strings `strings` stores; rows read
    /// back from a spill file are stored already (`None`).
    fn add_block_rows(&mut self, kept: RecordBatch, strings: Option<&mut Strings>) -> Result<()> {
        self.pending_rows += kept.num_rows();
        self.pending_size += get_record_batch_memory_size(&kept);
        self.pending.push(kept);
        if self.pending_rows >= BLOCK_ROWS {
            self.flush_pending(strings)?;
        }
        Ok(())
    }

    fn flush_pending(&mut self, strings: Option<&mut Strings>) -> Result<()> {
        let Some(first) = self.pending.first() else {
            return Ok(());
        };
        let block = concat_batches(&first.schema(), &self.pending)?;
        self.pending.clear();
        self.pending_rows = 0;
        self.pending_size = 0;
        match strings {
            Some(strings) => self.rows.push(&strings.store(&block)?),
            None => self.rows.push(&block),
        }
    }

    /// Ends buffering: every row numbered is in [`Self::rows`] (in stored form; see
    /// [`Self::add_block_rows`] for `strings`).
    fn finish(&mut self, strings: Option<&mut Strings>) -> Result<()> {
        self.pieces.release_scratch();
        self.flush_pending(strings)
    }
}

/// A spill file being written: DataFusion's in-progress file (whose type is not public)
/// behind one closure that appends a run, or finishes the file when given none.
struct SpillRun(Box<AppendOrFinish>);

type AppendOrFinish = dyn FnMut(Option<&RecordBatch>) -> Result<Option<Arc<dyn SpillFile>>> + Send;

impl SpillRun {
    fn new(manager: &SpillManager) -> Result<Self> {
        let mut file = manager.create_in_progress_file("SessionizeExec spill")?;
        Ok(Self(Box::new(move |run| match run {
            Some(batch) => file.append_batch(batch).map(|_| None),
            None => file.finish(),
        })))
    }

    fn append(&mut self, run: &RecordBatch) -> Result<()> {
        (self.0)(Some(run)).map(|_| ())
    }

    fn finish(mut self) -> Result<Option<Arc<dyn SpillFile>>> {
        (self.0)(None)
    }
}

/// Writes a spilling partition's rows into user buckets.
///
/// Rows are staged as runs ordered by bucket ([`StagedRun`]): an input batch becomes one run
/// through one counting sort of its rows and one `take` per column, not a small batch per
/// bucket and column. When enough rows are staged for every bucket to get some
/// [`SPILL_RUN_ROWS`] rows (or the staged runs outgrow their budget), each bucket's ranges of
/// the staged runs are concatenated and appended to its file as one run, and the staged runs are
/// dropped.
struct SpillWriter {
    /// The buckets' files, made with the first run ([`BucketFiles`]): their schema, that of
    /// every run ([`Layout::spill_schema`]), is known then.
    manager: Option<SpillManager>,
    files: Vec<Option<SpillRun>>,
    staged: Vec<StagedRun>,
    staged_rows: usize,
    /// The staged runs' memory, all of which they hold until they are written.
    staged_size: usize,
    /// `sessionize`: its rows in no session, written as they are.
    passthrough: Option<SpillRun>,
    /// Staged bytes past which the staged rows are written, whatever their count: a quarter of
    /// what the partition held when it began to spill.
    stage_limit: usize,
    /// Reused per input batch: the active rows ordered by bucket.
    order: Vec<u32>,
    /// Reused per input batch: where each bucket's rows start in `order` (then its end).
    starts: Vec<usize>,
    output: SessionOutput,
}

/// Rows staged for the bucket files: bucket `b`'s rows are `batch`'s rows
/// `ends[b - 1]..ends[b]` (from 0 for the first bucket).
struct StagedRun {
    batch: RecordBatch,
    ends: Box<[usize; SPILL_BUCKETS]>,
}

impl StagedRun {
    fn rows_of(&self, bucket: usize) -> (usize, usize) {
        let start = if bucket == 0 {
            0
        } else {
            self.ends[bucket - 1]
        };
        (start, self.ends[bucket] - start)
    }
}

impl SpillWriter {
    fn new(output: SessionOutput, held: usize) -> Self {
        Self {
            stage_limit: (held / 4).max(MIN_STAGE_LIMIT),
            manager: None,
            files: (0..SPILL_BUCKETS).map(|_| None).collect(),
            staged: Vec::new(),
            staged_rows: 0,
            staged_size: 0,
            passthrough: None,
            order: Vec::new(),
            starts: vec![0; SPILL_BUCKETS + 1],
            output,
        }
    }

    fn bucket_of(user: u32) -> usize {
        user as usize % SPILL_BUCKETS
    }

    /// The schema of runs, whose kept columns are spilled as `strings` says (see
    /// [`Strings::spilled`]); the buckets' files are made with it.
    fn schema(&mut self, task: &PartitionTask, strings: &Strings) -> Result<SchemaRef> {
        let manager = match &mut self.manager {
            Some(manager) => manager,
            None => {
                let schema = task.layout.spill_schema(strings.spilled()?.as_ref());
                self.manager.insert(task.buckets.manager(schema))
            }
        };
        Ok(Arc::clone(manager.schema()))
    }

    /// Spills everything `buffer` holds, in stored form.
    fn spill_buffer<S: SessionId>(
        &mut self,
        task: &PartitionTask,
        mut buffer: Buffer<S>,
        strings: &mut Strings,
    ) -> Result<()> {
        buffer.finish(Some(strings))?;
        let layout = &task.layout;
        let Some(stored) = buffer.rows.batches().first().map(|b| b.schema()) else {
            return Ok(());
        };
        let schema = self.schema(task, strings)?;
        let mut positions: Vec<Position> = Vec::new();
        for piece in 0..PIECES {
            let chunks = buffer.pieces.take(piece);
            let lens: Vec<usize> = chunks.iter().map(Vec::len).collect();
            for run in gather_runs(&lens, SPILL_GATHER_ROWS) {
                let part = || chunks[run.clone()].iter().flatten();
                let users = UInt32Array::from_iter_values(part().map(|e| e.user));
                let times = Int64Array::from_iter_values(part().map(|e| e.time));
                let sessions = layout.instrumented.then(|| {
                    Arc::new(Int64Array::from_iter_values(
                        part().map(|e| e.session.value()),
                    )) as ArrayRef
                });
                positions.clear();
                positions.extend(part().map(|e| Some(buffer.rows.locate(e.row))));
                let kept = (0..stored.fields().len())
                    .map(|column| buffer.rows.gather_stored(column, &positions))
                    .collect::<Result<Vec<_>>>()?;
                let batch =
                    Layout::spill_run(&schema, Arc::new(users), Arc::new(times), sessions, kept)?;
                // a piece's users are all in one bucket
                let bucket = piece % SPILL_BUCKETS;
                let mut ends = Box::new([0; SPILL_BUCKETS]);
                ends[bucket..].fill(batch.num_rows());
                self.stage(StagedRun { batch, ends })?;
            }
        }
        for (batch, mask) in buffer.rows.batches().iter().zip(&buffer.masks) {
            self.pass_through(task, batch, mask)?;
        }
        Ok(())
    }

    /// Spills one input batch, its strings stored by `strings`.
    fn spill_input(
        &mut self,
        task: &PartitionTask,
        batch: &RecordBatch,
        keys: &Keys<'_>,
        strings: &mut Strings,
    ) -> Result<()> {
        // a counting sort of the active rows by bucket
        self.starts.fill(0);
        for row in keys.mask.set_indices() {
            self.starts[Self::bucket_of(keys.users[row] as u32) + 1] += 1;
        }
        for bucket in 0..SPILL_BUCKETS {
            self.starts[bucket + 1] += self.starts[bucket];
        }
        let mut ends = Box::new([0; SPILL_BUCKETS]);
        ends.copy_from_slice(&self.starts[1..]);
        self.order.clear();
        self.order.resize(ends[SPILL_BUCKETS - 1], 0);
        for row in keys.mask.set_indices() {
            let next = &mut self.starts[Self::bucket_of(keys.users[row] as u32)];
            self.order[*next] = row as u32;
            *next += 1;
        }
        if !self.order.is_empty() {
            let kept = strings.store(&task.layout.kept_rows(batch)?)?;
            let schema = self.schema(task, strings)?;
            let order = UInt32Array::from(std::mem::take(&mut self.order));
            let rows = order.values();
            let users =
                UInt32Array::from_iter_values(rows.iter().map(|&r| keys.users[r as usize] as u32));
            let times = Int64Array::from_iter_values(rows.iter().map(|&r| keys.times[r as usize]));
            let sessions = match &keys.sessions {
                Some(sessions) => Some(take(sessions, &order, None)?),
                None => None,
            };
            let run = Layout::spill_run(
                &schema,
                Arc::new(users),
                Arc::new(times),
                sessions,
                take_arrays(kept.columns(), &order, None)?,
            )?;
            // the permutation's buffer is reused if nothing else holds it
            let (_, values, _) = order.into_parts();
            self.order = values.into_inner().into_vec().unwrap_or_default();
            self.stage(StagedRun { batch: run, ends })?;
        }
        self.pass_through(task, batch, &keys.mask)
    }

    /// `sessionize`: writes the rows of `batch` that are in no session as they are.
    fn pass_through(
        &mut self,
        task: &PartitionTask,
        batch: &RecordBatch,
        mask: &BooleanBuffer,
    ) -> Result<()> {
        if self.output != SessionOutput::Events || mask.count_set_bits() == batch.num_rows() {
            return Ok(());
        }
        let inactive = filter_record_batch(batch, &BooleanArray::new(!mask, None))?;
        let file = match &mut self.passthrough {
            Some(file) => file,
            None => self.passthrough.insert(SpillRun::new(&task.passthrough)?),
        };
        file.append(&inactive)
    }

    fn stage(&mut self, run: StagedRun) -> Result<()> {
        self.staged_rows += run.batch.num_rows();
        self.staged_size += get_record_batch_memory_size(&run.batch);
        self.staged.push(run);
        if self.staged_rows >= SPILL_RUN_ROWS * SPILL_BUCKETS || self.staged_size > self.stage_limit
        {
            self.write_all()?;
        }
        Ok(())
    }

    /// Appends each bucket's staged rows to its file as one run, and drops the staged runs.
    fn write_all(&mut self) -> Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let Some(manager) = &self.manager else {
            return internal_err!("sessionize: runs staged before their schema was known");
        };
        let mut slices = Vec::with_capacity(self.staged.len());
        for bucket in 0..SPILL_BUCKETS {
            slices.clear();
            slices.extend(self.staged.iter().filter_map(|staged| {
                let (start, len) = staged.rows_of(bucket);
                (len > 0).then(|| staged.batch.slice(start, len))
            }));
            if slices.is_empty() {
                continue;
            }
            let run = concat_batches(manager.schema(), &slices)?;
            let file = match &mut self.files[bucket] {
                Some(file) => file,
                None => self.files[bucket].insert(SpillRun::new(manager)?),
            };
            file.append(&run)?;
        }
        self.staged.clear();
        self.staged_rows = 0;
        self.staged_size = 0;
        Ok(())
    }

    /// Writes what is staged and closes the files.
    fn finish(mut self) -> Result<SpilledFiles> {
        self.write_all()?;
        let mut buckets = Vec::with_capacity(SPILL_BUCKETS);
        for bucket in 0..SPILL_BUCKETS {
            if let Some(file) = self.files[bucket].take() {
                buckets.extend(file.finish()?);
            }
        }
        let passthrough = match self.passthrough.take() {
            Some(file) => file.finish()?,
            None => None,
        };
        Ok(SpilledFiles {
            buckets,
            passthrough,
            manager: self.manager,
        })
    }
}

/// Consecutive chunks of `lens` entries grouped into runs of whole chunks of at most `cap`
/// entries together, in order; a chunk larger than `cap` is a run of its own.
fn gather_runs(lens: &[usize], cap: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut first = 0;
    while first < lens.len() {
        let mut entries = lens[first];
        let mut end = first + 1;
        while end < lens.len() && entries + lens[end] <= cap {
            entries += lens[end];
            end += 1;
        }
        runs.push(first..end);
        first = end;
    }
    runs
}

/// What a spilled partition left on disk.
struct SpilledFiles {
    /// A file per non-empty user bucket.
    buckets: Vec<Arc<dyn SpillFile>>,
    /// `sessionize`: its rows in no session.
    passthrough: Option<Arc<dyn SpillFile>>,
    /// What reads the buckets back (none if no row was spilled).
    manager: Option<SpillManager>,
}

/// The unit being emitted.
enum Current<S> {
    Sessionizing(Box<Sessionizing<S>>),
    Passthrough(SendableRecordBatchStream),
}

/// A unit being sessionized piece by piece, then (`sessionize`) emitted batch by batch.
struct Sessionizing<S> {
    buffer: Buffer<S>,
    next_piece: usize,
    /// `sessions`: how many sessions are collected before a batch is built from them.
    flush_at: usize,
    /// `sessionize`: each row's session.
    events: Option<EventSessions>,
    next_batch: usize,
}

/// Emits a buffered partition's output, one unit and one piece at a time.
struct Emitter<S> {
    task: Arc<PartitionTask>,
    units: VecDeque<Unit<S>>,
    /// `sessions`: every user by dense id.
    users: Option<ArrayRef>,
    /// The partition's distinct strings, which every unit reads its rows through.
    strings: Arc<StringValues>,
    /// What reads spilled buckets back.
    buckets: Option<SpillManager>,
    current: Option<Current<S>>,
    scratch: Scratch<S>,
    session_rows: SessionRows,
    ready: VecDeque<RecordBatch>,
    /// Memory held while emitting beyond the current unit (the users and strings).
    held: usize,
}

impl<S: SessionId> Emitter<S> {
    fn new(task: Arc<PartitionTask>, buffered: Buffered<S>) -> Result<Self> {
        let Buffered {
            units,
            users,
            strings,
            buckets,
        } = buffered;
        let users = match task.output {
            SessionOutput::Sessions => users.into_values()?,
            SessionOutput::Events => None,
        };
        let held = users.as_ref().map_or(0, |u| u.get_array_memory_size()) + strings.size();
        Ok(Self {
            task,
            units,
            users,
            strings: Arc::new(strings),
            buckets,
            current: None,
            scratch: Scratch::default(),
            session_rows: SessionRows::default(),
            ready: VecDeque::new(),
            held,
        })
    }

    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                self.task.baseline.record_output(batch.num_rows());
                return Ok(Some(batch));
            }
            let task = Arc::clone(&self.task);
            if self.current.is_none() {
                let Some(unit) = self.units.pop_front() else {
                    task.reservation.free();
                    return Ok(None);
                };
                self.current = Some(match unit {
                    Unit::Memory(buffer) => self.start(*buffer),
                    Unit::Bucket(file) => {
                        let Some(buckets) = &self.buckets else {
                            return internal_err!("sessionize: a spilled bucket without its files");
                        };
                        let buffer = task.load::<S>(buckets, file, self.held).await?;
                        self.start(buffer)
                    }
                    Unit::Passthrough(file) => {
                        Current::Passthrough(task.passthrough.read_spill_as_stream(file, None)?)
                    }
                });
            }
            match &mut self.current {
                None => {}
                Some(Current::Passthrough(stream)) => match stream.next().await {
                    Some(batch) => {
                        self.ready
                            .push_back(without_sessions(&batch?, &task.schema)?);
                    }
                    None => self.current = None,
                },
                Some(Current::Sessionizing(unit)) => {
                    let Sessionizing {
                        buffer,
                        next_piece,
                        flush_at,
                        events,
                        next_batch,
                    } = unit.as_mut();
                    if *next_piece < PIECES {
                        // a piece is a few milliseconds of work: let the runtime cancel the
                        // query or report progress between pieces
                        tokio::task::yield_now().await;
                        let piece = *next_piece;
                        *next_piece += 1;
                        let chunks = buffer.pieces.take(piece);
                        if chunks.is_empty() {
                            continue;
                        }
                        let timer = task.baseline.elapsed_compute().timer();
                        let ties = TieBreak {
                            rows: &buffer.rows,
                            columns: &task.layout.ties,
                        };
                        find_sessions(
                            &chunks,
                            &task.rules,
                            &ties,
                            task.layout.gaps.as_ref(),
                            &mut self.scratch,
                        )?;
                        drop(chunks);
                        match (events.as_mut(), &task.layout.sessions) {
                            (Some(events), _) => {
                                events.record(&self.scratch.entries, &self.scratch.sessions)
                            }
                            (None, Some(layout)) => {
                                self.session_rows.push(
                                    &self.scratch.entries,
                                    &self.scratch.sessions,
                                    &buffer.rows,
                                    layout,
                                )?;
                                if self.session_rows.len() >= *flush_at {
                                    let users = self.users.as_ref();
                                    let batch = finish_rows(
                                        &mut self.session_rows,
                                        &buffer.rows,
                                        users,
                                        layout,
                                    )?;
                                    self.ready.extend(split(&batch, task.batch_size));
                                }
                            }
                            (None, None) => {
                                return internal_err!("sessionize: no output layout");
                            }
                        }
                        timer.done();
                        // accounted, not asked for: the memory is held already, and the unit
                        // was admitted with room for sorting an average piece, so a larger
                        // piece (one user with most events) must not fail the query half way
                        // through its output; the pool's other consumers see it and spill
                        let needed = self.held
                            + buffer.size()
                            + self.scratch.size()
                            + events.as_ref().map_or(0, EventSessions::size);
                        task.reservation.resize(needed);
                    } else if let Some(events) = events
                        && *next_batch < buffer.rows.batches().len()
                    {
                        let timer = task.baseline.elapsed_compute().timer();
                        let i = *next_batch;
                        *next_batch += 1;
                        // emitted rows are not held any longer
                        let batch = buffer.rows.take_batch(i);
                        let mut columns = batch.columns().to_vec();
                        columns
                            .extend(events.columns(buffer.rows.batch_rows(i), task.columns.unit)?);
                        self.ready
                            .push_back(RecordBatch::try_new(Arc::clone(&task.schema), columns)?);
                        timer.done();
                    } else {
                        if let (false, Some(layout)) =
                            (self.session_rows.is_empty(), &task.layout.sessions)
                        {
                            let batch = finish_rows(
                                &mut self.session_rows,
                                &buffer.rows,
                                self.users.as_ref(),
                                layout,
                            )?;
                            self.ready.extend(split(&batch, task.batch_size));
                        }
                        self.current = None;
                        task.reservation.resize(self.held);
                    }
                }
            }
        }
    }

    fn start(&self, mut buffer: Buffer<S>) -> Current<S> {
        buffer.rows.read_through(Arc::clone(&self.strings));
        let events = match self.task.output {
            SessionOutput::Events => Some(EventSessions::new(buffer.rows.num_rows())),
            SessionOutput::Sessions => None,
        };
        // Building a batch gathers from every block of the unit (and merges the blocks'
        // dictionaries), so batches are built a bounded number of times per unit, not once per
        // `batch_size` sessions; the batch is then sliced.
        let flush_at = (buffer.pieces.len() / FLUSHES_PER_UNIT).max(self.task.batch_size);
        Current::Sessionizing(Box::new(Sessionizing {
            buffer,
            next_piece: 0,
            flush_at,
            events,
            next_batch: 0,
        }))
    }
}

/// The collected sessions as one batch.
fn finish_rows(
    rows: &mut SessionRows,
    store: &RowStore,
    users: Option<&ArrayRef>,
    layout: &SessionsLayout,
) -> Result<RecordBatch> {
    let Some(users) = users else {
        return internal_err!("sessionize: sessions without users");
    };
    rows.finish(store, users, layout)
}

/// `batch` in slices of at most `size` rows.
fn split(batch: &RecordBatch, size: usize) -> impl Iterator<Item = RecordBatch> + '_ {
    (0..batch.num_rows())
        .step_by(size)
        .map(move |offset| batch.slice(offset, size.min(batch.num_rows() - offset)))
}

/// Whether `error` says the memory pool is full (possibly wrapped in context).
fn is_resources_exhausted(error: &DataFusionError) -> bool {
    matches!(error.find_root(), DataFusionError::ResourcesExhausted(_))
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Checks that the runs cover every chunk once, in order, each within `cap` unless it is
    /// one chunk, and that no run could take the next chunk too.
    fn check_runs(lens: &[usize], cap: usize) -> Vec<Range<usize>> {
        let runs = gather_runs(lens, cap);
        let mut next = 0;
        for run in &runs {
            assert_eq!(run.start, next, "{lens:?} {runs:?}");
            assert!(run.end > run.start, "{lens:?} {runs:?}");
            let entries: usize = lens[run.clone()].iter().sum();
            assert!(entries <= cap || run.len() == 1, "{lens:?} {runs:?}");
            if run.end < lens.len() {
                assert!(entries + lens[run.end] > cap, "{lens:?} {runs:?}");
            }
            next = run.end;
        }
        assert_eq!(next, lens.len());
        runs
    }

    #[test]
    fn gather_runs_take_whole_chunks_up_to_the_cap() {
        assert_eq!(check_runs(&[], 10), Vec::<Range<usize>>::new());
        // exactly the cap stays one run; one entry more starts another
        assert_eq!(check_runs(&[4, 6], 10), vec![0..2]);
        assert_eq!(check_runs(&[4, 7], 10), vec![0..1, 1..2]);
        // a chunk over the cap is a run of its own
        assert_eq!(check_runs(&[3, 12, 2, 2], 10), vec![0..1, 1..2, 2..4]);
        assert_eq!(check_runs(&[8192; 300], SPILL_GATHER_ROWS).len(), 3);
        // generated lengths, from empty chunks to past the largest (8192 entries)
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        for cap in [1, 256, 5000, 8192, 20000] {
            let lens: Vec<usize> = (0..200).map(|_| rng.random_range(0..9000)).collect();
            check_runs(&lens, cap);
        }
    }
}
