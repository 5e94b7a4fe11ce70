-- The six queries in one process, as an analyst's script runs them: the lake is sessionized
-- once into the session table `s`, one row per session (`sessions`), and five queries read `s`,
-- not the lake; `instrumented` counts the SDK's sessions, which are other sessions, so it reads
-- the lake as its per-query form does.
-- `s` keeps the columns the queries need: the length, the session's page views
-- (`count_event_types`, for the bounce), its first and last page (`properties`, for the entry
-- and exit pages) and its country (`first_country`: the first non-NULL country of the session in
-- event order; the generated lakes' country is never NULL, so it is the country of the first
-- event, as the per-query `by_country` reads it; compare.py checks every result against the
-- per-query answers).
-- `s` is written as Parquet files into `session_table/` of the working directory (compare.py
-- runs each script in an empty scratch directory) and read back: a memory table does not spill,
-- and at 500M events it would hold some 205M sessions, about 18 GB. (Until issue 14's fourth
-- round `s` was a memory table; until its third, one row per active event: 11.5 GiB at 50M.)
-- Each result is preceded by a one-row result `suite_query` naming it, for compare.py to split
-- the output.
COPY (
    SELECT user_id, session_key, duration_ms, count_page_view, first_page, last_page,
        first_country AS country
    FROM sessions('events', 'properties=page,country', 'count_event_types=page_view')
) TO 'session_table/' STORED AS PARQUET;
CREATE EXTERNAL TABLE s STORED AS PARQUET LOCATION 'session_table/';

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
    SELECT session_key, count_page_view = 1 AS is_bounce
    FROM s
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
FROM sessions('events', 'mode=instrumented');

SELECT 'top_pages' AS suite_query;
-- as in top_pages.sessionlake.sql, grouping sets give the entries per page, the exits per page
-- and the total in one pass over the sessions
WITH pages AS (
    SELECT first_page AS entry_page, last_page AS exit_page
    FROM s
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
