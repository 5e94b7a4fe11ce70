-- Sessions and bounce rate (Amplitude: exactly one page_view in the session) per UTC day of
-- the session's start. `sessions` returns one row per session with its page views counted
-- (`count_event_types`), so no event is regrouped.
SELECT
    CAST(session_start AS DATE) AS day,
    count(*) AS sessions,
    count(*) FILTER (WHERE count_page_view = 1) AS bounces,
    CAST(count(*) FILTER (WHERE count_page_view = 1) AS DOUBLE) / count(*) AS bounce_rate
FROM sessions('events', 'count_event_types=page_view')
GROUP BY 1
ORDER BY 1;
