-- Flights to one destination in the months of one quarter, aggregated in the
-- database to one row per month, origin airport and carrier. Only counts and sums
-- (no averages), so that pandas can roll them up exactly in any direction.
-- Portable SQL (SQLite and PostgreSQL): CASE instead of FILTER, and CAST for
-- integer sums, which PostgreSQL would otherwise return as NUMERIC.
-- (No colon-prefixed words in comments: SQLAlchemy would read them as parameters.)
SELECT
    f.month AS month,
    f.origin AS origin,
    o.name AS origin_name,
    f.carrier AS carrier,
    a.name AS carrier_name,
    COUNT(*) AS flights,
    COUNT(f.dep_time) AS flown,
    COUNT(f.arr_delay) AS arrived,
    SUM(f.arr_delay) AS arr_delay_sum,
    SUM(CASE WHEN f.arr_delay < :on_time_minutes THEN 1 ELSE 0 END) AS on_time,
    COUNT(CASE WHEN f.dep_time IS NOT NULL THEN p.seats END) AS seated,
    CAST(COALESCE(SUM(CASE WHEN f.dep_time IS NOT NULL THEN p.seats END), 0) AS BIGINT) AS seats
FROM flights f
LEFT JOIN airlines a ON a.carrier = f.carrier
LEFT JOIN airports o ON o.faa = f.origin
LEFT JOIN planes p ON p.tailnum = f.tailnum
WHERE f.dest = :dest
  AND f.year = :year
  AND f.month BETWEEN :first_month AND :last_month
GROUP BY f.month, f.origin, o.name, f.carrier, a.name
ORDER BY f.month, f.origin, f.carrier
