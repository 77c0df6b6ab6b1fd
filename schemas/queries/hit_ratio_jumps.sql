-- question: Which path templates' hit ratio jumped in the recent hours against their own trailing baseline (e.g. after a CDN configuration change)?
-- param: at DateTime = now()  -- end of the recent window
-- param: recent_hours UInt64 = 1  -- recent window length
-- param: baseline_hours UInt64 = 24  -- baseline window before it
-- param: min_change Float64 = 0.2  -- absolute change in hit ratio to report
-- param: min_requests UInt64 = 50  -- requests needed in each window
-- example:
--   host            path_template  baseline_ratio  recent_ratio  change  baseline_requests  recent_requests  recent_versions
--   www.example.jp  /mypage        0               0.7           0.7    1200               300              ['42']
SELECT
    host,
    path_template,
    round(b_hits / b_req, 4)        AS baseline_ratio,
    round(r_hits / r_req, 4)        AS recent_ratio,
    round(r_hits / r_req - b_hits / b_req, 4) AS change,
    b_req                           AS baseline_requests,
    r_req                           AS recent_requests,
    recent_versions
FROM
(
    SELECT
        host,
        path_template,
        sumIf(requests, hour >= r_start)   AS r_req,
        sumIf(from_cache, hour >= r_start) AS r_hits,
        sumIf(requests, hour < r_start)    AS b_req,
        sumIf(from_cache, hour < r_start)  AS b_hits,
        groupUniqArrayIf(config_version, hour >= r_start) AS recent_versions
    FROM
    (
        SELECT
            host,
            path_template,
            hour,
            config_version,
            countMerge(requests_state)  AS requests,
            sumMerge(from_cache_state)  AS from_cache,
            toStartOfHour({at:DateTime}) - {recent_hours:UInt64} * 3600 + 3600 AS r_start
        FROM cdn_hourly_state
        WHERE hour >= toStartOfHour({at:DateTime}) - ({recent_hours:UInt64} + {baseline_hours:UInt64}) * 3600 + 3600
          AND hour <= toStartOfHour({at:DateTime})
        GROUP BY host, path_template, hour, config_version
    )
    GROUP BY host, path_template
)
WHERE r_req >= {min_requests:UInt64} AND b_req >= {min_requests:UInt64}
  AND abs(r_hits / r_req - b_hits / b_req) >= {min_change:Float64}
ORDER BY abs(change) DESC, host, path_template
