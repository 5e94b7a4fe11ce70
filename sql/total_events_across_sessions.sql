-- Total events across sessions (Amplitude User Sessions chart counting events, "Total").
-- Definition: the number of active events that belong to a session starting in the interval
-- (events outside any valid session are not counted).
-- Day = the session's start day in America/New_York (all its events count on that day); group
-- = the session's first non-NULL country.
-- Output: day DATE, country VARCHAR, events BIGINT; ordered by day, country.
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
SELECT s.day, s.country, EVENTTOTALS(r.session_key) AS events
FROM session_rows r
JOIN sessions s ON r.user_id = s.user_id AND r.session_key = s.session_key
GROUP BY s.day, s.country
ORDER BY s.day, s.country;
