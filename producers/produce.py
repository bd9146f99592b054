"""Produce NYC taxi ride events into Kafka, from a TLC file (CSV, CSV.gz, Parquet) or the generator.

Examples:
  python -m producers.produce --source ../shared/data/green_tripdata_2020-10.csv.gz --topic rides_green
  python -m producers.produce --source generator --limit 10000 --rate 200 --format json --topic rides_green
  python -m producers.produce --source FILE --replay-speed 60          # paced by event time, 60x real time
  python -m producers.produce --source FILE --replay-speed 600 --replay-from 07:00   # the night sent at once
  python -m producers.produce --source FILE --lifecycle                # "ride started"/"ride ended" events

Each ride is one message; its Kafka timestamp is the ride's event time (pickup; dropoff for "ride ended")
and its key is the --key-field value, hashed with murmur2 as the Java clients do, so keys land on the
partitions Spark and other clients expect. Rows that cannot be read go to the dead-letter topic with their
line and reason. The exit status is non-zero if any message failed or was still queued at the end.
Defaults come from conf/clients.yaml.
"""

from __future__ import annotations

import argparse
import heapq
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dt_time
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Producer

from cluster.clients import (
    QUIET_CLIENT_LOG,
    admin_client,
    command_line_logging,
    log_client_error,
    registry_client,
)
from pipeline_config.client_defaults import ProducerDefaults, load_client_defaults
from pipeline_config.credentials import client_auth
from pipeline_config.errors import CannotRunError, PipelineError, run_command
from pipeline_config.settings import load_settings
from producers.bulk import Batch, BlockEncoder, generated_blocks
from producers.generator import GeneratorSettings, RideGenerator
from producers.metrics import ProducerMetrics
from producers.retention_check import TopicTimeLimits, topic_time_limits
from producers.topic_check import NEW_TOPIC_SETTLE_S, topic_problems
from rides.bulk_encoding import BulkUnsupportedError
from rides.dead_letter import DEFAULT_ORIGINAL_MAX_BYTES, dead_letter
from rides.events import RIDE_EVENT_SCHEMA, RIDE_TYPES, event_time_millis, field_names, pickup_millis
from rides.serialization import (
    RegistryUnavailableError,
    SerializationError,
    avro_serializers,
    encode_ride,
    key_bytes,
    to_json,
)
from rides.tlc import ReadReport, read_rides
from rides.tlc_bulk import RideBlock, read_ride_blocks

log = logging.getLogger("producers.produce")
PROGRESS_EVERY_S = 5.0
BUFFER_FULL_RETRIES = 100
POLL_EVERY = 1_000  # messages between two serves of the delivery reports on the bulk path


class ProducerError(CannotRunError):
    """The run cannot start or could not deliver; the message says what and what to do."""


class ProducerFailed(PipelineError):
    """Kafka refused the producer itself while it ran (a fatal error); what was sent before is reported."""


# ---- what to send --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    topic: str
    event: dict
    timestamp_ms: int


def single_messages(events: Iterable[dict], topic: str) -> Iterator[Message]:
    for event in events:
        yield Message(topic, event, pickup_millis(event))


def lifecycle_messages(events: Iterable[dict], started_topic: str, ended_topic: str) -> Iterator[Message]:
    """Each ride as 'ride started' at pickup and 'ride ended' at dropoff, merged in event-time order.

    An 'ended' event waits in a heap until the input's pickups pass its dropoff time. A ride without a
    dropoff never ends, which is what the lifecycle job's outer join reports.
    """
    pending_ends: list[tuple[int, int, dict]] = []
    sequence = 0
    for event in events:
        pickup_ms = pickup_millis(event)
        while pending_ends and pending_ends[0][0] <= pickup_ms:
            dropoff_ms, _, ended = heapq.heappop(pending_ends)
            yield Message(ended_topic, ended, dropoff_ms)
        yield Message(started_topic, event, pickup_ms)
        ride_dropoff_ms = event_time_millis(event, "dropoff_datetime")
        if ride_dropoff_ms is not None:
            sequence += 1
            heapq.heappush(pending_ends, (ride_dropoff_ms, sequence, event))
    while pending_ends:
        dropoff_ms, _, ended = heapq.heappop(pending_ends)
        yield Message(ended_topic, ended, dropoff_ms)


