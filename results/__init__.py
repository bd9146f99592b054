"""The results database (PostgreSQL): table declarations (conf/results.yaml), migrations, exactly-once batch
writes and pull queries. Used by the jobs' driver, the web console and `make query`; no Spark here."""
