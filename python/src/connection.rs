//! `Connection` (a session context as the command line makes it, with its lakes registered)
//! and `Query` (a planned statement, run each time it is read).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatchReader;
use datafusion::catalog::MemTable;
use datafusion::dataframe::DataFrame;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use futures::StreamExt;
use pyo3::prelude::*;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::{PyRecordBatchReader, PySchema, PyTable};
use sessionlake_cli::lake::{LakeArg, register_lake};
use sessionlake_engine::location::S3Settings;
use sessionlake_engine::memory::{MemoryBudget, MemoryLimit, release_free_memory};

use crate::errors::{Class, error, from_datafusion};
use crate::render;
use crate::runtime::{runtime, wait};

/// A session context with sessionlake registered and lakes attached to it.
#[pyclass(module = "sessionlake._native", frozen)]
pub struct Connection {
    ctx: SessionContext,
    s3: S3Settings,
    memory: MemoryBudget,
}

#[pymethods]
impl Connection {
    /// See `sessionlake.connect`.
    #[new]
    #[pyo3(signature = (lakes, memory_limit = None, partitions = None, s3_endpoint = None))]
    fn new(
        py: Python<'_>,
        lakes: Vec<(String, String)>,
        memory_limit: Option<&str>,
        partitions: Option<usize>,
        s3_endpoint: Option<&str>,
    ) -> PyResult<Self> {
        let mut config = sessionlake_engine::session_config();
        match partitions {
            Some(0) => return Err(error(py, Class::Option, "partitions must be at least 1")),
            Some(n) => config = config.with_target_partitions(n),
            None => {}
        }
        let limit: MemoryLimit = match memory_limit {
            Some(text) => text
                .parse()
                .map_err(|e| error(py, Class::Option, format!("memory_limit: {e}")))?,
            None => MemoryLimit::Default,
        };
        let memory = limit.resolve();
        let s3 = S3Settings::from_endpoint(s3_endpoint)
            .map_err(|e| error(py, Class::Option, format!("s3_endpoint: {e}")))?;
        let ctx = sessionlake_cli::new_context(config, &memory, s3.clone())
            .map_err(|e| from_datafusion(py, &e))?;
        let connection = Self { ctx, s3, memory };
        for (name, location) in lakes {
            connection.attach(py, &name, &location)?;
        }
        Ok(connection)
    }

    /// See `Connection.attach`.
    fn attach(&self, py: Python<'_>, name: &str, location: &str) -> PyResult<()> {
        let lake = LakeArg::parse(&format!("{name}={location}"))
            .map_err(|e| error(py, Class::Lake, e.replacen("--lake ", "lake ", 1)))?;
        let shown = lake.location.as_directory();
        let s3 = self.s3.clone();
        let ctx = self.ctx.clone();
        wait(py, async move { register_lake(&ctx, &lake, &s3).await })?
            .map_err(|e| error(py, Class::Lake, format!("lake {name}={shown}: {e}")))
    }

    /// See `Connection.register`.
    fn register(&self, py: Python<'_>, name: &str, data: AnyRecordBatch) -> PyResult<()> {
        let reader = data.into_reader()?;
        let schema = reader.schema();
        let batches = reader
            .collect::<Result<Vec<RecordBatch>, ArrowError>>()
            .map_err(|e| error(py, Class::Error, format!("register {name}: {e}")))?;
        // one partition per batch, up to the target, so the scan runs in parallel
        let partitions = self.ctx.copied_config().target_partitions().max(1);
        let mut split: Vec<Vec<RecordBatch>> =
            vec![Vec::new(); partitions.min(batches.len()).max(1)];
        let pieces = split.len();
        for (i, batch) in batches.into_iter().enumerate() {
            split[i % pieces].push(batch);
        }
        let table = MemTable::try_new(schema, split).map_err(|e| from_datafusion(py, &e))?;
        self.ctx
            .deregister_table(name)
            .map_err(|e| from_datafusion(py, &e))?;
        self.ctx
            .register_table(name, Arc::new(table))
            .map_err(|e| from_datafusion(py, &e))?;
        Ok(())
    }

    /// See `Connection.set`.
    fn set(&self, py: Python<'_>, key: &str, value: &str) -> PyResult<()> {
        let key = option_key(key);
        let state = self.ctx.state_ref();
        let mut state = state.write();
        state
            .config_mut()
            .options_mut()
            .set(&key, value)
            .map_err(|e| error(py, Class::Option, format!("{key}: {}", e.strip_backtrace())))
    }

    /// See `Connection.get`.
    fn get(&self, py: Python<'_>, key: &str) -> PyResult<Option<String>> {
        let key = option_key(key);
        let options = self.ctx.copied_config().options().clone();
        let entries = options.entries();
        match entries.into_iter().find(|entry| entry.key == key) {
            Some(entry) => Ok(entry.value),
            None => Err(error(py, Class::Option, format!("no option named {key}"))),
        }
    }

