-- question: Which runs failed? Runs that started in [since, until) and had failed as of `until` (only events before `until` count), newest first, with exit code and error.
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- runs that started before this time (UTC); the answer is as of this moment: only events before it count
-- param: limit UInt64 = 50  -- at most this many runs
-- let: read_from DateTime  -- the day before the earliest state row of the runs with events at or after `until` (a row's day is its first event's date; a day of margin for a server time zone change): job_events partitions before it are not read
--   SELECT if(count() = 0, {until:DateTime}, toDateTime(min(day)) - 86400)
--   FROM job_runs_state
--   -- by a hash of the run: a superset (a collision adds a run), so the bound is never too late
--   WHERE cityHash64(job, run_id) GLOBAL IN
--   (
--       SELECT cityHash64(job, run_id)
--       FROM job_events
--       WHERE time_ms >= toUInt64(toUInt32({until:DateTime})) * 1000 AND time >= {until:DateTime}
--   )
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
    -- runs whose events all came before `until`: their merged states answer (the rules of the
    -- job_runs view), merged only for the runs that can qualify: a run is failed only if one of
    -- its state rows has a `failed` terminal event or a non-zero exit code as its latest (a
    -- merge picks one row's value), and starts in [since, until) only if one of its rows has a
    -- `started` event, or else a first event, in it (the row holding the minimum)
    SELECT
        job,
        run_id,
        attempt,
        host,
        toDateTime(intDiv(start_ms, 1000)) AS start_time,
        if(end_ms = 0, NULL, (toInt64(end_ms) - toInt64(start_ms)) / 1000) AS duration_s,
        if(exit_code_count = 0, NULL, exit_code_raw) AS exit_code,
        error_class,
        error
    FROM
    (
        SELECT
            job,
            run_id,
            minMerge(first_ms_state)                 AS first_ms,
            maxMerge(last_ms_state)                  AS last_ms,
            minIfMerge(started_ms_state)             AS started_ms,
            if(started_ms = 0, first_ms, started_ms) AS start_ms,
            maxIfMerge(ended_ms_state)               AS end_ms,
            argMaxIfMerge(terminal_event_state)      AS terminal,
            argMaxIfMerge(exit_code_state)           AS exit_code_raw,
            sumIfMerge(exit_code_count_state)        AS exit_code_count,
            maxMerge(attempt_state)                  AS attempt,
            argMaxIfMerge(host_state)                AS host,
            argMaxIfMerge(error_state)               AS error,
            argMaxIfMerge(error_class_state)         AS error_class
        FROM job_runs_state
        WHERE cityHash64(job, run_id) GLOBAL IN
              (
                  SELECT cityHash64(job, run_id)
                  FROM job_runs_state
                  WHERE finalizeAggregation(terminal_event_state) = 'failed' OR finalizeAggregation(exit_code_state) != 0
              )
          AND cityHash64(job, run_id) GLOBAL IN
              (
                  SELECT cityHash64(job, run_id)
                  FROM job_runs_state
                  WHERE (finalizeAggregation(started_ms_state) >= toUInt64(toUInt32({since:DateTime})) * 1000
                         AND finalizeAggregation(started_ms_state) < toUInt64(toUInt32({until:DateTime})) * 1000)
                     OR (finalizeAggregation(first_ms_state) >= toUInt64(toUInt32({since:DateTime})) * 1000
                         AND finalizeAggregation(first_ms_state) < toUInt64(toUInt32({until:DateTime})) * 1000)
              )
        GROUP BY job, run_id
    ) AS settled
    WHERE last_ms < toUInt64(toUInt32({until:DateTime})) * 1000
      AND (terminal = 'failed' OR (exit_code_count > 0 AND exit_code_raw != 0))
      AND start_ms >= toUInt64(toUInt32({since:DateTime})) * 1000 AND start_ms < toUInt64(toUInt32({until:DateTime})) * 1000
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
      AND time >= {read_from:DateTime}
      -- candidates: the runs with an event at or after `until` (read from job_events after
      -- `until`: those partitions only) and one before it (their hash among the runs of the
      -- events read here: a run with no event before `until` that comes along by a collision
      -- has no row here)
      AND (job, run_id) GLOBAL IN
      (
          SELECT job, run_id
          FROM job_events
          WHERE time_ms >= toUInt64(toUInt32({until:DateTime})) * 1000 AND time >= {until:DateTime}
            AND cityHash64(job, run_id) GLOBAL IN
            (
                SELECT cityHash64(job, run_id)
                FROM job_events
                WHERE time_ms < toUInt64(toUInt32({until:DateTime})) * 1000 AND time <= {until:DateTime}
                  AND time >= {read_from:DateTime}
            )
      )
    GROUP BY job, run_id
    -- failed: a `failed` end event last, or a non-zero exit code on the latest event with one
    HAVING (argMaxIf(CAST(event AS String), time_ms, CAST(event AS String) IN ('finished', 'failed')) = 'failed'
            OR (countIf(isNotNull(exit_code)) > 0 AND argMaxIf(assumeNotNull(exit_code), time_ms, isNotNull(exit_code)) != 0))
       AND start_time_ >= {since:DateTime} AND start_time_ < {until:DateTime}
) AS runs
ORDER BY start_time DESC, job, run_id
LIMIT {limit:UInt64}
