-- question: Which running runs have been going longer than their job usually takes (its own p95 of finished runs)?
-- param: factor Float64 = 1.0  -- flag when elapsed > factor x the job's p95
-- param: min_history UInt64 = 5  -- only jobs with at least this many finished runs
-- param: at DateTime = now()  -- "now"
-- example:
--   job           run_id         start_time           elapsed_s  p95_s  history_runs
--   search-index  20261125T0600  2026-11-25 06:00:01  1260       542.3  71
SELECT
    r.job AS job,
    r.run_id AS run_id,
    r.start_time AS start_time,
    toInt64({at:DateTime}) - toInt64(r.start_time) AS elapsed_s,
    h.p95_s AS p95_s,
    h.history_runs AS history_runs
FROM
(
    SELECT job, run_id, start_time FROM job_runs WHERE status = 'running' AND start_time <= {at:DateTime}
) AS r
ALL INNER JOIN
(
    SELECT job, round(quantile(0.95)(duration_s), 1) AS p95_s, count() AS history_runs
    FROM job_runs
    WHERE end_time IS NOT NULL AND status = 'succeeded'
    GROUP BY job
) AS h USING (job)
WHERE history_runs >= {min_history:UInt64}
  AND toInt64({at:DateTime}) - toInt64(start_time) > {factor:Float64} * p95_s
ORDER BY elapsed_s / p95_s DESC, job, run_id
