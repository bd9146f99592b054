-- Rides, passengers and revenue per pickup zone in 15-minute windows, over rides of every kind.
-- A TABLE: each window's row is re-written as its rides arrive; the topic keeps the latest per key.
CREATE TABLE rides_per_zone_15m
WITH (KEY = 'window_start, PULocationID')
AS SELECT window.start AS window_start,
          window.end AS window_end,
          PULocationID,
          count(*) AS rides,
          sum(passenger_count) AS passengers,
          CAST(sum(CAST(total_amount AS DECIMAL(12, 2))) AS DECIMAL(14, 2)) AS revenue
   FROM rides
   WHERE PULocationID IS NOT NULL
   GROUP BY window(pickup_datetime, '15 minutes'), PULocationID;
