"""Candidate transforms: an arm rewrites each logged request before sending it (the prompt-change test).

Per record, in this order: the system prompt (``transform.system_prompt_file``), then the
hook, on the logged request (chat or Messages dialect); then the arm's provider builds the
body (model, params, streaming); then ``model_map`` and the ``patch`` on the body as sent, so
a patch can drop what the arm's params or streaming add (``seed``, ``stream_options``).

The logged request is never changed in place: with a fresh baseline, both arms replay the same
record. A transform that fails on a record raises :class:`TransformFailed`, which the runner
stores as that record's outcome (error class ``transform_error``): nothing is sent for it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from typing import Any, Callable

from replay import fastjson
from replay.config import SystemPrompt, Transform
from replay.types import LogRecord
from replay.wire.adapt import ANTHROPIC, AdaptedBody, adapted, request_format

Hook = Callable[[dict[str, Any], LogRecord], Any]
Build = Callable[[dict[str, Any]], dict[str, Any]]

MAX_PROMPT_BYTES = 1 << 20
"""A system prompt file larger than 1 MB is refused: it is stored with the run."""
PATCH_OPS = {"add": ("value",), "remove": (), "replace": ("value",), "move": ("from",), "copy": ("from",), "test": ("value",)}
"""RFC 6902 operations, each with the members it needs besides ``path``."""
ERROR_CHARS = 300


class TransformFailed(Exception):
    """The arm's transform cannot rewrite this record: stored as its ``transform_error``."""


class SpecError(ValueError):
    """A transform key that cannot work; ``key`` is the part after ``transform.`` (``patch[1].path``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# --- loading: every check before anything is sent ----------------------------------------------


def read_system_prompt(file: str, mode: str, search_dirs: tuple[str, ...]) -> SystemPrompt:
    """The prompt file's text, found as log paths are (the working directory, then the scenario's folder)."""
    path = next((os.path.join(d, file) for d in search_dirs if os.path.isfile(os.path.join(d, file))), None)
    if path is None:
        raise SpecError("system_prompt_file", f"no such file: {file}")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PROMPT_BYTES + 1)
    except OSError as exc:
        raise SpecError("system_prompt_file", f"{file}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_PROMPT_BYTES:
        raise SpecError("system_prompt_file", f"{file}: larger than 1 MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError("system_prompt_file", f"{file}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise SpecError("system_prompt_file", f"{file}: is empty")
    return SystemPrompt(file, text, hashlib.sha256(raw).hexdigest(), mode)


def check_patch(ops: Any) -> tuple[dict[str, Any], ...]:
    """RFC 6902 operations, each checked for what it needs (an ``op``, a JSON Pointer ``path``...)."""
    from jsonpointer import JsonPointer, JsonPointerException

    if not isinstance(ops, list):
        raise SpecError("patch", "expected a list of operations such as {op: remove, path: /seed}")
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise SpecError(f"patch[{i}]", "expected an operation such as {op: remove, path: /seed}")
        if op.get("op") not in PATCH_OPS:
            raise SpecError(f"patch[{i}].op", f"expected one of {', '.join(PATCH_OPS)}, got {op.get('op')!r}")
        for member in ("path", *PATCH_OPS[op["op"]]):
            if member not in op:
                raise SpecError(f"patch[{i}].{member}", f"missing: '{op['op']}' needs it")
            if member in ("path", "from"):
                try:
                    if not isinstance(op[member], str):
                        raise JsonPointerException("not a string")
                    JsonPointer(op[member])
                except JsonPointerException:
                    raise SpecError(f"patch[{i}].{member}", f"expected a JSON Pointer such as /seed, got {op[member]!r}"[:200]) from None
    return tuple(ops)


def load_hook(spec: str, search_dirs: tuple[str, ...]) -> Hook:
    """``module:callable`` (the callable may be dotted), imported with the scenario's folders on the path."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SpecError("hook", f"expected module:callable such as mypkg.rewrite:request, got {spec!r}")
    added = [os.path.abspath(d) for d in search_dirs if os.path.abspath(d) not in sys.path]
    sys.path[:0] = added
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # the hook's module may raise anything on import
        raise SpecError("hook", f"cannot import {module_name}: {type(exc).__name__}: {exc}"[:ERROR_CHARS]) from None
    finally:
        for folder in added:
            sys.path.remove(folder)
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise SpecError("hook", f"{module_name} has no {attribute}")
        target = getattr(target, part)
    if not callable(target):
        raise SpecError("hook", f"{spec} is not callable")
    return target  # type: ignore[no-any-return]


# --- per record ------------------------------------------------------------------------------------


