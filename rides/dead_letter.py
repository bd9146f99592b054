"""Dead letters: a record that could not be read or decoded, kept with the reason (rides/schemas/dead_letter.avsc).

Written as JSON, with the reason and the source also in Kafka headers so that a console shows them at a
glance. Nothing bad is dropped silently, and a dead letter always fits in a Kafka message: a bad record's bytes
are kept up to a configured size (`original`, with `truncated` set), and its full length and SHA-256 are kept
whatever its size, so that the original can be found and matched in its source.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

# A bad record of any size becomes a dead letter of a few KiB: 16 KiB of its bytes by default (`dead_letters` in
# conf/clients.yaml; `dead_letter_original_max_bytes` in conf/jobs.yaml for the jobs).
DEFAULT_ORIGINAL_MAX_BYTES = 16 * 1024
# A reason names what was wrong; one that quotes a hostile value is cut here (the value is in `original`).
REASON_MAX_CHARS = 1000


def cut_reason(reason: str) -> str:
    return reason if len(reason) <= REASON_MAX_CHARS else reason[: REASON_MAX_CHARS - 1] + "…"


def _as_text(payload: bytes, truncated: bool) -> str:
    """UTF-8 text when it is (a cut may split the last character: up to 3 bytes are let go), base64 otherwise."""
    for drop in range(4 if truncated else 1):
        try:
            return payload[: len(payload) - drop].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return "base64:" + base64.b64encode(payload).decode()


def dead_letter(
    reason: str,
    source: str,
    stage: str,
    original: bytes | str | None,
    max_original_bytes: int = DEFAULT_ORIGINAL_MAX_BYTES,
) -> tuple[bytes, list[tuple[str, str | bytes | None]]]:
    """The dead letter's JSON value and its headers; `original` is the bad record's bytes (text is UTF-8 encoded)."""
    whole = original.encode("utf-8", "surrogateescape") if isinstance(original, str) else (original or b"")
    truncated = len(whole) > max_original_bytes
    reason = cut_reason(reason)
    record = {
        "reason": reason,
        "source": source,
        "stage": stage,
        "original": _as_text(whole[:max_original_bytes], truncated) if whole else "",
        "original_length": len(whole),
        "original_sha256": hashlib.sha256(whole).hexdigest(),
        "truncated": truncated,
        "occurred_at": int(time.time() * 1000),
    }
    headers: list[tuple[str, str | bytes | None]] = [
        ("dlq.reason", reason.encode()),
        ("dlq.source", source.encode()),
        ("dlq.stage", stage.encode()),
    ]
    return json.dumps(record).encode(), headers
