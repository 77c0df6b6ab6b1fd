-- 0003_watermarks: how far each Kafka partition has been stored, per table, kept by
-- materialized views that run inside the same INSERT as the rows themselves. On partition
-- assignment logpipe reads these and skips records already stored (after a crash between the
-- INSERT and the offset commit, or a rebalance), so re-delivery does not duplicate rows.
CREATE TABLE IF NOT EXISTS ingest_watermarks
(
    target      String                       COMMENT 'Table the rows went to',
    _topic      LowCardinality(String)       COMMENT 'Kafka topic',
    _partition  Int32                        COMMENT 'Kafka partition',
    max_offset  AggregateFunction(max, Int64) COMMENT 'Highest offset stored (maxMerge to read)'
)
ENGINE = AggregatingMergeTree()
ORDER BY (target, _topic, _partition)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS job_events_watermark_mv TO ingest_watermarks AS
SELECT 'job_events' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM job_events GROUP BY _topic, _partition
;
CREATE MATERIALIZED VIEW IF NOT EXISTS cdn_requests_watermark_mv TO ingest_watermarks AS
SELECT 'cdn_requests' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM cdn_requests GROUP BY _topic, _partition
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_errors_watermark_mv TO ingest_watermarks AS
SELECT 'ingest_errors' AS target, _topic, _partition, maxState(_offset) AS max_offset
FROM ingest_errors GROUP BY _topic, _partition
