-- Rides that end at an airport (Newark 1, JFK 132, LaGuardia 138), with the airport's name and the ride's length.
-- A STREAM: no state, each matching ride is appended once, keyed by its ride_id.
CREATE STREAM airport_dropoffs
WITH (KEY = 'ride_id')
AS SELECT ride_id,
          ride_type,
          pickup_datetime,
          PULocationID,
          CASE DOLocationID WHEN 1 THEN 'Newark' WHEN 132 THEN 'JFK' ELSE 'LaGuardia' END AS airport,
          timestampdiff(SECOND, pickup_datetime, dropoff_datetime) AS duration_s,
          trip_distance,
          total_amount
   FROM rides
   WHERE DOLocationID IN (1, 132, 138);
