-- question: For an incident window, which sessions received a personal or authenticated response that was first generated for another session (served from cache or collapsed), and how many?
-- param: since DateTime  -- start of the incident window (UTC)
-- param: until DateTime  -- end of the incident window (UTC)
-- example:
--   session_hash          path_class  responses  objects  first_seen           last_seen
--   12093847561029384756  personal    3          2        2026-11-25 05:52:02  2026-11-25 05:58:40
SELECT
    session_hash,
    path_class,
    count()                          AS responses,
    uniqExact(host, path, query)     AS objects,
    min(time)                        AS first_seen,
    max(time)                        AS last_seen
FROM
(
    SELECT host, path, query, session_hash, path_class, time
    FROM cdn_requests
    WHERE time >= {since:DateTime} AND time < {until:DateTime}
      AND session_hash != 0 AND (from_cache OR collapsed)
      AND (path_class IN ('personal', 'auth') OR has_authorization)
) AS served
ALL LEFT JOIN
(
    -- the session whose origin fetch produced the object (0 = unknown: before the window)
    SELECT host, path, query, argMin(session_hash, time_ms) AS generator
    FROM cdn_requests
    WHERE time >= {since:DateTime} - INTERVAL 1 HOUR AND time < {until:DateTime}
      AND from_cache = 0 AND collapsed = 0
    GROUP BY host, path, query
) AS generated USING (host, path, query)
WHERE session_hash != generator
GROUP BY session_hash, path_class
ORDER BY responses DESC, session_hash
