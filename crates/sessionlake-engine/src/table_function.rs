//! The table functions `sessionize('<table>', ['key=value', ...])` and
//! `sessions('<table>', ['key=value', ...])`, and the table provider they return.
//!
//! Planning binds the options to the named table's schema (so a wrong column fails before any
//! data is read). Scanning reads only the projected columns plus those the session rules need,
//! pushes down filters on the user column alone (they drop whole users, so they cannot move a
//! session boundary: they are applied below the [`SessionizeExec`] it puts on top, where
//! DataFusion's filter pushdown takes them into the Parquet scan to skip row groups and rows).

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{
    DFSchema, Result, ScalarValue, TableReference, internal_err, plan_datafusion_err, plan_err,
};
use datafusion::datasource::TableType;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{DocSection, Documentation, Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;

use crate::assign::SessionRules;
use crate::columns::BoundColumns;
use crate::exec::{SessionOutput, SessionizeExec};
use crate::lake;
use crate::options::{SessionLakeConfig, SessionOptions};
use crate::output::{SESSION_COLUMNS, events_schema, sessions_schema};
use crate::stitch;

/// `sessionize('<table>', ...)` or `sessions('<table>', ...)`, depending on `output`.
#[derive(Debug)]
pub struct SessionizeTableFunction {
    output: SessionOutput,
}

impl SessionizeTableFunction {
    pub fn new(output: SessionOutput) -> Self {
        Self { output }
    }

    /// The SQL name of the function.
    pub fn name(&self) -> &'static str {
        self.output.function_name()
    }

    /// The user documentation, in the form DataFusion's scalar and aggregate functions give it
    /// (table functions have no `documentation()` in DataFusion's trait).
    pub fn documentation(&self) -> &'static Documentation {
        static EVENTS: LazyLock<Documentation> = LazyLock::new(|| {
            table_function_doc(
                "Every row of the table with the session it belongs to: the table's columns plus \
                 `session_key` (a BIGINT, the same for every event of one session of a user), `session_start`, \
                 `session_end`, `session_index` (1-based among the user's sessions by start) and \
                 `event_index` (1-based within the session by time). Rows in no session (NULL \
                 user or time, inactive events, sessions over the maximum length) have NULL in \
                 these columns. Options not given as arguments come from the `sessionlake.*` \
                 settings (`SET sessionlake.gap = '10 minutes'`).",
                "sessionize('<table>' [, 'key=value' ...])",
                "SELECT user_id, event_time, session_key, event_index\n\
                 FROM sessionize('events', 'gap=10 minutes')\n\
                 WHERE session_key IS NOT NULL;",
            )
        });
        static SESSIONS: LazyLock<Documentation> = LazyLock::new(|| {
            table_function_doc(
                "One row per session of the table: the user, `session_key`, `session_start`, \
                 `session_end`, `duration_ms`, `event_count`, `first_event_type`, \
                 `last_event_type`, `reported_duration_ms` with the `reported_duration` option, \
                 `count_t` for each event type `t` listed in the `count_event_types` option (the \
                 session's events of that type), and for each column `p` listed in the \
                 `properties` option `first_p` and `last_p`: its first and last non-NULL value in \
                 the session. \
                 Sessions follow the same rules as `sessionize`: a gap of \
                 more than `gap` between a user's consecutive active events starts a new \
                 session, and sessions longer than `max_length` are left out. Options not given \
                 as arguments come from the `sessionlake.*` settings.",
                "sessions('<table>' [, 'key=value' ...])",
                "SELECT count(*) AS sessions, avg(duration_ms) / 1000 AS avg_seconds\n\
                 FROM sessions('events', 'gap=30 minutes', 'max_length=none');",
            )
        });
        match self.output {
            SessionOutput::Events => &EVENTS,
            SessionOutput::Sessions => &SESSIONS,
        }
    }
}

fn table_function_doc(description: &str, syntax: &str, example: &str) -> Documentation {
    Documentation::builder(
        DocSection {
            include: true,
            label: "Session Table Functions",
            description: None,
        },
        description,
        syntax,
    )
    .with_sql_example(format!("```sql\n> {example}\n```"))
    .with_argument(
        "table",
        "The name of a registered table of events, in quotes.",
    )
    .with_argument(
        "'key=value'",
        format!(
            "Options for this call, overriding the `sessionlake.*` settings: {}.",
            SessionLakeConfig::key_list()
        ),
    )
    .build()
}

