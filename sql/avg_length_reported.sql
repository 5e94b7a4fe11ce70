-- Average session length, measured and reported: the length sessionlake measures (last active
-- event's time minus the first, 0 for a single event) beside the length the app reported on
-- its closing event, for the sessions that carry one.
-- Definition: sessionlake.reported_duration = session_end.duration_ms makes sessions() return
-- reported_duration_ms, the largest duration_ms of the session's active session_end events
-- (NULL when it has none; docs/semantics.md). avg_measured_length_s averages every session
-- starting in the interval; avg_reported_length_s only those with a reported length, counted
-- in reported_sessions (NULL when there are none).
-- Needs a lake whose apps log session_end events with a duration_ms column (the sample lake has
-- none): `sessionlake-gen --out app_lake --app-events` writes the sample lake's events so.
-- Day = the session's start day in America/New_York; group = its first non-NULL country.
-- Output: day DATE, country VARCHAR, sessions BIGINT, avg_measured_length_s DOUBLE,
-- reported_sessions BIGINT, avg_reported_length_s DOUBLE; ordered by day, country.
SELECT
    CAST(session_start AT TIME ZONE 'America/New_York' AS DATE) AS day,
    first_country AS country,
    count(*) AS sessions,
    avg(duration_ms) / 1000.0 AS avg_measured_length_s,
    count(reported_duration_ms) AS reported_sessions,
    avg(reported_duration_ms) / 1000.0 AS avg_reported_length_s
FROM sessions('events', 'reported_duration=session_end.duration_ms', 'properties=country')
GROUP BY 1, 2
ORDER BY day, country;
