//! The daily metrics statement: one row per day over all sessions and, with
//! `outputs.metrics.segment_by`, one row per day, segment column and value, over the window's
//! sessions (`window_sessions`, see `compute`).
//!
//! A segment row counts the sessions whose value of the column (the first non-NULL value in the
//! session) is that value. Per day and column, the `segment_limit` values with the most sessions
//! that day (ties: the smaller value first; no value, NULL, last) keep their own row and the
//! rest share one `(other)` row. Active users of a segment row are the users with an active event
//! that day in a session of that value, capped by the same day's ranking, so every row depends
//! only on its own day's sessions and an incremental run writes what a full recompute writes.

use crate::job_file::{Job, LengthRule, OTHER_SEGMENT_VALUE};
use crate::sql::{ACTIVE_DAYS, DAY_COLUMN, ident, quote};

/// The hidden column of `window_sessions` holding a session's value of segment column `i`.
pub fn segment_value_column(i: usize) -> String {
    format!("segment_by_{i}")
}

/// `, segment_by_0, segment_by_1, ...`: the hidden segment columns of `job`, to list after others.
pub fn segment_value_columns(job: &Job) -> String {
    (0..job.segments.columns.len())
        .map(|i| format!(", {}", segment_value_column(i)))
        .collect()
}

/// The length a session has in the length metrics under `rule`, in ms; NULL: it takes no part.
pub fn length_ms(rule: LengthRule) -> &'static str {
    match rule {
        LengthRule::Measured => "duration_ms",
        LengthRule::Reported => "reported_duration_ms",
        LengthRule::Greatest => {
            "CASE WHEN reported_duration_ms IS NULL THEN duration_ms \
             ELSE greatest(duration_ms, reported_duration_ms) END"
        }
    }
}

