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
    -- runs with events at or after `until`, rebuilt from their events before it by the rules
    -- of job_runs (columns by position: the names above)
    SELECT
        job,
        run_id,
        max(attempt) AS attempt_,
        argMaxIf(CAST(host AS String), time_ms, CAST(host AS String) != '') AS host_,
        toDateTime(intDiv(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')), 1000)) AS start_time_,
        if(maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed')) = 0, NULL, (toInt64(maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed'))) - toInt64(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')))) / 1000) AS duration_s_,
        if(countIf(isNotNull(exit_code)) = 0, NULL, argMaxIf(assumeNotNull(exit_code), time_ms, isNotNull(exit_code))) AS exit_code_,
        argMaxIf(CAST(error_class AS String), time_ms, CAST(error_class AS String) != '') AS error_class_,
        argMaxIf(error, time_ms, error != '') AS error_
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
    -- failed: a `failed` end event last, or a non-zero exit code on the latest event with one
    HAVING (argMaxIf(CAST(event AS String), time_ms, CAST(event AS String) IN ('finished', 'failed')) = 'failed'
            OR (countIf(isNotNull(exit_code)) > 0 AND argMaxIf(assumeNotNull(exit_code), time_ms, isNotNull(exit_code)) != 0))
       AND start_time_ >= {since:DateTime} AND start_time_ < {until:DateTime}
) AS runs
ORDER BY start_time DESC, job, run_id
LIMIT {limit:UInt64}
