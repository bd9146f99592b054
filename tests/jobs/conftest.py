"""One SparkSession for the transformation tests: local[2], few shuffle partitions, UI off, the connector
jars on the classpath (spark-avro for from_avro)."""

from __future__ import annotations

import os
import sys

import pytest
from pyspark.sql import SparkSession

from pipeline_config.settings import load_settings
from stack.submit import connector_jars


@pytest.fixture(scope="session")
def spark():
    # Python workers (pandas UDFs, state functions) must run this interpreter, which has pyarrow and pandas.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    jars = ",".join(str(jar) for jar in connector_jars(load_settings()))
    session = (
        SparkSession.builder.master("local[2]")
        .appName("transformation-tests")
        .config("spark.jars", jars)
        .config("spark.sql.shuffle.partitions", 2)
        .config("spark.ui.enabled", False)
        # The decoder's plans are large; 1 GiB (the default) runs out over a whole session of tests.
        .config("spark.driver.memory", "2g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def green_rides():
    """The real green file's rides, as the producers read them (the batch computations' input)."""
    from rides.tlc import read_rides
    from tests.conftest import GREEN_FILE

    return list(read_rides(GREEN_FILE))


@pytest.fixture(scope="session")
def green_topic(local_stack, green_rides):
    """The real green file, produced once as Avro into a topic of its own for the jobs and queries."""
    from producers import produce
    from tests.conftest import GREEN_FILE
    from tests.kafka_helpers import create_topic, delete_topic

    topic = create_topic(local_stack.kafka.bootstrap_servers, prefix="jobs_green")
    assert produce.main(["--source", str(GREEN_FILE), "--topic", topic, "--quiet"]) == 0
    yield topic
    delete_topic(local_stack.kafka.bootstrap_servers, topic)
