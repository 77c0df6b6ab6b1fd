-- question: Which responses did the CDN serve from cache (or collapse) that it never should have, by kind and path?
-- param: since DateTime = now() - INTERVAL 1 DAY  -- requests at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- requests before this time (UTC)
-- example:
--   host            path_template  personal  set_cookie  private  authenticated  ttl_zero  sessions  first_seen           last_seen
--   www.example.jp  /mypage        212       12          212      212            212       160       2026-11-25 05:52:02  2026-11-25 06:21:06
SELECT
    host,
    path_template,
    countIf(flag_personal_cached)    AS personal,
    countIf(flag_set_cookie_cached)  AS set_cookie,
    countIf(flag_private_cached)     AS private,
    countIf(flag_auth_cached)        AS authenticated,
    countIf(flag_ttl_zero AND (from_cache OR collapsed)) AS ttl_zero,
    uniqExact(session_hash)          AS sessions,
    min(time)                        AS first_seen,
    max(time)                        AS last_seen
FROM cdn_requests
WHERE time >= {since:DateTime} AND time < {until:DateTime}
  AND (flag_personal_cached OR flag_set_cookie_cached OR flag_private_cached OR flag_auth_cached)
GROUP BY host, path_template
ORDER BY personal + set_cookie + private + authenticated DESC, host, path_template
