-- Average sessions per user (Amplitude User Sessions chart, "Average Sessions Per User").
-- Definition: the number of sessions that start in the interval divided by the number of
-- users with an active event in the interval (not only the users who started a session then:
-- a session that crosses midnight makes its user active on both days). An active event is one
-- that takes part in a valid session (inactive events and events of excluded sessions belong
-- to none).
-- Day = the session's start day (sessions) or the event's day (active users), in
-- America/New_York; group = the first non-NULL country of the session (for an active user, of
-- the session the active event is in).
-- Output: day DATE, country VARCHAR, sessions BIGINT, active_users BIGINT,
-- sessions_per_user DOUBLE; one row per day and country with an active user, ordered by day,
-- country.
WITH session_rows AS (
    SELECT *, CAST(event_time AT TIME ZONE 'America/New_York' AS DATE) AS event_day
    FROM sessionize('events')
    WHERE session_key IS NOT NULL
),
sessions AS (
    SELECT
        user_id,
        session_key,
        CAST(min(session_start) AT TIME ZONE 'America/New_York' AS DATE) AS day,
        first_value(country ORDER BY event_index) FILTER (WHERE country IS NOT NULL) AS country
    FROM session_rows
    GROUP BY user_id, session_key
),
started AS (
    SELECT day, country, SESSIONTOTALS(user_id, session_key) AS sessions
    FROM sessions
    GROUP BY day, country
),
active AS (
    SELECT r.event_day AS day, s.country, ACTIVE(r.user_id, r.is_active) AS active_users
    FROM session_rows r
    JOIN sessions s ON r.user_id = s.user_id AND r.session_key = s.session_key
    GROUP BY r.event_day, s.country
)
SELECT
    a.day,
    a.country,
    coalesce(st.sessions, 0) AS sessions,
    a.active_users,
    CAST(coalesce(st.sessions, 0) AS DOUBLE) / a.active_users AS sessions_per_user
FROM active a
LEFT JOIN started st ON a.day = st.day AND a.country = st.country
ORDER BY a.day, a.country;
