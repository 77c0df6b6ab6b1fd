-- question: Which host + path template served a personal object, generated for one session, to another session from cache or by request collapsing (a leak; one row per template)?
-- param: since DateTime = now() - INTERVAL 1 HOUR  -- requests at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- requests before this time (UTC)
-- param: window_s UInt64 = 10  -- a response served from cache or collapsed is matched with the origin fetches of the same URL in the same bucket of this many seconds
-- param: body_window_s UInt64 = 60  -- origin answers of one URL are compared within buckets of this many seconds
-- param: body_sessions UInt64 = 4  -- origin fetches for this many sessions with as many different sizes (or two sessions with different strong ETags) are evidence that the origin personalises a URL
-- param: min_sessions UInt64 = 1  -- sessions that must have received someone else's object before a template is reported
-- example:
--   host            path_template  path_class  objects  sessions  owners  responses  collapsed_responses  evidence       severity  first_seen           last_seen
--   www.example.jp  /mypage        personal    1        212       160     240        198                  class,private  critical  2026-11-25 05:52:02  2026-11-25 06:21:06
--
-- A leak is an object generated for one session (personal by configured path class personal/auth,
-- by the response: private/no-store, Set-Cookie, Vary: Cookie/Authorization, Authorization without
-- public; or by the origin's answers: different strong ETags for two sessions, or as many sizes as
-- sessions for body_sessions sessions, within body_window_s) served from cache or collapsed to
-- another session. Within each window_s bucket of a URL, the sessions whose cacheable origin fetch
-- could have filled the cache are the owners; a session that only got the object from cache or by
-- collapsing, while another (logged-in) session's fetch was there, got someone else's object; with
-- no fetch in the bucket, the first session served is presumed the owner. A public page served from
-- cache to many logged-in sessions is not a leak and is not reported here. Pure aggregation (no
-- per-row arrays): memory grows with URLs x buckets x sessions, not with their square.
SELECT
    host,
    path_template,
    any(class_u)                                  AS path_class,
    count()                                       AS objects,
    uniqExactArray(victim_list)                   AS sessions,
    uniqExactArray(owner_list)                    AS owners,
    sum(leaked_u)                                 AS responses,
    sum(collapsed_u)                              AS collapsed_responses,
    arrayStringConcat(arrayFilter(s -> s != '', [
        if(max(by_class) = 1, 'class', ''), if(max(by_private) = 1, 'private', ''),
        if(max(by_set_cookie) = 1, 'set_cookie', ''), if(max(by_vary) = 1, 'vary', ''),
        if(max(by_authorization) = 1, 'authorization', ''), if(max(by_body) = 1, 'body', '')]), ',') AS evidence,
    if(max(by_class OR by_private OR by_set_cookie OR by_vary OR by_authorization) = 1, 'critical', 'warning') AS severity,
    toDateTime(intDiv(min(first_u), 1000))        AS first_seen,
    toDateTime(intDiv(max(last_u), 1000))         AS last_seen
