"""How the Kafka clients of the project log: each distinct client error once, librdkafka's chatter muted."""

from __future__ import annotations

import logging

log = logging.getLogger("producers.kafka")

# librdkafka's own log lines repeat every reconnect attempt; the errors that matter reach log_client_error.
QUIET_CLIENT_LOG = logging.getLogger("librdkafka")
QUIET_CLIENT_LOG.setLevel(logging.CRITICAL)

# One INFO line per request to the schema registry otherwise (confluent-kafka's client logs through its own
# copy of httpx, "httpx2").
REGISTRY_HTTP_LOGGERS = ("httpx", "httpx2")

_reported: set[str] = set()


def command_line_logging() -> None:
    """Logging of the command-line tools and jobs: INFO lines with their time to stderr, HTTP requests muted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for name in REGISTRY_HTTP_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def log_client_error(error) -> None:
    """error_cb for librdkafka: a broker that is down is reported once, not every 50 ms."""
    text = error.str()
    if text not in _reported:
        _reported.add(text)
        log.warning("kafka client: %s", text)
