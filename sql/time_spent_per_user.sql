-- Time spent per user (Amplitude User Sessions chart, "Average Time Per User").
-- Definition: the sum of the lengths of the sessions that start in the interval, in seconds,
-- divided by the number of distinct users who have one of those sessions.
-- Day = the session's start day in America/New_York; group = its first non-NULL country.
-- Output: day DATE, country VARCHAR, users BIGINT, time_spent_s DOUBLE,
-- time_per_user_s DOUBLE; ordered by day, country.
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
    UNIQUES(user_id) AS users,
    PROPSUM(length) AS time_spent_s,
    PROPSUM(length) / UNIQUES(user_id) AS time_per_user_s
FROM sessions
GROUP BY day, country
ORDER BY day, country;
