//! Cohort exports for a messaging tool: the users of the sessions table's last N days that match
//! a rule (bot sessions left out), or the rows of the users table where a condition holds.

use chrono::{Days, NaiveDate};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use crate::error::{JobError, from_datafusion};
use crate::job_file::{Cohort, ExportRule, Selection};
use crate::sql::{DAY_COLUMN, ident};

/// The first day of an export's window of recent sessions ending at `latest`; `None` for an
/// export from the users table.
pub fn window_start(rule: &ExportRule, latest: NaiveDate) -> Option<NaiveDate> {
    match &rule.selection {
        Selection::RecentSessions { days, .. } => Some(
            latest
                .checked_sub_days(Days::new(u64::from(days.saturating_sub(1))))
                .unwrap_or(latest),
        ),
        Selection::Users { .. } => None,
    }
}

/// The users `rule` selects from the tables `sessions` (whose latest day is `latest`) or
/// `users` registered on `ctx`, sorted by user, with the result's schema.
pub async fn export(
    ctx: &SessionContext,
    rule: &ExportRule,
    user_column: &str,
    latest: NaiveDate,
) -> Result<(SchemaRef, Vec<RecordBatch>), JobError> {
    let user = ident(user_column);
    let cohort = match &rule.selection {
        Selection::RecentSessions { cohort, .. } => cohort,
        Selection::Users { condition } => {
            let sql = format!("SELECT * FROM users WHERE {condition} ORDER BY {user}");
            return collect(ctx, &sql, &rule.name).await.map_err(|e| {
                JobError::config(format!(
                    "export '{}': where = \"{condition}\" on the users table: {}",
                    rule.name, e.message
                ))
            });
        }
    };
    let first = window_start(rule, latest).unwrap_or(latest);
    let window =
        format!("{DAY_COLUMN} BETWEEN DATE '{first}' AND DATE '{latest}' AND bot_reason IS NULL");
    let sql = match *cohort {
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
    collect(ctx, &sql, &rule.name).await
}

/// Runs export `name`'s statement `sql`.
async fn collect(
    ctx: &SessionContext,
    sql: &str,
    name: &str,
) -> Result<(SchemaRef, Vec<RecordBatch>), JobError> {
    let what = format!("export '{name}'");
    let frame = ctx.sql(sql).await.map_err(|e| from_datafusion(e, &what))?;
    let schema = frame.schema().inner().clone();
    let batches = frame
        .collect()
        .await
        .map_err(|e| from_datafusion(e, &what))?;
    Ok((schema, batches))
}