class Pacer:
    """Paces sending: a fixed rate in events per second, or event time replayed N times faster.

    A replay's clock starts at its first event, or at `replay_from`: a time of day on the first event's day
    ("07:00") or a moment ("2020-10-01T07:00"). Events before it are due at once, so a replay can skip ahead to
    the busy hours without leaving any ride out."""

    def __init__(
        self,
        rate: float | None = None,
        replay_speed: float | None = None,
        clock=time.monotonic,
        sleep=time.sleep,
        replay_from: dt_time | datetime | None = None,
    ):
        self.rate, self.replay_speed = rate, replay_speed
        self.clock, self.sleep = clock, sleep
        self.started = clock()
        self.sent = 0
        self.replay_from = replay_from
        self.clock_start_ms: int | None = None  # the event time the replay clock starts at

    @property
    def paced(self) -> bool:
        return bool(self.rate or self.replay_speed)

    def wait(self, event_time_ms: int) -> None:
        if self.rate:
            due = self.started + self.sent / self.rate
        elif self.replay_speed:
            if self.clock_start_ms is None:
                self.clock_start_ms = replay_start_ms(self.replay_from, event_time_ms)
            # Out-of-order events are due at once; the replay never goes back in time.
            due = self.started + max(0, event_time_ms - self.clock_start_ms) / 1000 / self.replay_speed
        else:
            return
        self.sent += 1
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


def replay_start_ms(replay_from: dt_time | datetime | None, first_event_ms: int) -> int:
    """Where a replay's clock starts: the first event, a time of day on its day (UTC), or a moment."""
    if replay_from is None:
        return first_event_ms
    if isinstance(replay_from, dt_time):
        first_day = datetime.fromtimestamp(first_event_ms / 1000, UTC).date()
        replay_from = datetime.combine(first_day, replay_from, UTC)
    return int(replay_from.timestamp() * 1000)


def replay_from_argument(text: str) -> dt_time | datetime:
    """--replay-from: a time of day (07:00) or a moment (2020-10-01T07:00, UTC unless it says otherwise)."""
    try:
        if "T" in text or "-" in text:
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return dt_time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a time of day (07:00) or a moment (2020-10-01T07:00), got {text!r}"
        ) from None


# ---- sending -------------------------------------------------------------------------------------------------


@dataclass
class DeliveryStats:
    """What was sent and what became of it. Kafka reports failed deliveries only (delivery.report.only.error: a
    report per acknowledged record costs a Python call each): delivered is what was sent, less what failed and
    what the client still holds."""

    sent: int = 0
    failed: int = 0
    dead_letters: int = 0
    first_errors: list[str] = field(default_factory=list)
    in_flight: Callable[[], int] = lambda: 0  # the producer's len(): records not yet acknowledged or failed

    @property
    def delivered(self) -> int:
        return self.sent - self.failed - self.in_flight()

    def on_delivery(self, error, message) -> None:
        if error is None:
            return
        self.failed += 1
        key = message.key()
        text = f"topic {message.topic()} partition {message.partition()} key {key!r}: {error.str()}"
        if len(self.first_errors) < 5:
            self.first_errors.append(text)
        log.error("delivery failed: %s", text)


def producer_config(bootstrap: str, options: argparse.Namespace) -> dict:
    """librdkafka settings, spelled as librdkafka spells them."""
    config = {
        "bootstrap.servers": bootstrap,
        "acks": options.acks,
        "enable.idempotence": options.idempotence,
        "compression.type": options.compression,
        "linger.ms": options.linger_ms,
        "batch.size": options.batch_size,
        # The Java clients' partitioner: the same key lands on the same partition from Spark, Java and here.
        "partitioner": "murmur2_random",
        "queue.buffering.max.messages": 500_000,
        "delivery.report.only.error": True,  # see DeliveryStats
        "error_cb": log_client_error,
        # librdkafka's own log lines repeat each reconnect attempt; errors that matter reach error_cb.
        "logger": QUIET_CLIENT_LOG,
        **client_auth(),  # SASL/SCRAM on the secured stack (KAFKA_CREDENTIALS_FILE); nothing otherwise
    }
    if options.idempotence and options.acks != "all":
        raise ProducerError(f"idempotence needs --acks all (got --acks {options.acks}); add --no-idempotence")
    return config


