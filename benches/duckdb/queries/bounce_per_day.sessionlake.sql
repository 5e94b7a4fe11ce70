-- Sessions and bounce rate (Amplitude: exactly one page_view in the session) per UTC day of
-- the session's start.
WITH s AS (
    SELECT
        user_id,
        session_key,
        count(*) FILTER (WHERE event_type = 'page_view') = 1 AS is_bounce
    FROM sessionize('events')
    WHERE session_key IS NOT NULL
    GROUP BY user_id, session_key
)
SELECT
    CAST(to_timestamp_millis(session_key) AS DATE) AS day,
    count(*) AS sessions,
    count(*) FILTER (WHERE is_bounce) AS bounces,
    CAST(count(*) FILTER (WHERE is_bounce) AS DOUBLE) / count(*) AS bounce_rate
FROM s
GROUP BY 1
ORDER BY 1;
