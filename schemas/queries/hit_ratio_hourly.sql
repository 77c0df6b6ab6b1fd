-- question: What was the cache hit ratio per hour (optionally for one host), with requests, bytes and errors - the dashboard query? (Reads cdn_hourly_state directly: only the states it needs are merged.)
-- param: since DateTime = now() - INTERVAL 7 DAY  -- hours at or after this time (UTC)
-- param: host String = ''  -- one host, or '' for all
-- example:
--   hour                 requests  hit_ratio  bytes       error_ratio  flagged
--   2026-11-25 05:00:00  10000     0.6123     401238123   0.012        212
SELECT
    hour,
    countMerge(requests_state)                                  AS requests,
    round(sumMerge(from_cache_state) / requests, 4)             AS hit_ratio,
    sumMerge(bytes_state)                                       AS bytes,
    round(sumMerge(errors_5xx_state) / requests, 4)             AS error_ratio,
    sumMerge(flagged_state)                                     AS flagged
FROM cdn_hourly_state
WHERE hour >= toStartOfHour({since:DateTime})
  AND ({host:String} = '' OR host = {host:String})
GROUP BY hour
ORDER BY hour
