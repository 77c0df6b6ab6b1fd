-- question: Which jobs take longest? Per job, the finished runs (runs with an end event, any status) that started in [since, until): how many, median, p95 and longest duration. Only events before `until` count.
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- runs that started before this time (UTC); the answer is as of this moment: only events before it count
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
    -- runs with events at or after `until`, rebuilt from their events before it
    SELECT job, (toInt64(end_ms) - toInt64(start_ms)) / 1000 AS duration_s
    FROM
    (
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
        WHERE time_ms < toUInt64(toUInt32({until:DateTime})) * 1000 AND time <= {until:DateTime}
          -- the candidates' earliest event over all their state rows: older partitions are skipped
          AND time >=
          (
              SELECT toDateTime(intDiv(if(count() = 0, toUInt64(toUInt32({until:DateTime})) * 1000, min(finalizeAggregation(first_ms_state))), 1000))
              FROM job_runs_state
              WHERE (job, run_id) GLOBAL IN
              (
                  SELECT job, run_id
                  FROM job_runs_state
                  WHERE finalizeAggregation(last_ms_state) >= toUInt64(toUInt32({until:DateTime})) * 1000
              )
          )
          AND (job, run_id) GLOBAL IN
          (
              SELECT job, run_id
              FROM job_runs_state
              WHERE finalizeAggregation(last_ms_state) >= toUInt64(toUInt32({until:DateTime})) * 1000
          )
        GROUP BY job, run_id
    ) AS asof
    WHERE end_ms > 0
      AND toDateTime(intDiv(start_ms, 1000)) >= {since:DateTime} AND toDateTime(intDiv(start_ms, 1000)) < {until:DateTime}
) AS finished
GROUP BY job
ORDER BY p95_s DESC, job
