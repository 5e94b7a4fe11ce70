//! `SessionizeExec`: the physical operator behind `sessionize('<table>')` and
//! `sessions('<table>')`.
//!
//! It asks the planner for its input hash-partitioned by user, so each partition holds every
//! event of its users and sessions can be found partition by partition, in parallel, with the
//! same result whatever the number of partitions. Each partition buffers its input under a
//! memory reservation, finds its sessions ([`crate::assign`]) and then emits either the input
//! batches with five session columns appended (`events`) or one row per session (`sessions`).
//!
//! When the memory pool refuses to hold a partition, the partition spills: its rows are split
//! by a hash of the user into [`SPILL_BUCKETS`] files on disk (a grace hash partitioning, so
//! each bucket still holds every event of its users) and the buckets are sessionized one at a
//! time. Only a bucket, not the partition, then has to fit in memory.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array, new_null_array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::{concat_batches, interleave, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::execution::SpillFile;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
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
use sessionlake_functions::time_unit::ticks_to_ms;

use crate::assign::{
    Assignment, SessionRules, WORKING_BYTES_PER_ROW, assign_sessions, gather, session_columns,
    session_time_type, timestamp_array,
};
use crate::columns::BoundColumns;

/// The names of the columns `sessionize` appends, in order.
pub const SESSION_COLUMNS: [&str; 5] = [
    "session_key",
    "session_start",
    "session_end",
    "session_index",
    "event_index",
];

/// What a [`SessionizeExec`] emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionOutput {
    /// Every input row with the five session columns appended.
    Events,
    /// One row per valid session.
    Sessions,
}

