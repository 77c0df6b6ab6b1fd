-- question: Which runs failed? Runs that started in [since, until) and had failed as of `until` (only events before `until` count), newest first, with exit code and error.
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- runs that started before this time (UTC); the answer is as of this moment: only events before it count
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
FROM
(
    -- runs whose events all came before `until`: job_runs answers for them
    SELECT job, run_id, attempt, host, start_time, duration_s, exit_code, error_class, error
    FROM job_runs
    WHERE last_event_time < {until:DateTime}
      AND status = 'failed'
      AND start_time >= {since:DateTime} AND start_time < {until:DateTime}
    UNION ALL
    -- runs with events at or after `until`, rebuilt from their events before it
    SELECT
        job,
        run_id,
        attempt_ AS attempt,
        host_ AS host,
        toDateTime(intDiv(start_ms, 1000)) AS start_time,
        if(end_ms = 0, NULL, (toInt64(end_ms) - toInt64(start_ms)) / 1000) AS duration_s,
        if(exit_codes = 0, NULL, exit_code_raw) AS exit_code,
        error_class_ AS error_class,
        error_ AS error
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
    WHERE status_ = 'failed'
      AND start_time >= {since:DateTime} AND start_time < {until:DateTime}
) AS runs
ORDER BY start_time DESC, job, run_id
LIMIT {limit:UInt64}
