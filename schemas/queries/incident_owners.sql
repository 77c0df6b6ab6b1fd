-- question: For an incident window, whose personal page went to someone else - the notification list: each exposed owner (the session its origin fetch was made for), how many sessions saw it, and when?
-- param: since DateTime  -- start of the incident window (UTC)
-- param: until DateTime  -- end of the incident window (UTC)
-- param: lookback_s UInt64 = 3600  -- how far before since to look for the origin fetches that produced responses in the window
-- settings: 24.1 allow_experimental_analyzer = 0  -- the new analyzer (default from 24.3) takes 10-20 s to plan the pairing (its lambdas over aliases, nested eight deep); the old one 0.3-0.5 s, same answer
-- example:
--   owner_session         viewers  anonymous_responses  leaked_responses  objects  first_exposure       last_exposure
--   12093847561029384756  3        0                    4                 1        2026-11-25 05:52:02  2026-11-25 05:52:03
SELECT
    owner                                          AS owner_session,
    uniqExactIf(viewer, viewer != 0)               AS viewers,
    countIf(viewer = 0)                            AS anonymous_responses,
    count()                                        AS leaked_responses,
    uniqExact(host, path, query)                   AS objects,
    toDateTime(intDiv(min(time_ms), 1000))         AS first_exposure,
    toDateTime(intDiv(max(time_ms), 1000))         AS last_exposure
