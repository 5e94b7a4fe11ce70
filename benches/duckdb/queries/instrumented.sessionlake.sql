-- The totals of `totals` for instrumented sessions: one session per (user, session_id) of
-- active events, session_id not NULL and not -1, sessions longer than 1 day excluded.
SELECT
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    sum(duration_ms) AS total_length_ms,
    avg(CAST(duration_ms AS DOUBLE)) AS avg_length_ms,
    CAST(count(*) AS DOUBLE) / count(DISTINCT user_id) AS sessions_per_user
FROM sessions('events', 'mode=instrumented');
