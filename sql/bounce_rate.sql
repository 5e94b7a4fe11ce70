-- Bounce rate, Amplitude's definition (session metrics of Data Tables, default page_view).
-- Definition: a bounce is a session with exactly one page_view event among its active events;
-- a session with no page_view is not a bounce but counts in the denominator. Bounce rate =
-- bounces / sessions. (Grouped by an event property instead, Amplitude calls a session a
-- bounce when that property takes exactly one distinct non-NULL value in it: see
-- docs/bounce.md.)
-- Day = the session's start day in America/New_York; group = its first non-NULL platform.
-- `sessions` gives one row per session with its page views (`count_event_types`) and its first
-- non-NULL platform (`properties`).
-- Output: day DATE, platform VARCHAR, sessions BIGINT, bounces BIGINT, bounce_rate DOUBLE;
-- ordered by day, platform.
SELECT
    CAST(session_start AT TIME ZONE 'America/New_York' AS DATE) AS day,
    first_platform AS platform,
    count(*) AS sessions,
    count(*) FILTER (WHERE count_page_view = 1) AS bounces,
    CAST(count(*) FILTER (WHERE count_page_view = 1) AS DOUBLE) / count(*) AS bounce_rate
FROM sessions('events', 'properties=platform', 'count_event_types=page_view')
GROUP BY 1, 2
ORDER BY day, platform;
