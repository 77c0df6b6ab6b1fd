-- question: Which runs, as of `at`, were still running and had said nothing (no event of any kind, heartbeats included) for at least idle_minutes? Only events at or before `at` count, so looking back gives what a watcher saw then.
-- param: idle_minutes UInt64 = 30  -- no event for at least this long before `at`
-- param: at DateTime = now()  -- the moment the answer is for (UTC); only events at or before `at` count
-- let: read_from DateTime  -- the earliest event of the runs running as of `at` (computed first; job_events partitions before it are not read)
--   SELECT toDateTime(intDiv(if(count() = 0, toUInt64(toUInt32({at:DateTime})) * 1000, min(finalizeAggregation(first_ms_state))), 1000))
--   FROM job_runs_state
--   -- by a hash of the run: a superset (a collision adds a run), the same as the runs rebuilt
--   WHERE cityHash64(job, run_id) GLOBAL IN
--   (
--       SELECT cityHash64(job, run_id)
--       FROM job_runs_state
--       WHERE finalizeAggregation(first_ms_state) < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000
--         AND (finalizeAggregation(ended_ms_state) = 0 OR finalizeAggregation(ended_ms_state) >= (toUInt64(toUInt32({at:DateTime})) + 1) * 1000)
--   )
-- example:
--   job           run_id         host      start_time           last_event_time      idle_min
--   payout-close  20261125T0200  batch-01  2026-11-25 02:00:03  2026-11-25 02:14:10  46
SELECT
    job,
    run_id,
    host_ AS host,
    toDateTime(intDiv(start_ms, 1000)) AS start_time,
    toDateTime(intDiv(last_ms, 1000)) AS last_event_time,
    intDiv(toInt64({at:DateTime}) - toInt64(last_event_time), 60) AS idle_min
FROM
(
    -- runs as of `at`, rebuilt from their events up to `at`
    -- (LowCardinality columns are CAST to String: on an 18.16 cluster, -If states over a
    -- LowCardinality condition do not merge across shards)
    SELECT
        job,
        run_id,
        max(attempt)                                                        AS attempt_,
        argMaxIf(CAST(host AS String), time_ms, CAST(host AS String) != '') AS host_,
        min(time_ms)                                                        AS first_ms,
        minIf(time_ms, CAST(event AS String) = 'started')                   AS started_ms,
        if(started_ms = 0, first_ms, started_ms)                            AS start_ms,
        maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed'))     AS end_ms,
        max(time_ms)                                                        AS last_ms,
        argMaxIf(CAST(event AS String), time_ms, CAST(event AS String) IN ('finished', 'failed')) AS terminal,
        argMaxIf(assumeNotNull(exit_code), time_ms, isNotNull(exit_code))   AS exit_code_raw,
        countIf(isNotNull(exit_code))                                       AS exit_codes,
        uniqExactIf(step, CAST(event AS String) = 'step' AND CAST(step_status AS String) = 'failed') AS steps_failed,
        argMaxIf(error, time_ms, error != '')                               AS error_,
        argMaxIf(CAST(error_class AS String), time_ms, CAST(error_class AS String) != '') AS error_class_,
        multiIf(terminal = 'failed' OR (exit_codes > 0 AND exit_code_raw != 0), 'failed',
                terminal = 'finished' AND steps_failed > 0, 'partial',
                terminal = 'finished', 'succeeded',
                'running')                                                  AS status_
    FROM job_events
    WHERE time_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND time <= {at:DateTime} + 1
      -- the candidates' earliest event over all their state rows: older partitions are skipped
      AND time >= {read_from:DateTime}
      -- candidates by a hash of the run (cheaper than the names; a run that comes along by a
      -- collision is rebuilt whole too, read_from covers it, and counts only if running)
      AND cityHash64(job, run_id) GLOBAL IN
      (
          SELECT cityHash64(job, run_id)
          FROM job_runs_state
          WHERE finalizeAggregation(first_ms_state) < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000
            AND (finalizeAggregation(ended_ms_state) = 0 OR finalizeAggregation(ended_ms_state) >= (toUInt64(toUInt32({at:DateTime})) + 1) * 1000)
      )
    GROUP BY job, run_id
) AS asof
WHERE status_ = 'running'
  AND toInt64({at:DateTime}) - toInt64(last_event_time) >= {idle_minutes:UInt64} * 60
ORDER BY idle_min DESC, job, run_id
