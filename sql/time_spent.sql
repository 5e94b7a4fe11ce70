-- Total time spent (Amplitude User Sessions chart, "Total Time Spent").
-- Definition: the sum of the lengths of the sessions that start in the interval, in seconds;
-- a session's length is its last active event's time minus its first (0 for a single event).
-- Day = the session's start day in America/New_York; group = its first non-NULL country.
-- Output: day DATE, country VARCHAR, sessions BIGINT, time_spent_s DOUBLE; ordered by day,
-- country.
WITH session_rows AS (
    SELECT * FROM sessionize('events') WHERE session_key IS NOT NULL
),
sessions AS (
    SELECT
        user_id,
        session_key,
        CAST(min(session_start) AT TIME ZONE 'America/New_York' AS DATE) AS day,
        min(session_end) - min(session_start) AS length,
        first_value(country ORDER BY event_index) FILTER (WHERE country IS NOT NULL) AS country
    FROM session_rows
    GROUP BY user_id, session_key
)
SELECT
    day,
    country,
    SESSIONTOTALS(user_id, session_key) AS sessions,
    PROPSUM(length) AS time_spent_s
FROM sessions
GROUP BY day, country
ORDER BY day, country;
