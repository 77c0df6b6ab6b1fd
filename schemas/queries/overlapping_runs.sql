-- question: Which runs of the same job overlapped in time (double execution), as of `at`? A run still running at `at` counts as going on until `at`; only events at or before `at` count.
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time
-- param: at DateTime = now()  -- the moment the answer is for (UTC): end of runs still running then; only events at or before `at` count
-- let: read_from DateTime  -- the day before the earliest state row of the runs with events after `at` (computed first; job_events partitions before it are not read)
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
--   job         run_id         other_run_id   start_time           other_start_time     overlap_s
--   mail-digest 20261125T0515  20261125T0530  2026-11-25 05:15:01  2026-11-25 05:30:00  412
-- Two runs overlap when each started before the other ended. Runs are put in every hour they
-- cover and paired within an hour, so the work grows with the runs per hour, not per job; a
-- pair is reported from the hour its overlap begins in, once.
-- The index pairs (i, j) of an hour's runs come from two arrayJoins in one SELECT (their
-- Cartesian product), so the query nests as few levels as it can: 18.16 evaluates the scalar
-- bound inside once more per level.
SELECT
    job,
    ids[arrayJoin(arrayEnumerate(ids)) AS i] AS run_id,
    ids[arrayJoin(arrayEnumerate(starts)) AS j] AS other_run_id,
    toDateTime(starts[i]) AS start_time,
    toDateTime(starts[j]) AS other_start_time,
    least(ends[i], ends[j]) - greatest(starts[i], starts[j]) AS overlap_s
FROM
(
    SELECT
        job,
        arrayJoin(arrayMap(k -> intDiv(start_s, 3600) + k,
                           range(toUInt64(intDiv(greatest(start_s, end_s), 3600) - intDiv(start_s, 3600) + 1)))) AS hour,
        groupArray(run_id) AS ids,
        groupArray(start_s) AS starts,
        groupArray(end_s) AS ends
    FROM
    (
        -- runs whose events all came by `at`: their merged states answer (the rules of the
        -- job_runs view; only the four states needed are read and merged)
        SELECT job, run_id, toInt64(intDiv(start_ms, 1000)) AS start_s, if(end_ms = 0, toInt64({at:DateTime}), toInt64(intDiv(end_ms, 1000))) AS end_s
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
            -- a run starts in [since, at] only if one of its state rows has a `started` event, or
            -- else a first event, in it (the row holding the minimum); a run with a start after
            -- `at` has an event after it (by a hash of the run: a collision adds a run, whole,
            -- that the conditions below drop)
            WHERE cityHash64(job, run_id) GLOBAL IN
                  (
                      SELECT cityHash64(job, run_id)
                      FROM job_runs_state
                      WHERE (finalizeAggregation(started_ms_state) >= toUInt64(toUInt32({since:DateTime})) * 1000
                             AND finalizeAggregation(started_ms_state) < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000)
                         OR (finalizeAggregation(first_ms_state) >= toUInt64(toUInt32({since:DateTime})) * 1000
                             AND finalizeAggregation(first_ms_state) < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000)
                  )
            GROUP BY job, run_id
        ) AS settled
        WHERE last_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND start_ms >= toUInt64(toUInt32({since:DateTime})) * 1000
        UNION ALL
        -- runs with events after `at`, rebuilt from their events up to `at` (the rules of job_runs:
        -- start = first `started` event, else first event; end = last end event)
        SELECT job, run_id, toInt64(intDiv(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')), 1000)) AS start_s,
               if(maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed')) = 0, toInt64({at:DateTime}), toInt64(intDiv(maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed')), 1000))) AS end_s
        FROM job_events
        WHERE time_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND time <= {at:DateTime} + 1
          -- candidates: the runs with an event after `at` (read from job_events after `at`: the
          -- partitions after `at` only);
          -- the day before the candidates' earliest state row's day (a row's day is its first
          -- event's date; a day of margin for a server time zone change): older partitions are
          -- skipped (read from `day`, not the states: cheaper, as 18.16 runs it once per level)
          AND time >= {read_from:DateTime}
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
                      AND time >= {read_from:DateTime}
                )
          )
        GROUP BY job, run_id
        HAVING start_s >= toInt64({since:DateTime})
    ) AS runs
    GROUP BY job, hour
) AS hours
WHERE run_id < other_run_id
  AND starts[i] < ends[j]
  AND starts[j] < ends[i]
  AND hour = intDiv(greatest(starts[i], starts[j]), 3600)
ORDER BY start_time, job, run_id, other_run_id