impl TableFunctionImpl for SessionizeTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let name = self.name();
        let exprs = args.exprs();
        let Some(table_arg) = exprs.first() else {
            return plan_err!("{name}: expected a table name, for example {name}('events')");
        };
        let Some(table_name) = string_literal(table_arg) else {
            return plan_err!(
                "{name}: the first argument must be a table name in quotes, for example \
                 {name}('events'), found {table_arg}"
            );
        };
        let mut overrides = Vec::with_capacity(exprs.len() - 1);
        for (i, arg) in exprs.iter().enumerate().skip(1) {
            match string_literal(arg) {
                Some(option) => overrides.push(option),
                None => {
                    return plan_err!(
                        "{name}: argument {} must be an option string such as 'gap=5 minutes', \
                         found {arg}",
                        i + 1
                    );
                }
            }
        }
        let session = args.session();
        let mut options =
            SessionOptions::from_config_options(name, session.config_options(), &overrides)?;
        if self.output == SessionOutput::Events {
            // every column is already there; properties, reported durations and event counts
            // shape only the rows of `sessions`
            options.properties.clear();
            options.reported_duration = None;
            options.count_event_types.clear();
        }
        let inner = resolve_table(name, session, &table_name)?;
        let schema = inner.schema();
        let columns = BoundColumns::bind(name, &schema, &options, &table_name)?;
        let rules = SessionRules::new(&options, columns.unit);
        // with identity stitching the user column the operator sees is the stitched one
        let input_schema = match columns.anonymous {
            Some(_) => Arc::new(stitch::stitched_schema(&schema, columns.user)),
            None => Arc::clone(&schema),
        };
        let output_schema = match self.output {
            SessionOutput::Events => events_schema(&input_schema, &columns),
            SessionOutput::Sessions => sessions_schema(&input_schema, &columns),
        };
        let output_schema = with_call_metadata(&output_schema, name, &table_name, &options);
        Ok(Arc::new(SessionizeTable {
            inner,
            columns,
            rules,
            output: self.output,
            schema: output_schema,
        }))
    }
}

/// The schema-level metadata key that identifies one call of a table function.
pub const CALL_METADATA_KEY: &str = "sessionlake.call";

/// Marks `schema` with the call that made it.
///
/// DataFusion names the scan of every table function call `name()` and compares scans by name
/// and schema only, so without this two calls with different options in one query
/// (`sessions('events', 'gap=5 minutes')` beside `sessions('events')`) look alike to the
/// optimizer, which then evaluates one of them twice.
fn with_call_metadata(
    schema: &SchemaRef,
    function: &str,
    table: &str,
    options: &SessionOptions,
) -> SchemaRef {
    let mut metadata = schema.metadata().clone();
    metadata.insert(
        CALL_METADATA_KEY.to_string(),
        format!("{function}('{table}') {options:?}"),
    );
    Arc::new(schema.as_ref().clone().with_metadata(metadata))
}

fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s.clone()),
        _ => None,
    }
}

/// Looks a table up in the session's catalogs, as `FROM <name>` would; a path or URL
/// (`'data/lake/'`, `'s3://bucket/events/'`) is opened as a lake (see [`crate::lake`]).
fn resolve_table(
    function: &str,
    session: &dyn Session,
    name: &str,
) -> Result<Arc<dyn TableProvider>> {
    if lake::is_location(name) {
        let registered = lookup_table(function, session, &TableReference::bare(name))?;
        return match registered {
            Some(table) => Ok(table),
            None => block_on_io(lake::open_location(session, name)),
        };
    }
    let reference = TableReference::parse_str(name);
    match lookup_table(function, session, &reference)? {
        Some(table) => Ok(table),
        None => plan_err!("{function}: table '{name}' not found"),
    }
}

/// The table `reference` names in the session's catalogs, if any.
fn lookup_table(
    function: &str,
    session: &dyn Session,
    reference: &TableReference,
) -> Result<Option<Arc<dyn TableProvider>>> {
    let catalog_options = &session.config_options().catalog;
    let reference = reference.clone().resolve(
        &catalog_options.default_catalog,
        &catalog_options.default_schema,
    );
    let schema = session
        .catalog_list()
        .catalog(&reference.catalog)
        .and_then(|catalog| catalog.schema(&reference.schema))
        .ok_or_else(|| {
            plan_datafusion_err!(
                "{function}: schema '{}.{}' not found",
                reference.catalog,
                reference.schema
            )
        })?;
    block_on_io(schema.table(&reference.table))
}

