CREATE TABLE {database}.cdn (
    timestamp DateTime,
    client_ip String,
    geo_country_code LowCardinality(String),
    host LowCardinality(String),
    url String,
    request_method LowCardinality(String),
    request_protocol LowCardinality(String),
    request_user_agent String,
    request_id String,
    response_state LowCardinality(String),
    response_status UInt16,
    response_body_size UInt64,
    response_cache_control String,
    time_elapsed_usec UInt64,
    pop LowCardinality(String)
) ENGINE = MergeTree PARTITION BY toYYYYMMDD(timestamp) ORDER BY (host, timestamp)
