-- 0002_analytics: step, daily and hourly tables for analysts and dashboards, schedules and
-- configuration changes.

-- One row per step of a run, from step events (latest status wins).
CREATE VIEW IF NOT EXISTS job_steps AS
SELECT
    job,
    run_id,
    step,
    status_ AS status,
    duration_s_ AS duration_s,
    start_time_ AS start_time,
    end_time_ AS end_time,
    error_class_ AS error_class,
    error_ AS error,
    attempt_ AS attempt
FROM
(
    SELECT
        job,
        run_id,
        step,
        argMax(CAST(step_status AS String), time_ms)                     AS status_,
        if(max(step_duration_ms) > 0, max(step_duration_ms) / 1000,
           (max(time_ms) - min(time_ms)) / 1000)                    AS duration_s_,
        toDateTime(intDiv(min(time_ms) - toUInt64(max(step_duration_ms)), 1000)) AS start_time_,
        max(time)                                                   AS end_time_,
        argMax(CAST(error_class AS String), time_ms)                      AS error_class_,
        argMax(error, time_ms)                                      AS error_,
        max(attempt)                                                AS attempt_
    FROM job_events
    WHERE event = 'step' AND step != ''
    GROUP BY job, run_id, step
)
;
-- Per job and day (of the run's start): runs, failures, duration quantiles. Derived from the
-- run states, so it is right whatever order events arrive in; runs are few (thousands a day),
-- so this stays fast for 90-day dashboards (figures in docs/analysts.md).
CREATE VIEW IF NOT EXISTS job_daily AS
SELECT
    toDate(start_time)                          AS day,
    job,
    count()                                     AS runs,
    countIf(status = 'succeeded')               AS succeeded,
    countIf(status = 'failed')                  AS failed,
    countIf(status = 'partial')                 AS partial,
    countIf(status = 'running')                 AS running,
    round(quantile(0.5)(duration_s), 3)         AS p50_s,
    round(quantile(0.95)(duration_s), 3)        AS p95_s,
    round(quantile(0.99)(duration_s), 3)        AS p99_s,
    round(max(duration_s), 3)                   AS max_s,
    max(attempt)                                AS max_attempt
FROM job_runs
GROUP BY day, job
;
-- Hourly CDN aggregates, kept by a materialized view: dashboards read these, not raw rows.
CREATE TABLE IF NOT EXISTS cdn_hourly_state
(
    hour              DateTime,
    vendor            LowCardinality(String),
    host              LowCardinality(String),
    path_class        LowCardinality(String),
    path_template     LowCardinality(String),
    config_version    LowCardinality(String),
    requests_state    AggregateFunction(count),
    from_cache_state  AggregateFunction(sum, UInt64),
    collapsed_state   AggregateFunction(sum, UInt64),
    bytes_state       AggregateFunction(sum, UInt64),
    errors_5xx_state  AggregateFunction(sum, UInt64),
    flagged_state     AggregateFunction(sum, UInt64),
    sessions_state    AggregateFunction(uniq, UInt64),
    duration_state    AggregateFunction(quantiles(0.5, 0.95, 0.99), Float64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, host, path_template, vendor, path_class, config_version)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS cdn_hourly_mv TO cdn_hourly_state AS
SELECT
    toStartOfHour(time)                       AS hour,
    vendor,
    host,
    path_class,
    path_template,
    config_version,
    countState()                              AS requests_state,
    sumState(toUInt64(from_cache))            AS from_cache_state,
    sumState(toUInt64(collapsed))             AS collapsed_state,
    sumState(bytes_sent)                      AS bytes_state,
    sumState(toUInt64(status >= 500))         AS errors_5xx_state,
    sumState(toUInt64(flag_personal_cached OR flag_set_cookie_cached OR flag_private_cached OR flag_auth_cached)) AS flagged_state,
    uniqState(session_hash)                   AS sessions_state,
    quantilesState(0.5, 0.95, 0.99)(duration_ms) AS duration_state
FROM cdn_requests
GROUP BY hour, vendor, host, path_class, path_template, config_version
;
CREATE VIEW IF NOT EXISTS cdn_hourly AS
SELECT
    hour,
    vendor,
    host,
    path_class,
    path_template,
    config_version,
    requests,
    from_cache,
    round(from_cache / requests, 4)   AS hit_ratio,
    collapsed,
    bytes,
    errors_5xx,
    round(errors_5xx / requests, 4)   AS error_ratio,
    flagged,
    sessions,
    round(q[1], 1)                    AS p50_ms,
    round(q[2], 1)                    AS p95_ms,
    round(q[3], 1)                    AS p99_ms
FROM
(
    SELECT
        hour, vendor, host, path_class, path_template, config_version,
        countMerge(requests_state)     AS requests,
        sumMerge(from_cache_state)     AS from_cache,
        sumMerge(collapsed_state)      AS collapsed,
        sumMerge(bytes_state)          AS bytes,
        sumMerge(errors_5xx_state)     AS errors_5xx,
        sumMerge(flagged_state)        AS flagged,
        uniqMerge(sessions_state)      AS sessions,
        quantilesMerge(0.5, 0.95, 0.99)(duration_state) AS q
    FROM cdn_hourly_state
    GROUP BY hour, vendor, host, path_class, path_template, config_version
)
;
-- CDN configuration changes, to line hit-ratio jumps up with: filled by people or deploy tools
-- (INSERT INTO cdn_config_changes ...); cdn_config_versions shows when each version was first
-- seen in the logs, whether or not anyone recorded the change.
CREATE TABLE IF NOT EXISTS cdn_config_changes
(
    time            DateTime                COMMENT 'When the change went live (UTC)',
    vendor          LowCardinality(String)  COMMENT 'fastly, cloudfront, ...',
    service         LowCardinality(String)  COMMENT 'Service / distribution id',
    config_version  String                  COMMENT 'Configuration version after the change',
    description     String                  COMMENT 'What changed and why',
    author          String                  COMMENT 'Who changed it'
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (vendor, service, time)
;
CREATE VIEW IF NOT EXISTS cdn_config_versions AS
SELECT
    vendor,
    config_version,
    min(hour)                   AS first_seen_hour,
    max(hour)                   AS last_seen_hour,
    countMerge(requests_state)  AS requests
FROM cdn_hourly_state
GROUP BY vendor, config_version
;
-- Schedules from the config (logpipe schedules sync) and the run times they imply: SQL cannot
-- read cron, so logpipe expands them.
CREATE TABLE IF NOT EXISTS job_schedules
(
    job             LowCardinality(String)  COMMENT 'Job name as in job_events',
    schedule        String                  COMMENT 'Cron expression (5 fields) or @every <duration>',
    timezone        String                  COMMENT 'Time zone the cron expression is read in',
    calendar        LowCardinality(String)  COMMENT 'all | business-days',
    grace_s         UInt32                  COMMENT 'How late a start may be before the run counts as missed',
    expected_s      UInt32                  COMMENT 'Expected duration, seconds (0 = unknown)',
    updated_at      DateTime                COMMENT 'When logpipe wrote this row'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY job
;
CREATE TABLE IF NOT EXISTS job_expected_runs
(
    job             LowCardinality(String)  COMMENT 'Job name',
    expected_time   DateTime                COMMENT 'When a run was due (UTC)',
    grace_s         UInt32                  COMMENT 'Allowed start delay before it counts as missed'
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(expected_time)
ORDER BY (job, expected_time)
