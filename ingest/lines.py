"""A batch of raw lines -> published events: decode each line, feed the normalizer, count and log the bad ones.

A bad line costs that line only: it is counted by reason in the stats (committed with the batch) and logged
with its byte offset, and its neighbours are published.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from contract import compact_json

from .events import Normalizer, Rejected
from .payload import decode
from .tail import Batch
from .timeline import Timeline

log = logging.getLogger("ingest")

BOM = b"\xef\xbb\xbf"
LOG_BAD_LINES_PER_BATCH = 20  # beyond this a batch logs one summary line instead of one line each


def normalize_batch(
    normalizer: Normalizer, batch: Batch, events_file: Path, stats_key: str
) -> tuple[list[str], dict[str, int], Timeline]:
    """The batch's events (JSON), its stats increments and its share of the replay timeline."""
    now = int(time.time() * 1000)
    events: list[str] = []
    timeline = Timeline()
    stats: dict[str, int] = dict(batch.counters)
    bad: list[tuple[int, str, str, bytes]] = [(off, reason, "line too long", ex) for off, reason, ex in batch.rejects]
    for off, raw in batch.lines:
        line = raw[3:] if raw.startswith(BOM) else raw
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            try:
                payload = decode(line)
            except UnicodeDecodeError:
                raise Rejected("invalid_utf8", "expected UTF-8 text") from None
            except (ValueError, RecursionError) as exc:
                if not line.strip():  # checked only here: a copy of every good line cost more than its decode
                    raise Rejected("empty", "expected a JSON object, got an empty line") from None
                raise Rejected("not_json", f"expected one JSON object ({str(exc)[:80]})") from None
            for event in normalizer.feed(payload, now):
                timeline.add(len(events), event)
                events.append(compact_json(event))
        except Rejected as rej:
            bad.append((off, rej.reason, rej.detail, raw))
        except Exception as exc:  # a normalizer bug must cost one line, not the whole ingest
            log.exception("normalizer failed on the line at byte %d", off)
            bad.append((off, "normalizer_error", repr(exc)[:80], raw))
    for i, (off, reason, detail, excerpt) in enumerate(bad):
        stats["rejected:" + reason] = stats.get("rejected:" + reason, 0) + 1
        if i < LOG_BAD_LINES_PER_BATCH:
            log.warning("skipped line at byte %d of %s: %s; starts %r", off, events_file, detail, excerpt[:80])
    if len(bad) > LOG_BAD_LINES_PER_BATCH:
        log.warning(
            "skipped %d more bad lines in this batch (counted in %s)",
            len(bad) - LOG_BAD_LINES_PER_BATCH,
            stats_key,
        )
    stats["lines"] = len(batch.lines) + len(batch.rejects)
    stats["rejected"] = len(bad)
    stats["events"] = len(events)
    return events, stats, timeline
