-- question: Which runs were expected (from job_schedules, expanded by `logpipe schedules sync`) but never started within their grace time?
-- param: since DateTime = now() - INTERVAL 1 DAY  -- expected at or after this time
-- param: at DateTime = now()  -- only runs whose grace time is over by then
-- example:
--   job           expected_time        grace_s
--   payout-close  2026-11-24 02:00:00  1800
SELECT job, expected_time, grace AS grace_s
FROM
(
    SELECT job, expected_time, any(grace_s) AS grace,
           countIf(start_time >= expected_time - 60 AND toInt64(start_time) <= toInt64(expected_time) + grace_s) AS started
    FROM
    (
        SELECT job, expected_time, grace_s FROM job_expected_runs FINAL
        WHERE expected_time >= {since:DateTime} AND toInt64(expected_time) + grace_s < toInt64({at:DateTime})
    ) AS expected
    ALL LEFT JOIN
    (
        SELECT job, start_time FROM job_runs WHERE start_time >= {since:DateTime} - INTERVAL 1 DAY
    ) AS runs USING (job)
    GROUP BY job, expected_time
)
WHERE started = 0
ORDER BY expected_time, job