class Sender:
    """Serializes and produces; counts deliveries; sends unreadable rows to the dead-letter topic."""

    def __init__(
        self,
        producer: Producer,
        encode_key: Callable,
        encode_value: Callable,
        key_field: str,
        dead_letter_topic: str,
        stats: DeliveryStats,
        max_original_bytes: int = DEFAULT_ORIGINAL_MAX_BYTES,
    ):
        self.producer = producer
        self.max_original_bytes = max_original_bytes
        self.encode_key, self.encode_value = encode_key, encode_value
        self.key_field = key_field
        self.dead_letter_topic = dead_letter_topic
        self.stats = stats

    def _produce(self, topic: str, value: bytes, key: bytes | None, timestamp_ms: int | None, headers=None) -> None:
        """Raises KafkaException when librdkafka refuses the message itself (larger than message.max.bytes)."""
        for _ in range(BUFFER_FULL_RETRIES):
            try:
                self.producer.produce(
                    topic,
                    value=value,
                    key=key,
                    timestamp=timestamp_ms or 0,
                    headers=headers,
                    on_delivery=self.stats.on_delivery,
                )
                self.stats.sent += 1
                self.producer.poll(0)
                return
            except BufferError:
                self.producer.poll(0.1)  # the local queue is full: let deliveries drain it
        raise ProducerError(f"the producer queue stayed full for {BUFFER_FULL_RETRIES * 0.1:.0f}s; is the broker down?")

    def send(self, message: Message) -> None:
        event = message.event
        try:
            key, value = encode_ride(event, self.encode_key, self.encode_value, self.key_field)
        except SerializationError as exc:
            self.send_dead_letter(str(exc), f"ride {event.get('ride_id')}", repr(event))
            return
        self.send_encoded(message.topic, key, value, message.timestamp_ms, event.get("ride_id"))

    def send_encoded(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int, ride_id) -> None:
        try:
            self._produce(topic, value, key, timestamp_ms)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise  # the producer's trouble (a fatal error), not the ride's
            self.send_dead_letter(
                f"Kafka refused the message of {len(value):,} bytes: {exc.args[0].str()}", f"ride {ride_id}", value
            )

    def send_batch(self, topic: str, batch: Batch, first: int, last: int, stop: _Interrupts) -> int:
        """Messages first..last-1 of a batch, as fast as the client takes them; the index it stopped before (last,
        or earlier on an interrupt). The quick way through is produce() itself; a full queue, a refused message
        and the delivery reports are handled as send_encoded does."""
        produce, on_delivery, stats = self.producer.produce, self.stats.on_delivery, self.stats
        keys, values, timestamps = batch.keys, batch.values, batch.timestamps
        for index in range(first, last):
            if stop.stop:
                return index
            try:
                produce(topic, values[index], keys[index], timestamp=timestamps[index], on_delivery=on_delivery)
                stats.sent += 1
            except (BufferError, KafkaException):
                self.send_encoded(topic, keys[index], values[index], timestamps[index], batch.ride_ids[index])
            if not index % POLL_EVERY:
                self.producer.poll(0)
        self.producer.poll(0)  # a paced run sends one message a call: its deliveries are counted as they come
        return last

    def send_dead_letter(self, reason: str, source: str, original: bytes | str) -> None:
        """A dead letter always fits: the original is cut to dead_letter_original_max_bytes (its length and
        SHA-256 kept), and the reason to a thousand characters."""
        value, headers = dead_letter(reason, source, "producer", original, self.max_original_bytes)
        self.stats.dead_letters += 1
        self._produce(self.dead_letter_topic, value, source.encode(), None, headers)


# ---- command line --------------------------------------------------------------------------------------------