FROM
(
    -- pairing begin: every shared response with the origin fetch that produced it
    -- (rules in docs/analysts.md, "Incident report"; identical in every incident_* query)
    SELECT
        host, path, query,
        path_template, path_class,
        r.1 AS time_ms, r.2 AS mode, r.3 AS viewer, r.4 AS pop, r.5 AS known, r.6 AS owner, r.7 AS fetch_ms
    FROM
    (
        -- Stage 3, per object and bucket: bucket 0 holds the responses stage 2 answered; a response
        -- whose latest-started fetch had already completed (collapsed, or a non-Fastly hit) goes to
        -- the bucket of its second, with the fetches that outlived the next one (the only ones
        -- that can still be in flight then) alive in that second: the latest-started of those in
        -- flight at its ms produced it.
        SELECT
            any(host) AS host, any(path) AS path, any(query) AS query,
            any(template) AS path_template, any(class) AS path_class,
            groupArrayIf(r0, is_resp) AS cs,
            arraySort(arrayMap(x -> (x.8, x.2, x.7), groupArrayIf(r0, NOT is_resp))) AS os,
            arrayMap(c -> arrayPushFront(arrayFilter(o -> o.1 <= c.2 AND o.2 >= c.2, os), (toUInt64(0), toUInt64(0), toUInt64(0)))[-1], cs) AS fs,
            -- in flight: that fetch; none: a collapsed response has no producer, a non-Fastly hit is
            -- a hit (stage 2 put the latest completed fetch's values in)
            arrayMap((c, f) -> (c.2, c.3, c.4, c.5,
                    toUInt8(if(c.1 = 0 OR (f.1 = 0 AND c.3 = 3), c.6, f.1 > 0)),
                    if(c.1 = 0 OR (f.1 = 0 AND c.3 = 3), c.7, f.3),
                    if(c.1 = 0 OR (f.1 = 0 AND c.3 = 3), c.8, f.1)), cs, fs) AS rs
        FROM
        (
            -- one row per response (ji <= nc) and per fetch-second (ji > nc)
            SELECT oid, host, path, query, template, class,
                ji <= nc AS is_resp,
                jc.1 AS t, jc.2 AS mode,
                is_resp AND mode != 2 AND jp > 0 AND t0 + intDiv(jp, 4294967296) + jp % 4294967296 < t AS fb,
                if(is_resp, if(fb, intDiv(t, 1000) + 1, 0), jb) AS bucket,
                -- where the answer comes from: 1 = A (in flight), 2 = D (latest completed: a Fastly
                -- hit, a non-Fastly hit with no fetch started before it, and what stage 3 falls back
                -- to for a non-Fastly hit), 0 = no producer
                multiIf(mode = 2 OR fb OR (mode = 3 AND jp = 0), 2, jp > 0, 1, 0) AS w,
                -- a response: (0 = answered / 1 = stage 3 looks, time, mode, viewer, pop, known, owner,
                -- fetch start); a fetch-second: (2, end, 0, 0, '', 0, session, start)
                (if(is_resp, toUInt8(fb), toUInt8(2)), if(is_resp, t, joe), mode, jc.3, jc.4,
                 toUInt8(w = 1 OR (w = 2 AND jds > 0)),
                 if(is_resp, if(w = 1, js, if(w = 2, jdss, toUInt64(0))), joss),
                 if(is_resp, if(w = 1, t0 + intDiv(jp, 4294967296), if(w = 2, jds, toUInt64(0))), jos)) AS r0
            FROM
            (
                -- Stage 2, per object: fetch starts (start order, numbered) merged with the responses'
                -- times, a fetch before a response at the same ms: running sums of each fetch's
                -- difference to the one before (modulo 2^64) give every response the latest fetch
                -- started at or before it (A: start, origin time, session); the same with fetch ends
                -- in end order (then start, session) gives the latest fetch completed at or before it
                -- (D: start, session).
                SELECT
                    host, path, query, template, class, C,
                    rowNumberInAllBlocks() AS oid,
                    -- ms offsets from t0 (>= 1), in the high 32 bits of the merge keys
                    toUInt64(least(if(empty(F), toUInt64(18446744073709551615), F[1].1), C[1].1) - 1) AS t0,
                    arrayMap(x -> toUInt64(x.1 - t0) * 4294967296 + 2147483648, C) AS kc,
                    arrayMap(x -> toUInt64(0), C) AS zc,
                    -- A: start offset (high 32 bits) and origin time (low 32 bits); > 0 when there is one
                    arrayMap(x -> toUInt64(x.1 - t0) * 4294967296 + toUInt64(x.2 - x.1), F) AS pa,
                    arrayMap(x -> x.3, F) AS sa,
                    arraySort(x -> (x.2, x.1, x.3), F) AS FE,
                    arrayMap(x -> x.1, FE) AS sd,
                    arrayMap(x -> x.3, FE) AS ssd,
                    arraySort((v, k) -> k,
                        arrayConcat(
                            arrayMap((v, p, s, q) -> (toUInt8(0), v + bitNot(p) + 1, s + bitNot(q) + 1),
                                pa, arraySlice(arrayPushFront(pa, toUInt64(0)), 1, length(pa)), sa, arraySlice(arrayPushFront(sa, toUInt64(0)), 1, length(sa))),
                            arrayMap(z -> (toUInt8(1), z, z), zc)),
                        arrayConcat(arrayMap((x, i) -> toUInt64(x.1 - t0) * 4294967296 + i, F, arrayEnumerate(F)), kc)) AS MS,
                    arraySort((v, k) -> k,
                        arrayConcat(
                            arrayMap((v, p, s, q) -> (toUInt8(0), v + bitNot(p) + 1, s + bitNot(q) + 1),
                                sd, arraySlice(arrayPushFront(sd, toUInt64(0)), 1, length(sd)), ssd, arraySlice(arrayPushFront(ssd, toUInt64(0)), 1, length(ssd))),
                            arrayMap(z -> (toUInt8(1), z, z), zc)),
                        arrayConcat(arrayMap((x, i) -> toUInt64(x.2 - t0) * 4294967296 + i, FE, arrayEnumerate(FE)), kc)) AS ME,
                    arrayFilter((v, m) -> m.1 = 1, arrayCumSum(arrayMap(m -> m.2, MS)), MS) AS a_pa,
                    arrayFilter((v, m) -> m.1 = 1, arrayCumSum(arrayMap(m -> m.3, MS)), MS) AS a_s,
                    arrayFilter((v, m) -> m.1 = 1, arrayCumSum(arrayMap(m -> m.2, ME)), ME) AS d_start,
                    arrayFilter((v, m) -> m.1 = 1, arrayCumSum(arrayMap(m -> m.3, ME)), ME) AS d_s,
                    -- per response: 0 = answered here, 1 = collapsed (or a non-Fastly hit) whose
                    -- latest-started fetch had completed: stage 3 looks among the older fetches
                    arrayMap((c, p) -> toUInt8(c.2 != 2 AND p > 0 AND t0 + intDiv(p, 4294967296) + p % 4294967296 < c.1), C, a_pa) AS fb,
                    arraySum(fb) AS nfb,
                    -- fetches that outlived the next one to start (none when no response needs them),
                    -- copied into every second they ran: (bucket, start, end, session)
                    arrayFilter((x, nx) -> x.2 > nx, F,
                        arraySlice(arrayPushBack(arrayMap(x -> x.2, F), toUInt64(18446744073709551615)), 2, length(F))) AS O1,
                    arrayResize(O1, if(nfb > 0, length(O1), 0)) AS O,
                    arrayReduce('groupArrayArray', arrayMap(o -> arrayMap(b -> (intDiv(o.1, 1000) + b + 1, o.1, o.2, o.3),
                        range(toUInt64(intDiv(o.2, 1000) - intDiv(o.1, 1000) + 1))), O)) AS OS,
                    arrayConcat(zc, arrayMap(x -> x.1, OS)) AS ob,
                    arrayConcat(zc, arrayMap(x -> x.2, OS)) AS ost,
                    arrayConcat(zc, arrayMap(x -> x.3, OS)) AS oen,
                    arrayConcat(zc, arrayMap(x -> x.4, OS)) AS oss,
                    length(C) AS nc,
                    nc + length(OS) AS n
                FROM
                (
                    -- Stage 1, per object (cache key: each POP has its own cache): its origin fetches and
                    -- its shared responses.
                    SELECT
                        host, path, query, vary_key, pop_,
                        -- origin fetches (start, end, session), in start order
                        arraySort(groupArrayIf((time_ms, time_ms + toUInt64(origin_ms), session_hash), is_fetch)) AS F,
                        -- shared responses in the window (time, mode, viewer, pop), in time order
                        arraySort(x -> x.1, groupArrayIf((time_ms, mode, session_hash, pop_), is_shared)) AS C,
                        any(template_) AS template, any(class_) AS class
                    FROM
                    (
                        SELECT
                            host, path, query, time_ms, origin_ms, session_hash,
                            toString(path_template) AS template_, toString(pop) AS pop_, toString(path_class) AS class_,
                            if(positionCaseInsensitive(vary, 'cookie') > 0 OR positionCaseInsensitive(vary, 'authorization') > 0,
                               session_hash, 0)                                                         AS vary_key,
                            collapsed = 0 AND from_cache = 0 AND cache_status IN ('miss', 'expired')    AS is_fetch,
                            (collapsed = 1 OR from_cache = 1) AND time >= {since:DateTime}              AS is_shared,
                            toUInt8(multiIf(collapsed = 1, 1, vendor = 'fastly', 2, 3))                 AS mode
                        FROM cdn_requests
                        PREWHERE path_class IN ('personal', 'auth') OR has_authorization = 1
                        WHERE time >= {since:DateTime} - {lookback_s:UInt64} AND time < {until:DateTime}
                          AND (is_fetch OR is_shared)
                    )
                    GROUP BY host, path, query, vary_key, pop_
                    HAVING notEmpty(C)
                )
            )
            ARRAY JOIN
                arrayEnumerate(arrayResize(C, n)) AS ji, arrayResize(C, n) AS jc, arrayResize(a_pa, n) AS jp, arrayResize(a_s, n) AS js,
                arrayResize(d_start, n) AS jds, arrayResize(d_s, n) AS jdss,
                ob AS jb, ost AS jos, oen AS joe, oss AS joss
        )
        GROUP BY oid, bucket
    )
    ARRAY JOIN rs AS r
    -- pairing end
)
WHERE known AND owner != 0 AND owner != viewer
GROUP BY owner
ORDER BY min(time_ms), owner_session
