-- gap sessions by window SQL, the contract of docs/semantics.md: active events only (user and
-- time not NULL, is_active not false), per user by time, a new session when the gap to the
-- previous active event is strictly over 30 minutes, sessions longer than 1 day excluded.
-- Ties on time are ordered as the contract does: event_type, then the columns in schema order
-- (device_id, session_id, page; the rest cannot change the page). The running sum uses the default RANGE frame, so events tied on time share one session number
-- whatever their order (ties never split a session: their gap is 0).
WITH ev AS (
    SELECT user_id, epoch_ms(event_time) AS t, event_type, device_id, session_id, page
    FROM read_parquet('@LAKE@/**/*.parquet', hive_partitioning = true)
    WHERE user_id IS NOT NULL AND event_time IS NOT NULL AND is_active IS NOT FALSE
),
flagged AS (
    SELECT user_id, t, event_type, device_id, session_id, page,
        CASE WHEN t - lag(t) OVER (PARTITION BY user_id ORDER BY t) <= 1800000 THEN 0 ELSE 1 END AS new_session
    FROM ev
),
numbered AS (
    SELECT user_id, t, event_type, device_id, session_id, page, sum(new_session) OVER (PARTITION BY user_id ORDER BY t) AS session_no
    FROM flagged
),
sessions AS (
    SELECT user_id, min(t) AS start_ms, max(t) - min(t) AS duration_ms, first(page ORDER BY t, event_type, device_id, session_id, page) FILTER (WHERE page IS NOT NULL) AS entry_page,
        last(page ORDER BY t, event_type, device_id, session_id, page) FILTER (WHERE page IS NOT NULL) AS exit_page
    FROM numbered
    GROUP BY user_id, session_no
    HAVING max(t) - min(t) <= 86400000
),
total AS (SELECT count(*) AS sessions FROM sessions),
entries AS (SELECT entry_page AS page, count(*) AS n FROM sessions WHERE entry_page IS NOT NULL GROUP BY 1),
exits AS (SELECT exit_page AS page, count(*) AS n FROM sessions WHERE exit_page IS NOT NULL GROUP BY 1)
SELECT
    e.page,
    e.n AS entries,
    CAST(e.n AS DOUBLE) / t.sessions AS entry_rate,
    coalesce(x.n, 0) AS exits,
    CAST(coalesce(x.n, 0) AS DOUBLE) / t.sessions AS exit_rate
FROM entries e CROSS JOIN total t LEFT JOIN exits x ON x.page = e.page
ORDER BY e.n DESC, e.page
LIMIT 10;