def _parser(defaults: ProducerDefaults) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m producers.produce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(defaults=defaults)  # conf/clients.yaml values without a flag of their own
    source = parser.add_argument_group("what to send")
    source.add_argument("--source", required=True, help="a TLC file (.csv, .csv.gz, .parquet) or 'generator'")
    source.add_argument("--kind", choices=RIDE_TYPES, help="the file's layout (default: detected from its header)")
    source.add_argument("--limit", type=int, help="stop after this many rides")
    source.add_argument(
        "--no-month-check",
        dest="month_check",
        action="store_false",
        help="send rides dated after the month in a TLC file's name too (by default such a ride is "
        "a dead letter: it would move the jobs' watermark past every ride after it)",
    )
    source.add_argument("--seed", type=int, default=42, help="generator seed (same seed, same rides)")
    source.add_argument("--late-share", type=float, default=0.01, help="generator: share of rides sent 30 min late")
    source.add_argument("--out-of-order-share", type=float, default=0.05, help="generator: share sent out of order")
    source.add_argument(
        "--lifecycle",
        action="store_true",
        help=f"send 'ride started' at pickup to {defaults.started_topic} and 'ride ended' at "
        f"dropoff to {defaults.ended_topic} (topics: --started-topic/--ended-topic)",
    )
    source.add_argument("--started-topic", default=defaults.started_topic)
    source.add_argument("--ended-topic", default=defaults.ended_topic)

    target = parser.add_argument_group("where and how")
    target.add_argument("--topic", default=defaults.topic, help=f"target topic (default {defaults.topic})")
    target.add_argument(
        "--format",
        choices=("avro", "json"),
        default=defaults.format,
        help="avro: Confluent wire format through the schema registry; json: plain JSON",
    )
    target.add_argument(
        "--schema",
        type=Path,
        default=RIDE_EVENT_SCHEMA,
        help="Avro value schema (default rides/schemas/ride_event.avsc)",
    )
    target.add_argument(
        "--key-field",
        default=defaults.key_field,
        help=f"event field used as the message key (default {defaults.key_field}); one of: " + ", ".join(field_names()),
    )
    target.add_argument("--dead-letter-topic", default=defaults.dead_letter_topic)

    pace = parser.add_argument_group("pace (default: as fast as possible)")
    exclusive = pace.add_mutually_exclusive_group()
    exclusive.add_argument("--rate", type=float, help="events per second")
    exclusive.add_argument("--replay-speed", type=float, help="replay by event time, N times faster than real time")
    pace.add_argument(
        "--replay-from",
        type=replay_from_argument,
        help="with --replay-speed: start the replay's clock at this time of the first ride's day (07:00) or at this "
        "moment (2020-10-01T07:00); the rides before it are sent at once",
    )

    kafka = parser.add_argument_group("producer settings")
    kafka.add_argument("--acks", choices=("0", "1", "all"), default=defaults.acks)
    kafka.add_argument(
        "--idempotence",
        action=argparse.BooleanOptionalAction,
        default=defaults.enable_idempotence,
        help="exactly-once per partition from retries (default on)",
    )
    kafka.add_argument("--compression", choices=("none", "gzip", "snappy", "lz4", "zstd"), default=defaults.compression)
    kafka.add_argument("--linger-ms", type=int, default=defaults.linger_ms)
    kafka.add_argument("--batch-size", type=int, default=defaults.batch_size)
    kafka.add_argument(
        "--flush-timeout",
        type=float,
        default=defaults.flush_timeout_s,
        help="seconds to wait for outstanding deliveries at the end",
    )
    kafka.add_argument("--bootstrap-servers", help="default: conf/stack.yaml or KAFKA_BOOTSTRAP_SERVERS")
    kafka.add_argument("--registry-url", help="default: conf/stack.yaml or SCHEMA_REGISTRY_URL")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--row-by-row",
        action="store_true",
        help="read, check and encode one ride at a time (the bulk path, the default, does it a block of columns at a "
        "time and sends the same bytes; --lifecycle always goes row by row)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.metrics_port,
        help="serve Prometheus metrics on 127.0.0.1 at this port while producing (0: any free port; the stack's "
        "Prometheus finds it); -1: none",
    )
    return parser


