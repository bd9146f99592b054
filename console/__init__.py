"""The web console: the pipeline at work in a browser (topics, groups, messages, schemas, Spark queries, charts)."""
