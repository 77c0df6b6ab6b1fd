-- question: Which cached objects (host + path + query) on personal or authenticated paths were served to two or more different sessions within a few seconds - a personal page shown to someone else?
-- param: since DateTime = now() - INTERVAL 1 HOUR  -- requests at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- requests before this time (UTC)
-- param: window_s UInt64 = 10  -- length of the time buckets, seconds
-- param: min_sessions UInt64 = 2  -- distinct sessions in one bucket to report
-- example:
--   host            path     query  bucket_start         sessions  responses  collapsed_responses
--   www.example.jp  /mypage         2026-11-25 05:52:00  3         4          3
SELECT
    host,
    path,
    query,
    toDateTime(intDiv(toUInt32(time), {window_s:UInt64}) * {window_s:UInt64}) AS bucket_start,
    uniqExact(session_hash) AS sessions,
    count()                 AS responses,
    sum(collapsed)          AS collapsed_responses
FROM cdn_requests
WHERE time >= {since:DateTime} AND time < {until:DateTime}
  AND session_hash != 0
  AND (from_cache OR collapsed)
  AND (path_class IN ('personal', 'auth') OR has_authorization OR (has_session_cookie AND path_class NOT IN ('static')))
GROUP BY host, path, query, bucket_start
HAVING sessions >= {min_sessions:UInt64}
ORDER BY bucket_start, host, path, query
