-- Sessions, users and time per user (total length / users, ms) by the country of the session's
-- first event (event_index = 1, the contract's event order).
SELECT
    country,
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    CAST(sum(CAST(session_end AS BIGINT) - CAST(session_start AS BIGINT)) AS DOUBLE)
        / count(DISTINCT user_id) AS time_per_user_ms
FROM sessionize('events')
WHERE event_index = 1
GROUP BY country
ORDER BY country;
