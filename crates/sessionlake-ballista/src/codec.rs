//! The extension codecs that carry sessionlake's plan nodes between Ballista's processes: the
//! `sessionize` / `sessions` table provider in logical plans (client to scheduler) and the
//! `SessionizeExec` operator in physical plans (scheduler to executors). Everything else is
//! handed to Ballista's own codecs.
//!
//! A node of ours is written as [`MAGIC`] followed by a protobuf [`SessionizeNode`], a lake
//! table as [`LAKE_MAGIC`] followed by a [`LakeNode`] (so that the scheduler lists a lake with
//! the glob that skips hidden files); bytes without either prefix belong to Ballista.

use std::collections::HashMap;
use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::{SchemaRef, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference, internal_err};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::{ViewTable, provider_as_source, source_as_provider};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, LogicalPlanBuilder, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::{AsLogicalPlan, LogicalExtensionCodec};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf::LogicalPlanNode;
use prost::Message;
use sessionlake_engine::assign::SessionRules;
use sessionlake_engine::columns::BoundColumns;
use sessionlake_engine::lake::LakeTable;
use sessionlake_engine::stitch::{STITCHED_USER, stitched_user_udf};
use sessionlake_engine::{SessionMode, SessionOutput, SessionizeExec, SessionizeTable};

/// The first bytes of every node this module writes.
pub const MAGIC: &[u8] = b"sessionlake/1:";

/// The first bytes of every lake table this module writes.
pub const LAKE_MAGIC: &[u8] = b"sessionlake-lake/1:";

/// A lake table (`sessionlake_engine::lake::LakeTable`): its listing table as a one-node scan
/// plan in DataFusion's own format, and the glob that format drops from the table's location.
#[derive(Clone, PartialEq, Message)]
pub struct LakeNode {
    /// The listing table, as [`SessionLakeLogicalCodec`] encodes an inner table.
    #[prost(bytes = "vec", tag = "1")]
    pub listing_scan: Vec<u8>,
    /// The glob data files are kept by, for a lake that is a directory.
    #[prost(string, optional, tag = "2")]
    pub glob: Option<String>,
}

/// The name the inner table's scan gets inside an encoded table provider (never resolved).
const INNER_TABLE: &str = "sessionlake_inner";

/// One `sessionize` / `sessions` node: the bound columns, the rules and the output kind, plus
/// what differs between the logical and the physical form (see the field docs).
#[derive(Clone, PartialEq, Message)]
pub struct SessionizeNode {
    /// `true` for `sessions` (one row per session), `false` for `sessionize` (events).
    #[prost(bool, tag = "1")]
    pub sessions: bool,
    /// The user column's index in the inner table (logical) or the input (physical).
    #[prost(uint64, tag = "2")]
    pub user_column: u64,
    /// The time column's index.
    #[prost(uint64, tag = "3")]
    pub time_column: u64,
    /// The time column's unit, see [`unit_to_wire`].
    #[prost(int32, tag = "4")]
    pub column_unit: i32,
    /// The activity column's index, if the table has one.
    #[prost(uint64, optional, tag = "5")]
    pub active_column: Option<u64>,
    /// The event type column's index, if the table has one.
    #[prost(uint64, optional, tag = "6")]
    pub event_type_column: Option<u64>,
    /// The session id column's index (instrumented modes only).
    #[prost(uint64, optional, tag = "7")]
    pub session_id_column: Option<u64>,
    /// `gap`, `instrumented` or `instrumented_gap`.
    #[prost(string, tag = "8")]
    pub mode: String,
    /// In ticks of `rule_unit`.
    #[prost(int64, tag = "9")]
    pub gap: i64,
    /// In ticks of `rule_unit`; absent when the rule is off.
    #[prost(int64, optional, tag = "10")]
    pub max_length: Option<i64>,
    /// The unit of `gap` and `max_length`, as [`unit_to_wire`] writes it.
    #[prost(int32, tag = "11")]
    pub rule_unit: i32,
    /// Event types that take no part in sessions.
    #[prost(string, repeated, tag = "12")]
    pub inactive_event_types: Vec<String>,
    /// Physical form: the metadata of the operator's output schema (the call marker).
    #[prost(map = "string, string", tag = "13")]
    pub schema_metadata: HashMap<String, String>,
    /// Logical form: the inner table, as an encoded one-node `TableScan` plan, or a view's plan
    /// (DataFusion inlines a view where it is scanned).
    #[prost(bytes = "vec", tag = "14")]
    pub inner_scan: Vec<u8>,
    /// The indexes of the `sessionlake.properties` columns, in order.
    #[prost(uint64, repeated, tag = "15")]
    pub property_columns: Vec<u64>,
    /// The index of the `sessionlake.gap_column` column, if set.
    #[prost(uint64, optional, tag = "16")]
    pub gap_column: Option<u64>,
    /// The index of the `sessionlake.reported_duration` column, if set.
    #[prost(uint64, optional, tag = "17")]
    pub reported_column: Option<u64>,
    /// The event type that carries the reported duration.
    #[prost(string, tag = "18")]
    pub reported_event_type: String,
    /// The index of the `sessionlake.anonymous_column` column, if set.
    #[prost(uint64, optional, tag = "19")]
    pub anonymous_column: Option<u64>,
    /// The event types counted per session (`sessionlake.count_event_types`), in order.
    #[prost(string, repeated, tag = "20")]
    pub counted_event_types: Vec<String>,
    /// Whether `sessions` returns `first_event_type` and `last_event_type`.
    #[prost(bool, tag = "21")]
    pub returns_event_types: bool,
}

