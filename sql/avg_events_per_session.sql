-- Average events per session (Amplitude User Sessions chart counting events, "Average").
-- Definition: the number of active events in the sessions that start in the interval divided
-- by the number of those sessions. (To count one event, add FILTER (WHERE event_type = '...')
-- to EVENTTOTALS: sessions without it still count in the denominator.)
-- Day = the session's start day in America/New_York (all its events count on that day); group
-- = the session's first non-NULL country.
-- Output: day DATE, country VARCHAR, sessions BIGINT, events BIGINT,
-- events_per_session DOUBLE; ordered by day, country.
WITH session_rows AS (
    SELECT * FROM sessionize('events') WHERE session_key IS NOT NULL
),
sessions AS (
    SELECT
        user_id,
        session_key,
        CAST(min(session_start) AT TIME ZONE 'America/New_York' AS DATE) AS day,
        first_value(country ORDER BY event_index) FILTER (WHERE country IS NOT NULL) AS country
    FROM session_rows
    GROUP BY user_id, session_key
)
SELECT
    s.day,
    s.country,
    SESSIONTOTALS(r.user_id, r.session_key) AS sessions,
    EVENTTOTALS(r.session_key) AS events,
    CAST(EVENTTOTALS(r.session_key) AS DOUBLE) / SESSIONTOTALS(r.user_id, r.session_key)
        AS events_per_session
FROM session_rows r
JOIN sessions s ON r.user_id = s.user_id AND r.session_key = s.session_key
GROUP BY s.day, s.country
ORDER BY s.day, s.country;
