"""Before a client starts: do its topics exist, and may it use them? On the secured stack a topic the client
has no ACL for is invisible in a plain metadata listing, so each missing one is asked about by name."""

from __future__ import annotations

from confluent_kafka import KafkaError


def topic_problems(client, topics: list[str], timeout_s: float = 10) -> list[str]:
    """One line per topic that does not exist or that the client's user may not use; empty when all is well."""
    listed = client.list_topics(timeout=timeout_s).topics
    problems = []
    for topic in topics:
        if topic in listed and listed[topic].error is None:
            continue
        error = client.list_topics(topic=topic, timeout=timeout_s).topics[topic].error
        if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            problems.append(f"{topic}: not authorized (no ACL for this user; see conf/security.yaml)")
        else:
            problems.append(f"{topic}: does not exist")
    return problems
