"""Log readers: turn a source of past production traffic into :class:`LogRecord` objects.

Readers register by format name; the built-in shadow JSON Lines reader uses the same
registry later sources (OpenAI Batch files, LiteLLM, Langfuse...) will use.
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
from replay.readers import openai_batch as _openai_batch  # noqa: F401,E402  registers "openai-batch"
from replay.readers import litellm as _litellm  # noqa: F401,E402  registers "litellm"
from replay.readers import langfuse as _langfuse  # noqa: F401,E402  registers "langfuse"
from replay.readers import otel as _otel  # noqa: F401,E402  registers "otel-genai"
from replay.readers import anthropic_batch as _anthropic_batch  # noqa: F401,E402  registers "anthropic-batch"
from replay.readers import helicone as _helicone  # noqa: F401,E402  registers "helicone"
from replay.readers import langsmith as _langsmith  # noqa: F401,E402  registers "langsmith"
from replay.readers import openai_responses as _openai_responses  # noqa: F401,E402  registers "openai-responses"
from replay.readers import mapped as _mapped  # noqa: F401,E402  registers "csv" and "jsonl" (with a mapping)
