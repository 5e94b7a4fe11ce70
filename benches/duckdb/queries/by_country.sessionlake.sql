-- Sessions, users and time per user (total length / users, ms) by the country of the session's
-- first event in the contract's event order. `sessions` returns it as `first_country` (the
-- first non-NULL country; the generated lakes' country is never NULL).
SELECT
    first_country AS country,
    count(*) AS sessions,
    count(DISTINCT user_id) AS users,
    CAST(sum(duration_ms) AS DOUBLE) / count(DISTINCT user_id) AS time_per_user_ms
FROM sessions('events', 'properties=country')
GROUP BY first_country
ORDER BY first_country;
