-- Events per session distribution (Amplitude User Sessions chart counting events,
-- "Distribution").
-- Definition: the number of sessions starting in the interval whose count of active events
-- falls in each bin [lo, hi): 1, 2, 3, 4, 5, 6-10, 11-20, 21-50, 51-100, 101 and more (hi is
-- Infinity), so the sessions of a day and country add up to all of them. Every bin is listed,
-- empty bins with 0.
-- Day = the session's start day in America/New_York; group = its first non-NULL country.
-- Output: day DATE, country VARCHAR, lo DOUBLE, hi DOUBLE, sessions BIGINT; ordered by day,
-- country, lo.
WITH session_rows AS (
    SELECT * FROM sessionize('events') WHERE session_key IS NOT NULL
),
sessions AS (
    SELECT
        user_id,
        session_key,
        CAST(min(session_start) AT TIME ZONE 'America/New_York' AS DATE) AS day,
        count(*) AS events,
        first_value(country ORDER BY event_index) FILTER (WHERE country IS NOT NULL) AS country
    FROM session_rows
    GROUP BY user_id, session_key
),
histograms AS (
    SELECT day, country, HIST(events, [1, 2, 3, 4, 5, 6, 11, 21, 51, 101]) AS bins
    FROM sessions
    GROUP BY day, country
),
bins AS (
    SELECT day, country, unnest(bins) AS bin FROM histograms
)
SELECT day, country, bin['lo'] AS lo, bin['hi'] AS hi, bin['count'] AS sessions
FROM bins
-- HIST's first bin, [-inf, 1), is always empty: every session has an event
WHERE bin['lo'] >= 1
ORDER BY day, country, lo;
