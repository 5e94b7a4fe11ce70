-- Bounce rate, PostHog's definition (web analytics).
-- Definition: a session with no pageview and no autocapture event has no bounce value (NULL)
-- and is left out of the rate; otherwise it is a bounce when it has at most one pageview or
-- autocapture event (here: page_view and click events together) and lasts under 10 seconds.
-- Bounce rate = bounces / sessions with a bounce value (NULL when there are none).
-- Day = the session's start day in America/New_York; group = its first non-NULL platform.
-- Output: day DATE, platform VARCHAR, sessions BIGINT (all sessions), rated_sessions BIGINT
-- (with a bounce value), bounces BIGINT, bounce_rate DOUBLE; ordered by day, platform.
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
        CASE
            WHEN count(*) FILTER (WHERE event_type IN ('page_view', 'click')) = 0 THEN NULL
            ELSE count(*) FILTER (WHERE event_type IN ('page_view', 'click')) <= 1
                AND min(session_end) - min(session_start) < INTERVAL '10 seconds'
        END AS is_bounce
    FROM session_rows
    GROUP BY user_id, session_key
)
SELECT
    day,
    platform,
    SESSIONTOTALS(user_id, session_key) AS sessions,
    count(is_bounce) AS rated_sessions,
    count(*) FILTER (WHERE is_bounce) AS bounces,
    CAST(count(*) FILTER (WHERE is_bounce) AS DOUBLE) / nullif(count(is_bounce), 0)
        AS bounce_rate
FROM sessions
GROUP BY day, platform
ORDER BY day, platform;
