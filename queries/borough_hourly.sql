-- Per hour and pickup borough: rides, tips and the longest trip, joining each ride to the zone lookup.
-- A stream-static join: `zones` is the taxi zone CSV; a zone missing from it counts under 'Unknown'.
CREATE TABLE borough_hourly
WITH (KEY = 'window_start, borough')
AS SELECT window.start AS window_start,
          window.end AS window_end,
          coalesce(zones.borough, 'Unknown') AS borough,
          count(*) AS rides,
          CAST(sum(CAST(rides.tip_amount AS DECIMAL(12, 2))) AS DECIMAL(14, 2)) AS tips,
          max(rides.trip_distance) AS longest_trip_miles
   FROM rides
   LEFT JOIN zones ON rides.PULocationID = zones.LocationID
   GROUP BY window(rides.pickup_datetime, '1 hour'), coalesce(zones.borough, 'Unknown');
