-- Entry and exit rate of the 10 pages with the most entries (ties by page): a session's entry
-- (exit) page is its first (last) non-NULL page in the contract's event order; rates are over
-- all valid sessions.
WITH s AS (
    SELECT first_page AS entry_page, last_page AS exit_page
    FROM sessions('events', 'properties=page')
),
total AS (SELECT count(*) AS sessions FROM s),
entries AS (SELECT entry_page AS page, count(*) AS n FROM s WHERE entry_page IS NOT NULL GROUP BY 1),
exits AS (SELECT exit_page AS page, count(*) AS n FROM s WHERE exit_page IS NOT NULL GROUP BY 1)
SELECT
    e.page,
    e.n AS entries,
    CAST(e.n AS DOUBLE) / t.sessions AS entry_rate,
    coalesce(x.n, 0) AS exits,
    CAST(coalesce(x.n, 0) AS DOUBLE) / t.sessions AS exit_rate
FROM entries e CROSS JOIN total t LEFT JOIN exits x ON x.page = e.page
ORDER BY e.n DESC, e.page
LIMIT 10;
