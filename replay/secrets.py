"""Scrub credentials out of what endpoints send back, before it is stored or printed.

An endpoint may echo the request's headers: a 401 saying "Incorrect API key provided:
Bearer sk-...", a 500 that dumps the request, a debugging gateway that answers with
them. Every error message and every answer leaves the provider through a
:class:`Scrubber`, so the store, the exports and the terminal never see a key. It removes
the values the arm was configured with (its API key, the header values taken from
``${VAR}``) and anything shaped like a bearer token or an ``sk-`` key.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable

from replay.types import Completion

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 8
"""Shorter configured values (a tenant id like ``t1``) are not treated as secrets: removing
them would mangle every message while protecting nothing."""

_TOKEN = r"(?=[A-Za-z0-9._~+/*-]*[0-9*])[A-Za-z0-9._~+/*-]{%d,}[A-Za-z0-9_~+/*-]=*"
"""A token (RFC 6750's characters, not ending in a full stop) with a digit or a masking ``*``
in it, which tells a key from prose such as "Bearer authentication" or "sk-learn-style"."""
_SHAPES = re.compile(
    r"(?i:bearer)\s+" + _TOKEN % 7  # a bearer token, however the server quotes it
    + r"|\bsk-" + _TOKEN % 15  # OpenAI (sk-proj-...), Anthropic (sk-ant-...) and look-alike keys
)


def scrub_shapes(text: str) -> str:
    """Remove anything shaped like a bearer token or an ``sk-`` key."""
    if "sk-" not in text and "earer" not in text and "EARER" not in text:  # the common case, without a regex
        return text
    scrubbed = _SHAPES.sub(REDACTED, text)
    return text if scrubbed == text else scrubbed


class Scrubber:
    """Removes one arm's configured secrets, and secret-shaped strings, from text."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        known = {secret for secret in secrets if secret and len(secret) >= MIN_SECRET_LENGTH}
        self._secrets = tuple(sorted(known, key=len, reverse=True))  # a longer secret may contain a shorter one

    def text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return scrub_shapes(text)

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self.text(text)

    def dirty(self, text: str) -> bool:
        """Whether :meth:`text` would change ``text``."""
        for secret in self._secrets:
            if secret in text:
                return True
        return scrub_shapes(text) is not text

    def completion(self, completion: Completion) -> Completion:
        """The answer with every text field scrubbed; the same object when nothing changed (the usual
        case, checked in one pass over all fields: this runs once per request)."""
        values = [completion.text or "", completion.refusal or "", completion.model or "",
                  completion.system_fingerprint or "", completion.response_id or ""]  # fmt: skip
        for call in completion.tool_calls:
            values += (call.id or "", call.name, call.arguments)
        if not self.dirty("\0".join(values)):
            return completion
        calls = tuple(
            replace(call, id=self.optional(call.id), name=self.text(call.name), arguments=self.text(call.arguments))
            for call in completion.tool_calls
        )
        return replace(
            completion, text=self.optional(completion.text), refusal=self.optional(completion.refusal),
            model=self.optional(completion.model), system_fingerprint=self.optional(completion.system_fingerprint),
            response_id=self.optional(completion.response_id), tool_calls=calls,
        )  # fmt: skip
