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
;
CREATE TABLE IF NOT EXISTS job_events_in
(
    time             DateTime,
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
CREATE MATERIALIZED VIEW IF NOT EXISTS job_events_fence_mv TO job_events AS
SELECT time, time_ms, job, run_id, event, scheduled_time, attempt, host, step, step_status, step_duration_ms, exit_code, error, error_class, level, message, counter_names, counter_values, label_keys, label_values, _topic, _partition, _offset, _ingested_at
FROM job_events_in
WHERE throwIf((_topic, _partition, _epoch) NOT IN (SELECT _topic, _partition, maxMerge(epoch) FROM ingest_fences GROUP BY _topic, _partition)) = 0
;
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
CREATE MATERIALIZED VIEW IF NOT EXISTS job_events_watermark_fenced_mv TO ingest_watermarks AS
SELECT 'job_events' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM job_events_fence_mv GROUP BY _topic, _partition
;
CREATE TABLE IF NOT EXISTS cdn_requests_in
(
    time                   DateTime,
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
CREATE MATERIALIZED VIEW IF NOT EXISTS cdn_requests_fence_mv TO cdn_requests AS
SELECT time, time_ms, vendor, service, config_version, pop, request_id, host, method, scheme, protocol, path, path_template, path_class, query, status, origin_status, cache_status, cache_status_raw, collapsed, from_cache, bytes_sent, duration_ms, origin_ms, content_type, cache_control, expires, age, vary, set_cookie, etag, user_agent, ua_class, referer, country, has_session_cookie, has_authorization, session_hash, client_ip_hash, flag_personal_cached, flag_set_cookie_cached, flag_private_cached, flag_auth_cached, flag_ttl_zero, _topic, _partition, _offset, _ingested_at
FROM cdn_requests_in
WHERE throwIf((_topic, _partition, _epoch) NOT IN (SELECT _topic, _partition, maxMerge(epoch) FROM ingest_fences GROUP BY _topic, _partition)) = 0
;
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
CREATE MATERIALIZED VIEW IF NOT EXISTS cdn_requests_watermark_fenced_mv TO ingest_watermarks AS
SELECT 'cdn_requests' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM cdn_requests_fence_mv GROUP BY _topic, _partition
;
CREATE TABLE IF NOT EXISTS ingest_errors_in
(
    time       DateTime,
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
CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_errors_fence_mv TO ingest_errors AS
SELECT time, stream, format, line, reason, raw, raw_size, _topic, _partition, _offset
FROM ingest_errors_in
WHERE throwIf((_topic, _partition, _epoch) NOT IN (SELECT _topic, _partition, maxMerge(epoch) FROM ingest_fences GROUP BY _topic, _partition)) = 0
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_errors_watermark_fenced_mv TO ingest_watermarks AS
SELECT 'ingest_errors' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM ingest_errors_fence_mv GROUP BY _topic, _partition
