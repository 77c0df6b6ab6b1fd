-- question: Which runs were expected (job_expected_runs, expanded by `logpipe schedules sync`) whose grace time was over by `at` with no run of the job started (as of `at`) between early_s before the due time and the grace time after it?
-- param: since DateTime = now() - INTERVAL 1 DAY  -- expected at or after this time
-- param: at DateTime = now()  -- the moment the answer is for (UTC): only runs whose grace time is over by then, and only events at or before it count
-- param: early_s UInt64 = 60  -- a run that started up to this many seconds before the due time counts as that run
-- example:
--   job           expected_time        grace_s
--   payout-close  2026-11-24 02:00:00  1800
SELECT job, expected_time, grace AS grace_s
FROM
(
    SELECT
        job,
        expected_time,
        any(grace_s) AS grace,
        countIf(start_s >= toInt64(expected_time) - {early_s:UInt64} AND start_s <= toInt64(expected_time) + grace_s) AS started
    FROM
    (
        SELECT job, expected_time, grace_s
        FROM job_expected_runs FINAL
        WHERE expected_time >= {since:DateTime} AND toInt64(expected_time) + grace_s < toInt64({at:DateTime})
    ) AS expected
    ALL LEFT JOIN
    (
        -- each run's start as of `at`: its first `started` event if that came by `at`, else its first event
        SELECT job, toInt64(intDiv(if(started_ms != 0 AND started_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000, started_ms, first_ms), 1000)) AS start_s
        FROM
        (
            SELECT job, run_id, minMerge(first_ms_state) AS first_ms, minIfMerge(started_ms_state) AS started_ms
            FROM job_runs_state
            WHERE job GLOBAL IN (SELECT job FROM job_expected_runs)
            GROUP BY job, run_id
        ) AS run_starts
        WHERE first_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND start_s >= toInt64({since:DateTime}) - {early_s:UInt64}
    ) AS starts USING (job)
    GROUP BY job, expected_time
) AS per_expected
WHERE started = 0
ORDER BY expected_time, job
