-- Entry and exit rate of the 10 pages with the most entries (ties by page): a session's entry
-- (exit) page is its first (last) non-NULL page in the contract's event order; rates are over
-- all valid sessions.
-- DataFusion evaluates a CTE once per reference, so the sessions are aggregated in one pass:
-- grouping sets give the entries per page, the exits per page and the total together.
WITH g AS (
    SELECT
        first_page AS entry_page,
        last_page AS exit_page,
        grouping(first_page) AS not_entry,
        grouping(last_page) AS not_exit,
        count(*) AS n
    FROM sessions('events', 'properties=page')
    GROUP BY GROUPING SETS ((first_page), (last_page), ())
),
counted AS (
    SELECT *, max(CASE WHEN not_entry = 1 AND not_exit = 1 THEN n END) OVER () AS sessions
    FROM g
),
per_page AS (
    SELECT
        CASE WHEN not_entry = 0 THEN entry_page ELSE exit_page END AS page,
        sum(n) FILTER (WHERE not_entry = 0) AS entries,
        sum(n) FILTER (WHERE not_exit = 0) AS exits,
        max(sessions) AS sessions
    FROM counted
    WHERE (not_entry = 0 AND entry_page IS NOT NULL) OR (not_exit = 0 AND exit_page IS NOT NULL)
    GROUP BY 1
)
SELECT
    page,
    entries,
    CAST(entries AS DOUBLE) / sessions AS entry_rate,
    coalesce(exits, 0) AS exits,
    CAST(coalesce(exits, 0) AS DOUBLE) / sessions AS exit_rate
FROM per_page
WHERE entries IS NOT NULL
ORDER BY entries DESC, page
LIMIT 10;
