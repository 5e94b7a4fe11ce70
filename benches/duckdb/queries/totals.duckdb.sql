-- gap sessions by window SQL, the contract of docs/semantics.md: active events only (user and
-- time not NULL, is_active not false), per user by time, a new session when the gap to the
-- previous active event is strictly over 30 minutes, sessions longer than 1 day excluded.
-- The running sum uses the default RANGE frame, so events tied on time share one session number
-- whatever their order (ties never split a session: their gap is 0).
WITH ev AS (
    SELECT user_id, epoch_ms(event_time) AS t
    FROM read_parquet('@LAKE@/**/*.parquet', hive_partitioning = true)
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
