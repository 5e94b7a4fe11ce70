//! `SessionizeExec`: the physical operator behind `sessionize('<table>')` and
//! `sessions('<table>')`.
//!
//! It asks the planner for its input hash-partitioned by user, so each partition holds every
//! event of its users and sessions can be found partition by partition, in parallel, with the
//! same result whatever the number of partitions. Each partition buffers its input under a
//! memory reservation, finds its sessions ([`crate::assign`]) and then emits either the input
//! batches with five session columns appended (`events`) or one row per session (`sessions`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
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

/// One row per session: user, key, start, end, duration, event count and, when the input has
/// an event type, the first and last one.
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
            .register(context.memory_pool());
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let task = PartitionTask {
            columns: self.columns.clone(),
            rules: self.rules.clone(),
            output: self.output,
            schema: Arc::clone(&self.schema),
            batch_size: context.session_config().batch_size(),
        };
        let batches = futures::stream::once(task.run(input, reservation, baseline))
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
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

/// The work of one partition.
struct PartitionTask {
    columns: BoundColumns,
    rules: SessionRules,
    output: SessionOutput,
    schema: SchemaRef,
    batch_size: usize,
}

impl PartitionTask {
    async fn run(
        self,
        mut input: SendableRecordBatchStream,
        reservation: MemoryReservation,
        baseline: BaselineMetrics,
    ) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        let mut rows = 0;
        while let Some(batch) = input.next().await {
            let batch = batch?;
            rows += batch.num_rows();
            reservation.try_grow(
                batch.get_array_memory_size() + batch.num_rows() * WORKING_BYTES_PER_ROW,
            )?;
            batches.push(batch);
        }
        let timer = baseline.elapsed_compute().timer();
        let assignment = assign_sessions(&batches, &self.columns, &self.rules)?;
        reservation.try_grow(assignment.size())?;
        let output = match self.output {
            SessionOutput::Events => self.events(&batches, &assignment)?,
            SessionOutput::Sessions => self.sessions(&batches, &assignment)?,
        };
        timer.done();
        let output_rows: usize = output.iter().map(RecordBatch::num_rows).sum();
        baseline.record_output(output_rows);
        debug_assert!(self.output == SessionOutput::Sessions || output_rows == rows);
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
        let mut output = Vec::new();
        for chunk in assignment.sessions.chunks(self.batch_size.max(1)) {
            let first: Vec<(usize, usize)> = chunk
                .iter()
                .map(|s| assignment.locate(assignment.order[s.events.start]))
                .collect();
            let last: Vec<(usize, usize)> = chunk
                .iter()
                .map(|s| assignment.locate(assignment.order[s.events.end - 1]))
                .collect();
            let unit = self.columns.unit;
            let int64 = |f: &dyn Fn(&crate::assign::SessionSpan) -> i64| -> Int64Array {
                chunk.iter().map(f).map(Some).collect()
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
            output.push(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
        }
        Ok(output)
    }
}
