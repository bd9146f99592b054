"""PySpark Structured Streaming jobs over the ride topics."""
