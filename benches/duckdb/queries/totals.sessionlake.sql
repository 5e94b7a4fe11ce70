-- Total sessions, users with a session, total and average length (ms), sessions per user.
SELECT
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    sum(duration_ms) AS total_length_ms,
    avg(CAST(duration_ms AS DOUBLE)) AS avg_length_ms,
    CAST(count(*) AS DOUBLE) / count(DISTINCT user_id) AS sessions_per_user
FROM sessions('events');
