"""``replay logs inspect``: what a log holds, in one pass and bounded memory (but for a digest
per distinct request, to count duplicates).

Segments are the metadata keys with string, integer or boolean values; each keeps counts for its first
:data:`MAX_VALUES` distinct values and counts the rest as ``other``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from replay.errors import LogFormatError
from replay.readers.base import DEFAULT_MAX_RECORD_BYTES, ReadStats, iter_records
from replay.types import LogRecord

MAX_VALUES = 20
"""Distinct values counted per segment key; more are summed as ``other``."""
MAX_KEYS = 30
"""Segment keys counted; a log with more metadata keys shows the first ones."""
OTHER = "(other)"


@dataclass
class LogSummary:
    records: int = 0
    models: Counter[str] = field(default_factory=Counter)
    first: str | None = None
    last: str | None = None
    segments: dict[str, Counter[str]] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    without_response: int = 0
    duplicate_requests: int = 0
    stats: ReadStats = field(default_factory=ReadStats)
    span: tuple[float, float] = (0.0, 0.0)
    """``first`` and ``last`` as epoch seconds: timestamps with different offsets compare right."""

    def as_json(self) -> dict[str, Any]:
        stats = self.stats
        files = [{"path": path, "format": stats.formats.get(path), "records": stats.per_file.get(path, 0),
                  "invalid": stats.invalid_per_file.get(path, 0), "skipped": dict(stats.skipped.get(path, {}))}
                 for path in stats.formats]  # fmt: skip
        return {
            "records": self.records,
            "files": files,
            "formats": dict(Counter(stats.formats.values())),
            "models": dict(self.models.most_common()),
            "date_range": {"first": self.first, "last": self.last},
            "segments": {key: dict(values.most_common()) for key, values in self.segments.items()},
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "errors": self.errors,
            "error_share": self.errors / self.records if self.records else 0.0,
            "without_response": self.without_response,
            "duplicate_requests": self.duplicate_requests,
            "invalid": stats.invalid,
        }


def summarize(paths: list[str], *, fmt: str = "auto", skip_invalid: bool = True,
              on_invalid: Callable[[LogFormatError], None] | None = None,
              max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> LogSummary:  # fmt: skip
    summary = LogSummary()
    digests: set[bytes] = set()
    records = iter_records(paths, fmt=fmt, skip_invalid=skip_invalid, stats=summary.stats, on_invalid=on_invalid,
                           max_record_bytes=max_record_bytes)  # fmt: skip
    for record in records:
        _add(summary, record, digests)
    return summary


def _moment(timestamp: str) -> float:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _add(summary: LogSummary, record: LogRecord, digests: set[bytes]) -> None:
    summary.records += 1
    model = record.request.get("model")
    summary.models[str(model) if model is not None else "(none)"] += 1
    if record.timestamp is not None:
        moment = _moment(record.timestamp)
        if summary.first is None or moment < summary.span[0]:
            summary.first, summary.span = record.timestamp, (moment, summary.span[1])
        if summary.last is None or moment > summary.span[1]:
            summary.last, summary.span = record.timestamp, (summary.span[0], moment)
    for key, value in record.metadata.items():
        if isinstance(value, (str, int, bool)) and (key in summary.segments or len(summary.segments) < MAX_KEYS):
            values = summary.segments.setdefault(key, Counter())
            text = str(value)
            values[text if text in values or len(values) < MAX_VALUES else OTHER] += 1
    failed = record.error is not None or (record.status is not None and record.status >= 400)
    summary.errors += failed
    answer = record.answer
    if answer is None:
        summary.without_response += not failed
    else:
        summary.prompt_tokens += answer.usage.prompt_tokens or 0
        summary.completion_tokens += answer.usage.completion_tokens or 0
    digest = hashlib.blake2b(orjson.dumps(record.request, option=orjson.OPT_SORT_KEYS), digest_size=12).digest()
    if digest in digests:
        summary.duplicate_requests += 1
    else:
        digests.add(digest)
