-- question: When did CDN configuration versions change - recorded changes and versions first seen in the logs?
-- param: since DateTime = now() - INTERVAL 7 DAY  -- changes at or after this time
-- example:
--   time                 vendor  config_version  source    description
--   2026-11-25 05:50:00  fastly  42              recorded  switch caching to origin headers
SELECT t AS time, v AS vendor, cv AS config_version, source, description
FROM
(
    SELECT time AS t, CAST(vendor AS String) AS v, CAST(config_version AS String) AS cv, 'recorded' AS source, description AS description
    FROM cdn_config_changes WHERE time >= {since:DateTime}
    UNION ALL
    SELECT first_seen_hour AS t, CAST(vendor AS String) AS v, CAST(config_version AS String) AS cv, 'first seen in logs' AS source, '' AS description
    FROM cdn_config_versions WHERE first_seen_hour >= toStartOfHour({since:DateTime}) AND config_version != ''
)
ORDER BY t, v, cv, source
