-- question: What was the cache hit ratio per hour (optionally for one host), with requests, bytes and errors - the dashboard query?
-- param: since DateTime = now() - INTERVAL 7 DAY  -- hours at or after this time (UTC)
-- param: host String = ''  -- one host, or '' for all
-- example:
--   hour                 requests  hit_ratio  bytes       error_ratio  flagged
--   2026-11-25 05:00:00  10000     0.6123     401238123   0.012        212
SELECT
    hour,
    sum(r)                     AS requests,
    round(sum(c) / sum(r), 4)  AS hit_ratio,
    sum(b)                     AS bytes,
    round(sum(e) / sum(r), 4)  AS error_ratio,
    sum(f)                     AS flagged
FROM
(
    SELECT hour, requests AS r, from_cache AS c, bytes AS b, errors_5xx AS e, flagged AS f
    FROM cdn_hourly
    WHERE hour >= toStartOfHour({since:DateTime})
      AND ({host:String} = '' OR host = {host:String})
)
GROUP BY hour
ORDER BY hour
