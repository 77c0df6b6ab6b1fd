-- question: Which runs started later than allowed after their scheduled time?
-- param: min_delay_s Int64 = 300  -- flag starts at least this many seconds late
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs scheduled at or after this time
-- example:
--   job           run_id         scheduled_time       start_time           start_delay_s
--   payout-close  20261124T0200  2026-11-24 02:00:00  2026-11-24 02:41:07  2467
SELECT job, run_id, scheduled_time, start_time, start_delay_s
FROM job_runs
WHERE scheduled_time IS NOT NULL
  AND scheduled_time >= {since:DateTime}
  AND start_delay_s >= {min_delay_s:Int64}
ORDER BY start_delay_s DESC, job, run_id