impl SessionizeNode {
    fn new(columns: &BoundColumns, rules: &SessionRules, output: SessionOutput) -> Self {
        let index = |i: usize| i as u64;
        Self {
            sessions: output == SessionOutput::Sessions,
            user_column: index(columns.user),
            time_column: index(columns.time),
            column_unit: unit_to_wire(columns.unit),
            active_column: columns.active.map(index),
            event_type_column: columns.event_type.map(index),
            session_id_column: columns.session_id.map(index),
            mode: rules.mode.to_string(),
            gap: rules.gap,
            max_length: rules.max_length,
            rule_unit: unit_to_wire(rules.unit),
            inactive_event_types: rules.inactive_event_types.clone(),
            schema_metadata: HashMap::new(),
            inner_scan: Vec::new(),
            property_columns: columns.properties.iter().map(|&i| index(i)).collect(),
            gap_column: columns.gap.map(index),
            reported_column: columns.reported.as_ref().map(|(column, _)| index(*column)),
            reported_event_type: columns
                .reported
                .as_ref()
                .map(|(_, event_type)| event_type.clone())
                .unwrap_or_default(),
            anonymous_column: columns.anonymous.map(index),
            counted_event_types: columns.counted.clone(),
            returns_event_types: columns.returns_event_types,
        }
    }

    fn output(&self) -> SessionOutput {
        if self.sessions {
            SessionOutput::Sessions
        } else {
            SessionOutput::Events
        }
    }

    fn columns(&self) -> Result<BoundColumns> {
        let index = |i: u64| -> Result<usize> {
            usize::try_from(i).map_err(|_| wire_error(format!("column index {i} out of range")))
        };
        Ok(BoundColumns {
            user: index(self.user_column)?,
            anonymous: self.anonymous_column.map(index).transpose()?,
            time: index(self.time_column)?,
            unit: unit_from_wire(self.column_unit)?,
            active: self.active_column.map(index).transpose()?,
            event_type: self.event_type_column.map(index).transpose()?,
            returns_event_types: self.returns_event_types,
            session_id: self.session_id_column.map(index).transpose()?,
            gap: self.gap_column.map(index).transpose()?,
            reported: match self.reported_column {
                Some(column) => Some((index(column)?, self.reported_event_type.clone())),
                None => None,
            },
            properties: self
                .property_columns
                .iter()
                .map(|&i| index(i))
                .collect::<Result<_>>()?,
            counted: self.counted_event_types.clone(),
        })
    }

    fn rules(&self) -> Result<SessionRules> {
        let mode = match self.mode.as_str() {
            "gap" => SessionMode::Gap,
            "instrumented" => SessionMode::Instrumented,
            "instrumented_gap" => SessionMode::InstrumentedGap,
            other => return Err(wire_error(format!("unknown session mode '{other}'"))),
        };
        Ok(SessionRules {
            mode,
            gap: self.gap,
            max_length: self.max_length,
            unit: unit_from_wire(self.rule_unit)?,
            inactive_event_types: self.inactive_event_types.clone(),
        })
    }

    fn encode_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.extend_from_slice(MAGIC);
        self.encode(buf)
            .map_err(|e| wire_error(format!("cannot encode a node: {e}")))
    }

    /// The node in `buf`, or `None` when `buf` is not one of ours.
    fn decode_from(buf: &[u8]) -> Option<Result<Self>> {
        let body = buf.strip_prefix(MAGIC)?;
        Some(Self::decode(body).map_err(|e| wire_error(format!("undecodable node: {e}"))))
    }
}

/// The time unit as a small integer: seconds 0 to nanoseconds 3.
pub fn unit_to_wire(unit: TimeUnit) -> i32 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

fn unit_from_wire(value: i32) -> Result<TimeUnit> {
    Ok(match value {
        0 => TimeUnit::Second,
        1 => TimeUnit::Millisecond,
        2 => TimeUnit::Microsecond,
        3 => TimeUnit::Nanosecond,
        other => return Err(wire_error(format!("unknown time unit {other}"))),
    })
}

fn wire_error(message: String) -> DataFusionError {
    DataFusionError::Internal(format!("sessionlake-ballista codec: {message}"))
}

