-- question: Which pages without any personal signal were served from cache to requests carrying a session cookie? (Normal for public pages - logged-in browsers send their cookie everywhere; a list to review, never an alert.)
-- param: since DateTime = now() - INTERVAL 1 DAY  -- requests at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- requests before this time (UTC)
-- param: limit UInt64 = 100  -- templates to list
-- example:
--   host            path_template  responses  sessions  objects
--   www.example.jp  /items/:id     51234      8120      2210
SELECT
    host,
    path_template,
    count()                  AS responses,
    uniqExact(session_hash)  AS sessions,
    uniqExact(path, query)   AS objects
FROM cdn_requests
WHERE time >= {since:DateTime} AND time < {until:DateTime}
  AND has_session_cookie = 1
  AND (from_cache OR collapsed)
  AND path_class NOT IN ('static', 'personal', 'auth')
  AND NOT (flag_personal_cached OR flag_set_cookie_cached OR flag_private_cached)
GROUP BY host, path_template
ORDER BY responses DESC, host, path_template
LIMIT {limit:UInt64}
