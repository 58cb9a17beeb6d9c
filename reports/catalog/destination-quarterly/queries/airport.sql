-- The destination airport; no row when the code is not in the airports table.
SELECT faa, name, lat, lon, alt, tzone
FROM airports
WHERE faa = :dest
