-- question: Which runs started later than allowed after their scheduled time?
-- param: min_delay_s Int64 = 300  -- flag starts at least this many seconds late
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs scheduled at or after this time
-- example:
--   job           run_id         scheduled_time       start_time           start_delay_s
--   payout-close  20261124T0200  2026-11-24 02:00:00  2026-11-24 02:41:07  2467
SELECT job, run_id, scheduled_time, start_time, start_delay_s
FROM
(
    -- the rules of the job_runs view, with only the three states needed merged, and only for
    -- the runs that can qualify: a run's scheduled time is the latest over its state rows, so it
    -- is at or after `since` only if one row's is
    SELECT
        job,
        run_id,
        if(scheduled_raw = toDateTime(0), NULL, scheduled_raw) AS scheduled_time,
        toDateTime(intDiv(start_ms, 1000)) AS start_time,
        if(scheduled_raw = toDateTime(0), NULL, toInt64(intDiv(start_ms, 1000)) - toInt64(scheduled_raw)) AS start_delay_s
    FROM
    (
        SELECT
            job,
            run_id,
            minMerge(first_ms_state)                 AS first_ms,
            minIfMerge(started_ms_state)             AS started_ms,
            if(started_ms = 0, first_ms, started_ms) AS start_ms,
            maxMerge(scheduled_state)                AS scheduled_raw
        FROM job_runs_state
        WHERE (job, run_id) GLOBAL IN
              (
                  SELECT job, run_id
                  FROM job_runs_state
                  WHERE finalizeAggregation(scheduled_state) >= {since:DateTime}
              )
        GROUP BY job, run_id
    )
)
WHERE scheduled_time IS NOT NULL
  AND scheduled_time >= {since:DateTime}
  AND start_delay_s >= {min_delay_s:Int64}
ORDER BY start_delay_s DESC, job, run_id
