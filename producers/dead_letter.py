"""Dead letters: a record that could not be read or decoded, kept with the reason (schemas/dead_letter.avsc).

Written as JSON, with the reason and the source also in Kafka headers so that a console shows them at a
glance. Nothing bad is dropped silently.
"""

from __future__ import annotations

import json
import time


def dead_letter(reason: str, source: str, stage: str, original: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    record = {
        "reason": reason,
        "source": source,
        "stage": stage,
        "original": original,
        "occurred_at": int(time.time() * 1000),
    }
    headers = [("dlq.reason", reason.encode()[:1000]), ("dlq.source", source.encode()), ("dlq.stage", stage.encode())]
    return json.dumps(record).encode(), headers
