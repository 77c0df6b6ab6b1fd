-- question: Which jobs take longest? Per job, the finished runs (runs with an end event, any status) that started in [since, until): how many, median, p95 and longest duration. Only events before `until` count.
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- runs that started before this time (UTC); the answer is as of this moment: only events before it count
-- let: read_from DateTime  -- the earliest event of the runs with events at or after `until` (computed first; job_events partitions before it are not read)
--   SELECT toDateTime(intDiv(if(count() = 0, toUInt64(toUInt32({until:DateTime})) * 1000, min(finalizeAggregation(first_ms_state))), 1000))
--   FROM job_runs_state
--   -- by a hash of the run: a superset (a collision adds a run), so the bound is never too late
--   WHERE cityHash64(job, run_id) GLOBAL IN
--   (
--       SELECT cityHash64(job, run_id)
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
    -- finished runs whose events all came before `until`: their merged states answer (the rules
    -- of the job_runs view), only the four states needed, merged only for the runs that can
    -- qualify: a run starts in [since, until) only if one of its state rows has a `started`
    -- event, or else a first event, in it (the row holding the minimum); by a hash of the run:
    -- a collision adds a run, whole, that the conditions after the merge drop
    SELECT job, (toInt64(end_ms) - toInt64(start_ms)) / 1000 AS duration_s
    FROM
    (
        SELECT
            job,
            run_id,
            minMerge(first_ms_state)                 AS first_ms,
            minIfMerge(started_ms_state)             AS started_ms,
            if(started_ms = 0, first_ms, started_ms) AS start_ms,
            maxIfMerge(ended_ms_state)               AS end_ms,
            maxMerge(last_ms_state)                  AS last_ms
        FROM job_runs_state
        WHERE cityHash64(job, run_id) GLOBAL IN
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
      AND end_ms > 0
      AND start_ms >= toUInt64(toUInt32({since:DateTime})) * 1000 AND start_ms < toUInt64(toUInt32({until:DateTime})) * 1000
    UNION ALL
    -- runs with events at or after `until`, rebuilt from their events before it (the rules of
    -- job_runs: start = first `started` event, else first event; end = last end event)
    SELECT job, (toInt64(maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed'))) - toInt64(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')))) / 1000 AS duration_s
    FROM job_events
    WHERE time_ms < toUInt64(toUInt32({until:DateTime})) * 1000 AND time <= {until:DateTime}
      -- the candidates' earliest event over all their state rows: older partitions are skipped
      AND time >= {read_from:DateTime}
      -- candidates: the runs with an event at or after `until` and one before it (their hash
      -- among the runs of the events read here: a run with none that comes along by a
      -- collision has no row here)
      AND (job, run_id) GLOBAL IN
      (
          SELECT job, run_id
          FROM job_runs_state
          WHERE finalizeAggregation(last_ms_state) >= toUInt64(toUInt32({until:DateTime})) * 1000
            AND cityHash64(job, run_id) GLOBAL IN
            (
                SELECT cityHash64(job, run_id)
                FROM job_events
                WHERE time_ms < toUInt64(toUInt32({until:DateTime})) * 1000 AND time <= {until:DateTime}
                  AND time >= {read_from:DateTime}
            )
      )
    GROUP BY job, run_id
    HAVING maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed')) > 0
       AND toDateTime(intDiv(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')), 1000)) >= {since:DateTime} AND toDateTime(intDiv(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')), 1000)) < {until:DateTime}
) AS finished
GROUP BY job
ORDER BY p95_s DESC, job
