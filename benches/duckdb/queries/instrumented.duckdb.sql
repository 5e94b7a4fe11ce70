-- Instrumented sessions, the contract of docs/semantics.md: active events (user and time not
-- NULL, is_active not false, session_id not NULL and not -1) grouped by (user, session_id);
-- sessions longer than 1 day excluded.
WITH sessions AS (
    SELECT user_id, session_id, max(epoch_ms(event_time)) - min(epoch_ms(event_time)) AS duration_ms
    FROM read_parquet('@LAKE@/**/*.parquet', hive_partitioning = true)
    WHERE user_id IS NOT NULL AND event_time IS NOT NULL AND is_active IS NOT FALSE
        AND session_id IS NOT NULL AND session_id <> -1
    GROUP BY user_id, session_id
    HAVING max(epoch_ms(event_time)) - min(epoch_ms(event_time)) <= 86400000
)
SELECT
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    sum(duration_ms) AS total_length_ms,
    avg(CAST(duration_ms AS DOUBLE)) AS avg_length_ms,
    CAST(count(*) AS DOUBLE) / count(DISTINCT user_id) AS sessions_per_user
FROM sessions;
