"""`make replay-dead-letters`: dead letters sent back to the topic they came from, once their cause is fixed (a
schema registered, a limit raised, a job's validation corrected).

Examples:
  python -m cluster.dead_letter_replay --dry-run                         # what would be re-sent, counted
  python -m cluster.dead_letter_replay --reason "unknown schema id" --source-topic rides_green
  python -m cluster.dead_letter_replay --since 2026-11-30T08:00:00Z --until 2026-11-30T09:00:00Z

A dead letter of a record read from a topic (a job's or the console consumer's: its source is topic/partition/
offset) is re-sent as the original record: its key, value and headers read back from the source topic, or, when
retention deleted it there, the bytes the dead letter kept (a letter that kept only part of them is left). Each
re-sent record carries the header `pipeline.replayed_from` (the dead letter's topic/partition/offset). A replayed
record that fails again is dead-lettered again, and that letter is never re-sent: the replay finds the header on
its source record, so nothing loops. Each letter re-sent is recorded in the compacted topic `<dead-letter
topic>_replays`, so that a second run (with the same or another filter) does not send it again. Dead letters of
file lines and of the producer's own checks name no topic and are left. The dead-letter topic is read up to its
end at the start, and nothing is deleted from it.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Message, Producer

from cluster.clients import QUIET_CLIENT_LOG, admin_client
from cluster.topic_snapshot import Place, read_all, read_at
from cluster.topics import TopicSpec, apply_topics
from pipeline_config.credentials import client_auth
from pipeline_config.errors import CannotRunError, run_command
from pipeline_config.settings import load_settings

REPLAYED_HEADER = "pipeline.replayed_from"
SEND_TIMEOUT_S = 60

# Why a matching dead letter is not re-sent.
NOT_FROM_A_TOPIC = "not from a topic (a file line, a producer check)"
FAILED_AFTER_REPLAY = "failed again after a replay"
REPLAYED_BEFORE = "re-sent by an earlier replay"
ONLY_PART_KEPT = "its record is gone from the source topic and the letter kept only part of it"


@dataclass(frozen=True)
class Letter:
    place: Place  # where the dead letter is
    reason: str
    stage: str
    source: Place | None  # the record it was, when it was read from a topic
    original: bytes | None  # the bytes the letter kept, when it kept them all
    at: datetime  # when it was dead-lettered (its Kafka timestamp)


def source_place(source: str) -> Place | None:
    """'rides_green/2/1045' as (topic, partition, offset); None for another source ('rides.csv:17')."""
    topic, _, rest = source.rpartition("/")
    topic, _, partition = topic.rpartition("/")
    if topic and partition.isdigit() and rest.isdigit():
        return topic, int(partition), int(rest)
    return None


def original_bytes(record: dict) -> bytes | None:
    if record.get("truncated"):
        return None
    original = record.get("original") or ""
    if not isinstance(original, str):
        return None
    if original.startswith("base64:"):
        return base64.b64decode(original[len("base64:") :])
    return original.encode("utf-8", "surrogateescape")


def parse_letter(message: Message) -> Letter | None:
    """The dead letter of a message of the dead-letter topic; None for anything else found there."""
    try:
        record = json.loads(message.value() or b"")
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("source"), str):
        return None
    place = (message.topic() or "", message.partition() or 0, message.offset() or 0)
    return Letter(
        place=place,
        reason=str(record.get("reason", "")),
        stage=str(record.get("stage", "")),
        source=source_place(record["source"]),
        original=original_bytes(record),
        at=datetime.fromtimestamp(message.timestamp()[1] / 1000, UTC),
    )


@dataclass(frozen=True)
class LetterFilter:
    reason: str | None = None  # a part of the reason, any case
    source_topic: str | None = None
    stage: str | None = None  # the job or client that wrote it
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: Letter) -> bool:
        return (
            (self.reason is None or self.reason.lower() in letter.reason.lower())
            and (self.source_topic is None or (letter.source is not None and letter.source[0] == self.source_topic))
            and (self.stage is None or self.stage == letter.stage)
            and (self.since is None or letter.at >= self.since)
            and (self.until is None or letter.at < self.until)
        )


@dataclass(frozen=True)
class Resend:
    letter: Letter
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, str | bytes | None]]


@dataclass
class ReplayPlan:
    matched: int
    resends: list[Resend]
    left: Counter[str]  # why matching letters are not re-sent, counted


def ledger_topic(dead_letter_topic: str) -> str:
    return f"{dead_letter_topic}_replays"


def place_text(place: Place) -> str:
    return f"{place[0]}/{place[1]}/{place[2]}"


def replayed_before(bootstrap: str, dead_letter_topic: str, auth: dict | None = None) -> set[str]:
    """The dead letters (topic/partition/offset) earlier runs re-sent, from the ledger topic (none before the first)."""
    ledger = ledger_topic(dead_letter_topic)
    if ledger not in admin_client(bootstrap, auth).list_topics(timeout=10).topics:
        return set()
    return {message.key().decode() for message in read_all(bootstrap, ledger, auth=auth) if message.key()}


def plan_replay(bootstrap: str, dead_letter_topic: str, chosen: LetterFilter, auth: dict | None = None) -> ReplayPlan:
    done = replayed_before(bootstrap, dead_letter_topic, auth)
    letters = [
        letter for message in read_all(bootstrap, dead_letter_topic, auth=auth) if (letter := parse_letter(message))
    ]
    matching = [letter for letter in letters if chosen.matches(letter)]
    originals = read_at(bootstrap, {letter.source for letter in matching if letter.source is not None}, auth=auth)
    plan = ReplayPlan(matched=len(matching), resends=[], left=Counter())
    for letter in matching:
        if letter.source is None:
            plan.left[NOT_FROM_A_TOPIC] += 1
            continue
        if place_text(letter.place) in done:
            plan.left[REPLAYED_BEFORE] += 1
            continue
        original = originals.get(letter.source)
        key: bytes | None = None
        headers: list[tuple[str, str | bytes | None]] = []
        if original is not None:
            kept = original.headers() or []
            headers = list(kept.items()) if isinstance(kept, dict) else list(kept)
            if any(name == REPLAYED_HEADER for name, _ in headers):
                plan.left[FAILED_AFTER_REPLAY] += 1
                continue
            key, value = original.key(), original.value() or b""
        elif letter.original is not None:
            value = letter.original
        else:
            plan.left[ONLY_PART_KEPT] += 1
            continue
        headers.append((REPLAYED_HEADER, place_text(letter.place).encode()))
        plan.resends.append(Resend(letter, letter.source[0], key, value, headers))
    return plan


def send(bootstrap: str, dead_letter_topic: str, resends: list[Resend], auth: dict | None = None) -> int:
    """Every record sent and acknowledged (acks=all, idempotent), then recorded in the ledger; or CannotRunError
    naming what failed. A run stopped between the two sends those records again the next time (at least once)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "logger": QUIET_CLIENT_LOG,
            **(client_auth() if auth is None else auth),
        }
    )
    failures: list[str] = []

    def delivered(error, message) -> None:
        if error is not None:
            failures.append(f"{message.topic()}: {error.str()}")

    for resend in resends:
        producer.produce(resend.topic, resend.value, key=resend.key, headers=resend.headers, on_delivery=delivered)
        producer.poll(0)
    unsent = producer.flush(SEND_TIMEOUT_S)
    if failures or unsent:
        raise CannotRunError(
            f"{len(failures) + unsent} of {len(resends)} records were not re-sent ({'; '.join(failures[:3]) or 'timed out'})"
        )
    ledger = ledger_topic(dead_letter_topic)
    apply_topics(
        admin_client(bootstrap, auth), [TopicSpec(name=ledger, partitions=1, config={"cleanup.policy": "compact"})]
    )
    replayed_at = datetime.now(UTC).isoformat(timespec="seconds")
    for resend in resends:
        record = {"to": resend.topic, "reason": resend.letter.reason, "replayed_at": replayed_at}
        producer.produce(ledger_topic(dead_letter_topic), json.dumps(record), key=place_text(resend.letter.place))
    if producer.flush(SEND_TIMEOUT_S):
        raise CannotRunError(
            f"the replay was not recorded in {ledger_topic(dead_letter_topic)}: a rerun sends it again"
        )
    return len(resends)


