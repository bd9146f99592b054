"""Bytes each topic holds on the brokers' disks (every replica counted), from Kafka's DescribeLogDirs API, so it
works against any cluster, not only one whose data folders are on this machine.

Why kafka-python here: confluent-kafka's AdminClient (2.16) has no DescribeLogDirs. kafka-python has the request,
but only its version 0, which Kafka 4 no longer accepts (KIP-896), and sends it to one broker only. Version 1 of
the request and answer has the same fields as version 0 (only the broker's throttling changed), so it is declared
here on kafka-python's own classes, and each broker is asked in turn through the client's per-node request
(`_send_request_to_node`, the one way kafka-python offers to address a given broker).
"""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from kafka.protocol.admin import DescribeLogDirsRequest_v0, DescribeLogDirsResponse_v0

NO_ERROR = 0


class DescribeLogDirsResponseV1(DescribeLogDirsResponse_v0):
    API_VERSION = 1


class DescribeLogDirsRequestV1(DescribeLogDirsRequest_v0):
    API_VERSION = 1
    RESPONSE_TYPE = DescribeLogDirsResponseV1


def kafka_python_auth(auth: dict[str, str]) -> dict[str, str]:
    """confluent-kafka (librdkafka) login settings as kafka-python's keyword arguments."""
    names = {
        "security.protocol": "security_protocol",
        "sasl.mechanism": "sasl_mechanism",
        "sasl.username": "sasl_plain_username",
        "sasl.password": "sasl_plain_password",
        "ssl.ca.location": "ssl_cafile",
    }
    return {names[key]: value for key, value in auth.items() if key in names}


def topic_sizes(bootstrap: str, auth: dict[str, str], timeout_s: float = 10) -> dict[str, int]:
    """Bytes per topic summed over every broker's log folders; a broker that refuses (no DESCRIBE on the
    cluster) or does not answer is left out."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap.split(","),
        client_id="pipeline-log-dirs",
        request_timeout_ms=int(timeout_s * 1000),
        **kafka_python_auth(auth),
    )
    sizes: dict[str, int] = {}
    try:
        for broker in admin._client.cluster.brokers():
            try:
                future = admin._send_request_to_node(broker.nodeId, DescribeLogDirsRequestV1(topics=None))
                admin._wait_for_futures([future])
            except KafkaError:
                continue
            for error_code, _log_dir, topics in future.value.log_dirs:
                if error_code != NO_ERROR:
                    continue
                for topic, partitions in topics:
                    sizes[topic] = sizes.get(topic, 0) + sum(partition[1] for partition in partitions)
    finally:
        admin.close()
    return sizes
