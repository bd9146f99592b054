"""Reaching a Kafka and Spark cluster through its APIs (clients, topics, groups, connectors, the Spark master): the same code against the local stack or any other cluster."""
