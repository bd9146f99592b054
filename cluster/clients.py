"""How the project's programs reach Kafka and the schema registry: the admin client, the registry client, and how
their clients log. One place, used by the producers, the jobs, the web console and the stack alike, against the
local stack or any other cluster.
"""

from __future__ import annotations

import logging

from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from pipeline_config.credentials import client_auth

log = logging.getLogger("pipeline.kafka")

# librdkafka's own log lines repeat every reconnect attempt; the errors that matter reach log_client_error.
QUIET_CLIENT_LOG = logging.getLogger("librdkafka")
QUIET_CLIENT_LOG.setLevel(logging.CRITICAL)

# One INFO line per request to the schema registry otherwise (confluent-kafka's client logs through its own
# copy of httpx, "httpx2").
REGISTRY_HTTP_LOGGERS = ("httpx", "httpx2")

REGISTRY_TIMEOUT_S = 10

_reported: set[str] = set()


def admin_client(bootstrap: str, auth: dict[str, str] | None = None) -> AdminClient:
    """An AdminClient that does not spray connection-refused lines while a broker is starting. `auth` defaults
    to the caller's own credentials from its environment (none on an unsecured cluster)."""
    auth = client_auth() if auth is None else auth
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "socket.timeout.ms": 3000, **auth})


def registry_client(url: str) -> SchemaRegistryClient:
    """confluent-kafka's registry client, the only one in the project (it caches schemas by id and subject)."""
    conf: dict[str, object] = {"url": url, "timeout": REGISTRY_TIMEOUT_S}
    if url.startswith("http://"):
        # No certificate to check over plain HTTP: without this the client loads the whole CA bundle, some 20 ms a
        # client, and a job's start makes several.
        conf["ssl.ca.location"] = False
    return SchemaRegistryClient(conf)


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
