"""Consume ride events (or any topic of the pipeline) and print them with partition, offset, key and timestamp.

Examples:
  python -m producers.consume rides_green --max 5
  python -m producers.consume rides_green --group dashboards --offset-reset latest
  python -m producers.consume vendor_counts_windowed --output jsonl --idle-timeout 10

The format of each message is detected: Avro in the Confluent wire format (decoded with the writer's schema
fetched from the registry by its id, optionally resolved to --reader-schema) or JSON; anything else is
printed as text. Offsets are committed after a message is printed (at-least-once), so a consumer restarted
with the same --group resumes where it stopped, and two consumers of one group split the partitions.
A message that cannot be decoded is reported and sent to the dead-letter topic with the reason; its offset is
committed only once Kafka has acknowledged its dead letter, and a dead letter that is not acknowledged stops the
run with exit status 1. The dead-letter topic must exist and be writable before anything is read.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from cluster.clients import (
    QUIET_CLIENT_LOG,
    command_line_logging,
    log_client_error,
    registry_client,
)
from pipeline_config.client_defaults import load_client_defaults
from pipeline_config.credentials import client_auth
from pipeline_config.errors import CannotRunError, PipelineError, run_command
from pipeline_config.settings import load_settings
from producers.topic_check import topic_problems, write_problem
from rides.dead_letter import cut_reason, dead_letter
from rides.messages import MessageDecoder
from rides.serialization import (
    DeserializationError,
    RegistryUnavailableError,
    describe_bytes,
)

log = logging.getLogger("producers.consume")


class ConsumerError(CannotRunError):
    """The consumer cannot start; the message says why."""


# Errors no retry will cure: the user may not read the topic or join the group, or cannot log in.
REFUSALS = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError._AUTHENTICATION}


def _user(auth: dict) -> str:
    return auth.get("sasl.username", "(anonymous)")


def _jsonable(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, bytes):
        return describe_bytes(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _timestamp_text(message) -> str:
    _kind, millis = message.timestamp()
    if millis is None or millis < 0:
        return "-"
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="milliseconds")


def format_record(message, key, value, output: str) -> str:
    record = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": _timestamp_text(message),
        "key": _jsonable(key),
        "value": _jsonable(value),
    }
    if output == "jsonl":
        return json.dumps(record, default=str)
    return (
        f"{record['topic']} p{record['partition']} @{record['offset']} {record['timestamp']} "
        f"key={json.dumps(record['key'], default=str)} value={json.dumps(record['value'], default=str)}"
    )


def _parser(defaults) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m producers.consume", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("topics", nargs="+", help="topic(s) to read")
    parser.set_defaults(client_defaults=defaults)  # conf/clients.yaml values without a flag of their own
    parser.add_argument("--group", default=defaults.group_id, help=f"consumer group id (default {defaults.group_id})")
    parser.add_argument(
        "--offset-reset",
        choices=("earliest", "latest"),
        default=defaults.auto_offset_reset,
        help="where a group without committed offsets starts (auto.offset.reset)",
    )
    parser.add_argument("--format", choices=("auto", "avro", "json", "text"), default="auto")
    parser.add_argument("--reader-schema", type=Path, help="decode Avro into this schema (schema evolution)")
    parser.add_argument("--max", type=int, help="stop after this many messages")
    parser.add_argument("--idle-timeout", type=float, help="stop after this many seconds without a message")
    parser.add_argument("--output", choices=("text", "jsonl"), default="text", help="line format")
    parser.add_argument(
        "--dead-letter-topic",
        default=defaults.dead_letter_topic,
        help="where undecodable messages go ('' to only report them)",
    )
    parser.add_argument("--bootstrap-servers", help="default: conf/stack.yaml or KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--registry-url", help="default: conf/stack.yaml or SCHEMA_REGISTRY_URL")
    return parser


def run(options: argparse.Namespace, out=sys.stdout) -> int:
    settings = load_settings()
    bootstrap = options.bootstrap_servers or settings.kafka.bootstrap_servers
    registry_url = options.registry_url or settings.registry.url
    decoder = MessageDecoder(options.format, registry_client(registry_url), options.reader_schema)
    auth = client_auth()  # SASL/SCRAM on the secured stack (KAFKA_CREDENTIALS_FILE); nothing otherwise
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": options.group,
            "auto.offset.reset": options.offset_reset,
            # At-least-once: an offset is stored only after its message was printed, then committed
            # in the background and once more on close.
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": options.client_defaults.auto_commit_interval_ms,
            "session.timeout.ms": options.client_defaults.session_timeout_ms,
            "error_cb": log_client_error,
            "logger": QUIET_CLIENT_LOG,
            **auth,
        }
    )
    try:
        problems = topic_problems(consumer, options.topics)
    except KafkaException as exc:
        consumer.close()
        raise ConsumerError(
            f"cannot reach Kafka at {bootstrap} ({exc.args[0].str()}); is the stack up? (make up)"
        ) from None
    if problems:
        consumer.close()
        raise ConsumerError(f"cannot consume from {bootstrap}: {'; '.join(problems)}")

    dead_letters = None
    if options.dead_letter_topic:
        problem = write_problem(bootstrap, auth, options.dead_letter_topic)
        if problem:
            consumer.close()
            raise ConsumerError(
                f"the dead-letter topic {options.dead_letter_topic} on {bootstrap}: {problem}; "
                f"nothing was read (create it with `make topics`, or pass --dead-letter-topic '')"
            )
        dead_letters = DeadLetterSender(bootstrap, auth, options)
    stopping = []
    previous = {sig: signal.signal(sig, lambda *_: stopping.append(True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    consumed = bad = 0
    last_message_at = time.monotonic()
    consumer.subscribe(options.topics)
    try:
        while not stopping and (options.max is None or consumed < options.max):
            message = consumer.poll(0.5)
            if message is None:
                if options.idle_timeout and time.monotonic() - last_message_at > options.idle_timeout:
                    break
                continue
            error = message.error()
            if error is not None:
                code = error.code()
                if code in REFUSALS:
                    raise ConsumerError(
                        f"Kafka refused this consumer as user {_user(auth)} on {bootstrap}: "
                        f"{error.str()} (the role's ACLs are in conf/security.yaml)"
                    )
                if code != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", message.error())
                continue
            last_message_at = time.monotonic()
            source = f"{message.topic()}/{message.partition()}/{message.offset()}"
            try:
                line = format_record(
                    message, decoder.decode_key(message.key()), decoder(message.value()), options.output
                )
            except RegistryUnavailableError as exc:
                # Not the message's fault: stop before it, so that a restart with the same group resumes here.
                raise ConsumerError(
                    f"{exc} (at {registry_url}) while decoding {source}; stopped there (its offset is not "
                    f"committed): start again with the same --group when the registry is back"
                ) from None
            except Exception as exc:
                # record's fault: it becomes a dead letter with the reason and the consumer goes on.
                bad += 1
                reason = str(exc) if isinstance(exc, DeserializationError) else f"{type(exc).__name__}: {exc}"
                print(f"undecodable message at {source}: {cut_reason(reason)}", file=sys.stderr)
                if dead_letters is not None:
                    dead_letters.send(reason, source, message.value())  # acknowledged, or DeadLetterLost
            else:
                print(line, file=out, flush=True)
            consumed += 1
            # At-least-once: stored (then committed) only once the message was printed or its dead letter acknowledged.
            consumer.store_offsets(message)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        consumer.close()  # commits the stored offsets
    print(
        f"consumed {consumed} message(s) from {', '.join(options.topics)} as group {options.group}"
        + (f"; {bad} undecodable, sent to {options.dead_letter_topic}" if bad else ""),
        file=sys.stderr,
    )
    return 0


class DeadLetterLost(PipelineError):
    """A dead letter was not acknowledged by Kafka: its message's offset is not committed, the run ends (exit 1)."""


