-- Entry rate by page (Amplitude session metrics, grouped by the page property).
-- Definition: a session's entry page is the page of its first active event that has a page;
-- entries of a page = sessions starting in the interval with that entry page; entry rate =
-- entries / all sessions starting in the interval (sessions with no page at all enter no page
-- but stay in the denominator).
-- Day = the session's start day in America/New_York.
-- Output: day DATE, page VARCHAR, entries BIGINT, sessions BIGINT (of the day),
-- entry_rate DOUBLE; one row per day and entry page, ordered by day, page.
WITH session_rows AS (
    SELECT * FROM sessionize('events') WHERE session_key IS NOT NULL
),
sessions AS (
    SELECT
        user_id,
        session_key,
        CAST(min(session_start) AT TIME ZONE 'America/New_York' AS DATE) AS day,
        first_value(page ORDER BY event_index) FILTER (WHERE page IS NOT NULL) AS entry_page
    FROM session_rows
    GROUP BY user_id, session_key
),
daily AS (
    SELECT day, SESSIONTOTALS(user_id, session_key) AS sessions FROM sessions GROUP BY day
)
SELECT
    s.day,
    s.entry_page AS page,
    SESSIONTOTALS(s.user_id, s.session_key) AS entries,
    d.sessions,
    CAST(SESSIONTOTALS(s.user_id, s.session_key) AS DOUBLE) / d.sessions AS entry_rate
FROM sessions s
JOIN daily d ON s.day = d.day
WHERE s.entry_page IS NOT NULL
GROUP BY s.day, s.entry_page, d.sessions
ORDER BY s.day, page;
