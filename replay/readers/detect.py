"""``format: auto``: tell a file's source from its first records.

The rule, per file: read up to :data:`PROBE_RECORDS` JSON objects from the start; the first that
one of the rules below recognises names the format (the keys each source always writes):

==================  ===========================================================================
``shadow``          ``id`` and ``request`` holding ``messages``
``openai-responses`` ``request`` holding ``input`` (a Responses API body), no ``messages``
``openai-batch``    ``custom_id`` with ``method``/``url``/``body`` (input) or ``response`` (output)
``anthropic-batch`` ``custom_id`` with ``params`` (requests) or ``result`` (results)
``otel-genai``      ``resourceSpans`` (an OTLP JSON export request)
``langfuse``        ``traceId`` and ``type`` (an observation), or a page whose ``data`` starts with one
``langsmith``       ``run_type`` and ``inputs`` (a run)
``helicone``        ``request_id`` with ``request_body`` or ``response_body``
``litellm``         ``startTime`` with ``call_type``, ``model_parameters`` or ``spend``
==================  ===========================================================================

A Parquet file (``PAR1``) is ``langsmith`` (its bulk export). A file whose probed records none of them recognises is read as ``shadow`` when one of them is
not JSON or has a shadow key (``id``, ``request``, ``response``), so a broken shadow line gets the
shadow reader's message; otherwise it is an error naming the file and asking for ``format:``.
"""

from __future__ import annotations

from typing import Any, Callable

from replay.errors import InputError, LogFormatError
from replay.readers.base import known_formats

PROBE_RECORDS = 5
PROBE_BYTES = 8 * 2**20
SHADOW_KEYS = frozenset(("id", "request", "response"))
"""A record with one of these and no other source's keys is a (maybe broken) shadow line."""


def _shadow(obj: dict[str, Any]) -> bool:
    request = obj.get("request")
    return "id" in obj and isinstance(request, dict) and "messages" in request


def _responses(obj: dict[str, Any]) -> bool:
    request = obj.get("request")
    return isinstance(request, dict) and "input" in request and "messages" not in request


def _openai_batch(obj: dict[str, Any]) -> bool:
    return "custom_id" in obj and ("body" in obj or "method" in obj or "response" in obj)


def _anthropic_batch(obj: dict[str, Any]) -> bool:
    return "custom_id" in obj and ("params" in obj or "result" in obj)


def _observation(obj: Any) -> bool:
    return isinstance(obj, dict) and "traceId" in obj and "type" in obj


RULES: tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...] = (
    ("shadow", _shadow),
    ("openai-responses", _responses),
    ("anthropic-batch", _anthropic_batch),
    ("openai-batch", _openai_batch),
    ("otel-genai", lambda obj: "resourceSpans" in obj),
    ("langfuse", lambda obj: _observation(obj) or (isinstance(obj.get("data"), list) and bool(obj["data"])
                                                   and _observation(obj["data"][0]))),
    ("langsmith", lambda obj: "run_type" in obj and "inputs" in obj),
    ("helicone", lambda obj: "request_id" in obj and ("request_body" in obj or "response_body" in obj)),
    ("litellm", lambda obj: "startTime" in obj and ("call_type" in obj or "model_parameters" in obj or "spend" in obj)),
)


def detect_format(path: str) -> str:
    """The registered format of ``path``'s first recognisable record (see the module's rule)."""
    from replay.readers.objects import read_objects

    try:
        with open(path, "rb") as probe:
            if probe.read(4) == b"PAR1":  # Parquet: LangSmith's bulk export is the one read
                return "langsmith"
    except OSError:
        pass  # the reader names the problem
    if path.endswith((".csv", ".csv.gz")):
        raise InputError(f"{path}: a CSV file: set format: csv and a mapping: of its columns")
    available = set(known_formats())
    probed, shadow_like = 0, False
    for item in read_objects(path, PROBE_BYTES):
        probed += 1
        obj = item if isinstance(item, LogFormatError) else item[1]
        if isinstance(obj, dict):
            for name, rule in RULES:
                if name in available and rule(obj):
                    return name
            shadow_like = shadow_like or not SHADOW_KEYS.isdisjoint(obj)
        else:
            shadow_like = True  # not JSON, or not an object: the shadow reader names the line and why
        if probed >= PROBE_RECORDS:
            break
    if probed == 0 or shadow_like:
        return "shadow"
    known = ", ".join(name for name, _ in RULES if name in available)
    raise InputError(f"{path}: cannot detect the log format from the first {probed} record(s)"
                     f" (set format: or --format to one of {known}; or jsonl with a mapping:)")  # fmt: skip
