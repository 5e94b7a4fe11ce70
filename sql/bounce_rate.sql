-- Bounce rate, Amplitude's definition (session metrics of Data Tables, default page_view).
-- Definition: a bounce is a session with exactly one page_view event among its active events;
-- a session with no page_view is not a bounce but counts in the denominator. Bounce rate =
-- bounces / sessions. (Grouped by an event property instead, Amplitude calls a session a
-- bounce when that property takes exactly one distinct non-NULL value in it: see
-- docs/bounce.md.)
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
        count(*) FILTER (WHERE event_type = 'page_view') = 1 AS is_bounce
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
