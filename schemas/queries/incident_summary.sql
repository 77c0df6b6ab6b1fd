-- question: For an incident window, how many sessions saw a response generated for someone else, per path class - the numbers an incident report needs?
-- param: since DateTime  -- start of the incident window (UTC)
-- param: until DateTime  -- end of the incident window (UTC)
-- example:
--   path_class  sessions  responses  objects
--   personal    160       213        188
SELECT
    path_class,
    uniqExact(session_hash)       AS sessions,
    count()                       AS responses,
    uniqExact(host, path, query)  AS objects
FROM
(
    SELECT host, path, query, session_hash, path_class
    FROM cdn_requests
    WHERE time >= {since:DateTime} AND time < {until:DateTime}
      AND session_hash != 0 AND (from_cache OR collapsed)
      AND (path_class IN ('personal', 'auth') OR has_authorization)
) AS served
ALL LEFT JOIN
(
    SELECT host, path, query, argMin(session_hash, time_ms) AS generator
    FROM cdn_requests
    WHERE time >= {since:DateTime} - INTERVAL 1 HOUR AND time < {until:DateTime}
      AND from_cache = 0 AND collapsed = 0
    GROUP BY host, path, query
) AS generated USING (host, path, query)
WHERE session_hash != generator
GROUP BY path_class
ORDER BY sessions DESC, path_class
