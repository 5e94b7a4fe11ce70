-- Bounce rate, Google Analytics 4's definition.
-- Definition: a bounce is a session that is not engaged; GA4 calls a session engaged when it
-- lasts longer than 10 seconds, or has a key event (here: purchase), or has 2 or more page
-- views. So a bounce lasts at most 10 s (last active event minus first), has no purchase and
-- fewer than 2 page_view events. Bounce rate = bounces / sessions (= 1 - engagement rate).
-- (GA4 measures engagement time from the page being in the foreground; the event log only
-- has the session's length.)
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
        min(session_end) - min(session_start) <= INTERVAL '10 seconds'
            AND count(*) FILTER (WHERE event_type = 'purchase') = 0
            AND count(*) FILTER (WHERE event_type = 'page_view') < 2 AS is_bounce
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
