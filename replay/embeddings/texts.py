"""What is embedded of an answer, and the digest its vector is cached under.

An answer's text is its content; each tool call adds a line ``name(arguments)`` with the
arguments as canonical JSON (sorted keys, no spaces), so that two calls differing only in
key order or spacing embed the same; a refusal with no content embeds the refusal. A text
is cut at :data:`MAX_CHARS` characters, which every common embedding model accepts whole.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping

MAX_CHARS = 16_000
"""About 4,000 tokens of English: within OpenAI's 8,191-token input limit and a 4,096-token local model's."""


def answer_text(text: str | None, tool_calls: Iterable[Mapping[str, Any]] = (), refusal: str | None = None) -> str:
    """The text embedded for one answer ("" when it holds nothing to embed); ``tool_calls``
    as :meth:`replay.types.ToolCall.as_dict` gives them."""
    lines = [text] if text else ([refusal] if refusal else [])
    for call in tool_calls:
        lines.append(f"{call.get('name') or ''}({_canonical(call.get('arguments'))})")
    return "\n".join(lines)[:MAX_CHARS]


def stored_answer_text(text: str | None, tool_calls_json: str | None, refusal: str | None) -> str:
    """:func:`answer_text` of an answer as the store keeps it (tool calls as JSON)."""
    return answer_text(text, json.loads(tool_calls_json) if tool_calls_json else (), refusal)


def _canonical(arguments: Any) -> str:
    """Arguments as canonical JSON where they are JSON; as written where they are not."""
    if not isinstance(arguments, str):
        return "" if arguments is None else json.dumps(arguments, sort_keys=True, separators=(",", ":"))
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return arguments


def text_digest(text: str) -> str:
    """What a vector is cached under, with the model's name: the same text, the same vector."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


EMPTY_DIGEST = text_digest("")
"""An answer with nothing to embed: it is never sent."""
