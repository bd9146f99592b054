"""How the Kafka clients of the project log: each distinct client error once, librdkafka's chatter muted."""

from __future__ import annotations

import logging

log = logging.getLogger("producers.kafka")

# librdkafka's own log lines repeat every reconnect attempt; the errors that matter reach log_client_error.
QUIET_CLIENT_LOG = logging.getLogger("librdkafka")
QUIET_CLIENT_LOG.setLevel(logging.CRITICAL)

_reported: set[str] = set()


def log_client_error(error) -> None:
    """error_cb for librdkafka: a broker that is down is reported once, not every 50 ms."""
    text = error.str()
    if text not in _reported:
        _reported.add(text)
        log.warning("kafka client: %s", text)
