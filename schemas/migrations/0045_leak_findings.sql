-- 0045_leak_findings: responses the streaming leak detector (logpipe run, package detect) found: a
-- personal object generated for one session (owner_hash) served from cache or collapsed to another
-- (session_hash). One row per leaked response, written within about a second of the line being read.
CREATE TABLE IF NOT EXISTS leak_findings
(
    time          DateTime                COMMENT 'Request time of the leaked response (UTC)',
    time_ms       UInt64                  COMMENT 'Request time, milliseconds since the epoch',
    host          LowCardinality(String)  COMMENT 'Requested host name',
    path          String                  COMMENT 'Path without the query string',
    query         String                  COMMENT 'Query string (secret parameters removed)',
    path_template LowCardinality(String)  COMMENT 'Path with ids replaced: /items/:id',
    path_class    LowCardinality(String)  COMMENT 'Configured class: personal, auth, api, static, other',
    session_hash  UInt64                  COMMENT 'Keyed hash of the session that received it',
    owner_hash    UInt64                  COMMENT 'Keyed hash of the session it was generated for',
    collapsed     UInt8                   COMMENT '1 when the request waited on another request''s origin fetch',
    cache_status  LowCardinality(String)  COMMENT 'Normalised cache status of the leaked response',
    evidence      String                  COMMENT 'Why the object is personal: class, private, set_cookie, vary, authorization, body',
    severity      LowCardinality(String)  COMMENT 'critical (personal by configuration or response headers) or warning (only the origin''s answers differ per session)',
    silenced      UInt8                   COMMENT '1 when a silence matched (stored, not notified)',
    detected_at   DateTime                COMMENT 'When logpipe found it',
    _topic        LowCardinality(String)  COMMENT 'Kafka topic of the line',
    _partition    Int32                   COMMENT 'Kafka partition',
    _offset       Int64                   COMMENT 'Kafka offset of the record'
)
ENGINE = MergeTree()
PARTITION BY toDate(time)
ORDER BY (host, path_template, time)
