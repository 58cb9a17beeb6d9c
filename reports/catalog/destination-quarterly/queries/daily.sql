-- Scheduled flights to one destination per day and origin airport in the months
-- of one quarter: at most 92 days × 3 origins.
SELECT f.month AS month, f.day AS day, f.origin AS origin, COUNT(*) AS flights
FROM flights f
WHERE f.dest = :dest
  AND f.year = :year
  AND f.month BETWEEN :first_month AND :last_month
GROUP BY f.month, f.day, f.origin
ORDER BY f.month, f.day, f.origin