class DeadLetterSender:
    """Sends a dead letter and waits for Kafka's acknowledgement before the caller commits past its message.

    Dead letters are rare, so waiting for each one costs little and keeps the rule simple: no offset is committed
    for a bad message whose dead letter is not safely in the topic (acks=all, idempotent)."""

    def __init__(self, bootstrap: str, auth: dict, options: argparse.Namespace):
        self.topic = options.dead_letter_topic
        self.max_original_bytes = options.client_defaults.dead_letter_original_max_bytes
        self.timeout_s = options.client_defaults.dead_letter_timeout_s
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "logger": QUIET_CLIENT_LOG,
                "error_cb": log_client_error,
                **auth,
            }
        )

    def send(self, reason: str, source: str, original: bytes | None) -> None:
        payload, headers = dead_letter(reason, source, "consumer", original, self.max_original_bytes)
        outcome: list = []
        try:
            self.producer.produce(
                self.topic,
                payload,
                key=source.encode(),
                headers=headers,
                on_delivery=lambda error, _message: outcome.append(error),
            )
        except (KafkaException, BufferError) as exc:
            raise DeadLetterLost(f"the dead letter of {source} could not be sent to {self.topic}: {exc}") from None
        self.producer.flush(self.timeout_s)
        if not outcome:
            raise DeadLetterLost(
                f"the dead letter of {source} was not acknowledged by Kafka within "
                f"{self.timeout_s:.0f}s; stopped there (its offset is not committed)"
            )
        if outcome[0] is not None:
            raise DeadLetterLost(
                f"the dead letter of {source} was refused by {self.topic}: {outcome[0].str()}; "
                f"stopped there (its offset is not committed)"
            )


def main(argv: list[str] | None = None) -> int:
    command_line_logging()
    return run_command(lambda: run(_parser(load_client_defaults().consumer).parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
