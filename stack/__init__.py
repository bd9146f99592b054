"""The project's stack: Kafka, a schema registry and a Spark standalone cluster, as local processes or compose."""