/// Finds sessions in an input that is hash-partitioned by user.
#[derive(Debug)]
pub struct SessionizeExec {
    input: Arc<dyn ExecutionPlan>,
    columns: BoundColumns,
    rules: SessionRules,
    output: SessionOutput,
    schema: SchemaRef,
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
        Self {
            schema,
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

/// One row per session: user, key, start, end, duration, event count, when the input has an
/// event type the first and last one, and the first and last non-NULL value of each property.
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
    if let Some(event_type) = columns.event_type {
        let data_type = input.field(event_type).data_type().clone();
        fields.push(Field::new("first_event_type", data_type.clone(), true));
        fields.push(Field::new("last_event_type", data_type, true));
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
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let spill_manager = SpillManager::new(
            context.runtime_env(),
            SpillMetrics::new(&self.metrics, partition),
            input.schema(),
        );
        let task = Arc::new(PartitionTask {
            columns: self.columns.clone(),
            rules: self.rules.clone(),
            output: self.output,
            schema: Arc::clone(&self.schema),
            batch_size: context.session_config().batch_size().max(1),
            reservation,
            spill_manager,
            baseline,
        });
        let batches = futures::stream::once(async move {
            let buffered = task.buffer(input).await?;
            Ok::<_, DataFusionError>(task.emit(buffered))
        })
        .try_flatten();
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

/// The seed of the bucket hash: not the repartitioning's own, whose hashes of the users of one
/// partition all agree modulo the partition count.
const SPILL_HASH_SEED: u64 = 0x5e55_10a4_e5b1_c7e7;

/// A partition's input, once read.
enum Buffered {
    /// Every batch, held under the reservation.
    InMemory(Vec<RecordBatch>),
    /// The files of each non-empty bucket; a bucket holds every event of its users.
    Spilled(Vec<Arc<dyn SpillFile>>),
}

type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

/// The work of one partition.
struct PartitionTask {
    columns: BoundColumns,
    rules: SessionRules,
    output: SessionOutput,
    schema: SchemaRef,
    batch_size: usize,
    reservation: MemoryReservation,
    spill_manager: SpillManager,
    baseline: BaselineMetrics,
}

impl PartitionTask {
    /// Reads the whole input: in memory while the pool allows it, else into spill buckets.
    async fn buffer(&self, mut input: SendableRecordBatchStream) -> Result<Buffered> {
        let mut batches = Vec::new();
        let mut buckets = Vec::new();
        buckets.resize_with(SPILL_BUCKETS, || None);
        let mut hashes = Vec::new();
        let state = RandomState::with_seed(SPILL_HASH_SEED);
        // appends each row of a batch to the spill file of its user's bucket
        let mut spill = |batch: &RecordBatch| -> Result<()> {
            hashes.clear();
            hashes.resize(batch.num_rows(), 0);
            create_hashes([batch.column(self.columns.user)], &state, &mut hashes)?;
            let mut rows: Vec<Vec<u32>> = vec![Vec::new(); SPILL_BUCKETS];
            for (row, hash) in hashes.iter().enumerate() {
                rows[(*hash % SPILL_BUCKETS as u64) as usize].push(row as u32);
            }
            for (bucket, rows) in buckets.iter_mut().zip(rows) {
                if rows.is_empty() {
                    continue;
                }
                let part = take_record_batch(batch, &UInt32Array::from(rows))?;
                let file = match bucket {
                    Some(file) => file,
                    None => bucket.insert(
                        self.spill_manager
                            .create_in_progress_file("SessionizeExec spill")?,
                    ),
                };
                file.append_batch(&part)?;
            }
            Ok(())
        };
        let mut spilling = false;
        while let Some(batch) = input.next().await {
            let batch = batch?;
            if !spilling {
                let needed =
                    batch.get_array_memory_size() + batch.num_rows() * WORKING_BYTES_PER_ROW;
                match self.reservation.try_grow(needed) {
                    Ok(()) => {
                        batches.push(batch);
                        continue;
                    }
                    Err(e) if is_resources_exhausted(&e) => {
                        spilling = true;
                        for held in std::mem::take(&mut batches) {
                            spill(&held)?;
                        }
                        self.reservation.free();
                    }
                    Err(e) => return Err(e),
                }
            }
            spill(&batch)?;
        }
        if !spilling {
            return Ok(Buffered::InMemory(batches));
        }
        let mut files = Vec::with_capacity(SPILL_BUCKETS);
        for bucket in buckets.iter_mut().flatten() {
            if let Some(file) = bucket.finish()? {
                files.push(file);
            }
        }
        Ok(Buffered::Spilled(files))
    }

    /// The output stream: the whole partition at once, or one spilled bucket at a time.
    fn emit(self: Arc<Self>, buffered: Buffered) -> BatchStream {
        match buffered {
            Buffered::InMemory(batches) => Box::pin(
                futures::stream::once(async move { self.process(&batches) })
                    .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
                    .try_flatten(),
            ),
            Buffered::Spilled(buckets) => Box::pin(
                futures::stream::iter(buckets)
                    .then(move |file| Arc::clone(&self).process_bucket(file))
                    .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
                    .try_flatten(),
            ),
        }
    }

    /// Reads one spilled bucket back and sessionizes it.
    async fn process_bucket(self: Arc<Self>, file: Arc<dyn SpillFile>) -> Result<Vec<RecordBatch>> {
        let mut parts = Vec::new();
        let mut stream = self.spill_manager.read_spill_as_stream(file, None)?;
        while let Some(batch) = stream.next().await {
            parts.push(batch?);
        }
        let bucket = compact_views(&concat_batches(self.spill_manager.schema(), &parts)?)?;
        drop(parts);
        let needed = bucket.get_array_memory_size() + bucket.num_rows() * WORKING_BYTES_PER_ROW;
        if let Err(e) = self.reservation.try_grow(needed) {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "sessionize: 1/{SPILL_BUCKETS} of a partition's users ({} rows, {needed} bytes \
                 to sessionize) does not fit in memory; raise the memory limit or \
                 datafusion.execution.target_partitions ({})",
                bucket.num_rows(),
                e.strip_backtrace()
            )));
        }
        let chunks: Vec<RecordBatch> = (0..bucket.num_rows())
            .step_by(self.batch_size)
            .map(|offset| bucket.slice(offset, self.batch_size.min(bucket.num_rows() - offset)))
            .collect();
        let output = self.process(&chunks);
        self.reservation.free();
        output
    }

    /// Finds the sessions of `batches`, which hold every event of their users.
    fn process(&self, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
        let timer = self.baseline.elapsed_compute().timer();
        let assignment = assign_sessions(batches, &self.columns, &self.rules)?;
        self.reservation.try_grow(assignment.size())?;
        let output = match self.output {
            SessionOutput::Events => self.events(batches, &assignment)?,
            SessionOutput::Sessions => self.sessions(batches, &assignment)?,
        };
        timer.done();
        let output_rows: usize = output.iter().map(RecordBatch::num_rows).sum();
        self.baseline.record_output(output_rows);
        Ok(output)
    }

