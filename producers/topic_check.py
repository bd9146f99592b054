"""Before a client starts: do its topics exist, and may it use them? On the secured stack a topic the client
has no ACL for is invisible in a plain metadata listing, so each missing one is asked about by name.

Brokers learn about a new topic from the controller one by one, so a topic created a moment ago may still be
unknown to the broker that answers; a missing topic is asked about again for a few seconds before it counts
as missing."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AclOperation, AdminClient

NEW_TOPIC_SETTLE_S = 5.0


def topic_problems(client, topics: list[str], timeout_s: float = 10, settle_s: float = NEW_TOPIC_SETTLE_S) -> list[str]:
    """One line per topic that does not exist or that the client's user may not use; empty when all is well."""
    listed = client.list_topics(timeout=timeout_s).topics
    problems = []
    for topic in topics:
        if topic in listed and listed[topic].error is None:
            continue
        problem = _problem_with(client, topic, timeout_s, settle_s)
        if problem:
            problems.append(f"{topic}: {problem}")
    return problems


def _problem_with(client, topic: str, timeout_s: float, settle_s: float) -> str | None:
    deadline = time.monotonic() + settle_s
    while True:
        error = client.list_topics(topic=topic, timeout=timeout_s).topics[topic].error
        if error is None:
            return None
        if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            return "not authorized (no ACL for this user; see conf/security.yaml)"
        if time.monotonic() >= deadline:
            return "does not exist"
        time.sleep(0.25)


WRITE_OPERATIONS = {AclOperation.WRITE, AclOperation.ALL}


def write_problem(bootstrap: str, auth: dict, topic: str, timeout_s: float = 10) -> str | None:
    """Why the user of `auth` (a client's login; none on the unsecured stack) may not write to the topic, or None.

    Asked of the brokers (DescribeTopics with the authorized operations), so that a consumer learns before it
    reads anything that its dead letters would have nowhere to go. Without an authorizer Kafka grants everything."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **auth})
    future = admin.describe_topics(
        TopicCollection([topic]), request_timeout=timeout_s, include_authorized_operations=True
    )[topic]
    try:
        description = future.result()
    except KafkaException as exc:
        error = exc.args[0]
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return "does not exist"
        if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            return "not authorized (no ACL for this user; see conf/security.yaml)"
        raise
    operations = set(description.authorized_operations or ())
    if operations and not operations & WRITE_OPERATIONS:
        return "not writable by this user (no WRITE ACL; see conf/security.yaml)"
    return None
