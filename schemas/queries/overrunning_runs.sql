-- question: Which runs, as of `at`, were still running and had been going longer than factor x their job's p95 duration of finished runs (runs with an end event, any status) as of `at`? Only events at or before `at` count.
-- param: factor Float64 = 1.0  -- flag when elapsed > factor x the job's p95
-- param: min_history UInt64 = 5  -- only jobs with at least this many finished runs as of `at`
-- param: at DateTime = now()  -- the moment the answer is for (UTC); only events at or before `at` count
-- let: read_from DateTime  -- the day before the earliest state row of the runs running as of `at` (computed first; job_events partitions before it are not read)
--   SELECT if(count() = 0, {at:DateTime}, toDateTime(min(day)) - 86400)
--   FROM job_runs_state
--   -- by a hash of the run: a superset (a collision adds a run), the same as the runs rebuilt
--   WHERE cityHash64(job, run_id) GLOBAL IN
--   (
--       SELECT cityHash64(job, run_id)
--       FROM job_runs_state
--       WHERE finalizeAggregation(first_ms_state) < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000
--         AND (finalizeAggregation(ended_ms_state) = 0 OR finalizeAggregation(ended_ms_state) >= (toUInt64(toUInt32({at:DateTime})) + 1) * 1000)
--   )
-- let: history_from DateTime  -- the day before the earliest state row of the runs with events after `at` (computed first; job_events partitions before it are not read)
--   SELECT if(count() = 0, {at:DateTime}, toDateTime(min(day)) - 86400)
--   FROM job_runs_state
--   -- by a hash of the run: a superset (a collision adds a run), so the bound is never too late
--   WHERE cityHash64(job, run_id) GLOBAL IN
--   (
--       SELECT cityHash64(job, run_id)
--       FROM job_events
--       WHERE time_ms >= (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND time >= {at:DateTime}
--   )
-- example:
--   job           run_id         start_time           elapsed_s  p95_s  history_runs
--   search-index  20261125T0600  2026-11-25 06:00:01  1260       542.3  71
SELECT
    r.job AS job,
    r.run_id AS run_id,
    r.start_time AS start_time,
    toInt64({at:DateTime}) - toInt64(r.start_time) AS elapsed_s,
    h.p95_s AS p95_s,
    h.history_runs AS history_runs
FROM
(
    -- runs as of `at`, rebuilt from their events up to `at`; running: no end event and no
    -- non-zero exit code yet
    SELECT job, run_id, toDateTime(intDiv(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')), 1000)) AS start_time
    FROM job_events
    WHERE time_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND time <= {at:DateTime} + 1
      -- the day before the candidates' earliest state row's day (a row's day is its first
      -- event's date; a day of margin for a server time zone change): older partitions are
      -- skipped (read from `day`, not the states: cheaper, as 18.16 runs it once per level)
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
    HAVING countIf(CAST(event AS String) IN ('finished', 'failed')) = 0
       AND NOT (countIf(isNotNull(exit_code)) > 0 AND argMaxIf(assumeNotNull(exit_code), time_ms, isNotNull(exit_code)) != 0)
) AS r
ALL INNER JOIN
(
    SELECT job, round(quantile(0.95)(duration_s), 1) AS p95_s, count() AS history_runs
    FROM
    (
        -- finished runs whose events all came by `at` (of every job: the join keeps the jobs
        -- with a running run)
        SELECT job, (toInt64(end_ms) - toInt64(if(started_ms = 0, first_ms, started_ms))) / 1000 AS duration_s
        FROM
        (
            -- a run whose state is one row (no other row has its hash): that row is the run,
            -- no merge needed (most runs, once ClickHouse has merged the parts)
            SELECT
                job,
                finalizeAggregation(first_ms_state)   AS first_ms,
                finalizeAggregation(started_ms_state) AS started_ms,
                finalizeAggregation(ended_ms_state)   AS end_ms,
                finalizeAggregation(last_ms_state)    AS last_ms
            FROM job_runs_state
            WHERE cityHash64(job, run_id) GLOBAL NOT IN
              (
                  SELECT cityHash64(job, run_id) AS h
                  FROM job_runs_state
                  GROUP BY h
                  HAVING count() > 1
              )
            UNION ALL
            -- runs with several state rows (or sharing a hash with another run): merged (PREWHERE:
            -- the states of the other runs are not read)
            SELECT
                job,
                minMerge(first_ms_state)     AS first_ms,
                minIfMerge(started_ms_state) AS started_ms,
                maxIfMerge(ended_ms_state)   AS end_ms,
                maxMerge(last_ms_state)      AS last_ms
            FROM job_runs_state
            PREWHERE cityHash64(job, run_id) GLOBAL IN
              (
                  SELECT cityHash64(job, run_id) AS h
                  FROM job_runs_state
                  GROUP BY h
                  HAVING count() > 1
              )
            GROUP BY job, run_id
        ) AS settled
        WHERE last_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND end_ms > 0
        UNION ALL
        -- runs with events after `at`, rebuilt from their events up to `at`
        SELECT job, (toInt64(maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed'))) - toInt64(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')))) / 1000 AS duration_s
        FROM job_events
        WHERE time_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND time <= {at:DateTime} + 1
          -- candidates: the runs with an event after `at` (read from job_events after `at`: those
          -- partitions only), of every job as above; the day before their earliest state row's
          -- day (history_from): older partitions are skipped
          AND time >= {history_from:DateTime}
          AND (job, run_id) GLOBAL IN
          (
              SELECT job, run_id
              FROM job_events
              WHERE time_ms >= (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND time >= {at:DateTime}
                -- and an event by `at` (their hash among the runs of the events read here: a run
                -- with none that comes along by a collision has no row here)
                AND cityHash64(job, run_id) GLOBAL IN
                (
                    SELECT cityHash64(job, run_id)
                    FROM job_events
                    WHERE time_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND time <= {at:DateTime} + 1
                      AND time >= {history_from:DateTime}
                )
          )
        GROUP BY job, run_id
        HAVING maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed')) > 0
    ) AS finished
    GROUP BY job
) AS h USING (job)
WHERE history_runs >= {min_history:UInt64}
  AND toInt64({at:DateTime}) - toInt64(start_time) > {factor:Float64} * p95_s
ORDER BY elapsed_s / p95_s DESC, job, run_id
