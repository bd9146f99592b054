"""The course's producer pattern, as the DataTalksClub data-engineering-zoomcamp streaming module writes it: pandas
reads the file, each row becomes a dataclass, json.dumps writes it, kafka-python's KafkaProducer sends it with its
defaults. Run by benchmarks/peers.py in the peers' virtual environment (not the project's):

  python course_producer.py FILE TOPIC BOOTSTRAP

Prints the rides sent.
"""

import dataclasses
import json
import sys

import pandas as pd
from kafka import KafkaProducer


@dataclasses.dataclass
class Ride:
    VendorID: float
    lpep_pickup_datetime: str
    lpep_dropoff_datetime: str
    PULocationID: int
    DOLocationID: int
    passenger_count: float
    trip_distance: float
    fare_amount: float
    tip_amount: float
    total_amount: float


def ride_of(row) -> Ride:
    return Ride(**{field.name: row[field.name] for field in dataclasses.fields(Ride)})


def main(path: str, topic: str, bootstrap: str) -> None:
    rides = pd.read_csv(path)
    producer = KafkaProducer(
        bootstrap_servers=[bootstrap],
        value_serializer=lambda ride: json.dumps(dataclasses.asdict(ride)).encode("utf-8"),
    )
    sent = 0
    for _, row in rides.iterrows():
        producer.send(topic, value=ride_of(row))
        sent += 1
    producer.flush()
    print(sent)


if __name__ == "__main__":
    main(*sys.argv[1:4])