def _events(options, report: ReadReport) -> Iterator[dict]:
    if options.source == "generator":
        settings = GeneratorSettings(
            seed=options.seed, late_share=options.late_share, out_of_order_share=options.out_of_order_share
        )
        return RideGenerator(settings).rides(options.limit)
    events = read_rides(options.source, options.kind, report, check_month=options.month_check)
    if options.limit is not None:
        return (event for _, event in zip(range(options.limit), events, strict=False))
    return events


def _blocks(options, report: ReadReport) -> Iterator[RideBlock] | None:
    """The rides a block at a time for the bulk path, or None for the per-row path (--row-by-row, --lifecycle)."""
    if options.row_by_row or options.lifecycle:
        return None
    if options.source == "generator":
        return generated_blocks(_events(options, report))
    return read_ride_blocks(options.source, options.kind, report, options.month_check, options.limit)


def _check_kafka(producer: Producer, bootstrap: str, topics: list[str]) -> None:
    try:
        problems = topic_problems(producer, topics)
    except KafkaException as exc:
        raise ProducerError(
            f"cannot reach Kafka at {bootstrap} ({exc.args[0].str()}); is the stack up? (make up)"
        ) from None
    if problems:
        raise ProducerError(
            f"cannot produce to {bootstrap}: {'; '.join(problems)}. Topics are declared in conf/topics.yaml "
            f"(`make topics` creates them)"
        )