/// The daily metrics of the days `in_days` (an SQL predicate on a day) from `window_sessions`,
/// ordered by day, then the all-sessions row, then each segment column in `segment_by` order and
/// its values.
pub fn metrics_sql(job: &Job, in_days: &str) -> String {
    let user = ident(&job.session.options.user_column);
    let length = length_ms(job.length);
    let segments = &job.segments;
    let limit = segments.limit;
    let other = quote(OTHER_SEGMENT_VALUE);

    // per segment column: its values ranked by sessions on each day
    let mut ranked = String::new();
    // the sessions once per row they count in: all sessions, then once per segment column
    let mut grouped = vec![format!(
        "SELECT *, 0 AS segment_order, CAST(NULL AS VARCHAR) AS segment, \
         CAST(NULL AS VARCHAR) AS segment_value FROM flagged WHERE {DAY_COLUMN} {in_days}"
    )];
    let mut active_grouped = vec![format!(
        "SELECT active_user, active_day, 0 AS segment_order, CAST(NULL AS VARCHAR) AS segment, \
         CAST(NULL AS VARCHAR) AS segment_value FROM active_events WHERE active_day {in_days}"
    )];
    for (i, column) in segments.columns.iter().enumerate() {
        let value = format!("CAST({} AS VARCHAR)", segment_value_column(i));
        let order = i + 1;
        let name = quote(column);
        ranked.push_str(&format!(
            ",
            ranked_{i} AS (
                SELECT r_day, r_value,
                    row_number() OVER (PARTITION BY r_day ORDER BY r_sessions DESC, r_value ASC NULLS LAST) AS r_rank
                FROM (
                    SELECT {DAY_COLUMN} AS r_day, {value} AS r_value,
                        count(*) FILTER (WHERE clean) AS r_sessions
                    FROM flagged WHERE {DAY_COLUMN} {in_days}
                    GROUP BY {DAY_COLUMN}, {value}
                ) AS counts
            )"
        ));
        let capped = format!("CASE WHEN r.r_rank <= {limit} THEN r.r_value ELSE {other} END");
        grouped.push(format!(
            "SELECT f.*, {order}, {name}, {capped} FROM flagged AS f JOIN ranked_{i} AS r \
             ON f.{DAY_COLUMN} = r.r_day AND CAST(f.{} AS VARCHAR) IS NOT DISTINCT FROM r.r_value",
            segment_value_column(i)
        ));
        active_grouped.push(format!(
            "SELECT a.active_user, a.active_day, {order}, {name}, {capped} \
             FROM active_events AS a LEFT JOIN ranked_{i} AS r \
             ON a.active_day = r.r_day AND CAST(a.{} AS VARCHAR) IS NOT DISTINCT FROM r.r_value \
             WHERE a.active_day {in_days}",
            segment_value_column(i)
        ));
    }
    let segment_columns = segment_value_columns(job);
    let (class_counts, class_columns): (String, String) = match &job.quality {
        Some(quality) => quality
            .count_columns()
            .map(|(column, class)| {
                (
                    format!(
                        ",
                    CAST(count(*) FILTER (WHERE clean AND quality = {}) AS BIGINT) AS {}",
                        quote(class),
                        ident(&column)
                    ),
                    format!(", {}", ident(&column)),
                )
            })
            .unzip(),
        None => (String::new(), String::new()),
    };
    let shown_segments = if segments.columns.is_empty() {
        ""
    } else {
        "segment, segment_value, "
    };
    format!(
        "WITH flagged AS (
            SELECT *, NOT is_long AND bot_reason IS NULL AS clean, {length} AS length_ms
            FROM window_sessions
        ){ranked},
        grouped AS (
            {grouped}
        ),
        counted AS (
            SELECT {DAY_COLUMN}, segment_order, segment, segment_value,
                CAST(SESSIONTOTALS({user}, session_key) FILTER (WHERE clean) AS BIGINT) AS sessions,
                CAST(UNIQUES({user}) FILTER (WHERE clean) AS BIGINT) AS users,
                CAST(sum(length_ms) FILTER (WHERE clean) AS DOUBLE) / 1000.0 AS time_s,
                CAST(count(length_ms) FILTER (WHERE clean) AS BIGINT) AS timed_sessions,
                CAST(count(*) FILTER (WHERE clean AND is_bounce) AS BIGINT) AS bounces,
                HIST(length_ms) FILTER (WHERE clean) AS length_distribution,
                CAST(count(*) FILTER (WHERE NOT is_long AND bot_reason IS NOT NULL) AS BIGINT)
                    AS bot_sessions,
                CAST(count(*) FILTER (WHERE is_long) AS BIGINT) AS long_sessions_excluded{class_counts}
            FROM grouped
            GROUP BY {DAY_COLUMN}, segment_order, segment, segment_value
        ),
        active_events AS (
            SELECT {user} AS active_user, unnest({ACTIVE_DAYS}) AS active_day{segment_columns}
            FROM flagged WHERE clean
        ),
        active AS (
            SELECT active_day, segment_order AS a_order, segment_value AS a_value,
                CAST(count(DISTINCT active_user) AS BIGINT) AS active_users
            FROM ({active_grouped}) AS active_grouped
            GROUP BY active_day, segment_order, segment_value
        )
        SELECT {DAY_COLUMN}, {shown_segments}sessions, users, coalesce(active_users, 0) AS active_users,
            time_s / CAST(NULLIF(timed_sessions, 0) AS DOUBLE) AS avg_length_s,
            time_s / CAST(NULLIF(active_users, 0) AS DOUBLE) AS time_per_user_s,
            CAST(bounces AS DOUBLE) / CAST(NULLIF(sessions, 0) AS DOUBLE) AS bounce_rate,
            length_distribution, bot_sessions, long_sessions_excluded{class_columns}
        FROM counted LEFT JOIN active ON {DAY_COLUMN} = active_day AND segment_order = a_order
            AND segment_value IS NOT DISTINCT FROM a_value
        ORDER BY {DAY_COLUMN}, segment_order, segment_value NULLS LAST",
        grouped = grouped.join("\n            UNION ALL\n            "),
        active_grouped = active_grouped.join(" UNION ALL "),
    )
}
