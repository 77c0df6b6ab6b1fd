-- question: Which responses with a personal signal (personal/auth path, Set-Cookie, private/no-store, Vary: Cookie/Authorization, Authorization) did the CDN serve from cache or collapse, by host and path template? (A misconfiguration; session_mixing says whether another session got them.)
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
    countIf(auth_personal)           AS authenticated,
    countIf(flag_ttl_zero AND (from_cache OR collapsed)) AS ttl_zero,
    uniqExact(session_hash)          AS sessions,
    min(time)                        AS first_seen,
    max(time)                        AS last_seen
FROM
(
    SELECT
        host,
        path_template,
        flag_personal_cached,
        flag_set_cookie_cached,
        flag_private_cached,
        -- A cached public page served to a logged-in browser is normal: an
        -- authenticated request counts only on an object with a personal
        -- signal (rows stored before logpipe knew this may carry the flag
        -- without one).
        flag_auth_cached AND (flag_personal_cached OR flag_set_cookie_cached OR flag_private_cached OR has_authorization
            OR position(lower(CAST(vary AS String)), 'cookie') > 0
            OR position(lower(CAST(vary AS String)), 'authorization') > 0) AS auth_personal,
        flag_ttl_zero,
        from_cache,
        collapsed,
        session_hash,
        time
    FROM cdn_requests
    WHERE time >= {since:DateTime} AND time < {until:DateTime}
      AND (flag_personal_cached OR flag_set_cookie_cached OR flag_private_cached OR flag_auth_cached)
)
WHERE flag_personal_cached OR flag_set_cookie_cached OR flag_private_cached OR auth_personal
GROUP BY host, path_template
ORDER BY personal + set_cookie + private + authenticated DESC, host, path_template