def summary(plan: ReplayPlan) -> str:
    """What is re-sent per source topic and reason, and what is left and why."""
    lines = [f"{plan.matched} dead letters match; {len(plan.resends)} to re-send"]
    per_source = Counter((resend.topic, resend.letter.reason[:80]) for resend in plan.resends)
    lines += [f"  {count:>7}  to {topic}: {reason}" for (topic, reason), count in per_source.most_common()]
    lines += [f"  {count:>7}  left: {why}" for why, count in plan.left.most_common()]
    return "\n".join(lines)


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.dead_letter_replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dead-letter-topic", default="rides_dead_letter")
    parser.add_argument("--reason", help="only letters whose reason contains this (any case)")
    parser.add_argument("--source-topic", help="only letters of records read from this topic")
    parser.add_argument("--stage", help="only letters written by this job or client (vendor_counts, consumer, ...)")
    parser.add_argument("--since", type=_time, help="only letters written at or after this time (ISO-8601; UTC)")
    parser.add_argument("--until", type=_time, help="only letters written before this time")
    parser.add_argument("--dry-run", action="store_true", help="count what would be re-sent, send nothing")
    options = parser.parse_args(argv)

    def run() -> int:
        bootstrap = load_settings().kafka.bootstrap_servers
        chosen = LetterFilter(options.reason, options.source_topic, options.stage, options.since, options.until)
        plan = plan_replay(bootstrap, options.dead_letter_topic, chosen)
        print(summary(plan))
        if options.dry_run:
            print("dry run: nothing sent")
            return 0
        print(f"re-sent {send(bootstrap, options.dead_letter_topic, plan.resends)} records")
        return 0

    return run_command(run)


if __name__ == "__main__":
    sys.exit(main())
