-- Total sessions (Amplitude User Sessions chart, "Total Sessions").
-- Definition: the number of sessions (distinct user and session key) that start in the
-- interval; a session belongs to the day of its first active event (here a calendar day in
-- America/New_York) and to the group of its first non-NULL country.
-- Output: day DATE, country VARCHAR, sessions BIGINT; one row per day and country that has a
-- session, ordered by day, country.
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
SELECT day, country, SESSIONTOTALS(user_id, session_key) AS sessions
FROM sessions
GROUP BY day, country
ORDER BY day, country;
