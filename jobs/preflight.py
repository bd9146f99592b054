"""Checks a job makes before it starts Spark: Kafka answers at the configured address, and its input topics
exist there. A job that skipped them would start, then wait for ever on a wrong address or a misspelt topic."""

from __future__ import annotations

from confluent_kafka import KafkaException

from jobs.settings import JobSettings
from stack.services import quiet_kafka_admin


class PreflightError(Exception):
    """The job cannot run with these settings; the message names the setting to fix."""


def check_inputs(settings: JobSettings, timeout_s: float = 10) -> None:
    try:
        metadata = quiet_kafka_admin(settings.bootstrap_servers).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise PreflightError(
            f"cannot reach Kafka at {settings.bootstrap_servers} ({exc.args[0].str()}): check bootstrap_servers "
            f"(conf/stack.yaml, KAFKA_BOOTSTRAP_SERVERS or --bootstrap-servers); is the stack up? (make up)"
        ) from None
    missing = [topic for topic in settings.input_topic_names() if topic not in metadata.topics]
    if missing:
        raise PreflightError(
            f"input topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}: check "
            f"conf/jobs.yaml [{settings.name}] (or --input-topics), or declare them in conf/topics.yaml and run "
            f"`make topics`"
        )
