-- Session length distribution (Amplitude User Sessions chart, "Session Length Distribution").
-- Definition: the number of sessions starting in the interval whose length falls in each of
-- Amplitude's default bins [lo, hi): 0-3 s, 3-10 s, 10-30 s, 30 s-1 min, 1-3 min, 3-10 min,
-- 10-30 min, 30 min-1 h, 1 h-1 day, and 1 day or more (hi_s is Infinity: a session of exactly
-- one day, or longer ones with max_length=none), so the sessions of a day and country add up
-- to all of them. Every bin is listed, empty bins with 0.
-- Day = the session's start day in America/New_York; group = its first non-NULL country.
-- Output: day DATE, country VARCHAR, lo_s DOUBLE, hi_s DOUBLE, sessions BIGINT; ordered by
-- day, country, lo_s.
WITH session_rows AS (
    SELECT * FROM sessionize('events') WHERE session_key IS NOT NULL
),
sessions AS (
    SELECT
        user_id,
        session_key,
        CAST(min(session_start) AT TIME ZONE 'America/New_York' AS DATE) AS day,
        min(session_end) - min(session_start) AS length,
        first_value(country ORDER BY event_index) FILTER (WHERE country IS NOT NULL) AS country
    FROM session_rows
    GROUP BY user_id, session_key
),
histograms AS (
    SELECT day, country, HIST(length) AS bins FROM sessions GROUP BY day, country
),
bins AS (
    SELECT day, country, unnest(bins) AS bin FROM histograms
)
SELECT day, country, bin['lo'] AS lo_s, bin['hi'] AS hi_s, bin['count'] AS sessions
FROM bins
-- HIST's first bin, [-inf, 0), is always empty: no session is shorter than 0
WHERE bin['lo'] >= 0
ORDER BY day, country, lo_s;
