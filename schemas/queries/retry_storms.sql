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
FROM job_runs
WHERE start_time >= {since:DateTime}
GROUP BY job
HAVING max_attempt >= {min_attempts:UInt64}
ORDER BY max_attempt DESC, job
