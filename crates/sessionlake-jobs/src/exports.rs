//! Cohort exports: the users of the sessions table's last N days that match a rule, for a
//! messaging tool. Bot sessions are left out.

use chrono::{Days, NaiveDate};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use crate::compute::{DAY_COLUMN, ident};
use crate::error::{JobError, from_datafusion};
use crate::job_file::{Cohort, ExportRule};

/// The first day of an export's window ending at `latest`.
pub fn window_start(rule: &ExportRule, latest: NaiveDate) -> NaiveDate {
    latest
        .checked_sub_days(Days::new(u64::from(rule.days.saturating_sub(1))))
        .unwrap_or(latest)
}

/// The users `rule` selects from the table `sessions` registered on `ctx`, whose latest day is
/// `latest`, sorted by user, with the result's schema.
pub async fn export(
    ctx: &SessionContext,
    rule: &ExportRule,
    user_column: &str,
    latest: NaiveDate,
) -> Result<(SchemaRef, Vec<RecordBatch>), JobError> {
    let user = ident(user_column);
    let first = window_start(rule, latest);
    let window =
        format!("{DAY_COLUMN} BETWEEN DATE '{first}' AND DATE '{latest}' AND bot_reason IS NULL");
    let sql = match rule.cohort {
        Cohort::MedianLengthBelow { millis } => format!(
            "SELECT {user}, CAST(count(*) AS BIGINT) AS sessions,
                median(CAST(duration_ms AS DOUBLE)) / 1000.0 AS median_length_s
             FROM sessions WHERE {window}
             GROUP BY {user}
             HAVING median(CAST(duration_ms AS DOUBLE)) < {millis}
             ORDER BY {user}"
        ),
        Cohort::SessionsLongerThan { count, millis } => format!(
            "SELECT {user}, CAST(count(*) AS BIGINT) AS sessions,
                CAST(count(*) FILTER (WHERE duration_ms > {millis}) AS BIGINT) AS long_sessions
             FROM sessions WHERE {window}
             GROUP BY {user}
             HAVING count(*) FILTER (WHERE duration_ms > {millis}) >= {count}
             ORDER BY {user}"
        ),
    };
    let what = format!("export '{}'", rule.name);
    let frame = ctx.sql(&sql).await.map_err(|e| from_datafusion(e, &what))?;
    let schema = frame.schema().inner().clone();
    let batches = frame
        .collect()
        .await
        .map_err(|e| from_datafusion(e, &what))?;
    Ok((schema, batches))
}
