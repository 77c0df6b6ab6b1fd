-- question: Which runs failed? Newest first, with exit code and error.
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- runs that started before this time (UTC)
-- param: limit UInt64 = 50  -- at most this many runs
-- example:
--   job            run_id          attempt  host      start_time           duration_s  exit_code  error_class   error
--   report-export  20261124T1800   1        batch-02  2026-11-24 18:00:01  191.2       2          TimeoutError  run failed: upstream ...
SELECT
    job,
    run_id,
    attempt,
    host,
    start_time,
    round(duration_s, 1) AS duration_s,
    exit_code,
    error_class,
    error
FROM job_runs
WHERE status = 'failed'
  AND start_time >= {since:DateTime} AND start_time < {until:DateTime}
ORDER BY start_time DESC, job, run_id
LIMIT {limit:UInt64}
