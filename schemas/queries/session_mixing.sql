-- question: Which host + path template served a personal object, generated for one session, to another session from cache or by request collapsing (a leak; one row per template)?
-- param: since DateTime = now() - INTERVAL 1 HOUR  -- requests at or after this time (UTC)
-- param: until DateTime = now() + INTERVAL 1 DAY  -- requests before this time (UTC)
-- param: window_s UInt64 = 10  -- a response served from cache or collapsed is matched with the origin fetches of the same URL in the same bucket of this many seconds
-- param: body_window_s UInt64 = 60  -- origin answers of one URL are compared within buckets of this many seconds
-- param: body_sessions UInt64 = 4  -- origin fetches for this many sessions with as many different sizes (or two sessions with different strong ETags) are evidence that the origin personalises a URL
-- param: min_sessions UInt64 = 1  -- sessions that must have received someone else's object before a template is reported
-- let: templates String  -- host and path template (hex, ':' between, ',' between templates) of every template with a URL that has some evidence of being personal (class, response signals, or an origin that may answer sessions differently): only these templates are read below (computed first)
--   SELECT arrayStringConcat(arrayMap(x -> concat(hex(x.1), ':', hex(x.2)), groupUniqArrayArray(a)), ',')
--   FROM
--   (
--       -- templates with a URL whose own responses say it is personal
--       SELECT groupUniqArray((CAST(host AS String), CAST(path_template AS String))) AS a
--       FROM cdn_requests
--       WHERE time >= {since:DateTime} AND time < {until:DateTime}
--         AND (path_class IN ('personal', 'auth')
--              OR positionCaseInsensitive(cache_control, 'private') > 0 OR positionCaseInsensitive(cache_control, 'no-store') > 0
--              OR set_cookie = 1
--              OR positionCaseInsensitive(vary, 'cookie') > 0 OR positionCaseInsensitive(vary, 'authorization') > 0
--              OR (has_authorization AND positionCaseInsensitive(cache_control, 'public') = 0
--                  AND positionCaseInsensitive(cache_control, 's-maxage') = 0))
--       UNION ALL
--       -- every template of a URL whose origin fetches over the whole window could hold the body
--       -- evidence in some bucket (a superset: two sessions and two ETags, one of them strong; or
--       -- body_sessions fetches and two sessions and two sizes), by a hash of the URL (a collision adds
--       -- a template, never drops one; GLOBAL: on a cluster the set is built once and sent to the shards)
--       SELECT groupUniqArray((CAST(host AS String), CAST(path_template AS String))) AS a
--       FROM cdn_requests
--       PREWHERE from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200
--       WHERE time >= {since:DateTime} AND time < {until:DateTime}
--         AND cityHash64(host, path, query) GLOBAL IN
--         (
--             SELECT u
--             FROM cdn_requests
--             PREWHERE from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200
--             WHERE time >= {since:DateTime} AND time < {until:DateTime}
--             GROUP BY cityHash64(host, path, query) AS u
--             HAVING (count() >= 2 AND min(session_hash) != max(session_hash)
--                     AND min(cityHash64(etag)) != max(cityHash64(etag)) AND max(etag != '' AND substring(etag, 1, 2) != 'W/') = 1)
--                 OR (count() >= {body_sessions:UInt64}
--                     AND ({body_sessions:UInt64} <= 1 OR (min(session_hash) != max(session_hash) AND min(bytes_sent) != max(bytes_sent))))
--         )
--   )
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
-- cache to many logged-in sessions is not a leak and is not reported here.
--
-- Only the templates in `templates` are read (the primary key starts with host, path_template, so
-- the others' granules are skipped); URLs and templates are grouped by 64-bit hashes of
-- (host, path, query) and (host, path_template); the reported templates get their names (and a
-- class) back at the end, from the rows of the templates read.
-- Pure aggregation plus per-bucket arrays of the sessions in one window_s bucket of one URL:
-- memory grows with URLs x buckets x sessions, not with their square.
SELECT
    host_ AS host, template_ AS path_template, class_ AS path_class,
    objects, sessions, owners, responses, collapsed_responses, evidence, severity, first_seen, last_seen
FROM
(
    SELECT
        th,
        count()                                    AS objects,
        uniqExactIfMerge(victims_u)                AS sessions,
        uniqExactIfMerge(owners_u)                 AS owners,
        sum(leaked_u)                              AS responses,
        sum(collapsed_u)                           AS collapsed_responses,
        arrayStringConcat(arrayFilter(s -> s != '', [
            if(max(by_class) = 1, 'class', ''), if(max(by_private) = 1, 'private', ''),
            if(max(by_set_cookie) = 1, 'set_cookie', ''), if(max(by_vary) = 1, 'vary', ''),
            if(max(by_authorization) = 1, 'authorization', ''), if(max(by_body) = 1, 'body', '')]), ',') AS evidence,
        if(max(by_class OR by_private OR by_set_cookie OR by_vary OR by_authorization) = 1, 'critical', 'warning') AS severity,
        toDateTime(intDiv(min(first_u), 1000))     AS first_seen,
        toDateTime(intDiv(max(last_u), 1000))      AS last_seen
    FROM
    (
        -- evidence that the origin personalises the URL (an IN over a subquery must not sit in an
        -- aggregating SELECT on ClickHouse 18.16)
        SELECT
            th, victims_u, owners_u, leaked_u, collapsed_u, first_u, last_u,
            by_class, by_private, by_set_cookie, by_vary, by_authorization,
            toUInt8(uh IN
            (
                SELECT u
                FROM
                (
                    SELECT
                        cityHash64(host, path, query)                                           AS u,
                        uniqExactIf(session_hash, etag != '' AND substring(etag, 1, 2) != 'W/') AS strong_sessions,
                        uniqExactIf(etag, etag != '' AND substring(etag, 1, 2) != 'W/')         AS strong_etags,
                        uniqExact(session_hash)                                                 AS fetch_sessions,
                        uniqExact(bytes_sent)                                                   AS fetch_sizes
                    FROM cdn_requests
                    PREWHERE from_cache = 0 AND collapsed = 0 AND session_hash != 0 AND status = 200
                    WHERE time >= {since:DateTime} AND time < {until:DateTime}
                      AND (host, path_template) {templates:In}
                          (SELECT unhex(splitByChar(':', x)[1]), unhex(splitByChar(':', x)[2]) FROM (SELECT arrayJoin(splitByChar(',', {templates:String})) AS x))
                    GROUP BY u, intDiv(toUInt32(time), {body_window_s:UInt64})
                )
                WHERE (strong_sessions >= 2 AND strong_etags >= 2)
                   OR (fetch_sessions >= {body_sessions:UInt64} AND fetch_sizes >= fetch_sessions)
            ))                                     AS by_body
        FROM
        (
            -- per URL (within its template): the sessions that got someone else's object (x.2 = 1) and
            -- the owners (x.2 = 2), with the leaked responses
            SELECT
                th, uh,
                max(fc) AS by_class, max(fp) AS by_private, max(fs) AS by_set_cookie, max(fv) AS by_vary, max(fa) AS by_authorization,
                uniqExactIfState(x.1, x.2 = 1)     AS victims_u,
                uniqExactIfState(x.1, x.2 = 2)     AS owners_u,
                sumIf(x.3, x.2 = 1)                AS leaked_u,
                sumIf(x.4, x.2 = 1)                AS collapsed_u,
                minIf(x.5, x.2 = 1)                AS first_u,
                maxIf(x.6, x.2 = 1)                AS last_u
            FROM
            (
                SELECT
                    th, uh, fc, fp, fs, fv, fa,
                    notEmpty(so_s) AND (has_fetch OR (anonymous_fetch = 0 AND length(so_s) >= 2)) AS leak,
                    -- with no fetch in the bucket the first session served is presumed the owner
                    if(has_fetch, toUInt64(0), arraySort((s, f) -> f, so_s, so_f)[1])         AS owner_first,
                    -- (session, role, responses, collapsed, first, last); a bucket without a leak keeps an
                    -- empty array (no column but the lambda's own arguments inside a lambda: 18.16 does
                    -- not see them when it prunes unused columns)
                    arrayConcat(
                        arrayMap((s, n, c, f, l, o) -> (s, toUInt8(if(s = o, 2, 1)), n, c, f, l),
                            so_s, so_n, so_c, so_f, so_l, arrayResize(emptyArrayUInt64(), length(so_s), owner_first)),
                        arrayMap(s -> (s, toUInt8(2), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0)), fetched_by)) AS roles_all,
                    arraySlice(roles_all, 1, leak * length(roles_all))                          AS roles
                FROM
                (
                    -- per URL and window_s bucket: the sessions whose fetch could have filled the cache, and
                    -- those that only got the object from cache or collapsed (so_*)
                    SELECT
                        th, uh, bucket,
                        max(fc_s) AS fc, max(fp_s) AS fp, max(fs_s) AS fs, max(fv_s) AS fv, max(fa_s) AS fa,
                        groupArrayIf(session_key, fetches > 0 AND session_key != 0)              AS fetched_by,
                        notEmpty(fetched_by)                                                     AS has_fetch,
                        max(toUInt8(fetches > 0 AND session_key = 0))                            AS anonymous_fetch,
                        groupArrayIf(session_key, served > 0 AND fetches = 0 AND session_key != 0)  AS so_s,
                        groupArrayIf(served, served > 0 AND fetches = 0 AND session_key != 0)       AS so_n,
                        groupArrayIf(collapsed_n, served > 0 AND fetches = 0 AND session_key != 0)  AS so_c,
                        groupArrayIf(first_served, served > 0 AND fetches = 0 AND session_key != 0) AS so_f,
                        groupArrayIf(last_served, served > 0 AND fetches = 0 AND session_key != 0)  AS so_l
                    FROM
                    (
                        SELECT
                            th, uh, bucket, session_key,
                            countIf(served_row)                AS served,
                            countIf(collapsed)                 AS collapsed_n,
                            countIf(is_fetch)                  AS fetches,
                            minIf(time_ms, served_row)         AS first_served,
                            maxIf(time_ms, served_row)         AS last_served,
                            max(fc_r) AS fc_s, max(fp_r) AS fp_s, max(set_cookie) AS fs_s, max(fv_r) AS fv_s, max(fa_r) AS fa_s
                        FROM
                        (
                            SELECT
                                cityHash64(host, path_template)                                   AS th,
                                cityHash64(host, path, query)                                     AS uh,
                                from_cache OR collapsed                                           AS served_row,
                                collapsed, time_ms, set_cookie,
                                from_cache = 0 AND collapsed = 0 AND cache_status NOT IN ('pass', 'error', 'synth', 'none') AS is_fetch,
                                -- a row that is neither a fetch nor served to a session only brings its evidence:
                                -- one group per URL (bucket 0) instead of one per row
                                (served_row AND session_hash != 0) OR is_fetch                   AS relevant,
                                if(relevant, intDiv(toUInt32(time), {window_s:UInt64}) + 1, 0)    AS bucket,
                                if(relevant, session_hash, toUInt64(0))                           AS session_key,
                                toUInt8(path_class IN ('personal', 'auth'))                       AS fc_r,
                                toUInt8(positionCaseInsensitive(cache_control, 'private') > 0
                                     OR positionCaseInsensitive(cache_control, 'no-store') > 0)   AS fp_r,
                                toUInt8(positionCaseInsensitive(vary, 'cookie') > 0
                                     OR positionCaseInsensitive(vary, 'authorization') > 0)       AS fv_r,
                                toUInt8(has_authorization AND positionCaseInsensitive(cache_control, 'public') = 0
                                     AND positionCaseInsensitive(cache_control, 's-maxage') = 0)  AS fa_r
                            FROM cdn_requests
                            WHERE time >= {since:DateTime} AND time < {until:DateTime}
                              AND (host, path_template) {templates:In}
                                  (SELECT unhex(splitByChar(':', x)[1]), unhex(splitByChar(':', x)[2]) FROM (SELECT arrayJoin(splitByChar(',', {templates:String})) AS x))
                        )
                        GROUP BY th, uh, bucket, session_key
                    )
                    GROUP BY th, uh, bucket
                )
            )
            LEFT ARRAY JOIN roles AS x
            GROUP BY th, uh
        )
    )
    WHERE (by_class OR by_private OR by_set_cookie OR by_vary OR by_authorization OR by_body) AND leaked_u > 0
    GROUP BY th
    HAVING sessions >= {min_sessions:UInt64}
) AS m
-- the template's strings from its hash
ANY LEFT JOIN
(
    SELECT cityHash64(host, path_template) AS th, any(CAST(host AS String)) AS host_,
           any(CAST(path_template AS String)) AS template_, any(CAST(path_class AS String)) AS class_
    FROM cdn_requests
    WHERE time >= {since:DateTime} AND time < {until:DateTime}
      AND (host, path_template) {templates:In}
          (SELECT unhex(splitByChar(':', x)[1]), unhex(splitByChar(':', x)[2]) FROM (SELECT arrayJoin(splitByChar(',', {templates:String})) AS x))
    GROUP BY th
) AS t USING th
ORDER BY sessions DESC, host, path_template
