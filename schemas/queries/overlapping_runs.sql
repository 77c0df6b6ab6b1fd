-- question: Which runs of the same job overlapped in time (double execution)?
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time
-- param: at DateTime = now()  -- end of still-running runs
-- example:
--   job         run_id         other_run_id   start_time           other_start_time     overlap_s
--   mail-digest 20261125T0515  20261125T0530  2026-11-25 05:15:01  2026-11-25 05:30:00  412
SELECT
    job,
    run_id,
    other_run_id,
    start_time,
    other_start_time,
    least(end_s, other_end_s) - greatest(toInt64(start_time), toInt64(other_start_time)) AS overlap_s
FROM
(
    SELECT job, run_id, start_time, toInt64(ifNull(end_time, {at:DateTime})) AS end_s
    FROM job_runs WHERE start_time >= {since:DateTime}
) AS runs
ALL INNER JOIN
(
    SELECT job, run_id AS other_run_id, start_time AS other_start_time, toInt64(ifNull(end_time, {at:DateTime})) AS other_end_s
    FROM job_runs WHERE start_time >= {since:DateTime}
) AS other_runs USING (job)
WHERE run_id < other_run_id
  AND toInt64(start_time) < other_end_s
  AND toInt64(other_start_time) < end_s
ORDER BY start_time, job, run_id, other_run_id
