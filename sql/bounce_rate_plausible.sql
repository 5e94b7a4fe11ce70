-- Bounce rate, Plausible's definition.
-- Definition: a visit is a bounce unless the visitor views more than one page or triggers a
-- custom event (every custom event is interactive unless sent as non-interactive; here the
-- inactive events, is_active = false, play the non-interactive ones and belong to no session).
-- So a bounce is a session whose active events are exactly one page_view and nothing else.
-- Bounce rate = bounces / sessions.
-- Day = the session's start day in America/New_York; group = its first non-NULL platform.
-- Output: day DATE, platform VARCHAR, sessions BIGINT, bounces BIGINT, bounce_rate DOUBLE;
-- ordered by day, platform.
WITH session_rows AS (
    SELECT * FROM sessionize('events') WHERE session_key IS NOT NULL
),
sessions AS (
    SELECT
        user_id,
        session_key,
        CAST(min(session_start) AT TIME ZONE 'America/New_York' AS DATE) AS day,
        first_value(platform ORDER BY event_index) FILTER (WHERE platform IS NOT NULL)
            AS platform,
        count(*) FILTER (WHERE event_type = 'page_view') = 1
            AND count(*) FILTER (WHERE event_type <> 'page_view') = 0 AS is_bounce
    FROM session_rows
    GROUP BY user_id, session_key
)
SELECT
    day,
    platform,
    SESSIONTOTALS(user_id, session_key) AS sessions,
    count(*) FILTER (WHERE is_bounce) AS bounces,
    CAST(count(*) FILTER (WHERE is_bounce) AS DOUBLE) / SESSIONTOTALS(user_id, session_key)
        AS bounce_rate
FROM sessions
GROUP BY day, platform
ORDER BY day, platform;
