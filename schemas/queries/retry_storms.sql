-- question: Which jobs retried a lot (runs with several attempts) in a window?
-- param: since DateTime = now() - INTERVAL 1 DAY  -- runs that started at or after this time
-- param: min_attempts UInt64 = 3  -- a run with at least this many attempts counts as a storm
-- example:
--   job            runs  retried_runs  max_attempt  attempts
--   report-export  4     2             5            11
SELECT
    job,
    count()                                    AS runs,
    countIf(attempt > 1)                       AS retried_runs,
    max(attempt)                               AS max_attempt,
    sum(attempt)                               AS attempts
FROM
(
    -- the rules of the job_runs view, with only the three states needed merged, and only for
    -- the runs that can qualify: a run starts at or after `since` only if one of its state rows
    -- has a `started` event, or else a first event, at or after it (the row holding the minimum)
    SELECT
        job,
        run_id,
        minMerge(first_ms_state)                 AS first_ms,
        minIfMerge(started_ms_state)             AS started_ms,
        toDateTime(intDiv(if(started_ms = 0, first_ms, started_ms), 1000)) AS start_time,
        maxMerge(attempt_state)                  AS attempt
    FROM job_runs_state
    WHERE (job, run_id) GLOBAL IN
          (
              SELECT job, run_id
              FROM job_runs_state
              WHERE finalizeAggregation(started_ms_state) >= toUInt64(toUInt32({since:DateTime})) * 1000
                 OR finalizeAggregation(first_ms_state) >= toUInt64(toUInt32({since:DateTime})) * 1000
          )
    GROUP BY job, run_id
)
WHERE start_time >= {since:DateTime}
GROUP BY job
HAVING max_attempt >= {min_attempts:UInt64}
ORDER BY max_attempt DESC, job
