"""Producers of ride events into Kafka."""
