-- Average session length with a timeout per feature: a web visit ends after 30 minutes without
-- activity, an app visit after 5 (Amplitude's timeout is one global number; "if you need a
-- different timeout per feature, you need to track sessions manually").
-- Definition: the view gives each event its own timeout; sessionlake.gap_column makes a session
-- stay open until the previous event's time plus that event's timeout (docs/semantics.md), so
-- one session can mix both. Length = last active event's time minus the first.
-- Day = the session's start day in America/New_York; group = its first non-NULL country.
-- Output: day DATE, country VARCHAR, sessions BIGINT, avg_length_s DOUBLE; ordered by day,
-- country.
CREATE OR REPLACE VIEW events_with_timeouts AS
SELECT
    *,
    CASE WHEN platform = 'web' THEN INTERVAL '30 minutes' ELSE INTERVAL '5 minutes' END AS timeout
FROM events;

SELECT
    CAST(session_start AT TIME ZONE 'America/New_York' AS DATE) AS day,
    first_country AS country,
    count(*) AS sessions,
    avg(duration_ms) / 1000.0 AS avg_length_s
FROM sessions('events_with_timeouts', 'gap_column=timeout', 'properties=country')
GROUP BY 1, 2
ORDER BY day, country;
