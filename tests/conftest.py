"""Session fixtures: the real local stack, started through the same code as `make up`.

A stack that was already running (say after `make up`) is reused and left running; one that this session
started is stopped at the end, so CI leaves nothing behind.
"""

from __future__ import annotations

import uuid

import pytest

from stack import lifecycle
from stack.settings import load_settings


def pytest_collection_modifyitems(items):
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
    from confluent_kafka.admin import NewTopic

    from stack.services import quiet_kafka_admin

    admin = quiet_kafka_admin(local_stack.kafka.bootstrap_servers)
    name = f"test_{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, num_partitions=3)])[name].result(30)
    yield name
    admin.delete_topics([name])[name].result(30)
