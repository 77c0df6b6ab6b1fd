-- question: Which jobs take longest? Per job, the finished runs (runs with an end event, any status) that started in [since, until): how many, median, p95 and longest duration. Only events before `until` count.
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- runs that started before this time (UTC); the answer is as of this moment: only events before it count
-- let: read_from DateTime  -- the earliest event of the runs with events at or after `until` (computed first; job_events partitions before it are not read)
--   SELECT toDateTime(intDiv(if(count() = 0, toUInt64(toUInt32({until:DateTime})) * 1000, min(finalizeAggregation(first_ms_state))), 1000))
--   FROM job_runs_state
--   WHERE (job, run_id) GLOBAL IN
--   (
--       SELECT job, run_id
--       FROM job_runs_state
--       WHERE finalizeAggregation(last_ms_state) >= toUInt64(toUInt32({until:DateTime})) * 1000
--   )
-- example:
--   job            runs  p50_s   p95_s   max_s
--   payout-close   2     836.2   905.9   913.6
--   search-index   71    358.1   512.9   560.0
SELECT
    job,
    count()                          AS runs,
    round(quantile(0.5)(duration_s), 1)  AS p50_s,
    round(quantile(0.95)(duration_s), 1) AS p95_s,
    round(max(duration_s), 1)        AS max_s
FROM
(
    -- finished runs whose events all came before `until`: job_runs answers for them
    SELECT job, assumeNotNull(duration_s) AS duration_s
    FROM job_runs
    WHERE last_event_time < {until:DateTime}
      AND end_time IS NOT NULL
      AND start_time >= {since:DateTime} AND start_time < {until:DateTime}
    UNION ALL
    -- runs with events at or after `until`, rebuilt from their events before it (the rules of
    -- job_runs: start = first `started` event, else first event; end = last end event)
    SELECT job, (toInt64(maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed'))) - toInt64(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')))) / 1000 AS duration_s
    FROM job_events
    WHERE time_ms < toUInt64(toUInt32({until:DateTime})) * 1000 AND time <= {until:DateTime}
      -- the candidates' earliest event over all their state rows: older partitions are skipped
      AND time >= {read_from:DateTime}
      AND (job, run_id) GLOBAL IN
      (
          SELECT job, run_id
          FROM job_runs_state
          WHERE finalizeAggregation(last_ms_state) >= toUInt64(toUInt32({until:DateTime})) * 1000
      )
    GROUP BY job, run_id
    HAVING maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed')) > 0
       AND toDateTime(intDiv(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')), 1000)) >= {since:DateTime} AND toDateTime(intDiv(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')), 1000)) < {until:DateTime}
) AS finished
GROUP BY job
ORDER BY p95_s DESC, job