/// The logical codec: `sessionize` / `sessions` table providers, then Ballista's own nodes,
/// file formats and the built-in tables (listing tables and the like).
#[derive(Debug, Default)]
pub struct SessionLakeLogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl SessionLakeLogicalCodec {
    /// Encodes `table` as a one-node scan plan, so that whatever DataFusion's and Ballista's
    /// codecs can ship (a Parquet listing table, say) can be read by a `sessions()` call. A view
    /// (a SQL view, a DataFrame registered as a table) becomes its own plan instead, as
    /// DataFusion inlines views into the plans that scan them.
    fn encode_inner(&self, table: &Arc<dyn TableProvider>) -> Result<Vec<u8>> {
        let plan = LogicalPlanBuilder::scan(
            TableReference::bare(INNER_TABLE),
            provider_as_source(Arc::clone(table)),
            None,
        )?
        .build()?;
        let node = LogicalPlanNode::try_from_logical_plan(&plan, self).map_err(|e| {
            DataFusionError::Plan(format!(
                "sessionize on a cluster: the table it reads cannot be sent to the scheduler \
                 (register it as an external table, for example CREATE EXTERNAL TABLE ... \
                 STORED AS PARQUET LOCATION '...'): {e}"
            ))
        })?;
        Ok(node.encode_to_vec())
    }

    fn decode_inner(&self, bytes: &[u8], ctx: &TaskContext) -> Result<Arc<dyn TableProvider>> {
        let node = LogicalPlanNode::decode(bytes)
            .map_err(|e| wire_error(format!("undecodable inner scan: {e}")))?;
        match node.try_into_logical_plan(ctx, self)? {
            LogicalPlan::TableScan(scan) => source_as_provider(&scan.source),
            // an inlined view, such as a filtered scan: a view again, planned where it is read
            view => Ok(Arc::new(ViewTable::new(view, None))),
        }
    }
}

impl LogicalExtensionCodec for SessionLakeLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf, |name, buf| {
            self.ballista.try_decode_udf(name, buf)
        })
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udf(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(body) = buf.strip_prefix(LAKE_MAGIC) {
            let wire = LakeNode::decode(body)
                .map_err(|e| wire_error(format!("undecodable lake table: {e}")))?;
            let inner = self.decode_inner(&wire.listing_scan, ctx)?;
            let Some(listing) = inner.downcast_ref::<ListingTable>() else {
                return Err(wire_error(
                    "a lake table's scan is not a listing".to_string(),
                ));
            };
            return Ok(Arc::new(LakeTable::from_listing(
                listing,
                wire.glob.as_deref(),
            )?));
        }
        let Some(node) = SessionizeNode::decode_from(buf) else {
            return self
                .ballista
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let node = node?;
        let inner = self.decode_inner(&node.inner_scan, ctx)?;
        Ok(Arc::new(SessionizeTable::from_parts(
            inner,
            node.columns()?,
            node.rules()?,
            node.output(),
            schema,
        )))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(lake) = node.downcast_ref::<LakeTable>() {
            let listing: Arc<dyn TableProvider> = Arc::clone(lake.listing()) as _;
            let wire = LakeNode {
                listing_scan: self.encode_inner(&listing)?,
                glob: lake.glob().map(str::to_string),
            };
            buf.extend_from_slice(LAKE_MAGIC);
            return wire
                .encode(buf)
                .map_err(|e| wire_error(format!("cannot encode a lake table: {e}")));
        }
        let Some(table) = node.downcast_ref::<SessionizeTable>() else {
            return self
                .ballista
                .try_encode_table_provider(table_ref, node, buf);
        };
        let mut wire = SessionizeNode::new(table.columns(), table.rules(), table.output());
        wire.inner_scan = self.encode_inner(table.inner())?;
        wire.encode_into(buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }
}

/// A scalar function by name: identity stitching's (in plans made by the scheduler's table
/// functions and by lake jobs, not in any registry), else `other`'s.
fn decode_udf(
    name: &str,
    buf: &[u8],
    other: impl FnOnce(&str, &[u8]) -> Result<Arc<ScalarUDF>>,
) -> Result<Arc<ScalarUDF>> {
    if name == STITCHED_USER {
        return Ok(stitched_user_udf());
    }
    other(name, buf)
}

/// The physical codec: `SessionizeExec`, then Ballista's own operators (shuffles and so on).
#[derive(Debug, Default)]
pub struct SessionLakePhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for SessionLakePhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(node) = SessionizeNode::decode_from(buf) else {
            return self.ballista.try_decode(buf, inputs, ctx, proto_converter);
        };
        let node = node?;
        let [input] = inputs else {
            return internal_err!(
                "sessionlake-ballista codec: SessionizeExec takes one input, got {}",
                inputs.len()
            );
        };
        let exec = SessionizeExec::try_new(
            Arc::clone(input),
            node.columns()?,
            node.rules()?,
            node.output(),
        )?
        .with_schema_metadata(node.schema_metadata);
        Ok(Arc::new(exec))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(exec) = node.downcast_ref::<SessionizeExec>() else {
            return self.ballista.try_encode(node, buf, proto_converter);
        };
        let mut wire = SessionizeNode::new(exec.columns(), exec.rules(), exec.output());
        wire.schema_metadata = exec.schema().metadata().clone();
        wire.encode_into(buf)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf, |name, buf| {
            self.ballista.try_decode_udf(name, buf)
        })
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udf(node, buf)
    }
}
