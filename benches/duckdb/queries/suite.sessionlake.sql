-- The six queries in one process, as an analyst's script runs them: the lake is sessionized
-- once into the memory table `ev`, and every query reads `ev`, not the lake.
-- `ev` holds the active events (the contract's: user and time not NULL, is_active not false)
-- with the columns the queries need and the session columns of `sessionize`. Events of
-- sessions over the maximum length stay in it with NULL session columns: they still belong to
-- instrumented sessions. The view `s` (no second materialization) has one row per valid
-- session: its first event (event_index = 1), with the session's length.
-- `instrumented` and `top_pages` call `sessions` over `ev`, as an analyst would for a
-- session's entry and exit page (`properties=page`): `ev` has no is_active column, so every
-- event in it counts as active, and it keeps the lake's columns in the lake's order up to
-- `page` (device_id included), so events tied on one millisecond are ordered as in the lake.
-- (top_pages as an ordered first_value/last_value aggregate over `ev` took 9.5 of the suite's
-- 18 s at 10M.)
-- Each result is preceded by a one-row result `suite_query` naming it, for compare.py to split
-- the output.
CREATE TABLE ev AS
SELECT user_id, device_id, event_time, event_type, session_id, page, country,
    session_key, session_start, session_end, event_index
FROM sessionize('events')
WHERE user_id IS NOT NULL AND event_time IS NOT NULL AND is_active IS NOT FALSE;

CREATE VIEW s AS
SELECT user_id, session_key, country,
    CAST(session_end AS BIGINT) - CAST(session_start AS BIGINT) AS duration_ms
FROM ev
WHERE event_index = 1;

SELECT 'totals' AS suite_query;
SELECT
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    sum(duration_ms) AS total_length_ms,
    avg(CAST(duration_ms AS DOUBLE)) AS avg_length_ms,
    CAST(count(*) AS DOUBLE) / count(DISTINCT user_id) AS sessions_per_user
FROM s;

SELECT 'length_bins' AS suite_query;
SELECT duration_ms / 300000 AS bin, count(*) AS sessions
FROM s
GROUP BY 1
ORDER BY 1;

SELECT 'bounce_per_day' AS suite_query;
WITH b AS (
    SELECT
        session_key,
        count(*) FILTER (WHERE event_type = 'page_view') = 1 AS is_bounce
    FROM ev
    WHERE session_key IS NOT NULL
    GROUP BY user_id, session_key
)
SELECT
    CAST(to_timestamp_millis(session_key) AS DATE) AS day,
    count(*) AS sessions,
    count(*) FILTER (WHERE is_bounce) AS bounces,
    CAST(count(*) FILTER (WHERE is_bounce) AS DOUBLE) / count(*) AS bounce_rate
FROM b
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
SELECT
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    sum(duration_ms) AS total_length_ms,
    avg(CAST(duration_ms AS DOUBLE)) AS avg_length_ms,
    CAST(count(*) AS DOUBLE) / count(DISTINCT user_id) AS sessions_per_user
FROM sessions('ev', 'mode=instrumented');

SELECT 'top_pages' AS suite_query;
-- as in top_pages.sessionlake.sql, grouping sets give the entries per page, the exits per page
-- and the total in one pass over the sessions
WITH pages AS (
    SELECT first_page AS entry_page, last_page AS exit_page
    FROM sessions('ev', 'properties=page')
),
g AS (
    SELECT
        entry_page,
        exit_page,
        grouping(entry_page) AS not_entry,
        grouping(exit_page) AS not_exit,
        count(*) AS n
    FROM pages
    GROUP BY GROUPING SETS ((entry_page), (exit_page), ())
),
counted AS (
    SELECT *, max(CASE WHEN not_entry = 1 AND not_exit = 1 THEN n END) OVER () AS sessions
    FROM g
),
per_page AS (
    SELECT
        CASE WHEN not_entry = 0 THEN entry_page ELSE exit_page END AS page,
        sum(n) FILTER (WHERE not_entry = 0) AS entries,
        sum(n) FILTER (WHERE not_exit = 0) AS exits,
        max(sessions) AS sessions
    FROM counted
    WHERE (not_entry = 0 AND entry_page IS NOT NULL) OR (not_exit = 0 AND exit_page IS NOT NULL)
    GROUP BY 1
)
SELECT
    page,
    entries,
    CAST(entries AS DOUBLE) / sessions AS entry_rate,
    coalesce(exits, 0) AS exits,
    CAST(coalesce(exits, 0) AS DOUBLE) / sessions AS exit_rate
FROM per_page
WHERE entries IS NOT NULL
ORDER BY entries DESC, page
LIMIT 10;
