-- question: For an incident window, which response went to whom: every personal or authenticated response served from a shared object (cached or collapsed) to a session other than the one its origin fetch was made for - the evidence?
-- param: since DateTime  -- start of the incident window (UTC)
-- param: until DateTime  -- end of the incident window (UTC)
-- param: lookback_s UInt64 = 3600  -- how far before since to look for the origin fetches that produced responses in the window
-- example:
--   time                 time_ms        owner_session         viewer_session        host            path_template  path_class  pop  served     fetch_time_ms
--   2026-11-25 05:52:02  1795585922120  12093847561029384756  84756120938475612093  www.example.jp  /mypage        personal    NRT  collapsed  1795585921870
SELECT
    toDateTime(intDiv(time_ms, 1000)) AS time,
    time_ms,
    owner   AS owner_session,
    viewer  AS viewer_session,
    host,
    path_template,
    path_class,
    pop,
    if(mode = 1, 'collapsed', 'hit') AS served,
    fetch_ms AS fetch_time_ms
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
        -- Stage 3, per object and second: a response whose latest-started fetch had already
        -- completed looks among the fetches that outlived their successor (the only ones that
        -- can still be in flight then) alive in its second; then the vendor rule picks.
        SELECT
            host, path, query,
            groupArrayIf(x, x.2 = 0) AS cs,
            arraySort(groupArrayIf((x.3, x.10, x.5), x.2 = 1)) AS os,
            arrayMap(c -> arrayPushFront(arrayFilter(o -> o.1 <= c.3 AND o.2 >= c.3, os), (toUInt64(0), toUInt64(0), toUInt64(0)))[-1], cs) AS fb,
            any(template) AS path_template, any(class) AS path_class,
            arrayMap((c, f) -> (c.3, c.4, c.5, c.6,
                -- known, owner, fetch start
                multiIf(c.4 = 2 OR (c.4 = 3 AND c.10 < c.3 AND f.2 = 0), c.13 > 0,
                        c.10 >= c.3 OR f.2 > 0),
                multiIf(c.4 = 2 OR (c.4 = 3 AND c.10 < c.3 AND f.2 = 0), c.14, c.10 >= c.3, c.11, f.3),
                multiIf(c.4 = 2 OR (c.4 = 3 AND c.10 < c.3 AND f.2 = 0), c.12, c.10 >= c.3, c.9, f.1)), cs, fb) AS rs
        FROM
        (
            SELECT host, path, query, vary_key, template, class, x
            FROM
            (
                -- Stage 2, per object: fetch starts (in start order) merged with the responses'
                -- times, a start at the same ms first: running sums of each fetch's difference
                -- to the one before give every response the latest fetch started at or before
                -- it (a_); the same with fetch ends in end order gives the latest fetch completed
                -- at or before it (d_).
                SELECT
                    host, path, query, vary_key, template, class, C,
                    arrayMap(x -> toInt64(x.1), F)                               AS fs,
                    arrayMap(x -> toInt64(x.2), F)                               AS fe,
                    arrayMap(x -> toInt64(intDiv(x.3, 4294967296)), F)           AS fh,
                    arrayMap(x -> toInt64(x.3 % 4294967296), F)                  AS fl,
                    -- fetches in end order (then start order): a numeric sort key
                    arraySort((x, k) -> k, F, arrayMap((x, i) -> toUInt64(toInt64(x.2) - t0) * 4294967296 + toUInt64(i), F, arrayEnumerate(F))) AS FE,
                    arrayMap(x -> toInt64(x.1), FE)                              AS es,
                    arrayMap(x -> toInt64(x.2), FE)                              AS ee,
                    arrayMap(x -> toInt64(intDiv(x.3, 4294967296)), FE)          AS eh,
                    arrayMap(x -> toInt64(x.3 % 4294967296), FE)                 AS el,
                    arrayMap(x -> toInt64(x.1), C)                               AS ct,
                    arrayMap(x -> toInt64(0), C)                                 AS cz,
                    least(if(empty(F), toInt64(9223372036854775807), toInt64(F[1].1)), if(empty(C), toInt64(9223372036854775807), toInt64(C[1].1))) AS t0,
                    arraySort((x, k) -> k, arrayConcat(
                        arrayMap((t, i, a, b, h, l) -> (t, 0, a, b, h, l), fs, arrayEnumerate(fs),
                            arrayMap((x, p) -> x - p, fs, arraySlice(arrayPushFront(fs, toInt64(0)), 1, length(fs))),
                            arrayMap((x, p) -> x - p, fe, arraySlice(arrayPushFront(fe, toInt64(0)), 1, length(fe))),
                            arrayMap((x, p) -> x - p, fh, arraySlice(arrayPushFront(fh, toInt64(0)), 1, length(fh))),
                            arrayMap((x, p) -> x - p, fl, arraySlice(arrayPushFront(fl, toInt64(0)), 1, length(fl)))),
                        arrayMap((t, z) -> (t, 1, z, z, z, z), ct, cz)),
                        -- sort key: ms since the object's first event, then fetches before responses,
                        -- then the fetch's rank (windows up to 49 days)
                        arrayConcat(arrayMap((t, i) -> toUInt64(t - t0) * 4294967296 + toUInt64(i), fs, arrayEnumerate(fs)),
                                    arrayMap(t -> toUInt64(t - t0) * 4294967296 + 2147483648, ct))) AS MS,
                    arraySort((x, k) -> k, arrayConcat(
                        arrayMap((t, i, a, b, h, l) -> (t, 0, a, b, h, l), ee, arrayEnumerate(ee),
                            arrayMap((x, p) -> x - p, es, arraySlice(arrayPushFront(es, toInt64(0)), 1, length(es))),
                            arrayMap((x, p) -> x - p, ee, arraySlice(arrayPushFront(ee, toInt64(0)), 1, length(ee))),
                            arrayMap((x, p) -> x - p, eh, arraySlice(arrayPushFront(eh, toInt64(0)), 1, length(eh))),
                            arrayMap((x, p) -> x - p, el, arraySlice(arrayPushFront(el, toInt64(0)), 1, length(el)))),
                        arrayMap((t, z) -> (t, 1, z, z, z, z), ct, cz)),
                        -- sort key: ms since the object's first event, then fetches before responses,
                        -- then the fetch's rank (windows up to 49 days)
                        arrayConcat(arrayMap((t, i) -> toUInt64(t - t0) * 4294967296 + toUInt64(i), ee, arrayEnumerate(ee)),
                                    arrayMap(t -> toUInt64(t - t0) * 4294967296 + 2147483648, ct))) AS ME,
                    arrayFilter((v, x) -> x.2 = 1, arrayCumSum(arrayMap(x -> x.3, MS)), MS)  AS a_start,
                    arrayFilter((v, x) -> x.2 = 1, arrayCumSum(arrayMap(x -> x.4, MS)), MS)  AS a_end,
                    arrayFilter((v, x) -> x.2 = 1, arrayCumSum(arrayMap(x -> x.5, MS)), MS)  AS a_hi,
                    arrayFilter((v, x) -> x.2 = 1, arrayCumSum(arrayMap(x -> x.6, MS)), MS)  AS a_lo,
                    arrayFilter((v, x) -> x.2 = 1, arrayCumSum(arrayMap(x -> x.3, ME)), ME)  AS d_start,
                    arrayFilter((v, x) -> x.2 = 1, arrayCumSum(arrayMap(x -> x.4, ME)), ME)  AS d_end,
                    arrayFilter((v, x) -> x.2 = 1, arrayCumSum(arrayMap(x -> x.5, ME)), ME)  AS d_hi,
                    arrayFilter((v, x) -> x.2 = 1, arrayCumSum(arrayMap(x -> x.6, ME)), ME)  AS d_lo,
                    -- fetches that outlived the next one to start, copied into every second they ran
                    arrayFilter((x, nx) -> x.2 > nx, F,
                        arraySlice(arrayPushBack(arrayPopFront(arrayMap(x -> x.2, F)), toUInt64(18446744073709551615)), 1, length(F))) AS O,
                    arrayConcat(
                        arrayMap((c, s, e, h, l, ds, de, dh, dl) -> (intDiv(c.1, 1000), toUInt8(0), c.1, c.2, c.3, c.4, '', '',
                                toUInt64(s), toUInt64(e), toUInt64(h) * 4294967296 + toUInt64(l),
                                toUInt64(ds), toUInt64(de), toUInt64(dh) * 4294967296 + toUInt64(dl)),
                            C, a_start, a_end, a_hi, a_lo, d_start, d_end, d_hi, d_lo),
                        arrayReduce('groupArrayArray', arrayMap(o -> arrayMap(b -> (toUInt64(intDiv(o.1, 1000) + b), toUInt8(1), o.1, toUInt8(0), o.3, '', '', '',
                                toUInt64(0), o.2, toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0)),
                            range(toUInt64(intDiv(o.2, 1000) - intDiv(o.1, 1000) + 1))), O))) AS X
                FROM
                (
                    -- Stage 1, per object (cache key): its origin fetches and its shared responses.
                    SELECT
                        host, path, query, vary_key,
                        -- origin fetches (start, end, session), in start order
                        arraySort(groupArrayIf((time_ms, time_ms + toUInt64(origin_ms), session_hash), is_fetch)) AS F,
                        -- shared responses in the window (time, mode, viewer, pop), in time order
                        arraySort(x -> x.1, groupArrayIf((time_ms, mode, session_hash, pop_), is_shared))  AS C,
                        any(template_) AS template, any(class_) AS class
                    FROM
                    (
                        SELECT
                            host, path, query, time_ms, origin_ms, session_hash,
                            toString(path_template) AS template_, toString(pop) AS pop_, toString(path_class) AS class_,
                            if(positionCaseInsensitive(vary, 'cookie') > 0 OR positionCaseInsensitive(vary, 'authorization') > 0,
                               session_hash, 0)                                                         AS vary_key,
                            collapsed = 0 AND from_cache = 0 AND cache_status IN ('miss', 'expired')    AS is_fetch,
                            (collapsed = 1 OR from_cache = 1) AND time >= {since:DateTime}
                              AND (path_class IN ('personal', 'auth') OR has_authorization = 1)        AS is_shared,
                            toUInt8(multiIf(collapsed = 1, 1, vendor = 'fastly', 2, 3))                 AS mode
                        FROM cdn_requests
                        WHERE time >= {since:DateTime} - {lookback_s:UInt64} AND time < {until:DateTime}
                          AND (is_fetch OR is_shared)
                          AND (path_class IN ('personal', 'auth') OR has_authorization = 1)
                    )
                    GROUP BY host, path, query, vary_key
                    HAVING notEmpty(C)
                )
            )
            ARRAY JOIN X AS x
        )
        GROUP BY host, path, query, vary_key, x.1
    )
    ARRAY JOIN rs AS r
    -- pairing end
)
WHERE known AND owner != 0 AND owner != viewer
ORDER BY time_ms, viewer_session, owner_session, host, path_template, path_class, pop, served, fetch_time_ms