    /// See `Connection.sql`: runs every statement but the last now, plans the last.
    fn sql(&self, py: Python<'_>, query: &str) -> PyResult<Query> {
        let ctx = self.ctx.clone();
        let text = query.to_string();
        let planned = wait(py, async move {
            let statements = DFParser::parse_sql(&text)?;
            let count = statements.len();
            let mut last = None;
            for (i, statement) in statements.into_iter().enumerate() {
                let plan = ctx.state().statement_to_plan(statement).await?;
                let frame = ctx.execute_logical_plan(plan).await?;
                if i + 1 < count {
                    frame.collect().await?;
                } else {
                    last = Some(frame);
                }
            }
            Ok::<_, datafusion::error::DataFusionError>(last)
        })?
        .map_err(|e| from_datafusion(py, &e))?;
        match planned {
            Some(frame) => Ok(Query { frame }),
            None => Err(error(py, Class::Sql, "no SQL statement in the text")),
        }
    }

    /// The names of the tables (lakes and registered data) in the default schema.
    fn tables(&self) -> Vec<String> {
        let mut names = self
            .ctx
            .catalog("datafusion")
            .and_then(|catalog| catalog.schema("public"))
            .map(|schema| schema.table_names())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The memory budget, as the command line's `\memory` says it.
    fn memory(&self) -> String {
        // the command line's words for the setting, in this package's
        self.memory
            .describe()
            .replace("-m SIZE or -m none", "memory_limit='SIZE' or 'none'")
            .replace("(-m none:", "(memory_limit='none':")
            .replace("(-m)", "(memory_limit)")
    }
}

/// The full name of option `key`: sessionlake's own options may be given without their prefix.
fn option_key(key: &str) -> String {
    if key.contains('.') {
        key.to_string()
    } else {
        format!("sessionlake.{key}")
    }
}

/// A planned statement. Reading it runs it: [`Query::collect`] into memory, [`Query::stream`]
/// batch by batch.
#[pyclass(module = "sessionlake._native", frozen)]
pub struct Query {
    frame: DataFrame,
}

#[pymethods]
impl Query {
    /// The result's column names.
    fn columns(&self) -> Vec<String> {
        self.frame
            .schema()
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .collect()
    }

    /// The result's schema (an Arrow schema object).
    fn schema(&self) -> PySchema {
        PySchema::new(self.frame.schema().inner().clone())
    }

    /// Runs the statement to the end and returns the whole result as a table (an object with
    /// `__arrow_c_stream__`). `limit` keeps the first rows only.
    #[pyo3(signature = (limit = None))]
    fn collect(&self, py: Python<'_>, limit: Option<usize>) -> PyResult<PyTable> {
        let (schema, batches) = self.run(py, limit)?;
        PyTable::try_new(batches, schema).map_err(|e| error(py, Class::Error, e.to_string()))
    }

    /// Starts the statement and returns a reader that runs it as it is read.
    fn stream(&self, py: Python<'_>) -> PyResult<PyRecordBatchReader> {
        let frame = self.frame.clone();
        let stream = wait(py, async move { frame.execute_stream().await })?
            .map_err(|e| from_datafusion(py, &e))?;
        Ok(PyRecordBatchReader::new(Box::new(BlockingReader {
            schema: stream.schema(),
            stream,
        })))
    }

    /// The first `rows` rows as a text table (HIST columns summarised and charted, as the
    /// command line prints them), and whether more rows follow.
    fn text(&self, py: Python<'_>, rows: usize) -> PyResult<(String, bool)> {
        let (schema, batches) = self.run(py, Some(rows + 1))?;
        let (batches, more) = render::first_rows(&batches, rows);
        let text = render::text(&schema, &batches).map_err(|e| from_datafusion(py, &e))?;
        Ok((text, more))
    }

    /// The first `rows` rows as an HTML table, and whether more rows follow.
    fn html(&self, py: Python<'_>, rows: usize) -> PyResult<(String, bool)> {
        let (schema, batches) = self.run(py, Some(rows + 1))?;
        let (batches, more) = render::first_rows(&batches, rows);
        let html = render::html(&schema, &batches).map_err(|e| from_datafusion(py, &e))?;
        Ok((html, more))
    }
}

impl Query {
    /// Runs the statement (its first `limit` rows) and collects the batches.
    fn run(&self, py: Python<'_>, limit: Option<usize>) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
        let mut frame = self.frame.clone();
        let schema = frame.schema().inner().clone();
        if let Some(limit) = limit {
            frame = frame
                .limit(0, Some(limit))
                .map_err(|e| from_datafusion(py, &e))?;
        }
        let batches = wait(py, async move { frame.collect().await })?;
        // the operators' buffers are freed now: give them back to the system
        release_free_memory();
        let batches = batches.map_err(|e| from_datafusion(py, &e))?;
        Ok((schema, batches))
    }
}

/// A running statement read as a `RecordBatchReader`: each batch is awaited on the shared
/// runtime. It is read by whoever consumes the Arrow stream (pyarrow, Polars), from their
/// thread.
struct BlockingReader {
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
}

impl Iterator for BlockingReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let runtime = match runtime() {
            Ok(runtime) => runtime,
            Err(e) => return Some(Err(ArrowError::ExternalError(Box::new(e)))),
        };
        runtime
            .block_on(self.stream.next())
            .map(|batch| batch.map_err(|e| ArrowError::ExternalError(Box::new(e))))
    }
}

impl RecordBatchReader for BlockingReader {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
