-- question: Which jobs take longest? Finished runs, median, p95 and longest duration per job.
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- runs that started before this time (UTC)
-- example:
--   job            runs  p50_s   p95_s   max_s
--   payout-close   2     836.2   905.9   913.6
--   search-index   71    358.1   512.9   560.0
SELECT
    job,
    count()                          AS runs,
    round(quantile(0.5)(duration_s), 1)  AS p50_s,
    round(quantile(0.95)(duration_s), 1) AS p95_s,
    round(max(duration_s), 1)        AS max_s
FROM job_runs
WHERE start_time >= {since:DateTime} AND start_time < {until:DateTime}
  AND end_time IS NOT NULL
GROUP BY job
ORDER BY p95_s DESC, job
