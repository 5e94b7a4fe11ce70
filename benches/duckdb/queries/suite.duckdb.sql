-- The six queries in one process, as an analyst's script runs them: the lake is sessionized
-- once by window SQL into the temporary table `ev`, and every query reads `ev`, not the lake.
-- `ev` holds the active events (the contract of docs/semantics.md: user and time not NULL,
-- is_active not false) with the columns the queries need and `session_no`, the number of the
-- user's gap session: a new session when the gap to the previous active event is strictly over
-- 30 minutes (the running sum uses the default RANGE frame, so events tied on time share one
-- session number whatever their order). Each query groups (user_id, session_no) and drops the
-- sessions longer than 1 day itself; `instrumented` groups (user_id, session_id) of the same
-- events instead. Ties on time are ordered as the contract does for the entry and exit pages:
-- event_type, then device_id, session_id, page (the rest cannot change the page).
-- Each result is preceded by a one-row result `suite_query` naming it, for compare.py to split
-- the output.
CREATE TEMP TABLE ev AS
WITH active AS (
    SELECT user_id, epoch_ms(event_time) AS t, event_type, device_id, session_id, page, country
    FROM read_parquet('@LAKE@/**/*.parquet', hive_partitioning = true)
    WHERE user_id IS NOT NULL AND event_time IS NOT NULL AND is_active IS NOT FALSE
),
flagged AS (
    SELECT *,
        CASE WHEN t - lag(t) OVER (PARTITION BY user_id ORDER BY t) <= 1800000 THEN 0 ELSE 1 END AS new_session
    FROM active
)
SELECT user_id, t, event_type, device_id, session_id, page, country,
    sum(new_session) OVER (PARTITION BY user_id ORDER BY t) AS session_no
FROM flagged;

SELECT 'totals' AS suite_query;
WITH sessions AS (
    SELECT user_id, max(t) - min(t) AS duration_ms
    FROM ev
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

SELECT 'length_bins' AS suite_query;
WITH sessions AS (
    SELECT max(t) - min(t) AS duration_ms
    FROM ev
    GROUP BY user_id, session_no
    HAVING max(t) - min(t) <= 86400000
)
SELECT duration_ms // 300000 AS bin, count(*) AS sessions
FROM sessions
GROUP BY 1
ORDER BY 1;

SELECT 'bounce_per_day' AS suite_query;
WITH sessions AS (
    SELECT min(t) AS start_ms, count(*) FILTER (WHERE event_type = 'page_view') = 1 AS is_bounce
    FROM ev
    GROUP BY user_id, session_no
    HAVING max(t) - min(t) <= 86400000
)
SELECT
    CAST(make_timestamp(start_ms * 1000) AS DATE) AS day,
    count(*) AS sessions,
    count(*) FILTER (WHERE is_bounce) AS bounces,
    CAST(count(*) FILTER (WHERE is_bounce) AS DOUBLE) / count(*) AS bounce_rate
FROM sessions
GROUP BY 1
ORDER BY 1;

SELECT 'by_country' AS suite_query;
WITH sessions AS (
    SELECT user_id, max(t) - min(t) AS duration_ms, arg_min(country, (t, event_type)) AS country
    FROM ev
    GROUP BY user_id, session_no
    HAVING max(t) - min(t) <= 86400000
)
SELECT
    country,
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    CAST(sum(duration_ms) AS DOUBLE) / count(DISTINCT user_id) AS time_per_user_ms
FROM sessions
GROUP BY country
ORDER BY country;

SELECT 'instrumented' AS suite_query;
WITH sessions AS (
    SELECT user_id, max(t) - min(t) AS duration_ms
    FROM ev
    WHERE session_id IS NOT NULL AND session_id <> -1
    GROUP BY user_id, session_id
    HAVING max(t) - min(t) <= 86400000
)
SELECT
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    sum(duration_ms) AS total_length_ms,
    avg(CAST(duration_ms AS DOUBLE)) AS avg_length_ms,
    CAST(count(*) AS DOUBLE) / count(DISTINCT user_id) AS sessions_per_user
FROM sessions;

SELECT 'top_pages' AS suite_query;
WITH sessions AS (
    SELECT
        first(page ORDER BY t, event_type, device_id, session_id, page) FILTER (WHERE page IS NOT NULL) AS entry_page,
        last(page ORDER BY t, event_type, device_id, session_id, page) FILTER (WHERE page IS NOT NULL) AS exit_page
    FROM ev
    GROUP BY user_id, session_no
    HAVING max(t) - min(t) <= 86400000
),
total AS (SELECT count(*) AS sessions FROM sessions),
entries AS (SELECT entry_page AS page, count(*) AS n FROM sessions WHERE entry_page IS NOT NULL GROUP BY 1),
exits AS (SELECT exit_page AS page, count(*) AS n FROM sessions WHERE exit_page IS NOT NULL GROUP BY 1)
SELECT
    e.page,
    e.n AS entries,
    CAST(e.n AS DOUBLE) / t.sessions AS entry_rate,
    coalesce(x.n, 0) AS exits,
    CAST(coalesce(x.n, 0) AS DOUBLE) / t.sessions AS exit_rate
FROM entries e CROSS JOIN total t LEFT JOIN exits x ON x.page = e.page
ORDER BY e.n DESC, e.page
LIMIT 10;
