"""A minimal PySpark application for the stack tests: count a Kafka topic's records and print their values.

Run: python -m stack submit tests/apps/count_topic.py <bootstrap> <topic>
"""

import sys

from pyspark.sql import SparkSession


def main(argv=None):
    bootstrap, topic = (argv or sys.argv[1:])[:2]
    spark = SparkSession.builder.appName("stack-test-count-topic").getOrCreate()
    records_df = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    values = sorted(row.value.decode() for row in records_df.select("value").collect())
    print(f"RESULT count={len(values)} values={','.join(values)}")
    print(f"RESULT master={spark.sparkContext.master}")
    spark.stop()


if __name__ == "__main__":
    main()
