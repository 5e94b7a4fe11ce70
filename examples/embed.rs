//! Embedding sessionlake in a Rust program: register everything on a DataFusion
//! `SessionContext`, open the bundled sample lake and ask for sessions per day.
//!
//! Run from the repository root: `cargo run --example embed`.

use datafusion::error::Result;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

#[tokio::main]
async fn main() -> Result<()> {
    let mut ctx = SessionContext::new();
    sessionlake_engine::register_all(&mut ctx)?;

    let lake = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample_lake/");
    ctx.register_parquet("events", lake, ParquetReadOptions::default())
        .await?;

    // a per-session option, as `SET sessionlake.gap = '20 minutes'` would set it
    ctx.sql("SET sessionlake.gap = '20 minutes'").await?;

    ctx.sql(
        "SELECT date_trunc('day', session_start) AS day, count(*) AS sessions, \
                round(avg(duration_ms) / 1000.0, 1) AS avg_seconds \
         FROM sessions('events') GROUP BY 1 ORDER BY 1",
    )
    .await?
    .show()
    .await?;
    Ok(())
}
