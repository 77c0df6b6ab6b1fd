-- question: Which runs have neither finished nor said anything (event or heartbeat) for a while?
-- param: idle_minutes UInt64 = 30  -- no event for at least this long
-- param: at DateTime = now()  -- "now", for looking back at an incident
-- example:
--   job           run_id         host      start_time           last_event_time      idle_min
--   payout-close  20261125T0200  batch-01  2026-11-25 02:00:03  2026-11-25 02:14:10  46
SELECT
    job,
    run_id,
    host,
    start_time,
    last_event_time,
    intDiv(toInt64({at:DateTime}) - toInt64(last_event_time), 60) AS idle_min
FROM job_runs
WHERE status = 'running'
  AND start_time <= {at:DateTime}
  AND toInt64({at:DateTime}) - toInt64(last_event_time) >= {idle_minutes:UInt64} * 60
ORDER BY idle_min DESC, job, run_id
