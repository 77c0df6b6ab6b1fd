-- logpipe schema, modern rendering for ClickHouse 24.8

-- schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32   COMMENT 'Migration number',
    name       String   COMMENT 'Migration name' CODEC(ZSTD(1)),
    checksum   String   COMMENT 'First 8 bytes of the SHA-256 of the migration file, hex' CODEC(ZSTD(1)),
    applied_at DateTime COMMENT 'When it was applied' CODEC(Delta, ZSTD(1)),
    rendering  String   COMMENT 'Schema rendering it was applied with: legacy (18.16 forms) or modern (DateTime64, TTL, codecs, skip indexes)' CODEC(ZSTD(1))
)
ENGINE = MergeTree()
ORDER BY version
SETTINGS ttl_only_drop_parts = 1
;

-- 0001_core statement 1
-- 0001_core: the tables every stream writes to, and the run table derived from job events.
-- Statements are separated by a line holding only ";". Table names are unqualified: the
-- migration runs in the configured database.

CREATE TABLE IF NOT EXISTS job_events
(
    time            DateTime64(3, 'UTC')                 COMMENT 'When the event happened (UTC, milliseconds)' CODEC(Delta, ZSTD(1)),
    time_ms         UInt64                   COMMENT 'When the event happened, milliseconds since the epoch' CODEC(Delta, ZSTD(1)),
    job             LowCardinality(String)   COMMENT 'Job name, stable across runs',
    run_id          String                   COMMENT 'One run of the job; retries keep it and raise attempt' CODEC(ZSTD(1)),
    event           LowCardinality(String)   COMMENT 'started, heartbeat, step, finished, failed, log',
    scheduled_time  DateTime                 COMMENT 'When the run was due (0 = unknown)' CODEC(Delta, ZSTD(1)),
    attempt         UInt16                   COMMENT '1 for the first try',
    host            LowCardinality(String)   COMMENT 'Host (or pod) that ran it',
    step            String                   COMMENT 'Step name, for step events' CODEC(ZSTD(1)),
    step_status     LowCardinality(String)   COMMENT 'Step outcome: succeeded, failed, skipped, running',
    step_duration_ms Float64                 COMMENT 'Duration the step reported for itself (0 = none)',
    exit_code       Nullable(Int32)          COMMENT 'Process exit code, when the event carries one',
    error           String                   COMMENT 'Error message' CODEC(ZSTD(1)),
    error_class     LowCardinality(String)   COMMENT 'Error class / exception type',
    level           LowCardinality(String)   COMMENT 'Log level, for log events',
    message         String                   COMMENT 'Free text' CODEC(ZSTD(1)),
    counter_names   Array(String)            COMMENT 'Counter names (items_in, items_out, ...); values are totals so far' CODEC(ZSTD(1)),
    counter_values  Array(Float64)           COMMENT 'Counter values, same order as counter_names' CODEC(ZSTD(1)),
    label_keys      Array(String)            COMMENT 'Free label keys (env, team, ...)' CODEC(ZSTD(1)),
    label_values    Array(String)            COMMENT 'Label values, same order as label_keys' CODEC(ZSTD(1)),
    _topic          LowCardinality(String)   COMMENT 'Kafka topic the event was read from',
    _partition      Int32                    COMMENT 'Kafka partition',
    _offset         Int64                    COMMENT 'Kafka offset of the record' CODEC(DoubleDelta, ZSTD(1)),
    _ingested_at    DateTime                 COMMENT 'When logpipe stored it' CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree()
PARTITION BY toDate(time)
ORDER BY (job, run_id, time)
TTL toDateTime(time) + toIntervalDay(30)
SETTINGS ttl_only_drop_parts = 1
;

-- 0001_core statement 2
CREATE TABLE IF NOT EXISTS job_runs_state
(
    job                       LowCardinality(String),
    run_id                    String CODEC(ZSTD(1)),
    day                       Date,
    first_ms_state            AggregateFunction(min, UInt64),
    last_ms_state             AggregateFunction(max, UInt64),
    started_ms_state          AggregateFunction(minIf, UInt64, UInt8),
    ended_ms_state            AggregateFunction(maxIf, UInt64, UInt8),
    heartbeat_ms_state        AggregateFunction(maxIf, UInt64, UInt8),
    scheduled_state           AggregateFunction(max, DateTime),
    terminal_event_state      AggregateFunction(argMaxIf, String, UInt64, UInt8),
    exit_code_state           AggregateFunction(argMaxIf, Int32, UInt64, UInt8),
    exit_code_count_state     AggregateFunction(sumIf, UInt64, UInt8),
    attempt_state             AggregateFunction(max, UInt16),
    host_state                AggregateFunction(argMaxIf, String, UInt64, UInt8),
    error_state               AggregateFunction(argMaxIf, String, UInt64, UInt8),
    error_class_state         AggregateFunction(argMaxIf, String, UInt64, UInt8),
    events_state              AggregateFunction(count),
    steps_state               AggregateFunction(uniqExactIf, String, UInt8),
    steps_failed_state        AggregateFunction(uniqExactIf, String, UInt8),
    counter_names_state       AggregateFunction(argMaxIf, Array(String), UInt64, UInt8),
    counter_values_state      AggregateFunction(argMaxIf, Array(Float64), UInt64, UInt8)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (job, run_id)
SETTINGS ttl_only_drop_parts = 1
;

-- 0001_core statement 3
CREATE MATERIALIZED VIEW IF NOT EXISTS job_runs_mv TO job_runs_state AS
SELECT
    job,
    run_id,
    min(toDate(time))                                                        AS day,
    minState(time_ms)                                                        AS first_ms_state,
    maxState(time_ms)                                                        AS last_ms_state,
    minIfState(time_ms, event = 'started')                                   AS started_ms_state,
    maxIfState(time_ms, event IN ('finished', 'failed'))                     AS ended_ms_state,
    maxIfState(time_ms, event = 'heartbeat')                                 AS heartbeat_ms_state,
    maxState(scheduled_time)                                                 AS scheduled_state,
    argMaxIfState(toString(event), time_ms, event IN ('finished', 'failed')) AS terminal_event_state,
    argMaxIfState(assumeNotNull(exit_code), time_ms, isNotNull(exit_code))   AS exit_code_state,
    sumIfState(toUInt64(1), isNotNull(exit_code))                            AS exit_code_count_state,
    maxState(attempt)                                                        AS attempt_state,
    argMaxIfState(toString(host), time_ms, host != '')                       AS host_state,
    argMaxIfState(error, time_ms, error != '')                               AS error_state,
    argMaxIfState(toString(error_class), time_ms, error_class != '')         AS error_class_state,
    countState()                                                             AS events_state,
    uniqExactIfState(step, event = 'step')                                   AS steps_state,
    uniqExactIfState(step, event = 'step' AND step_status = 'failed')        AS steps_failed_state,
    argMaxIfState(counter_names, time_ms, notEmpty(counter_names))           AS counter_names_state,
    argMaxIfState(counter_values, time_ms, notEmpty(counter_names))          AS counter_values_state
FROM job_events
GROUP BY job, run_id
;

-- 0001_core statement 4
CREATE VIEW IF NOT EXISTS job_runs AS
SELECT
    job,
    run_id,
    attempt,
    host,
    if(scheduled_raw = toDateTime(0), NULL, scheduled_raw)                    AS scheduled_time,
    toDateTime(intDiv(start_ms, 1000))                                        AS start_time,
    if(end_ms = 0, NULL, toDateTime(intDiv(end_ms, 1000)))                    AS end_time,
    if(end_ms = 0, NULL, (toInt64(end_ms) - toInt64(start_ms)) / 1000)        AS duration_s,
    if(scheduled_raw = toDateTime(0), NULL, toInt64(intDiv(start_ms, 1000)) - toInt64(scheduled_raw)) AS start_delay_s,
    multiIf(terminal = 'failed' OR (exit_code_count > 0 AND exit_code_raw != 0), 'failed',
            terminal = 'finished' AND steps_failed > 0, 'partial',
            terminal = 'finished', 'succeeded',
            'running')                                                        AS status,
    if(exit_code_count = 0, NULL, exit_code_raw)                              AS exit_code,
    error_class,
    error,
    toDateTime(intDiv(last_ms, 1000))                                         AS last_event_time,
    if(heartbeat_ms = 0, NULL, toDateTime(intDiv(heartbeat_ms, 1000)))        AS last_heartbeat_time,
    events,
    steps,
    steps_failed,
    counter_names,
    counter_values,
    start_ms,
    end_ms
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
        maxIfMerge(heartbeat_ms_state)           AS heartbeat_ms,
        maxMerge(scheduled_state)                AS scheduled_raw,
        argMaxIfMerge(terminal_event_state)      AS terminal,
        argMaxIfMerge(exit_code_state)           AS exit_code_raw,
        sumIfMerge(exit_code_count_state)        AS exit_code_count,
        maxMerge(attempt_state)                  AS attempt,
        argMaxIfMerge(host_state)                AS host,
        argMaxIfMerge(error_state)               AS error,
        argMaxIfMerge(error_class_state)         AS error_class,
        countMerge(events_state)                 AS events,
        uniqExactIfMerge(steps_state)            AS steps,
        uniqExactIfMerge(steps_failed_state)     AS steps_failed,
        argMaxIfMerge(counter_names_state)       AS counter_names,
        argMaxIfMerge(counter_values_state)      AS counter_values
    FROM job_runs_state
    GROUP BY job, run_id
)
;

-- 0001_core statement 5
CREATE TABLE IF NOT EXISTS cdn_requests
(
    time             DateTime64(3, 'UTC')                COMMENT 'Request start (UTC, milliseconds)' CODEC(Delta, ZSTD(1)),
    time_ms          UInt64                  COMMENT 'Request start, milliseconds since the epoch' CODEC(Delta, ZSTD(1)),
    vendor           LowCardinality(String)  COMMENT 'fastly, cloudfront, cloudflare, akamai, nginx, apache',
    service          LowCardinality(String)  COMMENT 'Vendor service / distribution / zone id',
    config_version   LowCardinality(String)  COMMENT 'CDN configuration version that served it',
    pop              LowCardinality(String)  COMMENT 'Edge location or server',
    request_id       String                  COMMENT 'Vendor request id (RayID, x-edge-request-id, ...)' CODEC(ZSTD(1)),
    host             LowCardinality(String)  COMMENT 'Requested host name',
    method           LowCardinality(String),
    scheme           LowCardinality(String),
    protocol         LowCardinality(String),
    path             String                  COMMENT 'Path without the query string' CODEC(ZSTD(1)),
    path_template    LowCardinality(String)  COMMENT 'Path with ids replaced: /items/:id',
    path_class       LowCardinality(String)  COMMENT 'Configured class: personal, auth, api, static, other',
    query            String                  COMMENT 'Query string with secret parameters removed' CODEC(ZSTD(1)),
    status           UInt16                  COMMENT 'HTTP status sent to the client',
    origin_status    UInt16                  COMMENT 'HTTP status from the origin, 0 when not contacted',
    cache_status     LowCardinality(String)  COMMENT 'hit, miss, pass, expired, stale, updating, revalidated, synth, error, none, unknown',
    cache_status_raw LowCardinality(String)  COMMENT 'The vendor''s own cache status value',
    collapsed        UInt8                   COMMENT '1 when the request waited on another request''s origin fetch (request collapsing)',
    from_cache       UInt8                   COMMENT '1 when the body came from the edge cache',
    bytes_sent       UInt64                  COMMENT 'Response bytes sent to the client',
    duration_ms      Float64                 COMMENT 'Time to serve the request',
    origin_ms        Float64                 COMMENT 'Time spent fetching from the origin, 0 if none',
    content_type     LowCardinality(String),
    cache_control    LowCardinality(String)  COMMENT 'Response Cache-Control header',
    expires          String                  COMMENT 'Response Expires header' CODEC(ZSTD(1)),
    age              UInt32                  COMMENT 'Response Age header, seconds',
    vary             LowCardinality(String)  COMMENT 'Response Vary header',
    set_cookie       UInt8                   COMMENT '1 when the response carried Set-Cookie',
    etag             String CODEC(ZSTD(1)),
    user_agent       String CODEC(ZSTD(1)),
    ua_class         LowCardinality(String)  COMMENT 'browser, app, bot, monitor, tool, unknown',
    referer          String CODEC(ZSTD(1)),
    country          LowCardinality(String),
    has_session_cookie UInt8                 COMMENT '1 when the request carried a session cookie',
    has_authorization  UInt8                 COMMENT '1 when the request carried an Authorization header',
    session_hash     UInt64                  COMMENT 'Keyed hash of the session cookie (or Authorization); 0 = none',
    client_ip_hash   UInt64                  COMMENT 'Keyed hash of the client address; 0 = unknown',
    flag_personal_cached   UInt8             COMMENT 'Personal path served from cache or collapsed',
    flag_set_cookie_cached UInt8             COMMENT 'Set-Cookie response served from cache or collapsed',
    flag_private_cached    UInt8             COMMENT 'Cache-Control private/no-store served from cache or collapsed',
    flag_auth_cached       UInt8             COMMENT 'Authenticated request served from cache or collapsed (not a static asset)',
    flag_ttl_zero          UInt8             COMMENT 'Expires in the past and no max-age: a CDN may take it as TTL 0',
    _topic           LowCardinality(String)  COMMENT 'Kafka topic the line was read from',
    _partition       Int32                   COMMENT 'Kafka partition',
    _offset          Int64                   COMMENT 'Kafka offset of the record' CODEC(DoubleDelta, ZSTD(1)),
    _ingested_at     DateTime                COMMENT 'When logpipe stored it' CODEC(Delta, ZSTD(1)),
    INDEX session_hash_bloom session_hash TYPE bloom_filter GRANULARITY 4,
    INDEX path_template_bloom path_template TYPE bloom_filter GRANULARITY 4
)
ENGINE = MergeTree()
PARTITION BY toDate(time)
ORDER BY (host, path_template, time)
TTL toDateTime(time) + toIntervalDay(14)
SETTINGS ttl_only_drop_parts = 1
;

-- 0001_core statement 6
CREATE TABLE IF NOT EXISTS ingest_errors
(
    time          DateTime64(3, 'UTC')               COMMENT 'When logpipe rejected the record' CODEC(Delta, ZSTD(1)),
    stream        LowCardinality(String) COMMENT 'Stream name from the config',
    format        LowCardinality(String) COMMENT 'Format the record was parsed as',
    line          UInt32                 COMMENT 'Line number inside the Kafka record (1-based)',
    reason        String                 COMMENT 'Why it was rejected' CODEC(ZSTD(1)),
    raw           String                 COMMENT 'The rejected bytes (cut at max_record_bytes)' CODEC(ZSTD(1)),
    raw_size      UInt32                 COMMENT 'Size of the rejected bytes before any cut',
    _topic        LowCardinality(String) COMMENT 'Kafka topic',
    _partition    Int32                  COMMENT 'Kafka partition',
    _offset       Int64                  COMMENT 'Kafka offset of the record' CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = MergeTree()
PARTITION BY toDate(time)
ORDER BY (_topic, _partition, _offset)
SETTINGS ttl_only_drop_parts = 1
;

-- 0002_analytics statement 1
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

-- 0002_analytics statement 2
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

-- 0002_analytics statement 3
-- Hourly CDN aggregates, kept by a materialized view: dashboards read these, not raw rows.
CREATE TABLE IF NOT EXISTS cdn_hourly_state
(
    hour              DateTime CODEC(Delta, ZSTD(1)),
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
SETTINGS ttl_only_drop_parts = 1
;

-- 0002_analytics statement 4
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

-- 0002_analytics statement 5
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

-- 0002_analytics statement 6
-- CDN configuration changes, to line hit-ratio jumps up with: filled by people or deploy tools
-- (INSERT INTO cdn_config_changes ...); cdn_config_versions shows when each version was first
-- seen in the logs, whether or not anyone recorded the change.
CREATE TABLE IF NOT EXISTS cdn_config_changes
(
    time            DateTime                COMMENT 'When the change went live (UTC)' CODEC(Delta, ZSTD(1)),
    vendor          LowCardinality(String)  COMMENT 'fastly, cloudfront, ...',
    service         LowCardinality(String)  COMMENT 'Service / distribution id',
    config_version  String                  COMMENT 'Configuration version after the change' CODEC(ZSTD(1)),
    description     String                  COMMENT 'What changed and why' CODEC(ZSTD(1)),
    author          String                  COMMENT 'Who changed it' CODEC(ZSTD(1))
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (vendor, service, time)
SETTINGS ttl_only_drop_parts = 1
;

-- 0002_analytics statement 7
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

-- 0002_analytics statement 8
-- Schedules from the config (logpipe schedules sync) and the run times they imply: SQL cannot
-- read cron, so logpipe expands them.
CREATE TABLE IF NOT EXISTS job_schedules
(
    job             LowCardinality(String)  COMMENT 'Job name as in job_events',
    schedule        String                  COMMENT 'Cron expression (5 fields) or @every <duration>' CODEC(ZSTD(1)),
    timezone        String                  COMMENT 'Time zone the cron expression is read in' CODEC(ZSTD(1)),
    calendar        LowCardinality(String)  COMMENT 'all | business-days',
    grace_s         UInt32                  COMMENT 'How late a start may be before the run counts as missed',
    expected_s      UInt32                  COMMENT 'Expected duration, seconds (0 = unknown)',
    updated_at      DateTime                COMMENT 'When logpipe wrote this row' CODEC(Delta, ZSTD(1))
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY job
SETTINGS ttl_only_drop_parts = 1
;

-- 0002_analytics statement 9
CREATE TABLE IF NOT EXISTS job_expected_runs
(
    job             LowCardinality(String)  COMMENT 'Job name',
    expected_time   DateTime                COMMENT 'When a run was due (UTC)' CODEC(Delta, ZSTD(1)),
    grace_s         UInt32                  COMMENT 'Allowed start delay before it counts as missed'
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(expected_time)
ORDER BY (job, expected_time)
SETTINGS ttl_only_drop_parts = 1
;

-- 0003_watermarks statement 1
-- 0003_watermarks: how far each Kafka partition has been stored, per table, kept by
-- materialized views that run inside the same INSERT as the rows themselves. On partition
-- assignment logpipe reads these and skips records already stored (after a crash between the
-- INSERT and the offset commit, or a rebalance), so re-delivery does not duplicate rows.
CREATE TABLE IF NOT EXISTS ingest_watermarks
(
    target      String                       COMMENT 'Table the rows went to' CODEC(ZSTD(1)),
    _topic      LowCardinality(String)       COMMENT 'Kafka topic',
    _partition  Int32                        COMMENT 'Kafka partition',
    max_offset  AggregateFunction(max, Int64) COMMENT 'Highest offset stored (maxMerge to read)'
)
ENGINE = AggregatingMergeTree()
ORDER BY (target, _topic, _partition)
SETTINGS ttl_only_drop_parts = 1
;

-- 0003_watermarks statement 2
CREATE MATERIALIZED VIEW IF NOT EXISTS job_events_watermark_mv TO ingest_watermarks AS
SELECT 'job_events' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM job_events GROUP BY _topic, _partition
;

-- 0003_watermarks statement 3
CREATE MATERIALIZED VIEW IF NOT EXISTS cdn_requests_watermark_mv TO ingest_watermarks AS
SELECT 'cdn_requests' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM cdn_requests GROUP BY _topic, _partition
;

-- 0003_watermarks statement 4
CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_errors_watermark_mv TO ingest_watermarks AS
SELECT 'ingest_errors' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM ingest_errors GROUP BY _topic, _partition
;

-- 0019_fences statement 1
-- 0019_fences: zombie fencing. A consumer that lost its partition (frozen by a pause, cut off
-- from Kafka but not from ClickHouse) must not store its stale batch once the partition's next
-- owner has taken over. The server decides, inside the INSERT that would store the rows:
--
--   * ingest_fences holds, per Kafka partition, the highest fence epoch an owner recorded.
--     logpipe records a new, higher epoch when it is assigned a partition, BEFORE it waits for
--     running inserts and reads the watermarks (sink.Conn.Fence).
--   * logpipe inserts a batch into NAME_in (engine Null: nothing is kept there) with its
--     owner's epoch in _epoch. NAME_fence_mv copies the rows into NAME only when
--     (_topic, _partition, _epoch) is the partition's current fence; otherwise throwIf fails the
--     whole INSERT (code 395) and nothing is stored.
--
-- Materialized views of NAME must fire once per stored row on every supported server. Modern
-- ClickHouse (tested on 26.5) runs the views of NAME when NAME_fence_mv writes into it, and
-- never the views that read FROM NAME_fence_mv; 18.16 does the opposite. So every view that
-- reads a data table has a twin (NAME_fenced_mv) that reads the table's fence view: on each
-- server exactly one of the pair fires. A new column or view on job_events, cdn_requests or
-- ingest_errors needs the same change in a later migration (NAME_in, NAME_fence_mv, a twin
-- view); TestFencePathMatchesTables checks it.

CREATE TABLE IF NOT EXISTS ingest_fences
(
    _topic      LowCardinality(String)         COMMENT 'Kafka topic',
    _partition  Int32                          COMMENT 'Kafka partition',
    epoch       AggregateFunction(max, UInt64) COMMENT 'Highest fence epoch recorded for the partition (maxMerge to read)'
)
ENGINE = AggregatingMergeTree()
ORDER BY (_topic, _partition)
SETTINGS ttl_only_drop_parts = 1
;

-- 0019_fences statement 2
CREATE TABLE IF NOT EXISTS job_events_in
(
    time             DateTime64(3, 'UTC'),
    time_ms          UInt64,
    job              LowCardinality(String),
    run_id           String,
    event            LowCardinality(String),
    scheduled_time   DateTime,
    attempt          UInt16,
    host             LowCardinality(String),
    step             String,
    step_status      LowCardinality(String),
    step_duration_ms Float64,
    exit_code        Nullable(Int32),
    error            String,
    error_class      LowCardinality(String),
    level            LowCardinality(String),
    message          String,
    counter_names    Array(String),
    counter_values   Array(Float64),
    label_keys       Array(String),
    label_values     Array(String),
    _topic           LowCardinality(String),
    _partition       Int32,
    _offset          Int64,
    _ingested_at     DateTime,
    _epoch           UInt64
)
ENGINE = Null
;

-- 0019_fences statement 3
CREATE MATERIALIZED VIEW IF NOT EXISTS job_events_fence_mv TO job_events AS
SELECT time, time_ms, job, run_id, event, scheduled_time, attempt, host, step, step_status, step_duration_ms, exit_code, error, error_class, level, message, counter_names, counter_values, label_keys, label_values, _topic, _partition, _offset, _ingested_at
FROM job_events_in
WHERE throwIf((_topic, _partition, _epoch) NOT IN (SELECT _topic, _partition, maxMerge(epoch) FROM ingest_fences GROUP BY _topic, _partition)) = 0
;

-- 0019_fences statement 4
CREATE MATERIALIZED VIEW IF NOT EXISTS job_runs_fenced_mv TO job_runs_state AS
SELECT
    job,
    run_id,
    min(toDate(time))                                                        AS day,
    minState(time_ms)                                                        AS first_ms_state,
    maxState(time_ms)                                                        AS last_ms_state,
    minIfState(time_ms, event = 'started')                                   AS started_ms_state,
    maxIfState(time_ms, event IN ('finished', 'failed'))                     AS ended_ms_state,
    maxIfState(time_ms, event = 'heartbeat')                                 AS heartbeat_ms_state,
    maxState(scheduled_time)                                                 AS scheduled_state,
    argMaxIfState(toString(event), time_ms, event IN ('finished', 'failed')) AS terminal_event_state,
    argMaxIfState(assumeNotNull(exit_code), time_ms, isNotNull(exit_code))   AS exit_code_state,
    sumIfState(toUInt64(1), isNotNull(exit_code))                            AS exit_code_count_state,
    maxState(attempt)                                                        AS attempt_state,
    argMaxIfState(toString(host), time_ms, host != '')                       AS host_state,
    argMaxIfState(error, time_ms, error != '')                               AS error_state,
    argMaxIfState(toString(error_class), time_ms, error_class != '')         AS error_class_state,
    countState()                                                             AS events_state,
    uniqExactIfState(step, event = 'step')                                   AS steps_state,
    uniqExactIfState(step, event = 'step' AND step_status = 'failed')        AS steps_failed_state,
    argMaxIfState(counter_names, time_ms, notEmpty(counter_names))           AS counter_names_state,
    argMaxIfState(counter_values, time_ms, notEmpty(counter_names))          AS counter_values_state
FROM job_events_fence_mv
GROUP BY job, run_id
;

-- 0019_fences statement 5
CREATE MATERIALIZED VIEW IF NOT EXISTS job_events_watermark_fenced_mv TO ingest_watermarks AS
SELECT 'job_events' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM job_events_fence_mv GROUP BY _topic, _partition
;

-- 0019_fences statement 6
CREATE TABLE IF NOT EXISTS cdn_requests_in
(
    time                   DateTime64(3, 'UTC'),
    time_ms                UInt64,
    vendor                 LowCardinality(String),
    service                LowCardinality(String),
    config_version         LowCardinality(String),
    pop                    LowCardinality(String),
    request_id             String,
    host                   LowCardinality(String),
    method                 LowCardinality(String),
    scheme                 LowCardinality(String),
    protocol               LowCardinality(String),
    path                   String,
    path_template          LowCardinality(String),
    path_class             LowCardinality(String),
    query                  String,
    status                 UInt16,
    origin_status          UInt16,
    cache_status           LowCardinality(String),
    cache_status_raw       LowCardinality(String),
    collapsed              UInt8,
    from_cache             UInt8,
    bytes_sent             UInt64,
    duration_ms            Float64,
    origin_ms              Float64,
    content_type           LowCardinality(String),
    cache_control          LowCardinality(String),
    expires                String,
    age                    UInt32,
    vary                   LowCardinality(String),
    set_cookie             UInt8,
    etag                   String,
    user_agent             String,
    ua_class               LowCardinality(String),
    referer                String,
    country                LowCardinality(String),
    has_session_cookie     UInt8,
    has_authorization      UInt8,
    session_hash           UInt64,
    client_ip_hash         UInt64,
    flag_personal_cached   UInt8,
    flag_set_cookie_cached UInt8,
    flag_private_cached    UInt8,
    flag_auth_cached       UInt8,
    flag_ttl_zero          UInt8,
    _topic                 LowCardinality(String),
    _partition             Int32,
    _offset                Int64,
    _ingested_at           DateTime,
    _epoch                 UInt64
)
ENGINE = Null
;

-- 0019_fences statement 7
CREATE MATERIALIZED VIEW IF NOT EXISTS cdn_requests_fence_mv TO cdn_requests AS
SELECT time, time_ms, vendor, service, config_version, pop, request_id, host, method, scheme, protocol, path, path_template, path_class, query, status, origin_status, cache_status, cache_status_raw, collapsed, from_cache, bytes_sent, duration_ms, origin_ms, content_type, cache_control, expires, age, vary, set_cookie, etag, user_agent, ua_class, referer, country, has_session_cookie, has_authorization, session_hash, client_ip_hash, flag_personal_cached, flag_set_cookie_cached, flag_private_cached, flag_auth_cached, flag_ttl_zero, _topic, _partition, _offset, _ingested_at
FROM cdn_requests_in
WHERE throwIf((_topic, _partition, _epoch) NOT IN (SELECT _topic, _partition, maxMerge(epoch) FROM ingest_fences GROUP BY _topic, _partition)) = 0
;

-- 0019_fences statement 8
CREATE MATERIALIZED VIEW IF NOT EXISTS cdn_hourly_fenced_mv TO cdn_hourly_state AS
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
FROM cdn_requests_fence_mv
GROUP BY hour, vendor, host, path_class, path_template, config_version
;

-- 0019_fences statement 9
CREATE MATERIALIZED VIEW IF NOT EXISTS cdn_requests_watermark_fenced_mv TO ingest_watermarks AS
SELECT 'cdn_requests' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM cdn_requests_fence_mv GROUP BY _topic, _partition
;

-- 0019_fences statement 10
CREATE TABLE IF NOT EXISTS ingest_errors_in
(
    time       DateTime64(3, 'UTC'),
    stream     LowCardinality(String),
    format     LowCardinality(String),
    line       UInt32,
    reason     String,
    raw        String,
    raw_size   UInt32,
    _topic     LowCardinality(String),
    _partition Int32,
    _offset    Int64,
    _epoch     UInt64
)
ENGINE = Null
;

-- 0019_fences statement 11
CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_errors_fence_mv TO ingest_errors AS
SELECT time, stream, format, line, reason, raw, raw_size, _topic, _partition, _offset
FROM ingest_errors_in
WHERE throwIf((_topic, _partition, _epoch) NOT IN (SELECT _topic, _partition, maxMerge(epoch) FROM ingest_fences GROUP BY _topic, _partition)) = 0
;

-- 0019_fences statement 12
CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_errors_watermark_fenced_mv TO ingest_watermarks AS
SELECT 'ingest_errors' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM ingest_errors_fence_mv GROUP BY _topic, _partition
;

-- 0020_alerts statement 1
-- 0020_alerts: state of logpipe watch's alerts, one row per (rule, alert_key) after merges. Each
-- change (opened, seen again, notified, resolved) inserts a new row with a higher version;
-- read with FINAL. A restarted watch reads it back, so it neither re-sends open alerts nor
-- forgets to resolve them.
CREATE TABLE IF NOT EXISTS alerts
(
    rule         String   COMMENT 'Watch rule name' CODEC(ZSTD(1)),
    alert_key    String   COMMENT 'Values of the rule key columns, joined with " | "' CODEC(ZSTD(1)),
    severity     String   COMMENT 'info, warning or critical' CODEC(ZSTD(1)),
    summary      String   COMMENT 'One line for humans' CODEC(ZSTD(1)),
    evidence     String   COMMENT 'JSON: columns and values of the result row, and SQL to dig further' CODEC(ZSTD(1)),
    opened_at    DateTime COMMENT 'When the condition was first seen (this episode)' CODEC(Delta, ZSTD(1)),
    last_seen    DateTime COMMENT 'Last cycle the condition was seen' CODEC(Delta, ZSTD(1)),
    resolved_at  DateTime COMMENT 'When the condition went away; 0 (1970-01-01 00:00:00) = open' CODEC(Delta, ZSTD(1)),
    notified_at  DateTime COMMENT 'Last successful notification of the open alert; 0 = not yet' CODEC(Delta, ZSTD(1)),
    version      UInt64   COMMENT 'Higher replaces lower (ReplacingMergeTree)'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (rule, alert_key)
SETTINGS ttl_only_drop_parts = 1
;

-- 0030_retirements statement 1
-- 0030_retirements: the history of tables retired by `logpipe retire` (rename, restore, drop),
-- with the usage evidence each step was taken on.
CREATE TABLE IF NOT EXISTS table_retirements
(
    time          DateTime  COMMENT 'When the step was taken (UTC)' CODEC(Delta, ZSTD(1)),
    table_name    String    COMMENT 'The table''s name in use (before retirement)' CODEC(ZSTD(1)),
    retired_name  String    COMMENT 'Its name while retired: <table>__retired_YYYYMMDD' CODEC(ZSTD(1)),
    action        String    COMMENT 'rename (retired), restore (renamed back) or drop' CODEC(ZSTD(1)),
    by            String    COMMENT 'Who ran it (OS user)' CODEC(ZSTD(1)),
    reason        String    COMMENT 'Why, as given' CODEC(ZSTD(1)),
    evidence      String    COMMENT 'Usage evidence at the time: last read, readers, reads in the quiet period' CODEC(ZSTD(1))
)
ENGINE = MergeTree()
ORDER BY (table_name, time)
SETTINGS ttl_only_drop_parts = 1
;

-- 0045_leak_findings statement 1
-- 0045_leak_findings: responses the streaming leak detector (logpipe run, package detect) found: a
-- personal object generated for one session (owner_hash) served from cache or collapsed to another
-- (session_hash). One row per leaked response, written within about a second of the line being read.
CREATE TABLE IF NOT EXISTS leak_findings
(
    time          DateTime64(3, 'UTC')                COMMENT 'Request time of the leaked response (UTC)' CODEC(Delta, ZSTD(1)),
    time_ms       UInt64                  COMMENT 'Request time, milliseconds since the epoch' CODEC(Delta, ZSTD(1)),
    host          LowCardinality(String)  COMMENT 'Requested host name',
    path          String                  COMMENT 'Path without the query string' CODEC(ZSTD(1)),
    query         String                  COMMENT 'Query string (secret parameters removed)' CODEC(ZSTD(1)),
    path_template LowCardinality(String)  COMMENT 'Path with ids replaced: /items/:id',
    path_class    LowCardinality(String)  COMMENT 'Configured class: personal, auth, api, static, other',
    session_hash  UInt64                  COMMENT 'Keyed hash of the session that received it',
    owner_hash    UInt64                  COMMENT 'Keyed hash of the session it was generated for',
    collapsed     UInt8                   COMMENT '1 when the request waited on another request''s origin fetch',
    cache_status  LowCardinality(String)  COMMENT 'Normalised cache status of the leaked response',
    evidence      String                  COMMENT 'Why the object is personal: class, private, set_cookie, vary, authorization, body' CODEC(ZSTD(1)),
    severity      LowCardinality(String)  COMMENT 'critical (personal by configuration or response headers) or warning (only the origin''s answers differ per session)',
    silenced      UInt8                   COMMENT '1 when a silence matched (stored, not notified)',
    detected_at   DateTime                COMMENT 'When logpipe found it' CODEC(Delta, ZSTD(1)),
    _topic        LowCardinality(String)  COMMENT 'Kafka topic of the line',
    _partition    Int32                   COMMENT 'Kafka partition',
    _offset       Int64                   COMMENT 'Kafka offset of the record' CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = MergeTree()
PARTITION BY toDate(time)
ORDER BY (host, path_template, time)
SETTINGS ttl_only_drop_parts = 1
;
