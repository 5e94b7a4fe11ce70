-- Session length distribution in 5-minute bins: bin = floor(duration / 5 min), sessions per bin.
SELECT duration_ms / 300000 AS bin, count(*) AS sessions
FROM sessions('events')
GROUP BY 1
ORDER BY 1;