class Rewriter:
    """One arm's transform, compiled: its hook imported, its patch parsed."""

    def __init__(self, transform: Transform, search_dirs: tuple[str, ...]) -> None:
        import jsonpatch

        self.prompt = transform.system_prompt
        self.model_map = transform.model_map
        self.patch = jsonpatch.JsonPatch(list(transform.patch)) if transform.patch else None
        self.hook_name = transform.hook
        self.hook = load_hook(transform.hook, search_dirs) if transform.hook else None

    def body(self, record: LogRecord, build: Build) -> dict[str, Any]:
        """The body to send for ``record``; raises :class:`TransformFailed`."""
        request = record.request
        if self.prompt is not None:
            request = with_system_prompt(request, self.prompt.text, self.prompt.mode)
        if self.hook is not None:
            request = self._hooked(request, record)
        try:
            body = build(request)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a hook's request the provider cannot read
            raise TransformFailed(f"the transformed request cannot be sent: {type(exc).__name__}: {exc}"[:ERROR_CHARS]) from None
        model = self.model_map.get(str(record.request.get("model"))) if self.model_map else None
        if model is not None:
            body["model"] = model
        return body if self.patch is None else self._patched(body)

    def _hooked(self, request: dict[str, Any], record: LogRecord) -> dict[str, Any]:
        copy = fastjson.loads(fastjson.dumps_bytes(request))  # the hook may change what it gets
        try:
            result = self.hook(copy, record)  # type: ignore[misc]
        except Exception as exc:  # the user's code
            raise TransformFailed(f"hook {self.hook_name} raised {type(exc).__name__}: {exc}"[:ERROR_CHARS]) from None
        if not isinstance(result, dict):
            raise TransformFailed(f"hook {self.hook_name} returned {type(result).__name__}, not a request mapping")
        try:
            json.dumps(result, allow_nan=False)  # strictly: the body is sent as JSON, NaN has no JSON
        except (TypeError, ValueError, RecursionError) as exc:
            raise TransformFailed(f"hook {self.hook_name} returned a request that is not JSON: {exc}"[:ERROR_CHARS]) from None
        return result

    def _patched(self, body: dict[str, Any]) -> dict[str, Any]:
        from jsonpatch import JsonPatchException
        from jsonpointer import JsonPointerException

        assert self.patch is not None
        try:
            patched = self.patch.apply(body)  # on a copy: the body shares the logged request's messages
        except (JsonPatchException, JsonPointerException) as exc:
            raise TransformFailed(f"transform.patch: {exc}"[:ERROR_CHARS]) from None
        if not isinstance(patched, dict):
            raise TransformFailed("transform.patch: the patched body is not a mapping")
        if isinstance(body, AdaptedBody):  # what adapting lost stays on record
            return adapted(patched, list(body.lossy), body.answer_tool)
        return patched


def with_system_prompt(request: dict[str, Any], text: str, mode: str) -> dict[str, Any]:
    """The request with its first system (or developer) message, or a Messages request's ``system``,
    replaced by ``text`` or with ``text`` before or after it; one is added where there is none."""
    if request_format(request) == ANTHROPIC:
        return {**request, "system": _joined(request.get("system"), text, mode)}
    messages = list(request.get("messages") or ())
    for i, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            messages[i] = {**message, "content": _joined(message.get("content"), text, mode)}
            break
    else:
        messages.insert(0, {"role": "system", "content": text})
    return {**request, "messages": messages}


def _joined(old: Any, text: str, mode: str) -> Any:
    """A string joins with a blank line; a list of content blocks gets a text block (its other blocks,
    ``cache_control`` included, kept)."""
    if mode == "replace" or not old:
        return text
    if isinstance(old, list):
        block = {"type": "text", "text": text}
        return [block, *old] if mode == "prepend" else [*old, block]
    return f"{text}\n\n{old}" if mode == "prepend" else f"{old}\n\n{text}"


# --- what reports say ---------------------------------------------------------------------------------

_MODE_WORDS = {"replace": "system prompt from", "prepend": "system prompt prepended from", "append": "system prompt appended from"}


def describe(transform: dict[str, Any] | None) -> str:
    """A stored transform in a report's words: ``system prompt from prompts/v2.txt (sha256 1a2b3c4d)``."""
    if not transform:
        return ""
    parts = []
    prompt = transform.get("system_prompt")
    if prompt:
        parts.append(f"{_MODE_WORDS.get(prompt.get('mode'), 'system prompt from')} {prompt.get('file')} (sha256 {str(prompt.get('sha256'))[:8]})")
    if transform.get("model_map"):
        parts.append("models " + ", ".join(f"{logged} -> {sent}" for logged, sent in transform["model_map"].items()))
    if transform.get("patch"):
        parts.append("patch " + ", ".join(f"{op.get('op')} {op.get('path')}" for op in transform["patch"]))
    if transform.get("hook"):
        parts.append(f"hook {transform['hook']}")
    return ", ".join(parts)


def report_fields(transform: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored transform for the JSON report: the prompt's file, mode and sha256, not its text."""
    if not transform:
        return None
    prompt = transform.get("system_prompt")
    return {
        "summary": describe(transform),
        "system_prompt": {key: prompt.get(key) for key in ("file", "mode", "sha256")} if prompt else None,
        "model_map": transform.get("model_map") or {},
        "patch": transform.get("patch") or [],
        "hook": transform.get("hook"),
    }
