-- question: How do a job's runs, failures and durations trend day by day?
-- param: job String  -- the job
-- param: since Date = today() - 30  -- first day (UTC)
-- example:
--   day         runs  failed  p50_s  p95_s  max_s
--   2026-11-24  24    0       321.0  542.3  617.1
SELECT day, runs, failed, partial, p50_s, p95_s, p99_s, max_s
FROM job_daily
WHERE job = {job:String} AND day >= {since:Date}
ORDER BY day
-- the job filter goes down through job_daily and job_runs to the run states, so only this job's
-- runs are merged (the default from ClickHouse 19 on; 18.16 needs it said)
SETTINGS enable_optimize_predicate_expression = 1
