-- question: Which personal pages did the CDN serve from cache or collapse onto another request, and to how many sessions?
-- param: since DateTime = now() - INTERVAL 1 DAY  -- requests at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- requests before this time (UTC)
-- example:
--   path_template      cache_status  collapsed  requests  sessions  first_seen           last_seen
--   /mypage/purchases  hit           1          57        41        2026-11-25 03:10:02  2026-11-25 03:39:51
SELECT
    path_template,
    cache_status,
    collapsed,
    count()                  AS requests,
    uniqExact(session_hash)  AS sessions,
    min(time)                AS first_seen,
    max(time)                AS last_seen
FROM cdn_requests
WHERE time >= {since:DateTime} AND time < {until:DateTime}
  AND flag_personal_cached = 1
GROUP BY path_template, cache_status, collapsed
ORDER BY requests DESC, path_template, cache_status, collapsed
