//! What a command-line client does with a cluster context: register lake directories as
//! tables and run SQL scripts statement by statement. Used by the `sessionlake-ballista`
//! binary; the main `sessionlake` CLI can do the same with the context of
//! [`crate::ballista_context`].

use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;

/// Registers the hive-partitioned Parquet directory `dir` as table `name`.
///
/// The path is made absolute first: the scheduler and the executors open it themselves, so
/// on several hosts it must be on storage they all mount at the same path.
pub async fn register_lake(ctx: &SessionContext, name: &str, dir: &Path) -> Result<()> {
    let absolute = std::fs::canonicalize(dir).map_err(|e| {
        DataFusionError::Plan(format!("--lake {name}: directory '{}': {e}", dir.display()))
    })?;
    if !absolute.is_dir() {
        return Err(DataFusionError::Plan(format!(
            "--lake {name}: '{}' is not a directory",
            dir.display()
        )));
    }
    let mut location = absolute.display().to_string();
    if !location.ends_with('/') {
        location.push('/');
    }
    let sql = format!(
        "CREATE EXTERNAL TABLE \"{}\" STORED AS PARQUET LOCATION '{}'",
        name.replace('"', "\"\""),
        location.replace('\'', "''")
    );
    ctx.sql(&sql).await?.collect().await?;
    Ok(())
}

/// Runs every statement of `script` in order; returns the result of each statement that
/// returns columns (a `SET` or `CREATE` returns none).
pub async fn run_script(
    ctx: &SessionContext,
    script: &str,
) -> Result<Vec<(SchemaRef, Vec<RecordBatch>)>> {
    let mut results = Vec::new();
    for statement in DFParser::parse_sql(script)? {
        let plan = ctx.state().statement_to_plan(statement).await?;
        let frame = ctx.execute_logical_plan(plan).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        if !schema.fields().is_empty() {
            results.push((schema, batches));
        }
    }
    Ok(results)
}
