-- 0001_core: the tables every stream writes to, and the run table derived from job events.
-- Statements are separated by a line holding only ";". Table names are unqualified: the
-- migration runs in the configured database.

CREATE TABLE IF NOT EXISTS job_events
(
    time            DateTime                 COMMENT 'When the event happened (UTC, seconds)',
    time_ms         UInt64                   COMMENT 'When the event happened, milliseconds since the epoch',
    job             LowCardinality(String)   COMMENT 'Job name, stable across runs',
    run_id          String                   COMMENT 'One run of the job; retries keep it and raise attempt',
    event           LowCardinality(String)   COMMENT 'started, heartbeat, step, finished, failed, log',
    scheduled_time  DateTime                 COMMENT 'When the run was due (0 = unknown)',
    attempt         UInt16                   COMMENT '1 for the first try',
    host            LowCardinality(String)   COMMENT 'Host (or pod) that ran it',
    step            String                   COMMENT 'Step name, for step events',
    step_status     LowCardinality(String)   COMMENT 'Step outcome: succeeded, failed, skipped, running',
    step_duration_ms Float64                 COMMENT 'Duration the step reported for itself (0 = none)',
    exit_code       Nullable(Int32)          COMMENT 'Process exit code, when the event carries one',
    error           String                   COMMENT 'Error message',
    error_class     LowCardinality(String)   COMMENT 'Error class / exception type',
    level           LowCardinality(String)   COMMENT 'Log level, for log events',
    message         String                   COMMENT 'Free text',
    counter_names   Array(String)            COMMENT 'Counter names (items_in, items_out, ...); values are totals so far',
    counter_values  Array(Float64)           COMMENT 'Counter values, same order as counter_names',
    label_keys      Array(String)            COMMENT 'Free label keys (env, team, ...)',
    label_values    Array(String)            COMMENT 'Label values, same order as label_keys',
    _topic          LowCardinality(String)   COMMENT 'Kafka topic the event was read from',
    _partition      Int32                    COMMENT 'Kafka partition',
    _offset         Int64                    COMMENT 'Kafka offset of the record',
    _ingested_at    DateTime                 COMMENT 'When logpipe stored it'
)
ENGINE = MergeTree()
PARTITION BY toDate(time)
ORDER BY (job, run_id, time)
;
CREATE TABLE IF NOT EXISTS job_runs_state
(
    job                       LowCardinality(String),
    run_id                    String,
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
;
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
CREATE TABLE IF NOT EXISTS cdn_requests
(
    time             DateTime                COMMENT 'Request start (UTC, seconds)',
    time_ms          UInt64                  COMMENT 'Request start, milliseconds since the epoch',
    vendor           LowCardinality(String)  COMMENT 'fastly, cloudfront, cloudflare, akamai, nginx, apache',
    service          LowCardinality(String)  COMMENT 'Vendor service / distribution / zone id',
    config_version   LowCardinality(String)  COMMENT 'CDN configuration version that served it',
    pop              LowCardinality(String)  COMMENT 'Edge location or server',
    request_id       String                  COMMENT 'Vendor request id (RayID, x-edge-request-id, ...)',
    host             LowCardinality(String)  COMMENT 'Requested host name',
    method           LowCardinality(String),
    scheme           LowCardinality(String),
    protocol         LowCardinality(String),
    path             String                  COMMENT 'Path without the query string',
    path_template    LowCardinality(String)  COMMENT 'Path with ids replaced: /items/:id',
    path_class       LowCardinality(String)  COMMENT 'Configured class: personal, auth, api, static, other',
    query            String                  COMMENT 'Query string with secret parameters removed',
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
    expires          String                  COMMENT 'Response Expires header',
    age              UInt32                  COMMENT 'Response Age header, seconds',
    vary             LowCardinality(String)  COMMENT 'Response Vary header',
    set_cookie       UInt8                   COMMENT '1 when the response carried Set-Cookie',
    etag             String,
    user_agent       String,
    ua_class         LowCardinality(String)  COMMENT 'browser, app, bot, monitor, tool, unknown',
    referer          String,
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
    _offset          Int64                   COMMENT 'Kafka offset of the record',
    _ingested_at     DateTime                COMMENT 'When logpipe stored it'
)
ENGINE = MergeTree()
PARTITION BY toDate(time)
ORDER BY (host, path_template, time)
;
CREATE TABLE IF NOT EXISTS ingest_errors
(
    time          DateTime               COMMENT 'When logpipe rejected the record',
    stream        LowCardinality(String) COMMENT 'Stream name from the config',
    format        LowCardinality(String) COMMENT 'Format the record was parsed as',
    line          UInt32                 COMMENT 'Line number inside the Kafka record (1-based)',
    reason        String                 COMMENT 'Why it was rejected',
    raw           String                 COMMENT 'The rejected bytes (cut at max_record_bytes)',
    raw_size      UInt32                 COMMENT 'Size of the rejected bytes before any cut',
    _topic        LowCardinality(String) COMMENT 'Kafka topic',
    _partition    Int32                  COMMENT 'Kafka partition',
    _offset       Int64                  COMMENT 'Kafka offset of the record'
)
ENGINE = MergeTree()
PARTITION BY toDate(time)
ORDER BY (_topic, _partition, _offset)
