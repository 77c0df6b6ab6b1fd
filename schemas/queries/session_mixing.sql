-- question: Which host + path template served a personal object, generated for one session, to another session from cache or by request collapsing (a leak; one row per template)?
-- param: since DateTime = now() - INTERVAL 1 HOUR  -- requests at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- requests before this time (UTC)
-- param: window_s UInt64 = 60  -- origin fetches of one URL for two sessions within one such bucket that returned different ETags or sizes are evidence that the origin personalises it
-- param: body_sessions UInt64 = 4  -- origin fetches for this many sessions with as many different sizes within one bucket (or two sessions with different strong ETags) are evidence that the origin personalises a URL
-- param: min_sessions UInt64 = 1  -- sessions that must have received someone else's object before a template is reported
-- example:
--   host            path_template  path_class  objects  sessions  owners  responses  collapsed_responses  evidence       severity  first_seen           last_seen
--   www.example.jp  /mypage        personal    1        212       160     240        198                  class,private  critical  2026-11-25 05:52:02  2026-11-25 06:21:06
--
-- A leak is an object generated for one session (personal by configured path class personal/auth,
-- by the response: private/no-store, Set-Cookie, Vary: Cookie/Authorization, Authorization without
-- public; or by the origin's answers: different strong ETags for two sessions, or as many sizes as
-- sessions for body_sessions sessions, within window_s) served from
-- cache or collapsed to another session. The session it was generated for is the session of the
-- latest origin fetch of the same URL before it (or, before any, the first session served). A
-- public page served from cache to many logged-in sessions is not a leak and is not reported here.
SELECT
    host,
    path_template,
    any(class_u)                                  AS path_class,
    count()                                       AS objects,
    uniqExactArray(victim_list)                   AS sessions,
    uniqExactArray(owner_list)                    AS owners,
    sum(length(leaked))                           AS responses,
    sum(arrayCount(x -> x.4 = 1, leaked))         AS collapsed_responses,
    arrayStringConcat(arrayFilter(s -> s != '', [
        if(max(by_class) = 1, 'class', ''), if(max(by_private) = 1, 'private', ''),
        if(max(by_set_cookie) = 1, 'set_cookie', ''), if(max(by_vary) = 1, 'vary', ''),
        if(max(by_authorization) = 1, 'authorization', ''), if(max(by_body) = 1, 'body', '')]), ',') AS evidence,
    if(max(by_class OR by_private OR by_set_cookie OR by_vary OR by_authorization) = 1, 'critical', 'warning') AS severity,
    toDateTime(intDiv(min(leaked[1].1), 1000))   AS first_seen,
    toDateTime(intDiv(max(leaked[-1].1), 1000))  AS last_seen
FROM
(
    SELECT
        host,
        path_template,
        path,
        query,
        any(class_b)                                      AS class_u,
        max(by_class_b)                                   AS by_class,
        max(by_private_b)                                 AS by_private,
        max(by_set_cookie_b)                              AS by_set_cookie,
        max(by_vary_b)                                    AS by_vary,
        max(by_authorization_b)                           AS by_authorization,
        max(by_body_b)                                    AS by_body,
        arraySort(groupArrayArray(evs))                   AS ordered,
        arrayCumSum(arrayMap(x -> 1 - x.2, ordered))      AS fetches_before,
        arrayMap(x -> x.3, arrayFilter(x -> x.2 = 0, ordered)) AS fetchers,
        arrayFirst(x -> x.2 = 1, ordered).3               AS first_served,
        arrayMap(i -> if(i = 0, first_served, fetchers[i]), fetches_before) AS generated_for,
        arrayFilter((x, o) -> x.2 = 1 AND x.3 != 0 AND o != 0 AND x.3 != o, ordered, generated_for) AS leaked,
        arrayDistinct(arrayMap(x -> x.3, leaked))         AS victim_list,
        arrayDistinct(arrayFilter((o, x) -> x.2 = 1 AND x.3 != 0 AND o != 0 AND x.3 != o, generated_for, ordered)) AS owner_list
    FROM
    (
        SELECT
            host,
            path_template,
            path,
            query,
            intDiv(toUInt32(time), {window_s:UInt64}) AS bucket,
            groupArray((time_ms, toUInt8(from_cache OR collapsed), session_hash, collapsed)) AS evs,
            any(CAST(path_class AS String))                                                     AS class_b,
            max(toUInt8(path_class IN ('personal', 'auth')))                                    AS by_class_b,
            max(toUInt8(position(lower(CAST(cache_control AS String)), 'private') > 0
                     OR position(lower(CAST(cache_control AS String)), 'no-store') > 0))        AS by_private_b,
            max(set_cookie)                                                                     AS by_set_cookie_b,
            max(toUInt8(position(lower(CAST(vary AS String)), 'cookie') > 0
                     OR position(lower(CAST(vary AS String)), 'authorization') > 0))            AS by_vary_b,
            max(toUInt8(has_authorization AND position(lower(CAST(cache_control AS String)), 'public') = 0
                     AND position(lower(CAST(cache_control AS String)), 's-maxage') = 0))       AS by_authorization_b,
            toUInt8((uniqExactIf(session_hash, from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200
                                   AND etag != '' AND substring(etag, 1, 2) != 'W/') >= 2
                 AND uniqExactIf(etag, from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200
                                   AND etag != '' AND substring(etag, 1, 2) != 'W/') >= 2)
              OR (uniqExactIf(session_hash, from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200) >= {body_sessions:UInt64}
                 AND uniqExactIf(bytes_sent, from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200)
                  >= uniqExactIf(session_hash, from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200))) AS by_body_b
        FROM cdn_requests
        WHERE time >= {since:DateTime} AND time < {until:DateTime}
        GROUP BY host, path_template, path, query, bucket
    )
    GROUP BY host, path_template, path, query
)
WHERE (by_class OR by_private OR by_set_cookie OR by_vary OR by_authorization OR by_body) AND notEmpty(leaked)
GROUP BY host, path_template
HAVING sessions >= {min_sessions:UInt64}
ORDER BY sessions DESC, host, path_template