FROM
(
    -- evidence that the origin personalises the URL (an IN over a subquery must not sit in an
    -- aggregating SELECT on ClickHouse 18.16)
    SELECT
        host, path_template, path, query, class_u, by_class, by_private, by_set_cookie, by_vary,
        by_authorization, victim_list, owner_list, leaked_u, collapsed_u, first_u, last_u,
        toUInt8((CAST(host AS String), path, query) IN
        (
            SELECT CAST(host AS String), path, query
            FROM
            (
                SELECT
                    host,
                    path,
                    query,
                    uniqExactIf(session_hash, etag != '' AND substring(etag, 1, 2) != 'W/') AS strong_sessions,
                    uniqExactIf(etag, etag != '' AND substring(etag, 1, 2) != 'W/')         AS strong_etags,
                    uniqExact(session_hash)                                                 AS fetch_sessions,
                    uniqExact(bytes_sent)                                                   AS fetch_sizes
                FROM cdn_requests
                WHERE time >= {since:DateTime} AND time < {until:DateTime}
                  AND from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200
                GROUP BY host, path, query, intDiv(toUInt32(time), {body_window_s:UInt64})
            )
            WHERE (strong_sessions >= 2 AND strong_etags >= 2)
               OR (fetch_sessions >= {body_sessions:UInt64} AND fetch_sizes >= fetch_sessions)
        ))                                                AS by_body
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
            arrayDistinct(groupArrayArray(victims_b))         AS victim_list,
            arrayDistinct(groupArrayArray(owners_b))          AS owner_list,
            sum(leaked_b)                                     AS leaked_u,
            sum(collapsed_b)                                  AS collapsed_u,
            min(first_b)                                      AS first_u,
            max(last_b)                                       AS last_u
        FROM
        (
            SELECT
                host,
                path_template,
                path,
                query,
                class_b,
                by_class_b,
                by_private_b,
                by_set_cookie_b,
                by_vary_b,
                by_authorization_b,
                notEmpty(served_only) AND (has_fetch OR (anonymous_fetch = 0 AND length(served_only) >= 2)) AS leak,
                -- with no fetch in the bucket the first session served is presumed the owner; a
                -- bucket without a leak keeps empty arrays (no column but the lambda's own argument
                -- inside a lambda: 18.16 does not see them when it prunes unused columns)
                arraySort(x -> x.4, served_only)                                   AS by_first_served,
                if(has_fetch, served_only, arrayPopFront(by_first_served))         AS victims_all,
                arraySlice(victims_all, 1, leak * length(victims_all))             AS victims_t,
                arrayMap(x -> x.1, victims_t)                                     AS victims_b,
                if(has_fetch, fetched_by, arraySlice(arrayMap(x -> x.1, by_first_served), 1, 1)) AS owners_all,
                arraySlice(owners_all, 1, leak * length(owners_all))               AS owners_b,
                arraySum(arrayMap(x -> x.2, victims_t))                           AS leaked_b,
                arraySum(arrayMap(x -> x.3, victims_t))                           AS collapsed_b,
                if(notEmpty(victims_t), arrayReduce('min', arrayMap(x -> x.4, victims_t)), toUInt64(-1)) AS first_b,
                if(notEmpty(victims_t), arrayReduce('max', arrayMap(x -> x.5, victims_t)), toUInt64(0))  AS last_b
            FROM
            (
                SELECT
                    host,
                    path_template,
                    path,
                    query,
                    any(class_s)                                                      AS class_b,
                    max(by_class_s)                                                   AS by_class_b,
                    max(by_private_s)                                                 AS by_private_b,
                    max(by_set_cookie_s)                                              AS by_set_cookie_b,
                    max(by_vary_s)                                                    AS by_vary_b,
                    max(by_authorization_s)                                           AS by_authorization_b,
                    groupArrayIf(session_hash, fetches > 0 AND session_hash != 0)     AS fetched_by,
                    toUInt8(countIf(fetches > 0 AND session_hash != 0) > 0)           AS has_fetch,
                    max(toUInt8(fetches > 0 AND session_hash = 0))                    AS anonymous_fetch,
                    groupArrayIf((session_hash, served, collapsed_n, first_served, last_served),
                                 served > 0 AND fetches = 0 AND session_hash != 0)    AS served_only
                FROM
                (
                    SELECT
                        host,
                        path_template,
                        path,
                        query,
                        intDiv(toUInt32(time), {window_s:UInt64})                                  AS bucket,
                        session_hash,
                        countIf(from_cache OR collapsed)                                           AS served,
                        countIf(collapsed)                                                         AS collapsed_n,
                        countIf(from_cache = 0 AND collapsed = 0 AND CAST(cache_status AS String) NOT IN ('pass', 'error', 'synth', 'none')) AS fetches,
                        minIf(time_ms, from_cache OR collapsed)                                    AS first_served,
                        maxIf(time_ms, from_cache OR collapsed)                                    AS last_served,
                        any(CAST(path_class AS String))                                            AS class_s,
                        max(toUInt8(CAST(path_class AS String) IN ('personal', 'auth')))           AS by_class_s,
                        max(toUInt8(position(lower(CAST(cache_control AS String)), 'private') > 0
                             OR position(lower(CAST(cache_control AS String)), 'no-store') > 0)) AS by_private_s,
                        max(set_cookie)                                                            AS by_set_cookie_s,
                        max(toUInt8(position(lower(CAST(vary AS String)), 'cookie') > 0
                             OR position(lower(CAST(vary AS String)), 'authorization') > 0))   AS by_vary_s,
                        max(toUInt8(has_authorization AND position(lower(CAST(cache_control AS String)), 'public') = 0
                             AND position(lower(CAST(cache_control AS String)), 's-maxage') = 0)) AS by_authorization_s
                    FROM cdn_requests
                    WHERE time >= {since:DateTime} AND time < {until:DateTime}
                      -- only URLs with some evidence of being personal (the evidence below) can be
                      -- reported: the others (static files, public pages) are left out here (GLOBAL:
                      -- on a cluster the set is built once and sent to the shards)
                      AND (CAST(host AS String), path, query) GLOBAL IN
                      (
                          SELECT CAST(host AS String), path, query
                          FROM cdn_requests
                          WHERE time >= {since:DateTime} AND time < {until:DateTime}
                            AND (CAST(path_class AS String) IN ('personal', 'auth')
                                 OR position(lower(CAST(cache_control AS String)), 'private') > 0
                                 OR position(lower(CAST(cache_control AS String)), 'no-store') > 0
                                 OR set_cookie = 1
                                 OR position(lower(CAST(vary AS String)), 'cookie') > 0
                                 OR position(lower(CAST(vary AS String)), 'authorization') > 0
                                 OR (has_authorization AND position(lower(CAST(cache_control AS String)), 'public') = 0
                                     AND position(lower(CAST(cache_control AS String)), 's-maxage') = 0))
                          UNION ALL
                          SELECT CAST(host AS String), path, query
                          FROM
                          (
                              SELECT
                                  host,
                                  path,
                                  query,
                                  uniqExactIf(session_hash, etag != '' AND substring(etag, 1, 2) != 'W/') AS strong_sessions,
                                  uniqExactIf(etag, etag != '' AND substring(etag, 1, 2) != 'W/')         AS strong_etags,
                                  uniqExact(session_hash)                                                 AS fetch_sessions,
                                  uniqExact(bytes_sent)                                                   AS fetch_sizes
                              FROM cdn_requests
                              WHERE time >= {since:DateTime} AND time < {until:DateTime}
                                AND from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200
                              GROUP BY host, path, query, intDiv(toUInt32(time), {body_window_s:UInt64})
                          )
                          WHERE (strong_sessions >= 2 AND strong_etags >= 2)
                             OR (fetch_sessions >= {body_sessions:UInt64} AND fetch_sizes >= fetch_sessions)
                      )
                    GROUP BY host, path_template, path, query, bucket, session_hash
                )
                GROUP BY host, path_template, path, query, bucket
            )
        )
        GROUP BY host, path_template, path, query
    )
)
WHERE (by_class OR by_private OR by_set_cookie OR by_vary OR by_authorization OR by_body) AND leaked_u > 0
GROUP BY host, path_template
HAVING sessions >= {min_sessions:UInt64}
ORDER BY sessions DESC, host, path_template
