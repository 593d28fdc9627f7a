"""Log readers: turn a source of past production traffic into :class:`LogRecord` objects.

Readers register by format name; the shadow JSON Lines reader is imported here, the others
(OpenAI and Anthropic batches, LiteLLM, Langfuse, LangSmith, Helicone, OpenTelemetry, Responses,
csv/jsonl with a mapping) when first asked for (:data:`replay.readers.base.BUILT_IN`).
"""

from __future__ import annotations

from replay.readers.base import (
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_MAX_RECORD_MB,
    READERS,
    ReadStats,
    Reader,
    check_not_empty,
    check_segment_keys,
    get_reader,
    iter_records,
    register_reader,
    resolve_log_paths,
)
from replay.readers import shadow as _shadow  # noqa: F401  registers "shadow"

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "DEFAULT_MAX_RECORD_MB",
    "READERS",
    "ReadStats",
    "Reader",
    "check_not_empty",
    "check_segment_keys",
    "get_reader",
    "iter_records",
    "register_reader",
    "resolve_log_paths",
]
