-- The same totals by DataFusion's own window functions (lag + running sum), no sessionlake
-- operator: the internal anchor. Same contract as totals.duckdb.sql.
WITH ev AS (
    SELECT user_id, CAST(event_time AS BIGINT) AS t
    FROM events
    WHERE user_id IS NOT NULL AND event_time IS NOT NULL AND is_active IS NOT FALSE
),
flagged AS (
    SELECT user_id, t,
        CASE WHEN t - lag(t) OVER (PARTITION BY user_id ORDER BY t) <= 1800000 THEN 0 ELSE 1 END AS new_session
    FROM ev
),
numbered AS (
    SELECT user_id, t, sum(new_session) OVER (PARTITION BY user_id ORDER BY t) AS session_no
    FROM flagged
),
sessions AS (
    SELECT user_id, min(t) AS start_ms, max(t) - min(t) AS duration_ms, count(*) AS events
    FROM numbered
    GROUP BY user_id, session_no
    HAVING max(t) - min(t) <= 86400000
)
SELECT
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    sum(duration_ms) AS total_length_ms,
    avg(CAST(duration_ms AS DOUBLE)) AS avg_length_ms,
    CAST(count(*) AS DOUBLE) / count(DISTINCT user_id) AS sessions_per_user
FROM sessions;