/// Waits for `future` from inside a synchronous planning step (a table function's call).
///
/// On a multi-threaded Tokio runtime the worker hands its other tasks over while it waits, so
/// object-store I/O (which needs the runtime) can progress; elsewhere the future runs on this
/// thread.
fn block_on_io<T>(future: impl Future<Output = T>) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        _ => futures::executor::block_on(future),
    }
}

/// The sessions (or sessionized events) of one table.
#[derive(Debug)]
pub struct SessionizeTable {
    inner: Arc<dyn TableProvider>,
    columns: BoundColumns,
    rules: SessionRules,
    output: SessionOutput,
    schema: SchemaRef,
}

impl SessionizeTable {
    /// Reassembles a table from the parts the table functions build (`schema` is the output
    /// schema, with its call metadata). For codecs that ship a plan to another process, such
    /// as sessionlake-ballista; the table functions themselves validate and bind options.
    pub fn from_parts(
        inner: Arc<dyn TableProvider>,
        columns: BoundColumns,
        rules: SessionRules,
        output: SessionOutput,
        schema: SchemaRef,
    ) -> Self {
        Self {
            inner,
            columns,
            rules,
            output,
            schema,
        }
    }

    /// The table the events are read from.
    pub fn inner(&self) -> &Arc<dyn TableProvider> {
        &self.inner
    }

    /// The session columns, bound to the inner table's schema.
    pub fn columns(&self) -> &BoundColumns {
        &self.columns
    }

    /// The session rules.
    pub fn rules(&self) -> &SessionRules {
        &self.rules
    }

    /// Whether this is `sessionize` (events) or `sessions`.
    pub fn output(&self) -> SessionOutput {
        self.output
    }

    /// The inner columns a scan reads for an output `projection`, ascending: the rules' own
    /// ([`BoundColumns::key_columns`]) and those below.
    ///
    /// Events tied on one instant are ordered by the event type and then by the other columns
    /// in schema order, so that the order never depends on the columns a query selects. Only
    /// outputs that depend on that order need the columns that decide it, and only up to the
    /// last column they return: two tied events equal up to there give the same values
    /// whichever comes first.
    /// - `sessionize` reads the projected columns; when `event_index` is projected it also
    ///   reads every column before the last projected one.
    /// - `sessions` reads every column up to its last property (`first_<p>`/`last_<p>`)
    ///   selected; `first_event_type`/`last_event_type` depend on the event type alone. It
    ///   is given `columns` for the selected output ([`BoundColumns::selecting`]), so it reads
    ///   no property, count or reported duration that the query does not select.
    /// - With `sessionlake.gap_column` both read every column up to the gap column: which of
    ///   two tied events comes last decides whose timeout ends the session, and two tied events
    ///   equal up to the gap column have the same timeout.
    fn columns_to_read(
        &self,
        columns: &BoundColumns,
        projection: Option<&Vec<usize>>,
    ) -> Vec<usize> {
        let inner_width = self.inner.schema().fields().len();
        let mut read = columns.key_columns();
        read.extend(match self.output {
            SessionOutput::Sessions => match columns.properties.iter().max() {
                Some(&last) => (0..=last).collect(),
                None => vec![],
            },
            SessionOutput::Events => {
                let all: Vec<usize>;
                let projection = match projection {
                    Some(p) => p,
                    None => {
                        all = (0..self.schema.fields().len()).collect();
                        &all
                    }
                };
                let event_index = inner_width + SESSION_COLUMNS.len() - 1;
                let inner: Vec<usize> = projection
                    .iter()
                    .copied()
                    .filter(|&i| i < inner_width)
                    .collect();
                match (projection.contains(&event_index), inner.iter().max()) {
                    (true, Some(&last)) => (0..=last).collect(),
                    _ => inner,
                }
            }
        });
        if let Some(gap) = columns.gap {
            read.extend(0..=gap);
        }
        read.sort_unstable();
        read.dedup();
        read
    }

