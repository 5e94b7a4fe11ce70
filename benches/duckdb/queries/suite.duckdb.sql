-- The six queries in one process, as an analyst's script runs them: the lake is sessionized
-- once by window SQL into the temporary table `s`, one row per session, and five queries read
-- `s`, not the lake; `instrumented` counts the SDK's sessions, which are other sessions, so it
-- reads the lake as its per-query form does. The same work as suite.sessionlake.sql.
-- Sessions follow the contract of docs/semantics.md: active events only (user and time not
-- NULL, is_active not false), per user by time, a new session when the gap to the previous
-- active event is strictly over 30 minutes (the running sum uses the default RANGE frame, so
-- events tied on time share one session number whatever their order), sessions longer than
-- 1 day left out. `s` keeps the length, the page views (for the bounce), the first event's
-- country, and the first and last page, ties on time ordered as the contract does: event_type,
-- then device_id, session_id, page (the rest cannot change the page).
-- Each result is preceded by a one-row result `suite_query` naming it, for compare.py to split
-- the output.
CREATE TEMP TABLE s AS
WITH active AS (
    SELECT user_id, epoch_ms(event_time) AS t, event_type, device_id, session_id, page, country
    FROM read_parquet('@LAKE@/**/*.parquet', hive_partitioning = true)
    WHERE user_id IS NOT NULL AND event_time IS NOT NULL AND is_active IS NOT FALSE
),
flagged AS (
    SELECT *,
        CASE WHEN t - lag(t) OVER (PARTITION BY user_id ORDER BY t) <= 1800000 THEN 0 ELSE 1 END AS new_session
    FROM active
),
numbered AS (
    SELECT *, sum(new_session) OVER (PARTITION BY user_id ORDER BY t) AS session_no
    FROM flagged
)
SELECT
    user_id,
    min(t) AS start_ms,
    max(t) - min(t) AS duration_ms,
    count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
    arg_min(country, (t, event_type)) AS country,
    first(page ORDER BY t, event_type, device_id, session_id, page) FILTER (WHERE page IS NOT NULL) AS entry_page,
    last(page ORDER BY t, event_type, device_id, session_id, page) FILTER (WHERE page IS NOT NULL) AS exit_page
FROM numbered
GROUP BY user_id, session_no
HAVING max(t) - min(t) <= 86400000;

SELECT 'totals' AS suite_query;
SELECT
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    sum(duration_ms) AS total_length_ms,
    avg(CAST(duration_ms AS DOUBLE)) AS avg_length_ms,
    CAST(count(*) AS DOUBLE) / count(DISTINCT user_id) AS sessions_per_user
FROM s;

SELECT 'length_bins' AS suite_query;
SELECT duration_ms // 300000 AS bin, count(*) AS sessions
FROM s
GROUP BY 1
ORDER BY 1;

SELECT 'bounce_per_day' AS suite_query;
SELECT
    CAST(make_timestamp(start_ms * 1000) AS DATE) AS day,
    count(*) AS sessions,
    count(*) FILTER (WHERE page_views = 1) AS bounces,
    CAST(count(*) FILTER (WHERE page_views = 1) AS DOUBLE) / count(*) AS bounce_rate
FROM s
GROUP BY 1
ORDER BY 1;

SELECT 'by_country' AS suite_query;
SELECT
    country,
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    CAST(sum(duration_ms) AS DOUBLE) / count(DISTINCT user_id) AS time_per_user_ms
FROM s
GROUP BY country
ORDER BY country;

SELECT 'instrumented' AS suite_query;
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

SELECT 'top_pages' AS suite_query;
WITH total AS (SELECT count(*) AS sessions FROM s),
entries AS (SELECT entry_page AS page, count(*) AS n FROM s WHERE entry_page IS NOT NULL GROUP BY 1),
exits AS (SELECT exit_page AS page, count(*) AS n FROM s WHERE exit_page IS NOT NULL GROUP BY 1)
SELECT
    e.page,
    e.n AS entries,
    CAST(e.n AS DOUBLE) / t.sessions AS entry_rate,
    coalesce(x.n, 0) AS exits,
    CAST(coalesce(x.n, 0) AS DOUBLE) / t.sessions AS exit_rate
FROM entries e CROSS JOIN total t LEFT JOIN exits x ON x.page = e.page
ORDER BY e.n DESC, e.page
LIMIT 10;
