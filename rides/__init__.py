"""The ride domain: the event model and its Avro schemas, TLC file layouts, serialization, dead letters."""
