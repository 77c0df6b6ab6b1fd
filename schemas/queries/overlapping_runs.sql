-- question: Which runs of the same job overlapped in time (double execution), as of `at`? A run still running at `at` counts as going on until `at`; only events at or before `at` count.
-- param: since DateTime = now() - INTERVAL 7 DAY  -- runs that started at or after this time
-- param: at DateTime = now()  -- the moment the answer is for (UTC): end of runs still running then; only events at or before `at` count
-- example:
--   job         run_id         other_run_id   start_time           other_start_time     overlap_s
--   mail-digest 20261125T0515  20261125T0530  2026-11-25 05:15:01  2026-11-25 05:30:00  412
-- Two runs overlap when each started before the other ended. Runs are put in every hour they
-- cover and paired within an hour, so the work grows with the runs per hour, not per job; a
-- pair is reported from the hour its overlap begins in, once.
SELECT
    job,
    run_id,
    other_run_id,
    toDateTime(start_s) AS start_time,
    toDateTime(other_start_s) AS other_start_time,
    least(end_s, other_end_s) - greatest(start_s, other_start_s) AS overlap_s
FROM
(
    SELECT
        job,
        hour,
        ids[i] AS run_id,
        ids[j] AS other_run_id,
        starts[i] AS start_s,
        starts[j] AS other_start_s,
        ends[i] AS end_s,
        ends[j] AS other_end_s
    FROM
    (
        SELECT job, hour, ids, starts, ends, i, arrayJoin(arrayEnumerate(ids)) AS j
        FROM
        (
            SELECT job, hour, ids, starts, ends, arrayJoin(arrayEnumerate(ids)) AS i
            FROM
            (
                SELECT job, hour, groupArray(run_id) AS ids, groupArray(start_s) AS starts, groupArray(end_s) AS ends
                FROM
                (
                    SELECT
                        job,
                        run_id,
                        start_s,
                        end_s,
                        arrayJoin(arrayMap(k -> intDiv(start_s, 3600) + k,
                                           range(toUInt64(intDiv(greatest(start_s, end_s), 3600) - intDiv(start_s, 3600) + 1)))) AS hour
                    FROM
                    (
                        -- runs whose events all came by `at`: job_runs answers for them
                        SELECT job, run_id, toInt64(start_time) AS start_s, toInt64(ifNull(end_time, {at:DateTime})) AS end_s
                        FROM job_runs
                        WHERE last_event_time <= {at:DateTime} AND start_time >= {since:DateTime}
                        UNION ALL
                        -- runs with events after `at`, rebuilt from their events up to `at` (the rules of job_runs:
                        -- start = first `started` event, else first event; end = last end event)
                        SELECT job, run_id, toInt64(intDiv(if(minIf(time_ms, CAST(event AS String) = 'started') = 0, min(time_ms), minIf(time_ms, CAST(event AS String) = 'started')), 1000)) AS start_s,
                               if(maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed')) = 0, toInt64({at:DateTime}), toInt64(intDiv(maxIf(time_ms, CAST(event AS String) IN ('finished', 'failed')), 1000))) AS end_s
                        FROM job_events
                        WHERE time_ms < (toUInt64(toUInt32({at:DateTime})) + 1) * 1000 AND time <= {at:DateTime} + 1
                          -- the candidates' earliest event over all their state rows: older partitions are skipped
                          AND time >=
                          (
                              SELECT toDateTime(intDiv(if(count() = 0, toUInt64(toUInt32({at:DateTime})) * 1000, min(finalizeAggregation(first_ms_state))), 1000))
                              FROM job_runs_state
                              WHERE (job, run_id) GLOBAL IN
                              (
                                  SELECT job, run_id
                                  FROM job_runs_state
                                  WHERE finalizeAggregation(last_ms_state) >= (toUInt64(toUInt32({at:DateTime})) + 1) * 1000
                              )
                          )
                          AND (job, run_id) GLOBAL IN
                          (
                              SELECT job, run_id
                              FROM job_runs_state
                              WHERE finalizeAggregation(last_ms_state) >= (toUInt64(toUInt32({at:DateTime})) + 1) * 1000
                          )
                        GROUP BY job, run_id
                        HAVING start_s >= toInt64({since:DateTime})
                    ) AS runs
                ) AS run_hours
                GROUP BY job, hour
            ) AS hours
        ) AS firsts
    ) AS index_pairs
) AS pairs
WHERE run_id < other_run_id
  AND start_s < other_end_s
  AND other_start_s < end_s
  AND hour = intDiv(greatest(start_s, other_start_s), 3600)
ORDER BY start_time, job, run_id, other_run_id
