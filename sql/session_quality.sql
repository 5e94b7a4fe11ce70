-- Session quality: each session is good, medium or poor, the rule a lake job applies with
-- [outputs.sessions.quality] (docs/jobs.md), written over sessions() for the shell.
-- Definition: interactions = the session's events of type click, search or add_to_cart;
-- good = at least 5 minutes long with at least 3 interactions; else medium = at least 1 minute
-- long; else poor. The first class that holds wins, so the order of the WHEN lines matters.
-- Length = duration_ms, the last active event's time minus the first.
-- Day = the session's start day in America/New_York.
-- Output: day DATE, quality VARCHAR, sessions BIGINT, share DOUBLE (of the day's sessions);
-- ordered by day, then good, medium, poor; a class with no session that day has no row.
WITH interactions AS (
    SELECT
        user_id,
        session_key,
        count(*) FILTER (WHERE event_type IN ('click', 'search', 'add_to_cart')) AS interactions
    FROM sessionize('events')
    WHERE session_key IS NOT NULL
    GROUP BY user_id, session_key
),
classified AS (
    SELECT
        CAST(s.session_start AT TIME ZONE 'America/New_York' AS DATE) AS day,
        CASE
            WHEN s.duration_ms >= 300000 AND coalesce(i.interactions, 0) >= 3 THEN 'good'
            WHEN s.duration_ms >= 60000 THEN 'medium'
            ELSE 'poor'
        END AS quality
    FROM sessions('events') AS s
    LEFT JOIN interactions AS i ON s.user_id = i.user_id AND s.session_key = i.session_key
)
SELECT
    day,
    quality,
    count(*) AS sessions,
    CAST(count(*) AS DOUBLE) / CAST(sum(count(*)) OVER (PARTITION BY day) AS DOUBLE) AS share
FROM classified
GROUP BY day, quality
ORDER BY day, CASE quality WHEN 'good' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END;