    fn events(&self, batches: &[RecordBatch], assignment: &Assignment) -> Result<Vec<RecordBatch>> {
        let session_columns = session_columns(assignment, self.columns.unit)?;
        let mut output = Vec::with_capacity(batches.len());
        for (i, batch) in batches.iter().enumerate() {
            let offset = assignment.offsets[i];
            let mut columns = batch.columns().to_vec();
            columns.extend(
                session_columns
                    .iter()
                    .map(|c| c.slice(offset, batch.num_rows())),
            );
            output.push(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
        }
        Ok(output)
    }

    fn sessions(
        &self,
        batches: &[RecordBatch],
        assignment: &Assignment,
    ) -> Result<Vec<RecordBatch>> {
        let sessions = &assignment.sessions;
        if sessions.is_empty() {
            return Ok(vec![]);
        }
        // Gather the first and last rows of every session in one pass per column, then slice:
        // a gather per output chunk would scan every buffered batch once per chunk (for
        // dictionaries, arrow rebuilds its key mapping on each call), quadratic in the
        // partition's size.
        let first: Vec<(usize, usize)> = sessions
            .iter()
            .map(|s| assignment.locate(assignment.order[s.events.start]))
            .collect();
        let last: Vec<(usize, usize)> = sessions
            .iter()
            .map(|s| assignment.locate(assignment.order[s.events.end - 1]))
            .collect();
        let unit = self.columns.unit;
        let int64 = |f: &dyn Fn(&crate::assign::SessionSpan) -> i64| -> Int64Array {
            sessions.iter().map(f).map(Some).collect()
        };
        let mut columns: Vec<ArrayRef> = vec![
            gather(batches, self.columns.user, &first)?,
            Arc::new(int64(&|s| s.key)),
            timestamp_array(int64(&|s| s.start), unit)?,
            timestamp_array(int64(&|s| s.end), unit)?,
            Arc::new(int64(&|s| ticks_to_ms(s.end.wrapping_sub(s.start), unit))),
            Arc::new(int64(&|s| s.events.len() as i64)),
        ];
        if let Some(event_type) = self.columns.event_type {
            columns.push(gather(batches, event_type, &first)?);
            columns.push(gather(batches, event_type, &last)?);
        }
        for &property in &self.columns.properties {
            let [first, last] = first_last_valid(batches, property, assignment)?;
            columns.push(first);
            columns.push(last);
        }
        let all = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        Ok((0..all.num_rows())
            .step_by(self.batch_size)
            .map(|offset| all.slice(offset, self.batch_size.min(all.num_rows() - offset)))
            .collect())
    }
}

/// The first and the last non-NULL value of `column` in each session's event order (NULL when
/// every event of the session has NULL there).
fn first_last_valid(
    batches: &[RecordBatch],
    column: usize,
    assignment: &Assignment,
) -> Result<[ArrayRef; 2]> {
    let nulls: Vec<Option<NullBuffer>> = batches
        .iter()
        .map(|b| b.column(column).logical_nulls())
        .collect();
    let Some(first_batch) = batches.first() else {
        return internal_err!("sessionize: sessions without input rows");
    };
    // an index past the batches points at a one-row NULL array
    let none = (batches.len(), 0);
    let null_row = new_null_array(first_batch.column(column).data_type(), 1);
    let mut arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(column).as_ref()).collect();
    arrays.push(null_row.as_ref());
    let valid_at = |row: &u32| {
        let (batch, index) = assignment.locate(*row);
        match &nulls[batch] {
            Some(nulls) if nulls.is_null(index) => None,
            _ => Some((batch, index)),
        }
    };
    let sessions = &assignment.sessions;
    let mut first = Vec::with_capacity(sessions.len());
    let mut last = Vec::with_capacity(sessions.len());
    for session in sessions {
        let rows = &assignment.order[session.events.clone()];
        first.push(rows.iter().find_map(valid_at).unwrap_or(none));
        last.push(rows.iter().rev().find_map(valid_at).unwrap_or(none));
    }
    Ok([interleave(&arrays, &first)?, interleave(&arrays, &last)?])
}

/// Whether `error` says the memory pool is full (possibly wrapped in context).
fn is_resources_exhausted(error: &DataFusionError) -> bool {
    matches!(error.find_root(), DataFusionError::ResourcesExhausted(_))
}

/// Copies the strings of view columns into buffers of their own: batches read back from a spill
/// file share one buffer per file block, which would otherwise stay alive (and be counted) for
/// every column that points into it.
fn compact_views(batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            DataType::Utf8View => Arc::new(column.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(column.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(column),
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}
