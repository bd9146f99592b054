"""Consume ride events (or any topic of the pipeline) and print them with partition, offset, key and timestamp.

Examples:
  python -m producers.consume rides_green --max 5
  python -m producers.consume rides_green --group dashboards --offset-reset latest
  python -m producers.consume vendor_counts_windowed --output jsonl --idle-timeout 10

The format of each message is detected: Avro in the Confluent wire format (decoded with the writer's schema
fetched from the registry by its id, optionally resolved to --reader-schema) or JSON; anything else is
printed as text. Offsets are committed after a message is printed (at-least-once), so a consumer restarted
with the same --group resumes where it stopped, and two consumers of one group split the partitions.
A message that cannot be decoded is reported and sent to the dead-letter topic with the reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from producers.client_config import load_client_defaults
from producers.client_logging import QUIET_CLIENT_LOG, command_line_logging, log_client_error
from producers.dead_letter import dead_letter
from producers.serialization import (
    AvroWireDeserializer,
    DeserializationError,
    RegistryUnavailableError,
    describe_bytes,
    is_avro_wire,
    registry_client,
)
from producers.topic_check import topic_problems
from stack.credentials import client_auth
from stack.settings import SettingsError, load_settings

log = logging.getLogger("producers.consume")


class ConsumerError(Exception):
    """The consumer cannot start; the message says why."""


class MessageDecoder:
    """Bytes -> Python value by format: avro (wire format), json, text, or auto-detected."""

    def __init__(self, mode: str, registry_url: str, reader_schema: Path | None = None):
        self.mode = mode
        self.registry_url = registry_url
        self.reader_schema = reader_schema
        self._avro: AvroWireDeserializer | None = None

    @property
    def avro(self) -> AvroWireDeserializer:
        if self._avro is None:
            self._avro = AvroWireDeserializer(registry_client(self.registry_url), self.reader_schema)
        return self._avro

    def decode_key(self, payload: bytes | None):
        """Keys are Avro when in the wire format, text otherwise (a key "8" stays "8", not the number 8)."""
        if payload is None:
            return None
        if self.mode in ("auto", "avro") and is_avro_wire(payload):
            return self.avro(payload)
        return describe_bytes(payload)

    def __call__(self, payload: bytes | None):
        if payload is None:
            return None
        mode = self.mode
        if mode == "auto":
            mode = "avro" if is_avro_wire(payload) else "json"
        if mode == "avro":
            return self.avro(payload)
        if mode == "json":
            try:
                return json.loads(payload)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if self.mode == "auto" and _is_text(payload):
                    return payload.decode()
                raise DeserializationError(f"neither Avro wire format nor JSON: {exc}") from None
        return describe_bytes(payload)


# Errors no retry will cure: the user may not read the topic or join the group, or cannot log in.
REFUSALS = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError._AUTHENTICATION}


def _user(auth: dict) -> str:
    return auth.get("sasl.username", "(anonymous)")


def _is_text(payload: bytes) -> bool:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.isprintable()


def _jsonable(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, bytes):
        return describe_bytes(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _timestamp_text(message) -> str:
    kind, millis = message.timestamp()
    if millis is None or millis < 0:
        return "-"
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


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
    parser.add_argument("--offset-reset", choices=("earliest", "latest"), default=defaults.auto_offset_reset,
                        help="where a group without committed offsets starts (auto.offset.reset)")
    parser.add_argument("--format", choices=("auto", "avro", "json", "text"), default="auto")
    parser.add_argument("--reader-schema", type=Path, help="decode Avro into this schema (schema evolution)")
    parser.add_argument("--max", type=int, help="stop after this many messages")
    parser.add_argument("--idle-timeout", type=float, help="stop after this many seconds without a message")
    parser.add_argument("--output", choices=("text", "jsonl"), default="text", help="line format")
    parser.add_argument("--dead-letter-topic", default=defaults.dead_letter_topic,
                        help="where undecodable messages go ('' to only report them)")
    parser.add_argument("--bootstrap-servers", help="default: conf/stack.yaml or KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--registry-url", help="default: conf/stack.yaml or SCHEMA_REGISTRY_URL")
    return parser


def run(options: argparse.Namespace, out=sys.stdout) -> int:
    settings = load_settings()
    bootstrap = options.bootstrap_servers or settings.kafka.bootstrap_servers
    decoder = MessageDecoder(options.format, options.registry_url or settings.registry.url, options.reader_schema)
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
        raise ConsumerError(f"cannot reach Kafka at {bootstrap} ({exc.args[0].str()}); is the stack up? (make up)") from None
    if problems:
        consumer.close()
        raise ConsumerError(f"cannot consume from {bootstrap}: {'; '.join(problems)}")

    dead_letters = (
        Producer({"bootstrap.servers": bootstrap, "logger": QUIET_CLIENT_LOG, **auth}) if options.dead_letter_topic else None
    )
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
            if message.error():
                code = message.error().code()
                if code in REFUSALS:
                    raise ConsumerError(f"Kafka refused this consumer as user {_user(auth)} on {bootstrap}: "
                                        f"{message.error().str()} (the role's ACLs are in conf/security.yaml)")
                if code != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", message.error())
                continue
            last_message_at = time.monotonic()
            try:
                key = decoder.decode_key(message.key())
                value = decoder(message.value())
            except RegistryUnavailableError as exc:
                # Not the message's fault: stop before it, so that a restart with the same group resumes here.
                raise ConsumerError(
                    f"{exc} (at {decoder.registry_url}) while decoding {message.topic()}/{message.partition()}/"
                    f"{message.offset()}; stopped there (its offset is not committed): start again with the same "
                    f"--group when the registry is back"
                ) from None
            except DeserializationError as exc:
                bad += 1
                source = f"{message.topic()}/{message.partition()}/{message.offset()}"
                print(f"undecodable message at {source}: {exc}", file=sys.stderr)
                if dead_letters is not None:
                    payload, headers = dead_letter(str(exc), source, "consumer", describe_bytes(message.value()))
                    dead_letters.produce(options.dead_letter_topic, payload, key=source.encode(), headers=headers)
            else:
                print(format_record(message, key, value, options.output), file=out, flush=True)
            consumed += 1
            consumer.store_offsets(message)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        consumer.close()  # commits the stored offsets
        if dead_letters is not None and dead_letters.flush(30):
            print("some dead letters were not delivered", file=sys.stderr)
    print(f"consumed {consumed} message(s) from {', '.join(options.topics)} as group {options.group}"
          + (f"; {bad} undecodable, sent to {options.dead_letter_topic}" if bad else ""), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    command_line_logging()
    try:
        defaults = load_client_defaults().consumer
        return run(_parser(defaults).parse_args(argv))
    except (ConsumerError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
