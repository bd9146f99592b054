"""Session fixtures: the real local stack, started through the same code as `make up`.

A stack that was already running (say after `make up`) is reused and left running; one that this session
started is stopped at the end, so CI leaves nothing behind.
"""

from __future__ import annotations

import os

import pytest

from pipeline_config.settings import load_settings
from stack import lifecycle
from stack.processes import listening_pid
from stack.services import build_services
from tests.kafka_helpers import create_topic, delete_topic
from tests.paths import GREEN_FILE, SHARED_DATA, ZONE_LOOKUP  # noqa: F401 (imported by tests from here)

STACK_FIXTURES = {"local_stack", "three_broker_cluster", "fresh_topic", "topic_factory", "green_topic"}


def pytest_collection_modifyitems(items):
    # A test that uses the stack is a stack test, whether or not its module says so: `make test-unit` (-m "not
    # stack") then runs exactly the tests that need no service.
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)
    # Tests that take the stack down and up again run last, after everything that needs it steady.
    items.sort(key=lambda item: 1 if item.get_closest_marker("stack_lifecycle") else 0)


@pytest.fixture(scope="session")
def stack_settings():
    return load_settings()


@pytest.fixture(scope="session")
def local_stack(stack_settings):
    """The running stack's settings; starts the stack if needed."""
    started = lifecycle.up(stack_settings, say=lambda line: None)
    yield stack_settings
    if started:
        lifecycle.down(stack_settings, say=lambda line: None)


@pytest.fixture()
def fresh_topic(local_stack):
    """A topic of its own for one test (3 partitions), deleted afterwards."""
    name = create_topic(local_stack.kafka.bootstrap_servers)
    yield name
    delete_topic(local_stack.kafka.bootstrap_servers, name)


@pytest.fixture()
def topic_factory(local_stack):
    """Makes topics of its own for one test, all deleted afterwards."""
    made = []

    def make(partitions: int = 3, prefix: str = "test") -> str:
        made.append(create_topic(local_stack.kafka.bootstrap_servers, partitions, prefix))
        return made[-1]

    yield make
    for name in made:
        delete_topic(local_stack.kafka.bootstrap_servers, name)


@pytest.fixture()
def results_schema(local_stack):
    """A schema of the results database of its own for one test (a job creates its tables there), dropped
    afterwards. The test process logs in with the stack's logins, as `make query` does (PGPASSFILE)."""
    import uuid

    import psycopg

    from tests.jobs.results_tables import use_stack_logins

    use_stack_logins(local_stack)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(local_stack.postgres.url, autocommit=True) as connection:
        connection.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(psycopg.sql.Identifier(schema)))


@pytest.fixture(scope="module")
def three_broker_cluster(local_stack, tmp_path_factory):
    """A three-node KRaft cluster (`BROKERS=3 make up`, Kafka only) with state of its own. The three nodes need
    the single-node stack's ports, so that stack is stopped meanwhile and started again afterwards; tests that
    use this are marked stack_lifecycle and run last."""
    was_running = any(service.pid_file.alive() for service in build_services(local_stack))
    lifecycle.down(local_stack, say=lambda line: None)
    state = tmp_path_factory.mktemp("three-brokers")
    (state / "lib").symlink_to(local_stack.lib_dir)
    cluster = load_settings(env={**os.environ, "STACK_HOME": str(state), "BROKERS": "3"})
    try:
        lifecycle.up(cluster, say=lambda line: None, only=("kafka",))
        yield cluster
    finally:
        lifecycle.down(cluster, say=lambda line: None)
        assert all(
            listening_pid(port) is None
            for service in build_services(cluster)
            if service.name.startswith("kafka")
            for port in service.ports
        )
        if was_running:
            lifecycle.up(local_stack, say=lambda line: None)