def _settled_time_limits(admin, topic: str) -> TopicTimeLimits:
    """The topic's time limits. The topic exists (checked before): a broker that answers it does not has not heard
    of it yet (brokers learn of new topics one by one), so it is asked again for up to NEW_TOPIC_SETTLE_S."""
    deadline = time.monotonic() + NEW_TOPIC_SETTLE_S
    while True:
        try:
            return topic_time_limits(admin, topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() >= deadline:
                raise
            time.sleep(0.25)


def _time_limits(bootstrap: str, topics: list[str]) -> dict[str, TopicTimeLimits]:
    admin = admin_client(bootstrap)
    limits = {}
    for topic in topics:
        try:
            limits[topic] = _settled_time_limits(admin, topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise ProducerError(f"cannot read the configs of {topic} at {bootstrap}: {exc.args[0].str()}") from None
            # A user without DESCRIBE_CONFIGS cannot tell; it may still be allowed to write.
            log.warning(
                "cannot check %s's retention against the rides' times: not authorized to read its configs "
                "(DESCRIBE_CONFIGS)",
                topic,
            )
            limits[topic] = TopicTimeLimits(topic)
    return limits


def _encoders(options, registry_url: str, topics: list[str]):
    if options.format == "json":
        return {topic: (key_bytes, to_json) for topic in topics}
    client = registry_client(registry_url)
    try:
        return {topic: avro_serializers(client, topic, options.schema) for topic in topics}
    except RegistryUnavailableError as exc:
        raise RegistryUnavailableError(
            f"{exc} (at {registry_url}); nothing was sent. Is the stack up? (make up), or use --format json"
        ) from None


class _Interrupts:
    """First SIGINT/SIGTERM: stop the loop and still flush. Second: abort."""

    def __init__(self):
        self.stop = False

    def __call__(self, signum, frame):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        log.warning("stopping: flushing what is queued (interrupt again to abort)")


def _messages(options, events: Iterator[dict]) -> Iterator[Message]:
    if options.lifecycle:
        return lifecycle_messages(events, options.started_topic, options.ended_topic)
    return single_messages(events, options.topic)


def _encoded_batches(options, blocks: Iterator[RideBlock], encoders) -> Iterator[Batch] | None:
    """The blocks encoded for the topic; None when the value schema has what the bulk encoders do not write
    (then the per-row path sends)."""
    key_encoder, value_encoder = encoders[options.topic]
    try:
        encoder = BlockEncoder(key_encoder, value_encoder, options.key_field, options.schema, options.source)
    except BulkUnsupportedError as exc:
        log.info("sending row by row: %s", exc)
        return None
    return (encoder.batch(block) for block in blocks)


class _Sending:
    """The send loop's state: where each message goes, the topics' time limits, the pace, progress lines."""

    def __init__(self, senders: dict[str, Sender], limits, now_ms: int, pacer: Pacer, interrupts, stats, quiet: bool):
        self.senders, self.limits, self.now_ms, self.pacer = senders, limits, now_ms, pacer
        self.oldest_kept_ms = {topic: limit.oldest_kept_ms(now_ms) for topic, limit in limits.items()}
        self.interrupts, self.stats, self.quiet = interrupts, stats, quiet
        self.started = self.last_progress = time.monotonic()

    def check_kept(self, topic: str, timestamp_ms: int) -> None:
        """The first ride Kafka would not keep stops the run, before it is sent."""
        if timestamp_ms < self.oldest_kept_ms[topic]:
            problem = self.limits[topic].problem(timestamp_ms, self.now_ms)
            if problem:
                raise ProducerError(f"{problem}. Stopped before sending it ({self.stats.sent:,} sent before)")

    def progress(self) -> None:
        now = time.monotonic()
        if not self.quiet and now - self.last_progress >= PROGRESS_EVERY_S:
            self.last_progress = now
            stats = self.stats
            rate = stats.sent / (now - self.started)
            log.info("sent %d, delivered %d, failed %d, %.0f msg/s", stats.sent, stats.delivered, stats.failed, rate)

    def one_by_one(self, messages: Iterator[Message], report: ReadReport, dead_letter_topic_of: str) -> None:
        """The per-row path: each ride encoded and sent in turn; the file's unreadable rows after the ride they
        precede."""
        bad_reported = 0
        letters = self.senders[dead_letter_topic_of]
        for message in messages:
            if self.interrupts.stop:
                break
            self.check_kept(message.topic, message.timestamp_ms)
            self.pacer.wait(message.timestamp_ms)
            self.senders[message.topic].send(message)
            while bad_reported < len(report.bad_rows):
                bad = report.bad_rows[bad_reported]
                letters.send_dead_letter(bad.reason, f"{report.source}:{bad.line}", bad.raw)
                bad_reported += 1
            self.progress()
        while bad_reported < len(report.bad_rows):  # rows after the last good one
            bad = report.bad_rows[bad_reported]
            letters.send_dead_letter(bad.reason, f"{report.source}:{bad.line}", bad.raw)
            bad_reported += 1

    def batches(self, topic: str, batches: Iterator[Batch]) -> None:
        """The bulk path: each batch's messages in order, its dead letters at their places among them."""
        sender = self.senders[topic]
        for batch in batches:
            done = 0
            for position, letter in [*batch.dead_letters, (len(batch.values), None)]:
                if self._send(topic, sender, batch, done, position) < position:
                    return  # interrupted
                done = position
                if letter is not None:
                    sender.send_dead_letter(*letter)
            self.progress()

    def _send(self, topic: str, sender: Sender, batch: Batch, first: int, last: int) -> int:
        """Messages first..last-1; the index it stopped before."""
        if self.pacer.paced:
            for index in range(first, last):
                self.check_kept(topic, batch.timestamps[index])
                self.pacer.wait(batch.timestamps[index])
                if sender.send_batch(topic, batch, index, index + 1, self.interrupts) == index:
                    return index
                self.progress()
            return last
        stamps = batch.timestamps[first:last]
        if stamps and min(stamps) < self.oldest_kept_ms[topic]:
            for index in range(first, last):  # up to the first one Kafka would not keep
                try:
                    self.check_kept(topic, batch.timestamps[index])
                except ProducerError:
                    sender.send_batch(topic, batch, first, index, self.interrupts)
                    raise
        return sender.send_batch(topic, batch, first, last, self.interrupts)


def run(options: argparse.Namespace) -> int:
    settings = load_settings()
    bootstrap = options.bootstrap_servers or settings.kafka.bootstrap_servers
    registry_url = options.registry_url or settings.registry.url
    topics = [options.started_topic, options.ended_topic] if options.lifecycle else [options.topic]
    if options.replay_from is not None and not options.replay_speed:
        raise ProducerError("--replay-from sets where a replay starts: it needs --replay-speed")
    if options.key_field not in field_names():
        raise ProducerError(
            f"--key-field {options.key_field!r} is not a ride event field; one of: {', '.join(field_names())}"
        )

    report = ReadReport(source=options.source)
    # Opens the file and checks its layout before anything is sent (the per-row path's, when it is used).
    blocks = _blocks(options, report)
    events = _events(options, report) if blocks is None else None
    stats = DeliveryStats()
    metrics = ProducerMetrics(stats)
    producer = Producer({**producer_config(bootstrap, options), **metrics.librdkafka_config()})
    stats.in_flight = producer.__len__
    _check_kafka(producer, bootstrap, [*topics, options.dead_letter_topic])
    limits = _time_limits(bootstrap, topics)
    now_ms = int(time.time() * 1000)
    encoders = _encoders(options, registry_url, topics)  # registers schemas: a refused one stops us here

    senders = {
        topic: Sender(
            producer,
            key_enc,
            value_enc,
            options.key_field,
            options.dead_letter_topic,
            stats,
            options.defaults.dead_letter_original_max_bytes,
        )
        for topic, (key_enc, value_enc) in encoders.items()
    }
    batches = _encoded_batches(options, blocks, encoders) if blocks is not None else None
    if batches is None and events is None:  # a value schema the bulk encoders do not write: row by row after all
        events = _events(options, report)
    interrupts = _Interrupts()
    previous = {sig: signal.signal(sig, interrupts) for sig in (signal.SIGINT, signal.SIGTERM)}
    sending = _Sending(
        senders,
        limits,
        now_ms,
        Pacer(options.rate, options.replay_speed, replay_from=options.replay_from),
        interrupts,
        stats,
        options.quiet,
    )
    try:
        if options.metrics_port >= 0:
            metrics.serve(settings, {"topic": ",".join(topics), "source": str(options.source)}, options.metrics_port)
        if batches is not None:
            sending.batches(options.topic, batches)
        else:
            assert events is not None
            sending.one_by_one(_messages(options, events), report, topics[0])
    except KafkaException as exc:  # a fatal error of the producer (librdkafka gives up on it): stop sending
        fatal = exc.args[0]
    else:
        fatal = None
    finally:
        queued, flush_fatal = _flush(producer, options.flush_timeout)
        metrics.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    fatal = fatal or flush_fatal
    elapsed = time.monotonic() - sending.started
    _print_summary(options, report, stats, queued, elapsed, interrupted=interrupts.stop)
    if fatal is not None:
        user = client_auth().get("sasl.username", "(anonymous)")
        raise ProducerFailed(
            f"Kafka refused this producer as user {user} at {bootstrap}: {fatal.str()} "
            f"(on the secured stack each role's ACLs are in conf/security.yaml)"
        )
    return 0 if stats.failed == 0 and queued == 0 else 1


def _flush(producer: Producer, timeout_s: float):
    """(messages still queued, the producer's fatal error or None): a fatal error ends the wait, not the report."""
    try:
        return producer.flush(timeout_s), None
    except KafkaException as exc:
        return len(producer), exc.args[0]


def _print_summary(options, report, stats, queued, elapsed, interrupted) -> None:
    rate = stats.delivered / elapsed if elapsed > 0 else 0.0
    target = f"{options.started_topic} + {options.ended_topic}" if options.lifecycle else options.topic
    lines = [
        f"{'interrupted' if interrupted else 'done'}: {stats.delivered:,} of {stats.sent:,} messages delivered to "
        f"{target} as {options.format} in {elapsed:.1f}s ({rate:,.0f} msg/s)",
    ]
    if options.source != "generator":
        lines.append(f"read {report.summary()}")
    if stats.dead_letters:
        lines.append(f"{stats.dead_letters:,} unreadable rows sent to {options.dead_letter_topic} with their reasons")
    if stats.failed:
        lines.append(f"FAILED: {stats.failed:,} messages; first errors: " + "; ".join(stats.first_errors))
    if queued:
        lines.append(f"FAILED: {queued:,} messages still queued after {options.flush_timeout}s and not delivered")
    print("\n".join(lines), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    command_line_logging()

    def body() -> int:
        options = _parser(load_client_defaults().producer).parse_args(argv)
        try:
            return run(options)
        except (FileNotFoundError, ValueError) as exc:  # a file that is not there, a value it cannot use
            raise CannotRunError(str(exc)) from None

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
