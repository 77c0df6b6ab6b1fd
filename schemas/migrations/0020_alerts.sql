-- 0020_alerts: state of logpipe watch's alerts, one row per (rule, alert_key) after merges. Each
-- change (opened, seen again, notified, resolved) inserts a new row with a higher version;
-- read with FINAL. A restarted watch reads it back, so it neither re-sends open alerts nor
-- forgets to resolve them.
CREATE TABLE IF NOT EXISTS alerts
(
    rule         String   COMMENT 'Watch rule name',
    alert_key    String   COMMENT 'Values of the rule key columns, joined with " | "',
    severity     String   COMMENT 'info, warning or critical',
    summary      String   COMMENT 'One line for humans',
    evidence     String   COMMENT 'JSON: columns and values of the result row, and SQL to dig further',
    opened_at    DateTime COMMENT 'When the condition was first seen (this episode)',
    last_seen    DateTime COMMENT 'Last cycle the condition was seen',
    resolved_at  DateTime COMMENT 'When the condition went away; 0 (1970-01-01 00:00:00) = open',
    notified_at  DateTime COMMENT 'Last successful notification of the open alert; 0 = not yet',
    version      UInt64   COMMENT 'Higher replaces lower (ReplacingMergeTree)'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (rule, alert_key)