    /// Whether `filter` reads no column but the user column, so that it only drops users.
    fn is_user_filter(&self, filter: &Expr) -> bool {
        let user = self.inner.schema().field(self.columns.user).name().clone();
        let columns = filter.column_refs();
        !columns.is_empty() && columns.iter().all(|c| c.name == user)
    }
}

#[async_trait]
impl TableProvider for SessionizeTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // for `sessions` the user column keeps its name, so the same test holds
        Ok(filters
            .iter()
            .map(|f| {
                if self.is_user_filter(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let inner_schema = self.inner.schema();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let columns = match self.output {
            // `sessions` computes only the columns selected
            SessionOutput::Sessions => {
                let selected: Vec<&str> = wanted
                    .iter()
                    .map(|&i| self.schema.field(i).name().as_str())
                    .collect();
                self.columns
                    .selecting(&inner_schema, &selected, &self.rules)
            }
            SessionOutput::Events => self.columns.clone(),
        };
        let read = self.columns_to_read(&columns, projection);

        // the filters name this function's output (`sessions().user_id`); the input names the
        // same column without the qualifier
        let user_filters: Vec<Expr> = filters
            .iter()
            .filter(|f| self.is_user_filter(f))
            .map(|f| unnormalize_col(f.clone()))
            .collect();
        let support = self
            .inner
            .supports_filters_pushdown(&user_filters.iter().collect::<Vec<_>>())?;
        let pushed: Vec<Expr> = user_filters
            .iter()
            .zip(support)
            .filter(|(_, s)| *s != TableProviderFilterPushDown::Unsupported)
            .map(|(f, _)| f.clone())
            .collect();

        let mut scan = match self.columns.anonymous {
            // the filters name the stitched user, which the table does not hold: they apply
            // after stitching, below
            Some(anonymous) => {
                let plan = stitch::stitched_events(
                    Arc::clone(&self.inner),
                    &read,
                    self.columns.user,
                    anonymous,
                    self.columns.time,
                )?;
                state.create_physical_plan(&plan).await?
            }
            None => self.inner.scan(state, Some(&read), &pushed, None).await?,
        };
        // whatever the input did with them, the rows of other users are dropped before they
        // are buffered (and a Parquet scan takes this filter in as its predicate)
        if let Some(predicate) = conjunction(user_filters) {
            let input_schema = DFSchema::try_from(scan.schema())?;
            let predicate = state.create_physical_expr(predicate, &input_schema)?;
            scan = Arc::new(FilterExec::try_new(predicate, scan)?);
        }
        let scan_schema = scan.schema();
        let columns = columns.rebind(&inner_schema, &scan_schema)?;
        let exec: Arc<dyn ExecutionPlan> = Arc::new(
            SessionizeExec::try_new(scan, columns, self.rules.clone(), self.output)?
                .with_schema_metadata(self.schema.metadata().clone()),
        );

        // map the requested output columns onto the operator's output
        let exec_schema = exec.schema();
        let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::with_capacity(wanted.len());
        let inner_width = inner_schema.fields().len();
        for i in wanted {
            // `sessions` returns the selected columns in the table's order (and the user and
            // the columns that need no buffered row), `sessionize` returns the read columns
            // (in `read`'s order) and then the session columns
            let name = self.schema.field(i).name();
            let index = match self.output {
                SessionOutput::Sessions => exec_schema.index_of(name).ok(),
                SessionOutput::Events if i < inner_width => read.binary_search(&i).ok(),
                SessionOutput::Events => Some(read.len() + i - inner_width),
            };
            match index.map(|index| (index, exec_schema.fields().get(index))) {
                Some((index, Some(field))) if field.name() == name => {
                    exprs.push((Arc::new(Column::new(name, index)), name.clone()));
                }
                _ => {
                    return internal_err!(
                        "{}: output column {name} is not where the operator returns it",
                        self.output.function_name()
                    );
                }
            }
        }
        let identity = exprs.len() == exec_schema.fields().len()
            && exprs
                .iter()
                .enumerate()
                .all(|(i, (e, _))| e.downcast_ref::<Column>().is_some_and(|c| c.index() == i));
        if identity {
            return Ok(exec);
        }
        Ok(Arc::new(ProjectionExec::try_new(exprs, exec)?))
    }
}
