-- Time spent per user (Amplitude User Sessions chart, "Average Time Per User").
-- Definition: the sum of the lengths of the sessions that start in the interval, in seconds,
-- divided by the number of users with an active event in the interval (Amplitude: "the total
-- number of active users in the interval"), not only the users who started a session then: a
-- session that crosses midnight makes its user active on both days, and its length counts on
-- its start day. An active event is one that takes part in a valid session (inactive events and
-- events of excluded sessions belong to none), as in avg_per_user.sql.
-- Day = the session's start day (lengths) or the event's day (active users), in
-- America/New_York; group = the first non-NULL country of the session (for an active user, of
-- the session the active event is in).
-- Output: day DATE, country VARCHAR, active_users BIGINT, time_spent_s DOUBLE,
-- time_per_user_s DOUBLE; one row per day and country with an active user (time_spent_s 0
-- when no session starts then), ordered by day, country.
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
        min(session_end) - min(session_start) AS length,
        first_value(country ORDER BY event_index) FILTER (WHERE country IS NOT NULL) AS country
    FROM session_rows
    GROUP BY user_id, session_key
),
spent AS (
    SELECT day, country, PROPSUM(length) AS time_spent_s
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
    a.active_users,
    coalesce(sp.time_spent_s, 0) AS time_spent_s,
    coalesce(sp.time_spent_s, 0) / a.active_users AS time_per_user_s
FROM active a
LEFT JOIN spent sp ON a.day = sp.day AND a.country IS NOT DISTINCT FROM sp.country
ORDER BY a.day, a.country;
